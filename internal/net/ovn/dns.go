package ovn

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"strings"
	"time"

	"github.com/ovn-org/libovsdb/ovsdb"
)

// A guest with "MAC dynamic" gets its address from ovn-northd's IPAM,
// which writes it to the port's dynamic_addresses a moment after the
// switch is written. Every guest's name resolves on every switch of its
// deployment, so once a switch's dynamic ports have their addresses, the
// DNS rows of all the deployment's switches are rewritten with the static
// names and every dynamic one known so far: the last switch written leaves
// them complete.

// dynamicWait bounds the wait for northd's addresses.
const dynamicWait = 20 * time.Second

// fillDynamicDNS waits for the dynamic addresses of spec's ports, then
// rewrites the deployment's DNS rows with spec.DNS and every port of
// spec.DynamicDNS that has its address.
func (n *Network) fillDynamicDNS(ctx context.Context, spec SwitchSpec) error {
	if len(spec.DynamicDNS) == 0 {
		return nil
	}
	var mine []string
	for _, p := range spec.Ports {
		if _, ok := spec.DynamicDNS[p.Name]; ok {
			mine = append(mine, p.Name)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, dynamicWait)
	defer cancel()
	err := waitFor(wctx, "OVN's dynamic addresses on "+spec.Name, func() bool {
		for _, p := range mine {
			if n.dynamicIP(p) == "" {
				return false
			}
		}
		return true
	})
	if err != nil {
		return err
	}
	records := maps.Clone(spec.DNS)
	if records == nil {
		records = map[string]string{}
	}
	for _, port := range sortedKeys(spec.DynamicDNS) {
		if ip := n.dynamicIP(port); ip != "" {
			name := spec.DynamicDNS[port]
			records[name] = joinAddrs(records[name], ip)
		}
	}
	return n.putDNS(ctx, spec.Deployment, records)
}

// dynamicIP is the address northd gave the logical port ("" until then).
func (n *Network) dynamicIP(port string) string {
	var found []LogicalSwitchPort
	n.nb.WhereCache(func(p *LogicalSwitchPort) bool { return p.Name == port }).List(context.Background(), &found)
	if len(found) == 0 || found[0].DynamicAddresses == nil {
		return ""
	}
	f := strings.Fields(*found[0].DynamicAddresses)
	if len(f) < 2 {
		return ""
	}
	return f[1]
}

// joinAddrs adds ip to a record's space-separated addresses, sorted.
func joinAddrs(have, ip string) string {
	addrs := strings.Fields(have)
	for _, a := range addrs {
		if a == ip {
			return have
		}
	}
	addrs = append(addrs, ip)
	sort.Strings(addrs)
	return strings.Join(addrs, " ")
}

// putDNS sets the records of every DNS row of deployment dep.
func (n *Network) putDNS(ctx context.Context, dep string, records map[string]string) error {
	var rows []DNS
	if err := n.nb.WhereCache(func(d *DNS) bool { return d.ExternalIDs[KeyDeployment] == dep }).List(ctx, &rows); err != nil {
		return err
	}
	var ops []ovsdb.Operation
	for i := range rows {
		rows[i].Records = records
		op, err := n.nb.Where(&rows[i]).Update(&rows[i], &rows[i].Records)
		if err != nil {
			return err
		}
		ops = append(ops, op...)
	}
	if _, err := transact(ctx, n.nb, ops...); err != nil {
		return fmt.Errorf("DNS records of %s: %w", dep, err)
	}
	return nil
}

// Records is what OVN's DNS answers for name on logical switch ls ("" for
// none).
func (n *Network) Records(ls, name string) string {
	sw, err := n.switchRow(ls)
	if err != nil {
		return ""
	}
	for _, id := range sw.DNSRecords {
		d := &DNS{UUID: id}
		if n.nb.Get(context.Background(), d) == nil && d.Records[name] != "" {
			return d.Records[name]
		}
	}
	return ""
}
