package testbedos

import (
	"context"
	"io"
	"net/http"
	"net/url"
)

// Exec runs a command in a guest and waits for it: exit status, stdout and
// stderr (each capped at 1 MiB). A timeout (req.TimeoutS) is exit code -1.
func (c *Client) Exec(ctx context.Context, name, guest string, req ExecRequest) (ExecResult, error) {
	return c.c.Exec(ctx, name, guest, req)
}

// Impairment reads the impairment in force on a guest's interface.
func (c *Client) Impairment(ctx context.Context, name, guest, iface string) (InterfaceImpairment, error) {
	return c.c.Impairment(ctx, name, guest, iface)
}

// SetImpairment replaces the impairment of a guest's interface at run time:
// delay, jitter, loss, rate, corruption, and Up false for a link that is
// down. It is recorded and survives a restart of the server.
func (c *Client) SetImpairment(ctx context.Context, name, guest, iface string, imp Impairment) (InterfaceImpairment, error) {
	return c.c.SetImpairment(ctx, name, guest, iface, imp)
}

// Capture opens a pcap stream of a guest's interface (both directions);
// filter takes a subset of tcpdump's language ("icmp and host 10.0.0.10")
// and may be empty. Closing the stream or ending ctx stops the capture.
func (c *Client) Capture(ctx context.Context, name, guest, iface, filter string) (io.ReadCloser, error) {
	return c.c.Capture(ctx, name, guest, iface, filter)
}

// OpenConsole opens a guest's terminal (netns and docker: a shell;
// libvirt: the serial console).
func (c *Client) OpenConsole(ctx context.Context, name, guest string) (*Console, error) {
	return c.c.OpenConsole(ctx, name, guest)
}

// Snapshots lists a guest's snapshots, oldest first (VMs only).
func (c *Client) Snapshots(ctx context.Context, name, guest string) ([]Snapshot, error) {
	return c.c.Snapshots(ctx, name, guest)
}

// Snapshot describes one snapshot of a guest.
func (c *Client) Snapshot(ctx context.Context, name, guest, snapshot string) (Snapshot, error) {
	return c.c.Snapshot(ctx, name, guest, snapshot)
}

// MonitorHost returns the last hour of this host's CPU and memory samples.
func (c *Client) MonitorHost(ctx context.Context) (HostSeries, error) {
	var out HostSeries
	err := c.c.Do(ctx, http.MethodGet, "/api/monitor/host", nil, &out)
	return out, err
}

// MonitorGuest returns the last hour of a guest's CPU, memory and
// interface counters.
func (c *Client) MonitorGuest(ctx context.Context, name, guest string) (GuestSeries, error) {
	var out GuestSeries
	err := c.c.Do(ctx, http.MethodGet, "/api/monitor/deployments/"+url.PathEscape(name)+"/guests/"+url.PathEscape(guest), nil, &out)
	return out, err
}
