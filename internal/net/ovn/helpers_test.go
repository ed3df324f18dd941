package ovn

import (
	"net"

	"github.com/vishvananda/netlink"
)

func setMACAddrUp(name, mac, cidr string) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	hw, _ := net.ParseMAC(mac)
	if err := netlink.LinkSetHardwareAddr(link, hw); err != nil {
		return err
	}
	addr, err := netlink.ParseAddr(cidr)
	if err != nil {
		return err
	}
	if err := netlink.AddrAdd(link, addr); err != nil {
		return err
	}
	return netlink.LinkSetUp(link)
}
