// Package labgen writes parts of kvm-compose.yaml labs that the tests of
// several packages share, so a lab written in the original TestbedOS's
// spellings is spelled once.
package labgen

import (
	"fmt"
	"strings"
)

// ChainedRouters is the network section, in the original's spelling, of
// two routers chained over a transit switch: edge, on lan and transit and
// on the provider network public through a localnet port, routes out to
// 172.16.1.1, translates lan's addresses to its public one and serves DHCP
// on lan; inner, on transit and far, routes back through edge. A static
// route on edge reaches far through inner.
type ChainedRouters struct {
	// Net is the first two bytes of the three /24s: Net.0 is lan, Net.1
	// transit, Net.2 far.
	Net string
	// MAC is the fifth byte (two hex digits) of the router ports' MACs.
	MAC string
	// PublicIP is edge's address on public (172.16.1.0/24).
	PublicIP string
	// PublicPort names public's localnet port.
	PublicPort string
	// EdgeRoutes and InnerRoutes are further static routes of each router,
	// as flow mappings: {prefix: "…", nexthop: "…"}.
	EdgeRoutes, InnerRoutes []string
}

// YAML is the section, from "network:" on, ending in a newline.
func (c ChainedRouters) YAML() string {
	n, m := c.Net, c.MAC
	var b strings.Builder
	fmt.Fprintf(&b, `network:
  ovn:
    switches:
      lan: {subnet: "%[1]s.0.0/24"}
      transit: {subnet: "%[1]s.1.0/24"}
      far: {subnet: "%[1]s.2.0/24"}
      public:
        subnet: "172.16.1.0/24"
        ports:
          - name: %[4]s
            localnet:
              network_name: public
    routers:
      edge:
        ports:
          - {name: edge-lan, mac: "00:00:00:00:%[2]s:01", gateway_ip: "%[1]s.0.1/24", switch: lan}
          - {name: edge-transit, mac: "00:00:00:00:%[2]s:02", gateway_ip: "%[1]s.1.1/24", switch: transit}
          - name: edge-public
            mac: "00:00:00:00:%[2]s:03"
            gateway_ip: "%[3]s/24"
            switch: public
            set_gateway_chassis: main
        static_routes:
          - {prefix: "0.0.0.0/0", nexthop: "172.16.1.1"}
          - {prefix: "%[1]s.2.0/24", nexthop: "%[1]s.1.2"}
`, n, m, c.PublicIP, c.PublicPort)
	routes(&b, c.EdgeRoutes)
	fmt.Fprintf(&b, `        nat:
          - {nat_type: snat, external_ip: "%[3]s", logical_ip: "%[1]s.0.0/16"}
        dhcp:
          - switch: lan
            exclude_ips: {from: "%[1]s.0.1", to: "%[1]s.0.9"}
      inner:
        ports:
          - {name: inner-transit, mac: "00:00:00:00:%[2]s:04", gateway_ip: "%[1]s.1.2/24", switch: transit}
          - {name: inner-far, mac: "00:00:00:00:%[2]s:05", gateway_ip: "%[1]s.2.1/24", switch: far}
        static_routes:
          - {prefix: "0.0.0.0/0", nexthop: "%[1]s.1.1"}
`, n, m, c.PublicIP)
	routes(&b, c.InnerRoutes)
	return b.String()
}

func routes(b *strings.Builder, rs []string) {
	for _, r := range rs {
		fmt.Fprintf(b, "          - %s\n", r)
	}
}
