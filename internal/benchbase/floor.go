package benchbase

import (
	"context"
	"fmt"
	"os/exec"
	"strings"

	"github.com/testbedos/testbedos/internal/net/links"
)

// Floor is the yardstick of a benchmark of up and down: the plan's bridges
// and guests made and removed with plain ip commands, nothing else. Its
// Down returns once the kernel has removed every host-side veth, as the
// engine's down does, so the two are timed alike.
type Floor struct {
	Plan
	watcher *links.Watcher
}

// NewFloor returns the floor of p (p.Bridges must be set).
func NewFloor(p Plan) *Floor { return &Floor{Plan: p, watcher: links.NewWatcher()} }

// Up makes the bridges, then the guests (Up).
func (f *Floor) Up(ctx context.Context) error {
	for _, br := range f.Bridges {
		if err := ip(ctx, "link", "add", "name", br, "up", "type", "bridge"); err != nil {
			return err
		}
	}
	return Up(ctx, f.Plan)
}

// Down removes the guests (Down), waits until the kernel has removed their
// host-side veths, then removes the bridges.
func (f *Floor) Down(ctx context.Context) error {
	gone := f.watcher.Expect(f.HostVeths()...)
	defer gone.Close()
	if err := Down(ctx, f.Plan); err != nil {
		return err
	}
	if err := gone.Wait(ctx); err != nil {
		return err
	}
	for _, br := range f.Bridges {
		if err := ip(ctx, "link", "del", br); err != nil {
			return err
		}
	}
	return nil
}

func ip(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}
