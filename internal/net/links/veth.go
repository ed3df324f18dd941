package links

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/testbedos/testbedos/internal/topology"
)

// Guest interfaces: one veth pair per interface of a guest that lives in a
// network namespace (a netns guest, a container), the host end on the
// switch's bridge, the guest end inside with its name, MAC, MTU, address and
// default route. The netns and docker drivers share this code, so their
// guests are wired exactly alike.

// VethSpec is one veth pair to create: the host end on a bridge, the guest
// end inside a namespace.
type VethSpec struct {
	Host string
	// BridgeIndex is the bridge of the host end; 0: none (a switch that is
	// not a Linux bridge takes the host end afterwards).
	BridgeIndex int
	Guest       string
	GuestMAC    net.HardwareAddr // nil: the kernel picks one
	GuestNS     int              // descriptor of the guest's namespace
	MTU         int              // of both ends; 0: the kernel's default
}

// AddVeth creates the pair in a single RTM_NEWLINK: the host end up and
// enslaved to its bridge, the guest end born inside its namespace with its
// name and MAC (still down). The netlink package's LinkAdd would take three
// requests for this (create, look up, set master) and leave a veth behind
// if the last one failed; here it is all or nothing.
func AddVeth(v VethSpec) error {
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Flags, msg.Change = unix.IFF_UP, unix.IFF_UP
	req.AddData(msg)
	req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(v.Host)))
	if v.BridgeIndex > 0 {
		req.AddData(nl.NewRtAttr(unix.IFLA_MASTER, nl.Uint32Attr(uint32(v.BridgeIndex))))
	}
	if v.MTU > 0 {
		req.AddData(nl.NewRtAttr(unix.IFLA_MTU, nl.Uint32Attr(uint32(v.MTU))))
	}

	info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	info.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated("veth"))
	data := info.AddRtAttr(nl.IFLA_INFO_DATA, nil)
	peer := data.AddRtAttr(nl.VETH_INFO_PEER, nil)
	// The guest end cannot come up here: the kernel configures it before
	// the pair is joined, and opening a lone veth fails with ENOTCONN.
	nl.NewIfInfomsgChild(peer, unix.AF_UNSPEC)
	peer.AddRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(v.Guest))
	if v.GuestMAC != nil {
		peer.AddRtAttr(unix.IFLA_ADDRESS, []byte(v.GuestMAC))
	}
	if v.MTU > 0 {
		peer.AddRtAttr(unix.IFLA_MTU, nl.Uint32Attr(uint32(v.MTU)))
	}
	peer.AddRtAttr(unix.IFLA_NET_NS_FD, nl.Uint32Attr(uint32(v.GuestNS)))
	req.AddData(info)

	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}

// GuestIface is an interface of a guest with its settings parsed.
type GuestIface struct {
	topology.Interface
	BridgeIndex int
	MAC         net.HardwareAddr // nil: the kernel picks one
	Addr        *netlink.Addr    // nil: no address
	Gateway     net.IP           // nil: no default route
	// TxOff turns tx checksum offload off on the guest end.
	TxOff bool
}

// Plan says how guest interfaces are wired.
type Plan struct {
	// Unbridged: host ends go on no Linux bridge (the caller binds them to
	// their switch afterwards).
	Unbridged bool
	// GuestTxOff turns tx checksum offload off on guest ends.
	GuestTxOff bool
}

// PlanGuestIfaces parses the interfaces and finds their bridges, which must
// exist unless plan says host ends go on none.
func PlanGuestIfaces(ifaces []topology.Interface, plan Plan) ([]GuestIface, error) {
	out := make([]GuestIface, 0, len(ifaces))
	for _, ifc := range ifaces {
		p := GuestIface{Interface: ifc, TxOff: plan.GuestTxOff}
		if ifc.HostName == "" || ifc.Name == "" || ifc.Bridge == "" {
			return nil, fmt.Errorf("interface %+v: host name, name and bridge are required", ifc)
		}
		if !plan.Unbridged {
			br, err := netlink.LinkByName(ifc.Bridge)
			if err != nil {
				return nil, fmt.Errorf("interface %s: bridge %s of switch %s: %w", ifc.Name, ifc.Bridge, ifc.Switch, err)
			}
			p.BridgeIndex = br.Attrs().Index
		}
		var err error
		if ifc.MAC != "" {
			if p.MAC, err = net.ParseMAC(ifc.MAC); err != nil {
				return nil, fmt.Errorf("interface %s: %w", ifc.Name, err)
			}
		}
		if ifc.Address != "" {
			if p.Addr, err = netlink.ParseAddr(ifc.Address); err != nil {
				return nil, fmt.Errorf("interface %s: address: %w", ifc.Name, err)
			}
		}
		if ifc.Gateway != "" {
			if p.Gateway = net.ParseIP(ifc.Gateway); p.Gateway == nil {
				return nil, fmt.Errorf("interface %s: gateway %q is not an IP address", ifc.Name, ifc.Gateway)
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// AttachGuest creates the veth pairs of ifaces into the namespace nsfd, h
// being a netlink handle inside it, in order; only the first gateway
// becomes the default route. made lists the host ends it created, also on
// error, so the caller can undo exactly those.
func AttachGuest(h *netlink.Handle, nsfd int, ifaces []GuestIface, stop func() error) (made []string, err error) {
	routed := false
	for _, ifc := range ifaces {
		if stop != nil {
			if err := stop(); err != nil {
				return made, err
			}
		}
		created, err := AddGuestIface(h, nsfd, ifc, !routed)
		if created {
			made = append(made, ifc.HostName)
		}
		if err != nil {
			return made, err
		}
		routed = routed || ifc.Gateway != nil
	}
	return made, nil
}

// AddGuestIface creates the veth pair of one interface, the host end on its
// bridge and up, the guest end directly inside the namespace nsfd (h is a
// handle in it), and configures the guest end. withRoute allows a default
// route. created tells whether the pair exists, also on error.
func AddGuestIface(h *netlink.Handle, nsfd int, ifc GuestIface, withRoute bool) (created bool, err error) {
	err = AddVeth(VethSpec{
		Host:        ifc.HostName,
		BridgeIndex: ifc.BridgeIndex,
		Guest:       ifc.Name,
		GuestMAC:    ifc.MAC,
		GuestNS:     nsfd,
		MTU:         ifc.MTU,
	})
	if err != nil {
		return false, fmt.Errorf("veth %s (%s in guest) on %s: %w", ifc.HostName, ifc.Name, ifc.Bridge, err)
	}
	link, err := h.LinkByName(ifc.Name)
	if err != nil {
		return true, fmt.Errorf("find %s in guest: %w", ifc.Name, err)
	}
	if ifc.TxOff {
		if err := TxChecksumOff(nsfd, ifc.Name); err != nil {
			return true, fmt.Errorf("%s in guest: %w", ifc.Name, err)
		}
	}
	if ifc.Addr != nil {
		if err := h.AddrAdd(link, ifc.Addr); err != nil {
			return true, fmt.Errorf("address %s on %s: %w", ifc.Address, ifc.Name, err)
		}
	}
	if err := h.LinkSetUp(link); err != nil {
		return true, fmt.Errorf("set %s up: %w", ifc.Name, err)
	}
	if ifc.Gateway != nil && withRoute {
		route := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: ifc.Gateway}
		if err := h.RouteAdd(route); err != nil {
			return true, fmt.Errorf("default route via %s on %s: %w", ifc.Gateway, ifc.Name, err)
		}
	}
	return true, nil
}

// VethIndex returns the index of the veth called name, or 0 when there is
// none. Links of other kinds are not ours even when the name matches, and
// are never deleted.
func VethIndex(name string) (int, error) {
	link, err := netlink.LinkByName(name)
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("look up %s: %w", name, err)
	}
	if link.Type() != "veth" {
		return 0, nil
	}
	return link.Attrs().Index, nil
}
