package topology

import "fmt"

// Provider networks are the original's bridge mappings: a switch with a
// localnet port reaches the outside through the provider network its
// network_name names. Every deployment naming one provider network shares
// it, as OVN's bridge mappings are shared: one bridge on the host (named
// for the network, not the deployment) and one host-side address and
// masquerade table, which the engine removes with the last deployment
// holding them.

// DefaultProviderNetworks is what a host without bridge mappings offers:
// the original's public network, whose host side is 172.16.1.1/24.
func DefaultProviderNetworks() map[string]string {
	return map[string]string{"public": DefaultExternalAddress}
}

// ProviderBridgeName is the bridge of provider network n. "pn" is not hex,
// so it never starts like a deployment's Prefix.
func ProviderBridgeName(n string) string { return "tbpn" + hexHash("provider/" + n)[:6] }

// ProviderTable is the host-side nftables table of provider network n.
func ProviderTable(n string) string { return "tbpn" + hexHash("provider/table/" + n)[:8] }

// providerNetwork is the network_name of the switch's localnet port; ""
// for a switch without one, or one written as external: true.
func (s SwitchSpec) providerNetwork() string {
	if s.External {
		return ""
	}
	for _, p := range s.Ports {
		if p.Localnet != nil {
			return p.Localnet.NetworkName
		}
	}
	return ""
}

// switchBridges names the bridge of every switch: its own, or its provider
// network's. A localnet port naming a network the host does not map
// reaches nothing, as in OVN; the log says so.
func (c *Config) switchBridges(st *State, providers map[string]string) map[string]string {
	specs, base := c.SwitchSpecs()
	out := map[string]string{}
	for _, name := range sortedKeys(specs) {
		out[name] = BridgeName(st.Deployment, name)
		n := specs[name].providerNetwork()
		if n == "" {
			continue
		}
		if _, ok := providers[n]; ok {
			out[name] = ProviderBridgeName(n)
			continue
		}
		for i, p := range specs[name].Ports {
			if p.Localnet != nil {
				c.note(st, fmt.Sprintf("%s.%s.ports[%d].localnet.network_name", base, name, i),
					"provider network %s is not one of this host's bridge mappings (%s); switch %s does not reach the outside", n, joinKeys(providers), name)
				break
			}
		}
	}
	return out
}
