package guest

import (
	"context"
	"fmt"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/topology"
)

// Presence is what a driver finds of a guest on its host, in any form.
type Presence int

const (
	// Absent: nothing of the guest is there.
	Absent Presence = iota
	// Ours: something of it is there, perhaps stopped or partial, and
	// carries the mark of this server and deployment.
	Ours
	// Unmarked: something of it is there, of a kind that carries no mark
	// (a network namespace, a veth): it is this deployment's only when the
	// deployment's record holds the guest.
	Unmarked
	// Foreign: something of it is there that another deployment, or
	// another server, made.
	Foreign
)

// Found is what a driver found of a guest.
type Found struct {
	Presence Presence
	// What names the objects found, for messages ("stopped container
	// tbos-lab-a of deployment lab on another server").
	What string
	// Complete: the guest is there whole and running, as Exists reports
	// (whoever made it).
	Complete bool
}

// Finder is a driver that finds a guest's objects in any form (running,
// stopped or partial) and tells those it made, for this deployment on this
// server, from another's. The engine refuses to adopt, or to destroy,
// what is not its own.
type Finder interface {
	Find(ctx context.Context, dep Deployment, g *topology.Guest) (Found, error)
}

// Find asks drv what is there of g, and whether it is complete: through
// Finder when drv has it, else through Exists, whose complete guest is
// Unmarked.
func Find(ctx context.Context, drv Driver, dep Deployment, g *topology.Guest) (Found, error) {
	if f, err := As[Finder](drv); err == nil {
		return f.Find(ctx, dep, g)
	}
	ok, err := drv.Exists(ctx, dep, g)
	if err != nil || !ok {
		return Found{}, err
	}
	return Found{Presence: Unmarked, What: fmt.Sprintf("%s guest %s", drv.Kind(), g.Name), Complete: true}, nil
}

// ErrForeign: an object in a guest's place was made by another deployment
// or another server; it is left alone.
var ErrForeign = api.Categorized(api.ErrConflict, "made by another deployment or server")
