package guest

import (
	"context"

	"github.com/testbedos/testbedos/internal/actlog"
	"github.com/testbedos/testbedos/internal/topology"
)

// PowerSwitch is a driver whose guests can be stopped and started again
// without being removed: what the guest is (its namespace, container or
// domain, its disk, its addresses) stays, what runs in it does not.
// Stop of a stopped guest and Start of a running one succeed. After Start
// the host ends of the guest's interfaces are on their bridges again, but
// without impairments: the caller sets those again.
type PowerSwitch interface {
	Stop(ctx context.Context, dep Deployment, g *topology.Guest, log actlog.Log) error
	Start(ctx context.Context, dep Deployment, g *topology.Guest, log actlog.Log) error
}
