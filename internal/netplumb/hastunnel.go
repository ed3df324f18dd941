package netplumb

import "context"

// HasTunnel reports whether the VXLAN link name exists (restore after a
// reboot compares the record with what exists).
func (h *Host) HasTunnel(ctx context.Context, name string) (bool, error) { return LinkExists(name) }
