package guest

import (
	"context"
	"fmt"

	"github.com/testbedos/testbedos/internal/topology"
)

// Stats is what a guest uses now. CPUSeconds is cumulative since the guest
// started; MemoryBytes is resident memory.
type Stats struct {
	CPUSeconds  float64
	MemoryBytes uint64
}

// Statser is a driver that reports the resource use of its guests (the
// monitor samples it). Interface counters are not part of it: they are
// read from the host-side end of each link.
type Statser interface {
	Stats(ctx context.Context, dep Deployment, g *topology.Guest) (Stats, error)
}

// StatserOf returns drv as a Statser when its kind reports stats, else an
// error wrapping ErrUnsupported.
func StatserOf(drv Driver) (Statser, error) {
	s, ok := drv.(Statser)
	if !ok || !drv.Capabilities().Stats {
		return nil, fmt.Errorf("%s guests report no stats: %w", drv.Kind(), ErrUnsupported)
	}
	return s, nil
}
