package topology

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
)

// Kernel object names are derived from names alone, never from time or
// host, so that up and down on any host of the cluster agree on them. Linux
// allows 15 bytes for an interface name: bridges use 14, host-side ends all
// 15, since a deployment has many more of them.

// Prefix starts every kernel object name of the deployment: "tb" and 5 hex
// characters of sha256(deployment).
func Prefix(deployment string) string {
	return "tb" + hexHash(deployment)[:5]
}

// BridgeName is the Linux bridge of a switch.
func BridgeName(deployment, sw string) string {
	return Prefix(deployment) + "b" + hexHash(deployment + "/switch/" + sw)[:6]
}

// TunnelName is the VXLAN link of a switch that spans hosts; the same on
// every host of the switch.
func TunnelName(deployment, sw string) string {
	return Prefix(deployment) + "x" + hexHash(deployment + "/switch/" + sw)[:6]
}

// MaxVNI is the largest VXLAN network identifier (24 bits).
const MaxVNI = 1<<24 - 1

// VNI is the preferred VXLAN network identifier of a switch, in 1..MaxVNI,
// from sha256(deployment/switch). Uniqueness in the cluster is the
// engine's business (it probes on from here and records what it took).
func VNI(deployment, sw string) int {
	sum := sha256.Sum256([]byte(deployment + "/" + sw))
	v := int(sum[0])<<16 | int(sum[1])<<8 | int(sum[2])
	return v%MaxVNI + 1
}

// HostIfName is the host-side end (veth peer or tap) of interface ifindex of
// a guest.
func HostIfName(deployment, guest string, ifindex int) string {
	return Prefix(deployment) + "v" + hexHash(ifaceKey(deployment, guest, ifindex))[:7]
}

// NamespaceName is the netns name of a netns guest (under /run/netns). Names
// cannot contain dots, so the dots make it unambiguous.
func NamespaceName(deployment, guest string) string {
	return "tbos." + deployment + "." + guest
}

// DomainName is the libvirt domain name of a libvirt guest.
func DomainName(deployment, guest string) string {
	return "tbos." + deployment + "." + guest
}

// ContainerName is the docker container name of a docker guest.
func ContainerName(deployment, guest string) string {
	return "tbos." + deployment + "." + guest
}

// DefaultMAC is the MAC of an interface the YAML gives none for: locally
// administered unicast, 02 followed by 5 bytes of
// sha256(deployment/guest/ifindex).
func DefaultMAC(deployment, guest string, ifindex int) string {
	sum := sha256.Sum256([]byte(ifaceKey(deployment, guest, ifindex)))
	return fmt.Sprintf("02:%02x:%02x:%02x:%02x:%02x", sum[0], sum[1], sum[2], sum[3], sum[4])
}

// InterfaceName is the name of interface ifindex inside the guest.
func InterfaceName(ifindex int) string {
	return "eth" + strconv.Itoa(ifindex)
}

func ifaceKey(deployment, guest string, ifindex int) string {
	return deployment + "/" + guest + "/" + strconv.Itoa(ifindex)
}

func hexHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
