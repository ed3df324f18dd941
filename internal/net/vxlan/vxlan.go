// Package vxlan makes the unicast VXLAN links that join a switch's bridge on
// this host to the bridges of the same switch on peer hosts, and keeps their
// peer lists.
package vxlan

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/testbedos/testbedos/internal/net/links"
)

// Port is the IANA port of VXLAN, the default of Spec.Port.
const Port = 4789

// ErrNotVXLAN is returned when a name we are asked to manage as a VXLAN
// link belongs to another kind of link, or to a VXLAN of another VNI.
var ErrNotVXLAN = errors.New("link exists but is not the VXLAN asked for")

// Spec is a unicast VXLAN link that joins a switch's bridge on this
// host to the bridges of the same switch on peer hosts. It is a plain value
// so that a host behind the agent API can receive it as JSON.
type Spec struct {
	// Name is the kernel name, at most 15 bytes (topology.TunnelName).
	Name string `json:"name"`
	VNI  int    `json:"vni"`
	// Local is this host's address the tunnel's packets leave from.
	Local string `json:"local"`
	// Peers are the addresses of the other hosts of the switch; each gets
	// an all-zeros FDB entry, so broadcast and unknown unicast reach every
	// peer (head-end replication) without multicast.
	Peers []string `json:"peers"`
	// Port is the UDP port; 0 means Port.
	Port int `json:"port,omitempty"`
	// Bridge is the bridge the link is enslaved to.
	Bridge string `json:"bridge"`
	// MTU of the link; 0 leaves the kernel's (1450 for a 1500 underlay).
	MTU int `json:"mtu,omitempty"`
}

func (s Spec) check() (local net.IP, peers []net.IP, err error) {
	if err := links.CheckName(s.Name); err != nil {
		return nil, nil, err
	}
	if s.VNI < 1 || s.VNI > 1<<24-1 {
		return nil, nil, fmt.Errorf("vxlan %s: VNI %d is not in 1..%d", s.Name, s.VNI, 1<<24-1)
	}
	if local = net.ParseIP(s.Local); local == nil {
		return nil, nil, fmt.Errorf("vxlan %s: local address %q is not an IP address", s.Name, s.Local)
	}
	peers, err = parsePeers(s.Name, s.Peers)
	return local, peers, err
}

func parsePeers(name string, in []string) ([]net.IP, error) {
	out := make([]net.IP, 0, len(in))
	for _, p := range in {
		ip := net.ParseIP(p)
		if ip == nil {
			return nil, fmt.Errorf("vxlan %s: peer %q is not an IP address", name, p)
		}
		out = append(out, ip)
	}
	return out, nil
}

// Ensure makes the VXLAN link of spec if it is missing (no learning,
// no multicast group), enslaves it to spec.Bridge, sets it up and makes its
// FDB hold exactly one all-zeros entry per peer. It reports whether it made
// the link; like bridge.Ensure the report comes from the kernel's answer to
// the creation. A link of that name of another kind or VNI is an error
// wrapping ErrNotVXLAN and is left alone.
func Ensure(ctx context.Context, spec Spec) (created bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	local, peers, err := spec.check()
	if err != nil {
		return false, err
	}
	br, err := netlink.LinkByName(spec.Bridge)
	if err != nil {
		return false, fmt.Errorf("vxlan %s: bridge %s: %w", spec.Name, spec.Bridge, err)
	}
	port := spec.Port
	if port == 0 {
		port = Port
	}
	vx := &netlink.Vxlan{
		LinkAttrs: netlink.NewLinkAttrs(),
		VxlanId:   spec.VNI,
		SrcAddr:   local,
		Port:      port,
		Learning:  false,
		TTL:       64,
	}
	vx.Name = spec.Name
	vx.MTU = spec.MTU
	vx.MasterIndex = br.Attrs().Index
	vx.Flags = net.FlagUp
	err = netlink.LinkAdd(vx)
	switch {
	case err == nil:
		created = true
	case !errors.Is(err, unix.EEXIST):
		return false, fmt.Errorf("create vxlan %s: %w", spec.Name, err)
	}
	link, err := netlink.LinkByName(spec.Name)
	if err != nil {
		err = fmt.Errorf("look up vxlan %s: %w", spec.Name, err)
	} else if !created {
		err = adopt(link, spec, local, port, br)
	}
	if err == nil {
		err = setPeers(link, peers)
	}
	if err != nil && created {
		// All or nothing: a link this call made does not outlive its error.
		if derr := Delete(context.WithoutCancel(ctx), spec.Name); derr != nil {
			err = errors.Join(err, fmt.Errorf("undo: %w", derr))
		}
	}
	if err != nil {
		return false, err
	}
	return created, nil
}

// adopt checks that an existing link is the VXLAN of spec and brings it to
// the bridge, the MTU and up.
func adopt(link netlink.Link, spec Spec, local net.IP, port int, br netlink.Link) error {
	vx, ok := link.(*netlink.Vxlan)
	if !ok {
		return fmt.Errorf("vxlan %s: %w (type %s)", spec.Name, ErrNotVXLAN, link.Type())
	}
	// What a link cannot change without being made again: a host whose
	// address changed needs a down first.
	switch {
	case vx.VxlanId != spec.VNI:
		return fmt.Errorf("vxlan %s: %w (VNI %d, want %d)", spec.Name, ErrNotVXLAN, vx.VxlanId, spec.VNI)
	case !vx.SrcAddr.Equal(local):
		return fmt.Errorf("vxlan %s: %w (local address %s, want %s)", spec.Name, ErrNotVXLAN, vx.SrcAddr, local)
	case vx.Port != port:
		return fmt.Errorf("vxlan %s: %w (port %d, want %d)", spec.Name, ErrNotVXLAN, vx.Port, port)
	case vx.Learning:
		return fmt.Errorf("vxlan %s: %w (it learns addresses)", spec.Name, ErrNotVXLAN)
	}
	if vx.MasterIndex != br.Attrs().Index {
		if err := netlink.LinkSetMasterByIndex(link, br.Attrs().Index); err != nil {
			return fmt.Errorf("vxlan %s: enslave to %s: %w", spec.Name, spec.Bridge, err)
		}
	}
	if spec.MTU > 0 && vx.MTU != spec.MTU {
		if err := netlink.LinkSetMTU(link, spec.MTU); err != nil {
			return fmt.Errorf("vxlan %s: MTU %d: %w", spec.Name, spec.MTU, err)
		}
	}
	if vx.Flags&net.FlagUp == 0 {
		if err := netlink.LinkSetUp(link); err != nil {
			return fmt.Errorf("set vxlan %s up: %w", spec.Name, err)
		}
	}
	return nil
}

// SetPeers makes the FDB of the VXLAN link name hold exactly one all-zeros
// entry per peer: missing ones are appended, others removed.
func SetPeers(ctx context.Context, name string, peers []string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ips, err := parsePeers(name, peers)
	if err != nil {
		return err
	}
	link, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("look up vxlan %s: %w", name, err)
	}
	if link.Type() != "vxlan" {
		return fmt.Errorf("vxlan %s: %w (type %s)", name, ErrNotVXLAN, link.Type())
	}
	return setPeers(link, ips)
}

// Peers lists the destinations of the all-zeros FDB entries of the VXLAN
// link name.
func Peers(name string) ([]string, error) {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("look up vxlan %s: %w", name, err)
	}
	ips, err := floodPeers(link)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	slices.Sort(out)
	return out, nil
}

var zeroMAC = net.HardwareAddr{0, 0, 0, 0, 0, 0}

func floodPeers(link netlink.Link) ([]net.IP, error) {
	var (
		entries []netlink.Neigh
		err     error
	)
	for range 20 {
		entries, err = netlink.NeighList(link.Attrs().Index, unix.AF_BRIDGE)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("vxlan %s: list FDB: %w", link.Attrs().Name, err)
	}
	var out []net.IP
	for _, n := range entries {
		if n.LinkIndex == link.Attrs().Index && n.IP != nil && slices.Equal(n.HardwareAddr, zeroMAC) {
			out = append(out, n.IP)
		}
	}
	return out, nil
}

func fdbEntry(link netlink.Link, ip net.IP) *netlink.Neigh {
	return &netlink.Neigh{
		LinkIndex:    link.Attrs().Index,
		Family:       unix.AF_BRIDGE,
		State:        netlink.NUD_NOARP | netlink.NUD_PERMANENT,
		Flags:        netlink.NTF_SELF,
		IP:           ip,
		HardwareAddr: zeroMAC,
	}
}

func setPeers(link netlink.Link, want []net.IP) error {
	have, err := floodPeers(link)
	if err != nil {
		return err
	}
	name := link.Attrs().Name
	has := func(list []net.IP, ip net.IP) bool {
		return slices.ContainsFunc(list, func(x net.IP) bool { return x.Equal(ip) })
	}
	for _, ip := range want {
		if has(have, ip) {
			continue
		}
		// Append, not add: several all-zeros entries may coexist.
		if err := netlink.NeighAppend(fdbEntry(link, ip)); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("vxlan %s: FDB entry to %s: %w", name, ip, err)
		}
	}
	for _, ip := range have {
		if has(want, ip) {
			continue
		}
		if err := netlink.NeighDel(fdbEntry(link, ip)); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("vxlan %s: remove FDB entry to %s: %w", name, ip, err)
		}
	}
	return nil
}

// Delete removes the VXLAN link name (its FDB goes with it). A missing
// link is not an error; a link of another kind is left alone and reported.
func Delete(ctx context.Context, name string) error {
	return links.DeleteTyped(ctx, name, "vxlan", ErrNotVXLAN)
}
