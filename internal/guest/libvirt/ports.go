package libvirt

import (
	"libvirt.org/go/libvirtxml"

	"github.com/testbedos/testbedos/internal/guest"
)

// onPorts rewrites the domain's NICs for a host network whose switches are
// not Linux bridges (dep.Ports): each NIC is a plain tap (type ethernet,
// named as with a bridge) that Create binds to its switch once the domain
// runs. Where guests' ends need checksum offload off (OVS's userspace
// datapath), virtio offers the guest none, so it sends whole checksums.
func onPorts(dom domainDoc, dep guest.Deployment) {
	if dep.Bridged() || dom.Devices == nil {
		return
	}
	for i := range dom.Devices.Interfaces {
		nic := &dom.Devices.Interfaces[i]
		nic.Source = &libvirtxml.DomainInterfaceSource{Ethernet: &libvirtxml.DomainInterfaceSourceEthernet{}}
		if dep.GuestTxOffloadOff() {
			nic.Driver = &libvirtxml.DomainInterfaceDriver{
				Host:  &libvirtxml.DomainInterfaceDriverHost{CSum: "off", TSO4: "off", TSO6: "off"},
				Guest: &libvirtxml.DomainInterfaceDriverGuest{CSum: "off", TSO4: "off", TSO6: "off"},
			}
		}
	}
}
