package topology

import (
	"fmt"
	"net/netip"
	"strings"
)

// Disk driver and device types of existing_disk and iso_guest; the first
// of each is the default, as in the original.
const (
	DiskRaw     = "raw"
	DiskQCOW2   = "qcow2"
	DeviceDisk  = "disk"
	DeviceCDROM = "cdrom"
)

// checkDisk checks a disk's driver_type and device_type (dp: its field).
func checkDisk(ps *problems, dp, driver, device string) {
	switch driver {
	case "", DiskRaw, DiskQCOW2:
	default:
		ps.addf(dp+".driver_type", "%q is not %s or %s", driver, DiskRaw, DiskQCOW2)
	}
	switch device {
	case "", DeviceDisk, DeviceCDROM:
	default:
		ps.addf(dp+".device_type", "%q is not %s or %s", device, DeviceDisk, DeviceCDROM)
	}
}

// orDefault returns v, or def when v is empty.
func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// checkCloudSetup checks the original's cloud_image setup fields and the
// libvirt section's user, address and console port (lp: the section).
func (c *Config) checkCloudSetup(ps *problems, lp string, ci *CloudImage) {
	cp := lp + ".libvirt_type.cloud_image"
	if ci.SetupScript != "" && c.has(lp+".setup_script") {
		ps.addf(cp+".setup_script", "cannot be given together with %s.setup_script: use one", lp)
	}
	for k := range ci.Environment {
		if !envName(k) {
			ps.addf(cp+".environment", "%q is not a variable name (letters, digits and _, not starting with a digit)", k)
		}
	}
}

// envName reports whether k can be exported by a shell.
func envName(k string) bool {
	if k == "" || k[0] >= '0' && k[0] <= '9' {
		return false
	}
	return strings.IndexFunc(k, func(r rune) bool {
		return !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) < 0
}

// checkLibvirtAccess checks username, static_ip and tcp_tty_port of every
// libvirt machine; two guests may not serve their consoles on one port.
func (c *Config) checkLibvirtAccess(ps *problems) {
	ports := map[int]string{}
	for i, m := range c.Machines {
		l := m.Libvirt
		if l == nil {
			continue
		}
		lp := fmt.Sprintf("machines[%d].libvirt", i)
		if l.Username != "" && (!validUser(l.Username)) {
			ps.addf(lp+".username", "%q is not a user name (lower-case letters, digits, - and _, starting with a letter)", l.Username)
		}
		if l.StaticIP != "" {
			if _, err := netip.ParseAddr(l.StaticIP); err != nil {
				ps.addf(lp+".static_ip", "%q is not an IP address", l.StaticIP)
			}
		}
		if p := l.TCPTTYPort; c.has(lp + ".tcp_tty_port") {
			n := m.instanceCount()
			switch {
			case p < 1024 || p+n-1 > 65535:
				ps.addf(lp+".tcp_tty_port", "%d is not a port from 1024 to 65535 (a scaled machine's clones take the ports after it)", p)
			default:
				for k := range n {
					if prev, dup := ports[p+k]; dup {
						ps.addf(lp+".tcp_tty_port", "%d is already the console port of %s", p+k, prev)
						break
					}
					ports[p+k] = c.where(lp + ".tcp_tty_port")
				}
			}
		}
	}
}

// validUser: a POSIX-portable login name, as cloud-init creates it.
func validUser(s string) bool {
	if s == "" || len(s) > 32 || !(s[0] >= 'a' && s[0] <= 'z' || s[0] == '_') {
		return false
	}
	return strings.IndexFunc(s, func(r rune) bool {
		return !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9')
	}) < 0
}

// unusedFieldNotes explains, once per machine, the original's fields that
// are accepted and kept in the state but that no driver of this server
// acts on yet, so a lab that relies on one sees why it has no effect.
func (c *Config) unusedFieldNotes(st *State) {
	for i, m := range c.Machines {
		mp := fmt.Sprintf("machines[%d]", i)
		var fields []string
		add := func(field string, set bool) {
			if set && c.has(mp+"."+field) {
				fields = append(fields, mp+"."+field)
			}
		}
		if l := m.Libvirt; l != nil {
			const tp = "libvirt.libvirt_type."
			if d := l.Type.ExistingDisk; d != nil {
				add(tp+"existing_disk.device_type", d.DeviceType == DeviceCDROM)
				add(tp+"existing_disk.readonly", d.ReadOnly)
				for _, f := range []struct {
					name string
					set  bool
				}{{"existing_disk.run_script", d.RunScript != ""}, {"existing_disk.context", d.Context != ""}} {
					if f.set {
						c.note(st, mp+".libvirt."+"libvirt_type."+f.name, "is ignored, as the original ignores it under existing_disk (it belongs to cloud_image)")
					}
				}
			}
			if l.ExtendedGraphicsSupport {
				c.note(st, mp+".libvirt.extended_graphics_support", "is ignored, as the original ignores it")
			}
			if g := l.Type.ISOGuest; g != nil {
				add(tp+"iso_guest.expand_gigabytes", g.ExpandGigabytes > 0)
				add(tp+"iso_guest.device_type", g.DeviceType == DeviceDisk)
				add(tp+"iso_guest.readonly", c.has(mp+"."+tp+"iso_guest.readonly") && !g.ReadOnly)
			}
		}
		if d := m.Docker; d != nil {
			add("docker.static_ip", d.StaticIP != "")
		}
		for _, f := range fields {
			c.note(st, f, "accepted and kept in the state, but this server's %s driver does not act on it yet", m.Kind())
		}
	}
}
