package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/store"
	"github.com/testbedos/testbedos/internal/topology"
)

// Guests lists a deployment's guests with their status and resource use.
// A deployment without state is an error wrapping api.ErrNotFound.
type Guests interface {
	Guests(ctx context.Context, d api.Deployment) ([]api.Guest, error)
}

// Monitor serves the resource monitor's series and their plots.
type Monitor interface {
	Host() api.HostSeries
	// Guest is the guest's series, empty when it is not sampled.
	Guest(deployment, guest string) api.GuestSeries
	// HostSVG and GuestSVG draw the last window (0: the hour kept).
	HostSVG(w io.Writer, window time.Duration) error
	GuestSVG(w io.Writer, deployment, guest string, window time.Duration) error
}

func listGuests(d Deps) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if d.Guests == nil {
			return errorf(http.StatusServiceUnavailable, nil, "this server cannot list guests: it runs without the orchestration engine")
		}
		dep, err := d.Store.Deployment(r.Context(), r.PathValue("name"))
		if err != nil {
			return err
		}
		list, err := d.Guests.Guests(r.Context(), dep)
		if err != nil {
			return err
		}
		if list == nil {
			list = []api.Guest{}
		}
		writeJSON(w, http.StatusOK, list)
		return nil
	}
}

// wantSVG reads ?format: json (the default) or svg.
func wantSVG(r *http.Request) (bool, error) {
	switch f := r.URL.Query().Get("format"); f {
	case "", "json":
		return false, nil
	case "svg":
		return true, nil
	default:
		return false, errorf(http.StatusBadRequest, nil, fmt.Sprintf("format %q: want json or svg", f))
	}
}

// plotWindow reads ?range, the time a plot shows: 1m to 1h (5m, 15m,
// 30m, 1h are what the GUI offers); absent is the hour.
func plotWindow(r *http.Request) (time.Duration, error) {
	v := r.URL.Query().Get("range")
	if v == "" {
		return time.Hour, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < time.Minute || d > time.Hour {
		return 0, errorf(http.StatusBadRequest, err, fmt.Sprintf("range %q: want a duration from 1m to 1h, e.g. 5m", v))
	}
	return d, nil
}

func writeSVG(w http.ResponseWriter, draw func(io.Writer) error) error {
	var b bytes.Buffer
	if err := draw(&b); err != nil {
		return fmt.Errorf("draw the plot: %w", err)
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "no-store")
	_, err := w.Write(b.Bytes())
	return err
}

func monitorHost(d Deps) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		svg, err := wantSVG(r)
		if err != nil {
			return err
		}
		win, err := plotWindow(r)
		if err != nil {
			return err
		}
		if svg {
			return writeSVG(w, func(w io.Writer) error { return d.Monitor.HostSVG(w, win) })
		}
		writeJSON(w, http.StatusOK, d.Monitor.Host())
		return nil
	}
}

func monitorGuest(d Deps) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		name, guestName := r.PathValue("name"), r.PathValue("guest")
		if err := store.CheckName(name); err != nil {
			return err
		}
		if !api.ValidName(guestName) {
			return errorf(http.StatusBadRequest, nil, fmt.Sprintf("guest name %q does not match %s", guestName, api.NamePattern))
		}
		svg, err := wantSVG(r)
		if err != nil {
			return err
		}
		win, err := plotWindow(r)
		if err != nil {
			return err
		}
		dep, err := d.Store.Deployment(r.Context(), name)
		if err != nil {
			return err
		}
		if err := hasGuest(dep, guestName); err != nil {
			return err
		}
		if svg {
			return writeSVG(w, func(w io.Writer) error { return d.Monitor.GuestSVG(w, name, guestName, win) })
		}
		writeJSON(w, http.StatusOK, d.Monitor.Guest(name, guestName))
		return nil
	}
}

// hasGuest checks that the deployment's state has the guest.
func hasGuest(dep api.Deployment, guestName string) error {
	st, err := topology.ReadProjectState(dep.ProjectLocation)
	if errors.Is(err, fs.ErrNotExist) {
		return errorf(http.StatusNotFound, err, fmt.Sprintf("deployment %s has no state yet: run generate-artefacts", dep.Name))
	}
	if err != nil {
		return err
	}
	for _, g := range st.Guests {
		if g.Name == guestName {
			return nil
		}
	}
	return errorf(http.StatusNotFound, nil, fmt.Sprintf("deployment %s has no guest %s", dep.Name, guestName))
}
