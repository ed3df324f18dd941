package libvirt

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/topology"
)

// leaseWait bounds the wait for a DHCP client in the guest to get its
// address, once the guest is ready. A client that lost its first
// DISCOVERs backs off to about a minute between tries, and a loaded host
// runs many VMs under TCG at once: the wait covers two such tries.
const leaseWait = 150 * time.Second

// Lease reads, over SSH, the IPv4 address the guest's own DHCP client
// took on iface (a CIDR), waiting a little for it.
func (d *Driver) Lease(ctx context.Context, dep guest.Deployment, g *topology.Guest, iface string) (string, error) {
	if !topology.PlainFileName(iface) {
		return "", fmt.Errorf("interface name %q", iface)
	}
	client, err := d.Dial(ctx, dep, g)
	if err != nil {
		return "", err
	}
	defer client.Close()
	deadline := time.Now().Add(leaseWait)
	for {
		sess, err := client.NewSession()
		if err != nil {
			return "", err
		}
		var out bytes.Buffer
		sess.Stdout = &out
		err = sess.Run("ip -4 -o addr show dev " + iface)
		sess.Close()
		if err != nil {
			return "", fmt.Errorf("ip addr show dev %s: %w", iface, err)
		}
		if addr := parseInet(out.String()); addr != "" {
			return addr, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s has no IPv4 address after %s", iface, leaseWait)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// parseInet finds the first "inet A/N" of `ip -o addr` output.
func parseInet(out string) string {
	f := strings.Fields(out)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "inet" {
			if p, err := netip.ParsePrefix(f[i+1]); err == nil {
				return p.String()
			}
		}
	}
	return ""
}
