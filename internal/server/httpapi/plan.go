package httpapi

import (
	"context"
	"fmt"
	"net/http"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/store"
)

// Planner answers what apply would change (the engine). A deployment with
// nothing recorded is an error wrapping engine.ErrConflict; a YAML that
// does not validate a *topology.ValidationError.
type Planner interface {
	Plan(ctx context.Context, d api.Deployment) (api.Plan, error)
}

func deploymentPlan(d Deps) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		name := r.PathValue("name")
		if err := store.CheckName(name); err != nil {
			return err
		}
		dep, err := d.Store.Deployment(r.Context(), name)
		if err != nil {
			return err
		}
		if d.Plans == nil {
			return errorf(http.StatusServiceUnavailable, nil, "this server cannot plan: it runs without the orchestration engine")
		}
		if !dep.State.Is(api.StateUp) {
			return errorf(http.StatusConflict, nil, fmt.Sprintf("deployment %s is %s, not up: plan compares a deployment that is up with kvm-compose.yaml (run up first)", dep.Name, dep.State))
		}
		p, err := d.Plans.Plan(r.Context(), dep)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, p)
		return nil
	}
}
