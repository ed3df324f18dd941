package guest

import (
	"context"

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
