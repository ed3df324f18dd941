package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/store"
)

// powerGuest starts the power action of one guest: 202 with its uuid.
func powerGuest(d Deps) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		name, guestName := r.PathValue("name"), r.PathValue("guest")
		if err := store.CheckName(name); err != nil {
			return err
		}
		if !api.ValidName(guestName) {
			return errorf(http.StatusBadRequest, nil, fmt.Sprintf("guest name %q does not match %s", guestName, api.NamePattern))
		}
		var req api.PowerRequest
		if err := decode(w, r, &req); err != nil {
			return err
		}
		opts := api.PowerOptions{Guest: guestName, State: req.State}
		if err := opts.Validate(); err != nil {
			return errorf(http.StatusBadRequest, nil, err.Error())
		}
		id, err := d.Runner.Start(r.Context(), name, api.ActionRequest{Command: api.Command{Name: api.CmdPower}, Power: &opts})
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusAccepted, api.ActionAccepted{UUID: id})
		return nil
	}
}

// fanoutExec runs one command in many guests of a deployment at once
// (at most api.MaxFanoutConcurrency at a time) and answers one result per
// guest. A guest where the command could not run has its error in its
// result; the request fails only when it is wrong as a whole.
func fanoutExec(d Deps) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		name := r.PathValue("name")
		if err := store.CheckName(name); err != nil {
			return err
		}
		var req api.FanoutExecRequest
		if err := decode(w, r, &req); err != nil {
			return err
		}
		timeout, err := execLimits(req.Command, req.Stdin, req.TimeoutS)
		if err != nil {
			return err
		}
		for _, g := range req.Guests {
			if !api.ValidName(g) {
				return errorf(http.StatusBadRequest, nil, fmt.Sprintf("guest name %q does not match %s", g, api.NamePattern))
			}
		}
		if d.Live == nil || d.Guests == nil {
			return errorf(http.StatusServiceUnavailable, nil, "this server cannot reach guests: it runs without the orchestration engine")
		}
		dep, err := d.Store.Deployment(r.Context(), name)
		if err != nil {
			return err
		}
		names := req.Guests
		if len(names) == 0 {
			all, err := d.Guests.Guests(r.Context(), dep)
			if err != nil {
				return err
			}
			for _, g := range all {
				names = append(names, g.Name)
			}
		}
		out := api.FanoutExecResult{Results: make([]api.GuestExecResult, len(names))}
		sem := make(chan struct{}, api.MaxFanoutConcurrency)
		var wg sync.WaitGroup
		for i, g := range names {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				out.Results[i] = execOne(r.Context(), d.Live, dep, g, req, timeout)
			}()
		}
		wg.Wait()
		if err := r.Context().Err(); err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	}
}

// execOne runs the command in one guest for fanoutExec.
func execOne(ctx context.Context, live Live, dep api.Deployment, name string, req api.FanoutExecRequest, timeout time.Duration) api.GuestExecResult {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out, err := runExec(ctx, live, dep, name, req.Command, req.Stdin)
	res := api.GuestExecResult{Guest: name, ExecResult: out}
	if err != nil {
		res.ExitCode = -1
		if errors.Is(err, context.DeadlineExceeded) {
			res.TimedOut = true
		} else {
			res.Error = err.Error()
		}
	}
	return res
}
