package netns

import (
	"net"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// vethSpec is one veth pair to create: the host end on a bridge, the guest
// end inside a namespace.
type vethSpec struct {
	host        string
	bridgeIndex int
	guest       string
	guestMAC    net.HardwareAddr // nil: the kernel picks one
	guestNS     int              // descriptor of the guest's namespace
	mtu         int              // of both ends; 0: the kernel's default
}

// addVeth creates the pair in a single RTM_NEWLINK: the host end up and
// enslaved to its bridge, the guest end born inside its namespace with its
// name and MAC (still down). The netlink package's LinkAdd would take three
// requests for this (create, look up, set master) and leave a veth behind
// if the last one failed; here it is all or nothing.
func addVeth(v vethSpec) error {
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Flags, msg.Change = unix.IFF_UP, unix.IFF_UP
	req.AddData(msg)
	req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(v.host)))
	req.AddData(nl.NewRtAttr(unix.IFLA_MASTER, nl.Uint32Attr(uint32(v.bridgeIndex))))
	if v.mtu > 0 {
		req.AddData(nl.NewRtAttr(unix.IFLA_MTU, nl.Uint32Attr(uint32(v.mtu))))
	}

	info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	info.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated("veth"))
	data := info.AddRtAttr(nl.IFLA_INFO_DATA, nil)
	peer := data.AddRtAttr(nl.VETH_INFO_PEER, nil)
	// The guest end cannot come up here: the kernel configures it before
	// the pair is joined, and opening a lone veth fails with ENOTCONN.
	nl.NewIfInfomsgChild(peer, unix.AF_UNSPEC)
	peer.AddRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(v.guest))
	if v.guestMAC != nil {
		peer.AddRtAttr(unix.IFLA_ADDRESS, []byte(v.guestMAC))
	}
	if v.mtu > 0 {
		peer.AddRtAttr(unix.IFLA_MTU, nl.Uint32Attr(uint32(v.mtu)))
	}
	peer.AddRtAttr(unix.IFLA_NET_NS_FD, nl.Uint32Attr(uint32(v.guestNS)))
	req.AddData(info)

	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}
