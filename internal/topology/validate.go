package topology

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"sort"
	"strings"

	"github.com/testbedos/testbedos/internal/api"
)

const nameRule = "use lower-case letters, digits, - and _, start with a letter or digit, at most 63 characters"

// check runs every check that needs no file system, in the order of the file.
func (c *Config) check(ps *problems) {
	if len(c.Machines) == 0 {
		ps.addf("machines", "must list at least one machine")
	}
	switch c.TestbedOptions.loadBalancing() {
	case "", LoadBalancingNaiveRoundRobin, LoadBalancingResources:
	default:
		ps.addf("testbed_options.load_balancing", "%q is not supported (use %s or %s, or the original's %s)", c.TestbedOptions.LoadBalancing, LoadBalancingNaiveRoundRobin, LoadBalancingResources, LoadBalancingOriginal)
	}
	if _, err := ParseReadyTimeout(c.TestbedOptions.ReadyTimeout); err != nil {
		ps.addf("testbed_options.ready_timeout", "%v", err)
	}
	if c.Network.OVN != nil && c.Network.Switches != nil {
		ps.addf("network.ovn", "cannot be given together with network.switches: use one spelling")
	}
	for i := range c.Machines {
		c.hoistScaling(ps, i)
	}
	subnets := c.checkSwitches(ps)
	c.checkRouters(ps, subnets)
	c.checkACL(ps, subnets)
	// Checks over the clones run only once it is known there are not too
	// many of them.
	guests, ifaces := 0, 0
	for i := range c.Machines {
		n := c.Machines[i].instanceCount()
		guests += n
		ifaces += n * len(c.Machines[i].Network)
	}
	expand := true
	switch {
	case guests > MaxGuests:
		ps.addf("machines", "make %d guests once scaled; at most %d are allowed", guests, MaxGuests)
		expand = false
	case ifaces > MaxInterfaces:
		ps.addf("machines", "make %d interfaces once scaled; at most %d are allowed", ifaces, MaxInterfaces)
		expand = false
	}
	for i := range c.Machines {
		c.checkMachine(ps, i, subnets, expand)
	}
	c.checkLibvirtAccess(ps)
	if expand {
		c.checkUnique(ps)
	}
}

// checkSwitches returns the parsed subnet of each switch; a switch whose
// subnet is wrong maps to the zero Prefix (known, but not checkable).
func (c *Config) checkSwitches(ps *problems) map[string]netip.Prefix {
	specs, base := c.SwitchSpecs()
	subnets := make(map[string]netip.Prefix, len(specs))
	for _, name := range sortedKeys(specs) {
		path := base + "." + name
		subnets[name] = netip.Prefix{}
		if !api.ValidName(name) {
			ps.addf(path, "is not a valid switch name: %s", nameRule)
		}
		subnet := specs[name].Subnet
		if subnet == "" {
			ps.addf(path+".subnet", "is required (e.g. 10.0.0.0/24)")
			continue
		}
		p, err := netip.ParsePrefix(subnet)
		if err != nil {
			ps.addf(path+".subnet", "%s is not a CIDR subnet (e.g. 10.0.0.0/24)", subnet)
			continue
		}
		if p != p.Masked() {
			ps.addf(path+".subnet", "%s has host bits set: the subnet is %s", subnet, p.Masked())
			continue
		}
		subnets[name] = p
	}
	for _, name := range sortedKeys(specs) {
		c.checkSwitchPorts(ps, base+"."+name, name, specs[name], subnets[name])
	}
	return subnets
}

func (c *Config) checkMachine(ps *problems, i int, subnets map[string]netip.Prefix, expand bool) {
	m := &c.Machines[i]
	mp := fmt.Sprintf("machines[%d]", i)
	switch {
	case m.Name == "":
		ps.addf(mp+".name", "is required")
	case !api.ValidName(m.Name):
		ps.addf(mp+".name", "%q is not a valid name: %s", m.Name, nameRule)
	}
	var kinds []string
	for _, k := range []struct {
		name string
		set  bool
	}{{KindNetns, m.Netns != nil}, {KindLibvirt, m.Libvirt != nil}, {KindDocker, m.Docker != nil}} {
		if k.set {
			kinds = append(kinds, k.name)
		}
	}
	if len(kinds) > 1 {
		ps.addf(mp, "has sections %s: give at most one guest kind", strings.Join(kinds, " and "))
	}
	if m.Libvirt != nil {
		c.checkLibvirt(ps, mp+".libvirt", m)
	}
	if m.Docker != nil {
		checkDocker(ps, mp+".docker", m.Docker)
	}
	if s := m.Scaling; s != nil {
		switch {
		case s.Count < 1:
			ps.addf(mp+".scaling.count", "%d must be at least 1", s.Count)
		case s.Count > MaxGuests:
			ps.addf(mp+".scaling.count", "%d is more than the %d guests allowed", s.Count, MaxGuests)
		case m.Name != "" && api.ValidName(m.Name) && !api.ValidName(cloneName(m.Name, s.Count)):
			ps.addf(mp+".name", "%q is too long to scale: clone %s would break the name rule (%s)", m.Name, cloneName(m.Name, s.Count), nameRule)
		}
	}
	for j := range m.Network {
		// A second gateway is accepted, as the original accepts it: the
		// guest's default route is the first one's (resolve notes it).
		c.checkAttachment(ps, fmt.Sprintf("%s.network[%d]", mp, j), m, j, subnets, expand)
	}
}

func (c *Config) checkLibvirt(ps *problems, lp string, m *Machine) {
	l := m.Libvirt
	if l.CPUs < 1 {
		if c.has(lp + ".cpus") {
			ps.addf(lp+".cpus", "%d must be at least 1", l.CPUs)
		} else {
			ps.addf(lp+".cpus", "is required (at least 1)")
		}
	}
	if l.MemoryMB < MinMemoryMB {
		if c.has(lp + ".memory_mb") {
			ps.addf(lp+".memory_mb", "%d is below the minimum of %d MiB", l.MemoryMB, MinMemoryMB)
		} else {
			ps.addf(lp+".memory_mb", "is required (at least %d MiB)", MinMemoryMB)
		}
	}
	tp := lp + ".libvirt_type"
	t := l.Type
	var given []string
	if d := t.ExistingDisk; d != nil {
		given = append(given, "existing_disk")
		if d.Path == "" {
			ps.addf(tp+".existing_disk.path", "is required")
		}
		checkDisk(ps, tp+".existing_disk", d.DriverType, d.DeviceType)
		if m.Scaling != nil && !d.CreateDeepCopy {
			ps.addf(tp+".existing_disk.create_deep_copy", "must be true for a scaled machine: clones cannot share one disk")
		}
	}
	if g := t.ISOGuest; g != nil {
		given = append(given, "iso_guest")
		if g.Path == "" {
			ps.addf(tp+".iso_guest.path", "is required")
		}
		checkDisk(ps, tp+".iso_guest", g.DriverType, g.DeviceType)
		if g.ExpandGigabytes < 0 {
			ps.addf(tp+".iso_guest.expand_gigabytes", "%d must not be negative", g.ExpandGigabytes)
		}
	}
	if ci := t.CloudImage; ci != nil {
		given = append(given, "cloud_image")
		_, known := CloudImageURL(ci.Name)
		u, err := url.Parse(ci.URL)
		switch {
		case ci.URL == "" && ci.Name != "" && !known:
			ps.addf(tp+".cloud_image.name", "%q is not a known image (known: %s); or give its url", ci.Name, knownCloudImageNames())
		case ci.URL == "" && !known:
			ps.addf(tp+".cloud_image.url", "is required (or a known name: %s)", knownCloudImageNames())
		case ci.URL == "":
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			ps.addf(tp+".cloud_image.url", "%q is not an http or https URL", ci.URL)
		}
		c.checkCloudSetup(ps, lp, ci)
		if h := ci.SHA256; h != "" && !isHexDigest(h) {
			ps.addf(tp+".cloud_image.sha256", "%q is not a sha256 digest (64 hex digits)", h)
		}
		if ci.ExpandGigabytes < 0 {
			ps.addf(tp+".cloud_image.expand_gigabytes", "%d must not be negative", ci.ExpandGigabytes)
		}
		if n := ci.Name; ci.URL != "" && n != "" && (n == "." || n == ".." || strings.ContainsAny(n, "/\\\x00")) {
			ps.addf(tp+".cloud_image.name", "%q must be a plain file name", n)
		}
	}
	if k := t.Kernel; k != nil {
		given = append(given, "kernel")
		if k.Kernel == "" {
			ps.addf(tp+".kernel.kernel", "is required")
		}
	}
	switch len(given) {
	case 0:
		ps.addf(tp, "must give one of existing_disk, iso_guest, cloud_image, kernel")
	case 1:
	default:
		ps.addf(tp, "gives %s: give exactly one", strings.Join(given, " and "))
	}
}

func (c *Config) checkAttachment(ps *problems, np string, m *Machine, j int, subnets map[string]netip.Prefix, expand bool) {
	a := m.Network[j]
	subnet, known := subnets[a.Switch]
	switch {
	case a.Switch == "":
		ps.addf(np+".switch", "is required")
	case !known:
		_, base := c.SwitchSpecs()
		ps.addf(np+".switch", "%s is not defined under %s", a.Switch, base)
	}
	checkable := known && subnet.IsValid()
	var ip netip.Addr
	if a.IP == "" {
		ps.addf(np+".ip", "is required")
	} else if a.IP == IPDynamic {
		c.checkDynamic(ps, np+".ip", a.Switch, known)
	} else if addr, err := netip.ParseAddr(a.IP); err != nil || addr.Zone() != "" {
		ps.addf(np+".ip", "%s is not an IP address", a.IP)
	} else {
		ip = addr
		if checkable {
			if msg := misplaced(addr, a.Switch, subnet); msg != "" {
				ps.addf(np+".ip", "%s %s", addr, msg)
			} else if expand && m.Scaling != nil && a.cloneCount(m) > 1 {
				c.checkCloneIPs(ps, np+".ip", m, a.cloneCount(m), addr, a.Switch, subnet)
			}
		}
	}
	if a.MAC != "" {
		if _, err := parseMAC(a.MAC); err != nil {
			ps.addf(np+".mac", "%s %v", a.MAC, err)
		} else if m.Scaling != nil {
			ps.addf(np+".mac", "cannot be given on a scaled machine: each clone gets a generated MAC")
		}
	}
	checkNetem(ps, np, a.Netem)
	if a.Gateway != "" {
		gw, err := netip.ParseAddr(a.Gateway)
		switch {
		case err != nil || gw.Zone() != "":
			ps.addf(np+".gateway", "%s is not an IP address", a.Gateway)
		case !checkable:
		case misplaced(gw, a.Switch, subnet) != "":
			ps.addf(np+".gateway", "%s %s", gw, misplaced(gw, a.Switch, subnet))
		case gw == ip:
			ps.addf(np+".gateway", "%s is the machine's own address on this interface", gw)
		}
	}
}

// checkCloneIPs checks the addresses the clones count up to.
func (c *Config) checkCloneIPs(ps *problems, field string, m *Machine, n int, base netip.Addr, sw string, subnet netip.Prefix) {
	ip := base
	for k := 2; k <= n; k++ {
		ip = ip.Next()
		if !ip.IsValid() {
			ps.addf(field, "%s cannot count up to clone %s: the address space ends", base, cloneName(m.Name, k))
			return
		}
		if msg := misplaced(ip, sw, subnet); msg != "" {
			ps.addf(field, "%s counts up to %s for clone %s, which %s", base, ip, cloneName(m.Name, k), msg)
			return
		}
	}
}

// misplaced says why addr cannot be a host address on the switch, or "".
func misplaced(addr netip.Addr, sw string, subnet netip.Prefix) string {
	if !subnet.Contains(addr) {
		return fmt.Sprintf("is outside switch %s subnet %s", sw, subnet)
	}
	bits := subnet.Bits()
	if addr.Is4() && bits <= 30 || addr.Is6() && bits <= 126 {
		if addr == subnet.Addr() {
			return fmt.Sprintf("is the network address of switch %s subnet %s", sw, subnet)
		}
		if addr.Is4() && addr == broadcast(subnet) {
			return fmt.Sprintf("is the broadcast address of switch %s subnet %s", sw, subnet)
		}
	}
	return ""
}

func broadcast(p netip.Prefix) netip.Addr {
	a := p.Addr().As4()
	for i := range a {
		host := p.Bits() - 8*i // bits of this byte that belong to the network
		switch {
		case host <= 0:
			a[i] = 0xff
		case host < 8:
			a[i] |= 0xff >> host
		}
	}
	return netip.AddrFrom4(a)
}

// parseMAC accepts a 6-byte unicast MAC and returns it in canonical form.
func parseMAC(s string) (string, error) {
	hw, err := net.ParseMAC(s)
	switch {
	case err != nil || len(hw) != 6:
		return "", fmt.Errorf("is not a MAC address like 02:00:00:00:00:10")
	case hw[0]&1 != 0:
		return "", fmt.Errorf("is a multicast address: a NIC needs a unicast MAC (even first byte)")
	case hw.String() == "00:00:00:00:00:00":
		return "", fmt.Errorf("is the all-zero address")
	}
	return hw.String(), nil
}

// checkUnique checks guest names, addresses and MACs across the machines
// once scaling is expanded.
func (c *Config) checkUnique(ps *problems) {
	type owner struct{ guest, field string }
	names := map[string]owner{}
	ips := map[netip.Addr]owner{}
	macs := map[string]owner{}
	for _, in := range c.instances() {
		m := &c.Machines[in.machine]
		mp := fmt.Sprintf("machines[%d]", in.machine)
		if prev, dup := names[in.name]; dup && in.name != "" {
			ps.addf(mp+".name", "%s is already the name of %s (%s)", describeGuest(in), prev.guest, c.where(prev.field))
		} else {
			names[in.name] = owner{describeGuest(in), mp + ".name"}
		}
		for j, ip := range in.addrs {
			field := fmt.Sprintf("%s.network[%d]", mp, j)
			if ip.IsValid() {
				if prev, dup := ips[ip]; dup {
					ps.addf(field+".ip", "%s of %s is already used by %s (%s)", ip, describeGuest(in), prev.guest, c.where(prev.field))
				} else {
					ips[ip] = owner{describeGuest(in), field + ".ip"}
				}
			}
			// A scaled machine with a MAC is already reported.
			if mac, err := parseMAC(m.Network[j].MAC); err == nil && m.Scaling == nil {
				if prev, dup := macs[mac]; dup {
					ps.addf(field+".mac", "%s is already used by %s (%s)", mac, prev.guest, c.where(prev.field))
				} else {
					macs[mac] = owner{describeGuest(in), field + ".mac"}
				}
			}
		}
	}
}

// instance is one guest a machine entry stands for.
type instance struct {
	machine int // index into Config.Machines
	clone   int // 1-based; 0 for a machine that is not scaled
	name    string
	// addrs holds one address per interface; the zero Addr where the
	// machine's ip does not parse or the clone has not got the interface.
	addrs []netip.Addr
	// pos holds, per interface of a clone, its 1-based place among the
	// clones with that interface (0: the clone has not got it); nil for a
	// machine that is not scaled.
	pos []int
}

// has reports whether the guest has interface j of its machine.
func (in instance) has(j int) bool { return in.pos == nil || in.pos[j] > 0 }

func describeGuest(in instance) string {
	if in.clone > 0 {
		return "clone " + in.name
	}
	return in.name
}

func cloneName(name string, k int) string { return fmt.Sprintf("%s-%d", name, k) }

// instanceCount is how many guests the machine stands for; counts out of
// range are clamped so that expanding never runs away.
func (m *Machine) instanceCount() int {
	if m.Scaling == nil {
		return 1
	}
	return min(max(m.Scaling.Count, 1), MaxGuests)
}

// instances expands scaling: clones take the machine's place in YAML order,
// their addresses counting up from the machine's.
func (c *Config) instances() []instance {
	var out []instance
	for i := range c.Machines {
		m := &c.Machines[i]
		addrs := make([]netip.Addr, len(m.Network))
		for j, a := range m.Network {
			addrs[j], _ = netip.ParseAddr(a.IP)
		}
		if m.Scaling == nil {
			out = append(out, instance{machine: i, name: m.Name, addrs: addrs})
			continue
		}
		for k := 1; k <= m.instanceCount(); k++ {
			in := instance{machine: i, clone: k, name: cloneName(m.Name, k), addrs: make([]netip.Addr, len(addrs)), pos: make([]int, len(addrs))}
			for j := range addrs {
				if p := m.Network[j].position(k); p > 0 {
					in.pos[j], in.addrs[j] = p, addrs[j]
					addrs[j] = addrs[j].Next()
				}
			}
			out = append(out, in)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// isHexDigest: 64 hex digits.
func isHexDigest(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F') {
			return false
		}
	}
	return true
}
