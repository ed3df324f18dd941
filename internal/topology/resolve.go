package topology

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/testbedos/testbedos/internal/api"
)

// Options says what to generate the state of.
type Options struct {
	Deployment string
	ProjectDir string
	// File is the topology file, relative to ProjectDir unless absolute;
	// default DefaultFile. Problems name it as given here.
	File string
	// Hosts are the cluster's hosts in placement order; default one main
	// host named "localhost" (the server passes its real hosts).
	Hosts []Host
	// Now stamps GeneratedAt; default time.Now.
	Now func() time.Time
	// ImageDirs are the folders outside the project that existing_disk and
	// iso_guest paths may lie under; nil means DefaultImageDirs("").
	ImageDirs []string
	// ProviderNetworks maps the main host's provider networks (host.json's
	// bridge mappings) to the host's address on each, CIDR; nil means
	// DefaultProviderNetworks().
	ProviderNetworks map[string]string
	// OVN: the network backend is OVN's, whose routers are distributed (a
	// routed switch may span hosts, a router port may name its gateway
	// chassis with set_gateway_chassis) and whose hosts are joined by
	// Geneve (guests of a deployment on several hosts get GeneveMTU).
	OVN bool
}

// Generate reads, parses, validates and resolves the topology of a project.
// Everything wrong with the topology comes back at once as a
// *ValidationError (errors.Is(err, ErrInvalid)); a missing file is an error
// wrapping fs.ErrNotExist.
func Generate(opts Options) (*State, error) {
	if !api.ValidName(opts.Deployment) {
		return nil, fmt.Errorf("topology: invalid deployment name %q", opts.Deployment)
	}
	if opts.ProjectDir == "" {
		return nil, errors.New("topology: no project folder given")
	}
	project, err := filepath.Abs(opts.ProjectDir)
	if err != nil {
		return nil, fmt.Errorf("topology: project folder: %w", err)
	}
	file := opts.File
	if file == "" {
		file = DefaultFile
	}
	source := file
	if !filepath.IsAbs(source) {
		source = filepath.Join(project, source)
	}
	hosts, err := placementHosts(opts.Hosts)
	if err != nil {
		return nil, err
	}
	// The file is opened once, inside the project folder, and read only
	// when it is a regular file within MaxTopologyFile.
	data, err := ReadProjectFile(project, source, MaxTopologyFile)
	if err != nil {
		return nil, fmt.Errorf("topology: %w", err)
	}
	c, ps := parse(file, data)
	if c == nil {
		return nil, newValidationError(ps)
	}
	imageDirs := opts.ImageDirs
	if imageDirs == nil {
		imageDirs = DefaultImageDirs("")
	}
	files, fps, err := c.resolveFiles(project, imageDirs)
	if err != nil {
		return nil, err
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	providers := opts.ProviderNetworks
	if providers == nil {
		providers = DefaultProviderNetworks()
	}
	// Resolution runs even when the checks found problems, so that every
	// problem comes back in one pass: what only resolution sees (a clone's
	// MAC equal to another guest's, a generated name collision) is not held
	// back until the rest is fixed.
	st, rps := c.resolve(resolveEnv{
		providers:   providers,
		distributed: opts.OVN,
		deployment:  opts.Deployment,
		project:     project,
		source:      source,
		hosts:       hosts,
		now:         now().UTC(),
		files:       files,
		// Checked by Parse: a valid value.
		readyTimeout: readyTimeoutText(c.TestbedOptions.ReadyTimeout),
	})
	if err := newValidationError(joinProblems(append(ps, fps...), rps)); err != nil {
		return nil, err
	}
	return st, nil
}

// joinProblems adds the problems of a later phase to those of the earlier
// ones, leaving out those about a field already reported: one mistake,
// one message.
func joinProblems(earlier, later []Problem) []Problem {
	seen := make(map[string]bool, len(earlier))
	for _, p := range earlier {
		seen[p.Field] = true
	}
	for _, p := range later {
		if p.Field == "" || !seen[p.Field] {
			earlier = append(earlier, p)
		}
	}
	return earlier
}

func placementHosts(hosts []Host) ([]Host, error) {
	if len(hosts) == 0 {
		return []Host{{Name: "localhost", Main: true}}, nil
	}
	seen := map[string]bool{}
	for _, h := range hosts {
		if h.Name == "" || seen[h.Name] {
			return nil, fmt.Errorf("topology: host names must be unique and not empty (got %q twice or empty)", h.Name)
		}
		seen[h.Name] = true
	}
	return append([]Host(nil), hosts...), nil
}

// resolveEnv is what resolution needs besides the Config.
type resolveEnv struct {
	deployment      string
	project, source string
	hosts           []Host
	now             time.Time
	// files maps field paths to resolved file paths; a path missing from it
	// is used as written (Parse-only callers such as the fuzzer).
	files map[string]string
	// providers are the provider networks (Options.ProviderNetworks).
	providers map[string]string
	// readyTimeout is testbed_options.ready_timeout as a Go duration.
	readyTimeout string
	// distributed is Options.OVN.
	distributed bool
}

func readyTimeoutText(s string) string {
	d, err := ParseReadyTimeout(s)
	if err != nil || d == 0 {
		return ""
	}
	return d.String()
}

// resolve turns a checked Config into the State. The problems it can still
// find are those that need the deployment or the cluster: unknown hosts and
// collisions of generated names.
func (c *Config) resolve(env resolveEnv) (*State, []Problem) {
	ps := problems{c: c}
	st := &State{
		Version:     StateVersion,
		Deployment:  env.deployment,
		Project:     env.project,
		Source:      env.source,
		GeneratedAt: env.now,
		Prefix:      Prefix(env.deployment),
		Hosts:       env.hosts,
	}
	specs, base := c.SwitchSpecs()
	if env.providers == nil {
		env.providers = DefaultProviderNetworks()
	}
	bridgeOf := c.switchBridges(st, env.providers)
	bridges := map[string]string{} // kernel name → switch
	prefixes := map[string]netip.Prefix{}
	for _, name := range sortedKeys(specs) {
		p, _ := netip.ParsePrefix(specs[name].Subnet)
		prefixes[name] = p
		br := bridgeOf[name]
		if other, dup := bridges[br]; dup {
			ps.addf(base+"."+name, "gets bridge name %s, the same as switch %s: rename one of them", br, other)
		}
		bridges[br] = name
		st.Switches = append(st.Switches, Switch{Name: name, Subnet: p.String(), Bridge: br})
	}

	known := map[string]bool{}
	var hostNames []string
	for _, h := range env.hosts {
		known[h.Name] = true
		hostNames = append(hostNames, h.Name)
	}
	type owner struct{ guest, field string }
	hostIfs := map[string]owner{}
	macs := map[string]owner{}
	place := newPlacer(c.TestbedOptions.LoadBalancing, env.hosts)
	for _, in := range c.instances() {
		m := &c.Machines[in.machine]
		mp := fmt.Sprintf("machines[%d]", in.machine)
		g := Guest{Name: in.name, Kind: m.Kind(), Clone: in.clone}
		switch {
		case m.Host == "":
			g.Host = place.next(m)
		case known[m.Host]:
			g.Host = m.Host
			place.take(m.Host, m)
		case in.clone <= 1: // once per machine, not per clone
			ps.addf(mp+".host", "%s is not a host of the cluster (hosts: %s)", m.Host, strings.Join(hostNames, ", "))
		}
		gatewayFrom := -1 // the interface whose gateway is the default route
		dhcp := c.dhcpSwitches()
		for j, a := range m.Network {
			if !in.has(j) {
				continue
			}
			field := fmt.Sprintf("%s.network[%d]", mp, j)
			ifc := Interface{
				Switch:   a.Switch,
				Bridge:   bridgeOf[a.Switch],
				Name:     InterfaceName(len(g.Interfaces)),
				HostName: HostIfName(env.deployment, in.name, len(g.Interfaces)),
				Gateway:  a.Gateway,
			}
			if !a.Netem.IsZero() {
				n := *a.Netem
				ifc.Netem = &n
			}
			if p := prefixes[a.Switch]; in.addrs[j].IsValid() && p.IsValid() {
				ifc.Address = netip.PrefixFrom(in.addrs[j], p.Bits()).String()
			}
			if gw, err := netip.ParseAddr(a.Gateway); err == nil {
				ifc.Gateway = gw.String()
			}
			if a.IP == IPDynamic {
				// The lease brings the address and the router.
				ifc.Dynamic, ifc.Gateway = true, ""
				if _, ok := dhcp[a.Switch]; !ok {
					ifc.Dynamic = false
					if in.clone <= 1 {
						c.note(st, field+".ip", "is dynamic, but no router serves DHCP on switch %s: the interface gets no address", a.Switch)
					}
				}
			}
			if a.Gateway != "" && gatewayFrom >= 0 {
				// A guest has one default route: the first interface's.
				if in.clone <= 1 {
					c.note(st, field+".gateway", "%s is a second default route of %s (network[%d] has one); a guest has one default route, so this one is not installed", a.Gateway, m.Name, gatewayFrom)
				}
				ifc.Gateway = ""
			} else if a.Gateway != "" {
				gatewayFrom = j
			}
			ifc.MAC, _ = parseMAC(a.MAC)
			if a.macFrom != "" && in.clone > 0 {
				ifc.MAC = cloneMAC(a.macFrom, in.pos[j])
			}
			if ifc.MAC == "" {
				ifc.MAC = DefaultMAC(env.deployment, in.name, len(g.Interfaces))
			}
			who := owner{fmt.Sprintf("%s %s", describeGuest(in), ifc.Name), field}
			if prev, dup := hostIfs[ifc.HostName]; dup {
				ps.addf(mp+".name", "%s gets host-side interface name %s, the same as %s (%s): rename one of the machines", who.guest, ifc.HostName, prev.guest, c.where(prev.field))
			} else {
				hostIfs[ifc.HostName] = who
			}
			if prev, dup := macs[ifc.MAC]; dup {
				ps.addf(field+".mac", "%s of %s is already used by %s (%s)", ifc.MAC, who.guest, prev.guest, c.where(prev.field))
			} else {
				macs[ifc.MAC] = who
			}
			g.Interfaces = append(g.Interfaces, ifc)
		}
		c.resolveKind(&g, m, mp, env)
		g.CloneScripts = cloneScripts(m, mp, in.clone, env.files)
		st.Guests = append(st.Guests, g)
	}
	c.resolveManagement(st, &ps)
	spanSwitches(st, env.distributed)
	// A router port given the MAC of a guest (or of another port) would
	// share it on the bridge.
	routers, base := c.RouterSpecs()
	for _, name := range sortedKeys(routers) {
		for i, p := range routers[name].Ports {
			mac, err := parseMAC(p.MAC)
			if err != nil {
				continue // none given, or already reported
			}
			field := fmt.Sprintf("%s.%s.ports[%d].mac", base, name, i)
			if prev, dup := macs[mac]; dup {
				ps.addf(field, "%s is already used by %s (%s)", mac, prev.guest, c.where(prev.field))
			} else {
				macs[mac] = owner{fmt.Sprintf("router %s port %d", name, i), field}
			}
		}
	}
	c.resolveRouters(st, &ps, env.providers, env.distributed)
	c.switchPortNotes(st)
	c.unusedFieldNotes(st)
	c.resolveACL(&ps, st)
	c.resolveTimeline(st, &ps)
	return st, ps.list
}

// GeneveMTU is the MTU of guest interfaces of a deployment on several hosts
// with the ovn backend: a 1500-byte underlay less Geneve's outer headers and
// OVN's options. Distributed routers carry traffic between hosts even from
// switches that do not span them, so every interface gets it.
const GeneveMTU = 1400

// spanSwitches records on which hosts each switch has guests; a switch on
// more than one gets a tunnel, and its guests' interfaces an MTU that fits
// inside it (with geneve, every interface when guests are on more than one
// host).
func spanSwitches(st *State, geneve bool) {
	on := map[string]map[string]bool{}
	for _, g := range st.Guests {
		for _, ifc := range g.Interfaces {
			if on[ifc.Switch] == nil {
				on[ifc.Switch] = map[string]bool{}
			}
			if g.Host != "" {
				on[ifc.Switch][g.Host] = true
			}
		}
	}
	hosts := map[string]bool{}
	for _, g := range st.Guests {
		hosts[g.Host] = true
	}
	spans := map[string]bool{}
	for i := range st.Switches {
		sw := &st.Switches[i]
		sw.Hosts = sortedKeys(on[sw.Name])
		if sw.Spans() {
			sw.Tunnel = TunnelName(st.Deployment, sw.Name)
			spans[sw.Name] = true
		}
	}
	for i := range st.Guests {
		for j := range st.Guests[i].Interfaces {
			ifc := &st.Guests[i].Interfaces[j]
			switch {
			case geneve && len(hosts) > 1:
				ifc.MTU = GeneveMTU
			case spans[ifc.Switch]:
				ifc.MTU = TunnelMTU
			}
		}
	}
}

// resolveKind fills in what the guest's driver needs.
func (c *Config) resolveKind(g *Guest, m *Machine, mp string, env resolveEnv) {
	file := func(field, path string) string {
		if real, ok := env.files[mp+"."+field]; ok {
			return real
		}
		return path
	}
	switch g.Kind {
	case KindNetns:
		g.Netns = &NetnsGuest{Namespace: NamespaceName(env.deployment, g.Name)}
		if m.Netns != nil {
			g.SetupScript = file("netns.setup_script", m.Netns.SetupScript)
		}
	case KindDocker:
		g.Docker = resolveDocker(m.Docker, ContainerName(env.deployment, g.Name), mp, file)
		g.SetupScript = file("docker.setup_script", m.Docker.SetupScript)
	case KindLibvirt:
		l := m.Libvirt
		g.SetupScript = file("libvirt.setup_script", l.SetupScript)
		spec := &LibvirtSpec{Domain: DomainName(env.deployment, g.Name), CPUs: l.CPUs, MemoryMB: l.MemoryMB,
			Username: l.Username, Password: l.Password, StaticIP: l.StaticIP, ReadyTimeout: env.readyTimeout}
		if l.TCPTTYPort > 0 {
			spec.TCPTTYPort = l.TCPTTYPort + max(g.Clone, 1) - 1
		}
		const tp = "libvirt.libvirt_type."
		switch t := l.Type; {
		case t.ExistingDisk != nil:
			d := t.ExistingDisk
			spec.Boot = BootExistingDisk
			spec.DiskPath = file(tp+"existing_disk.path", d.Path)
			spec.DiskFormat = orDefault(d.DriverType, DiskRaw)
			spec.DeepCopy = d.CreateDeepCopy
			spec.DeviceType, spec.ReadOnly = orDefault(d.DeviceType, DeviceDisk), d.ReadOnly
		case t.ISOGuest != nil:
			iso := t.ISOGuest
			spec.Boot = BootISOGuest
			spec.ISOPath = file(tp+"iso_guest.path", iso.Path)
			spec.DiskFormat = orDefault(iso.DriverType, DiskRaw)
			spec.DeviceType, spec.ReadOnly = orDefault(iso.DeviceType, DeviceDisk), iso.ReadOnly
			spec.ExpandGB = iso.ExpandGigabytes
		case t.CloudImage != nil:
			ci := t.CloudImage
			spec.Boot = BootCloudImage
			spec.ImageURL, spec.ImageName = cloudImageSource(ci)
			spec.ExpandGB = ci.ExpandGigabytes
			if ci.SetupScript != "" {
				g.SetupScript = file(tp+"cloud_image.setup_script", ci.SetupScript)
			}
			if ci.RunScript != "" {
				spec.RunScript = file(tp+"cloud_image.run_script", ci.RunScript)
			}
			if ci.Context != "" {
				spec.Context = file(tp+"cloud_image.context", ci.Context)
			}
			if len(ci.Environment) > 0 {
				spec.Environment = maps.Clone(ci.Environment)
			}
			spec.ImageSHA256 = strings.ToLower(ci.SHA256)
		case t.Kernel != nil:
			spec.Boot = BootKernel
			spec.Kernel = file(tp+"kernel.kernel", t.Kernel.Kernel)
			spec.Initrd = file(tp+"kernel.initrd", t.Kernel.Initrd)
			spec.Cmdline = t.Kernel.Cmdline
		}
		g.Libvirt = spec
	}
}
