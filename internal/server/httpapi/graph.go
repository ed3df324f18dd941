package httpapi

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/graph"
	"github.com/testbedos/testbedos/internal/guest/sshkey"
	"github.com/testbedos/testbedos/internal/store"
	"github.com/testbedos/testbedos/internal/topology"
)

// Formats of GET …/graph and GET …/inventory, the first the default.
var (
	graphFormats     = []string{"json", "dot", "mermaid", "svg"}
	inventoryFormats = []string{"json", "ansible", "ssh-config", "hosts"}
)

// vmUser is who the server logs into VMs as (the libvirt driver's user).
const vmUser = "root"

// deploymentState reads the resolved state of a deployment: the daemon's
// own copy in the data folder, else the copy in the project folder (read
// beneath it). A deployment without one is a 404 saying what to run.
func resolvedState(d Deps, dep api.Deployment) (*topology.State, []byte, error) {
	if d.DataDir != "" {
		p := filepath.Join(d.DataDir, "generated", dep.Name, topology.StateFile)
		if data, err := topology.ReadRegularFile(p, topology.MaxStateFile); err == nil {
			st, err := topology.ReadState(p)
			return st, data, err
		}
	}
	data, err := topology.ReadProjectFile(dep.ProjectLocation, topology.StatePath(dep.ProjectLocation), topology.MaxStateFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, errorf(http.StatusNotFound, err, fmt.Sprintf("deployment %s has no state yet: run kvm-compose generate-artefacts first", dep.Name))
	}
	if err != nil {
		return nil, nil, err
	}
	st, err := topology.ReadProjectState(dep.ProjectLocation)
	return st, data, err
}

// format reads ?format=, one of allowed (the first when absent).
func format(r *http.Request, allowed []string) (string, error) {
	f := r.URL.Query().Get("format")
	if f == "" {
		return allowed[0], nil
	}
	for _, a := range allowed {
		if f == a {
			return f, nil
		}
	}
	return "", errorf(http.StatusBadRequest, nil, fmt.Sprintf("format=%q: want one of %s", f, strings.Join(allowed, ", ")))
}

func stateOf(d Deps, r *http.Request) (api.Deployment, *topology.State, error) {
	name := r.PathValue("name")
	if err := store.CheckName(name); err != nil {
		return api.Deployment{}, nil, err
	}
	dep, err := d.Store.Deployment(r.Context(), name)
	if err != nil {
		return dep, nil, err
	}
	st, _, err := resolvedState(d, dep)
	return dep, st, err
}

func deploymentGraph(d Deps) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		f, err := format(r, graphFormats)
		if err != nil {
			return err
		}
		_, st, err := stateOf(d, r)
		if err != nil {
			return err
		}
		g := graph.Build(st)
		switch f {
		case "dot":
			w.Header().Set("Content-Type", "text/vnd.graphviz; charset=utf-8")
			w.Write(graph.DOT(g))
		case "mermaid":
			w.Header().Set("Content-Type", "text/vnd.mermaid; charset=utf-8")
			w.Write(graph.Mermaid(g))
		case "svg":
			if d.TopologySVG == nil {
				return errorf(http.StatusServiceUnavailable, nil, "this server draws no topology pictures (it runs without its GUI)")
			}
			w.Header().Set("Content-Type", "image/svg+xml")
			w.Write(d.TopologySVG(st))
		default:
			writeJSON(w, http.StatusOK, g)
		}
		return nil
	}
}

func deploymentInventory(d Deps) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		f, err := format(r, inventoryFormats)
		if err != nil {
			return err
		}
		dep, st, err := stateOf(d, r)
		if err != nil {
			return err
		}
		var live []api.Guest
		if d.Guests != nil && dep.State.Is(api.StateUp) {
			// Leases of dynamic interfaces; without them the state's
			// addresses do.
			live, _ = d.Guests.Guests(r.Context(), dep)
		}
		key := sshkey.Path(filepath.Join(dep.ProjectLocation, "artefacts"))
		inv := graph.BuildInventory(st, live, graph.VMLogin{User: vmUser, Key: key})
		switch f {
		case "ansible":
			data, err := graph.Ansible(inv)
			if err != nil {
				return err
			}
			w.Header().Set("Content-Type", "application/yaml")
			w.Write(data)
		case "ssh-config":
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Write(graph.SSHConfig(inv))
		case "hosts":
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Write(graph.Hosts(inv))
		default:
			writeJSON(w, http.StatusOK, inv)
		}
		return nil
	}
}
