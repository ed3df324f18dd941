package actions

import (
	"context"
	"maps"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/store"
)

// Records returns the store as the server should serve it: the runner's
// store with every outcome still waiting to be written (pending) shown as
// if it were. A deployment whose last action ended on a full disk so reads
// as that action's end state, not running, can be deleted, and its log
// entry reads finished. Writes go through to the store.
func (r *Runner) Records() store.Store {
	return records{Store: r.opts.Store, r: r}
}

type records struct {
	store.Store
	r *Runner
}

var _ store.Store = records{}

// pendingOf returns a copy of deployment name's pending outcome, if any.
func (r *Runner) pendingOf(name string) (pending, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.pending[name]
	if p == nil {
		return pending{}, false
	}
	return *p, true
}

func (s records) overlay(d *api.Deployment) {
	if p, ok := s.r.pendingOf(d.Name); ok && d.LastActionUUID != nil && *d.LastActionUUID == p.id {
		d.State = p.end
	}
}

func (s records) Deployments(ctx context.Context) ([]api.Deployment, error) {
	ds, err := s.Store.Deployments(ctx)
	for i := range ds {
		s.overlay(&ds[i])
	}
	return ds, err
}

func (s records) Deployment(ctx context.Context, name string) (api.Deployment, error) {
	d, err := s.Store.Deployment(ctx, name)
	if err == nil {
		s.overlay(&d)
	}
	return d, err
}

// UpdateDeployment lets fn see the state as served; when the store takes
// the change, it takes the pending state with it.
func (s records) UpdateDeployment(ctx context.Context, name string, fn func(*api.Deployment) error) (api.Deployment, error) {
	return s.Store.UpdateDeployment(ctx, name, func(d *api.Deployment) error {
		s.overlay(d)
		return fn(d)
	})
}

// DeleteDeployment checks the state as served, and forgets the pending
// outcome of a deployment it deleted.
func (s records) DeleteDeployment(ctx context.Context, name string, check func(api.Deployment) error) error {
	err := s.Store.DeleteDeployment(ctx, name, func(d api.Deployment) error {
		s.overlay(&d)
		if check == nil {
			return nil
		}
		return check(d)
	})
	if err == nil {
		s.r.mu.Lock()
		if p := s.r.pending[name]; p != nil {
			delete(s.r.pending, name)
			select {
			case p.kick <- struct{}{}:
			default:
			}
		}
		s.r.mu.Unlock()
	}
	return err
}

func (s records) LogIndex(ctx context.Context, deployment string) (api.LogIndex, error) {
	idx, err := s.Store.LogIndex(ctx, deployment)
	if err != nil {
		return idx, err
	}
	if p, ok := s.r.pendingOf(deployment); ok {
		idx = maps.Clone(idx)
		idx[p.id] = p.entry
	}
	return idx, nil
}

func (s records) LogEntry(ctx context.Context, uuid string) (api.LogEntry, error) {
	e, err := s.Store.LogEntry(ctx, uuid)
	if err != nil {
		return e, err
	}
	if p, ok := s.r.pendingOf(e.Deployment); ok && p.id == uuid {
		return p.entry, nil
	}
	return e, nil
}
