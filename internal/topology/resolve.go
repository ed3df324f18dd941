package topology

import (
	"errors"
	"fmt"
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
	files, fps, err := c.resolveFiles(project)
	if err != nil {
		return nil, err
	}
	if err := newValidationError(append(ps, fps...)); err != nil {
		return nil, err
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	st, ps := c.resolve(resolveEnv{
		deployment: opts.Deployment,
		project:    project,
		source:     source,
		hosts:      hosts,
		now:        now().UTC(),
		files:      files,
		// Checked by Parse: a valid value.
		readyTimeout: readyTimeoutText(c.TestbedOptions.ReadyTimeout),
	})
	if err := newValidationError(ps); err != nil {
		return nil, err
	}
	return st, nil
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
	// readyTimeout is testbed_options.ready_timeout as a Go duration.
	readyTimeout string
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
	bridges := map[string]string{} // kernel name → switch
	prefixes := map[string]netip.Prefix{}
	for _, name := range sortedKeys(specs) {
		p, _ := netip.ParsePrefix(specs[name].Subnet)
		prefixes[name] = p
		br := BridgeName(env.deployment, name)
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
		for j, a := range m.Network {
			field := fmt.Sprintf("%s.network[%d]", mp, j)
			ifc := Interface{
				Switch:   a.Switch,
				Bridge:   BridgeName(env.deployment, a.Switch),
				Name:     InterfaceName(j),
				HostName: HostIfName(env.deployment, in.name, j),
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
			}
			ifc.MAC, _ = parseMAC(a.MAC)
			if a.macFrom != "" && in.clone > 0 {
				ifc.MAC = cloneMAC(a.macFrom, in.clone)
			}
			if ifc.MAC == "" {
				ifc.MAC = DefaultMAC(env.deployment, in.name, j)
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
	spanSwitches(st)
	c.resolveRouters(st, &ps)
	c.resolveACL(&ps, st)
	return st, ps.list
}

// spanSwitches records on which hosts each switch has guests; a switch on
// more than one gets a tunnel, and its guests' interfaces an MTU that fits
// inside it.
func spanSwitches(st *State) {
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
			if ifc := &st.Guests[i].Interfaces[j]; spans[ifc.Switch] {
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
		spec := &LibvirtSpec{Domain: DomainName(env.deployment, g.Name), CPUs: l.CPUs, MemoryMB: l.MemoryMB, ReadyTimeout: env.readyTimeout}
		const tp = "libvirt.libvirt_type."
		switch t := l.Type; {
		case t.ExistingDisk != nil:
			spec.Boot = BootExistingDisk
			spec.DiskPath = file(tp+"existing_disk.path", t.ExistingDisk.Path)
			spec.DiskFormat = t.ExistingDisk.DriverType
			spec.DeepCopy = t.ExistingDisk.CreateDeepCopy
		case t.ISOGuest != nil:
			spec.Boot = BootISOGuest
			spec.ISOPath = file(tp+"iso_guest.path", t.ISOGuest.Path)
		case t.CloudImage != nil:
			spec.Boot = BootCloudImage
			spec.ImageURL, spec.ImageName = cloudImageSource(t.CloudImage)
			spec.ExpandGB = t.CloudImage.ExpandGigabytes
			spec.ImageSHA256 = strings.ToLower(t.CloudImage.SHA256)
		case t.Kernel != nil:
			spec.Boot = BootKernel
			spec.Kernel = file(tp+"kernel.kernel", t.Kernel.Kernel)
			spec.Initrd = file(tp+"kernel.initrd", t.Kernel.Initrd)
			spec.Cmdline = t.Kernel.Cmdline
		}
		g.Libvirt = spec
	}
}
