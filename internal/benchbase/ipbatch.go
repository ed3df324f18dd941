// Package benchbase is the yardstick the netns guest driver is measured
// against: plain iproute2 batch scripts that bring N named namespaces, each
// with one veth on a shared bridge, up and down. A Plan fixes every name and
// address, so the driver can be given exactly the same guests.
package benchbase

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// Plan describes N guests on existing bridges. Guest i (0 ≤ i < N) is the
// namespace Namespace(i) with eth0 (MAC(i), Address(i)) whose host end
// HostVeth(i) is on BridgeOf(i).
type Plan struct {
	Prefix string // starts every kernel name; at most 9 bytes
	Bridge string
	N      int
	// Bridges, when set, spread the guests round-robin over several
	// bridges instead (a Linux bridge holds at most 1,024 ports).
	Bridges []string
}

// BridgeOf is the bridge guest i is on.
func (p Plan) BridgeOf(i int) string {
	if len(p.Bridges) > 0 {
		return p.Bridges[i%len(p.Bridges)]
	}
	return p.Bridge
}

// HostVeths lists the host ends of every guest.
func (p Plan) HostVeths() []string {
	names := make([]string, p.N)
	for i := range names {
		names[i] = p.HostVeth(i)
	}
	return names
}

// Validate checks that every name fits the kernel's 15 bytes.
func (p Plan) Validate() error {
	if p.N < 0 || p.N > 65000 {
		return fmt.Errorf("plan: N=%d out of range", p.N)
	}
	if p.Prefix == "" || len(p.HostVeth(p.N-1)) > 15 {
		return fmt.Errorf("plan: prefix %q too long for %d guests (host veth names must fit 15 bytes)", p.Prefix, p.N)
	}
	bridges := p.Bridges
	if len(bridges) == 0 {
		bridges = []string{p.Bridge}
	}
	for _, br := range bridges {
		if br == "" || len(br) > 15 {
			return fmt.Errorf("plan: bridge name %q must be 1 to 15 bytes", br)
		}
	}
	return nil
}

// Namespace is the name of guest i's namespace under /run/netns.
func (p Plan) Namespace(i int) string { return fmt.Sprintf("%sn%d", p.Prefix, i) }

// HostVeth is the host end of guest i's veth.
func (p Plan) HostVeth(i int) string { return fmt.Sprintf("%sh%d", p.Prefix, i) }

// GuestIface is the name of the interface inside every guest.
const GuestIface = "eth0"

// MAC is guest i's locally administered MAC address.
func (p Plan) MAC(i int) string { return fmt.Sprintf("02:7b:00:00:%02x:%02x", (i>>8)&0xff, i&0xff) }

// Address is guest i's address in 10.123.0.0/16.
func (p Plan) Address(i int) string { return fmt.Sprintf("10.123.%d.%d/16", (i+1)>>8, (i+1)&0xff) }

// HostScript is the batch for the host side of up: the namespaces, the
// veths with their guest ends created inside them, and the host ends on
// the bridge.
func (p Plan) HostScript() string {
	var b strings.Builder
	for i := range p.N {
		fmt.Fprintf(&b, "netns add %s\n", p.Namespace(i))
		fmt.Fprintf(&b, "link add %s type veth peer name %s address %s netns %s\n",
			p.HostVeth(i), GuestIface, p.MAC(i), p.Namespace(i))
		fmt.Fprintf(&b, "link set %s master %s up\n", p.HostVeth(i), p.BridgeOf(i))
	}
	return b.String()
}

// GuestScript is the batch run inside guest i's namespace (ip -n NS -batch).
// An ip batch cannot switch namespaces between lines, hence one per guest.
func (p Plan) GuestScript(i int) string {
	return fmt.Sprintf("link set lo up\naddr add %s dev %s\nlink set %s up\n", p.Address(i), GuestIface, GuestIface)
}

// DownScript is the batch for down. Deleting a namespace takes its veths
// with it; the kernel removes them a moment later, in the background.
func (p Plan) DownScript() string {
	var b strings.Builder
	for i := range p.N {
		fmt.Fprintf(&b, "netns del %s\n", p.Namespace(i))
	}
	return b.String()
}

// Up runs HostScript with "ip -batch -" and then each GuestScript with
// "ip -n NAMESPACE -batch -", one after the other.
func Up(ctx context.Context, p Plan) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if err := ipBatch(ctx, nil, p.HostScript()); err != nil {
		return err
	}
	for i := range p.N {
		if err := ipBatch(ctx, []string{"-n", p.Namespace(i)}, p.GuestScript(i)); err != nil {
			return err
		}
	}
	return nil
}

// Down runs DownScript with "ip -batch -". It returns before the kernel has
// removed the host-side veths.
func Down(ctx context.Context, p Plan) error {
	if err := p.Validate(); err != nil {
		return err
	}
	return ipBatch(ctx, nil, p.DownScript())
}

// ipBatch runs ip [opts] -batch - with script on stdin. -force keeps going
// past failing lines, so Down also clears a half-made plan; the error still
// reports them.
func ipBatch(ctx context.Context, opts []string, script string) error {
	args := append(append([]string{}, opts...), "-force", "-batch", "-")
	cmd := exec.CommandContext(ctx, "ip", args...)
	cmd.Stdin = strings.NewReader(script)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out.Bytes()))
	}
	return nil
}
