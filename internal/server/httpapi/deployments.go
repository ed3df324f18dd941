package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/store"
	"github.com/testbedos/testbedos/internal/topology"
)

// ComposeFile is the topology file every project folder holds.
const ComposeFile = "kvm-compose.yaml"

func listDeployments(d Deps) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		list, err := d.Store.Deployments(r.Context())
		if err != nil {
			return err
		}
		out := api.DeploymentList{Deployments: make(map[string]api.Deployment, len(list))}
		for _, dep := range list {
			out.Deployments[dep.Name] = dep
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	}
}

// folderClaims makes "one folder belongs to one deployment" hold under
// concurrent creates and PUTs: the check and the write happen under its
// lock.
type folderClaims struct{ mu sync.Mutex }

// claim fails with a 409 when another deployment than name holds loc.
func (f *folderClaims) claim(ctx context.Context, s store.Store, name, loc string) error {
	list, err := s.Deployments(ctx)
	if err != nil {
		return err
	}
	for _, other := range list {
		if other.Name != name && sameFolder(other.ProjectLocation, loc) {
			return errorf(http.StatusConflict, nil, fmt.Sprintf(
				"project folder %s belongs to deployment %s: one folder holds one deployment (use another folder, or kvm-compose deployment destroy %s first)",
				loc, other.Name, other.Name))
		}
	}
	return nil
}

// sameFolder compares a stored location (resolved when it was stored, but
// perhaps by an older server) with a resolved one.
func sameFolder(stored, resolved string) bool {
	if stored == resolved {
		return true
	}
	real, err := filepath.EvalSymlinks(stored)
	return err == nil && real == resolved
}

func createDeployment(d Deps, folders *folderClaims) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		var req api.NewDeployment
		if err := decode(w, r, &req); err != nil {
			return err
		}
		if err := store.CheckName(req.Name); err != nil {
			return err
		}
		loc, err := checkProjectLocation(req.ProjectLocation)
		if err != nil {
			return err
		}
		dep := api.Deployment{Name: req.Name, ProjectLocation: loc, State: api.StateIsDown}
		folders.mu.Lock()
		defer folders.mu.Unlock()
		if _, err := d.Store.Deployment(r.Context(), req.Name); err == nil {
			return fmt.Errorf("deployment %q: %w", req.Name, store.ErrExists)
		}
		if err := folders.claim(r.Context(), d.Store, req.Name, loc); err != nil {
			return err
		}
		if err := d.Store.CreateDeployment(r.Context(), dep); err != nil {
			return err
		}
		w.Header().Set("Location", "/api/deployments/"+dep.Name)
		writeJSON(w, http.StatusCreated, dep)
		return nil
	}
}

// checkProjectLocation accepts an absolute path of a folder that holds
// kvm-compose.yaml, and returns it with symlinks resolved: two spellings of
// one folder are one folder.
func checkProjectLocation(loc string) (string, error) {
	if loc == "" {
		return "", errorf(http.StatusBadRequest, nil, "project_location is required")
	}
	if !filepath.IsAbs(loc) {
		return "", errorf(http.StatusBadRequest, nil, fmt.Sprintf("project_location %q must be an absolute path", loc))
	}
	loc = filepath.Clean(loc)
	fi, err := os.Stat(loc)
	if err != nil || !fi.IsDir() {
		return "", errorf(http.StatusBadRequest, err, fmt.Sprintf("project_location %s is not a folder on the server", loc))
	}
	fi, err = os.Stat(filepath.Join(loc, ComposeFile))
	if err != nil || !fi.Mode().IsRegular() {
		return "", errorf(http.StatusBadRequest, err, fmt.Sprintf("project_location %s holds no %s", loc, ComposeFile))
	}
	real, err := filepath.EvalSymlinks(loc)
	if err != nil {
		return "", errorf(http.StatusBadRequest, err, fmt.Sprintf("project_location %s: %v", loc, err))
	}
	return real, nil
}

func getDeployment(d Deps) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		dep, err := d.Store.Deployment(r.Context(), r.PathValue("name"))
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, dep)
		return nil
	}
}

func updateDeployment(d Deps, folders *folderClaims) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		name := r.PathValue("name")
		if err := store.CheckName(name); err != nil {
			return err
		}
		var req api.UpdateDeployment
		if err := decode(w, r, &req); err != nil {
			return err
		}
		loc, err := checkProjectLocation(req.ProjectLocation)
		if err != nil {
			return err
		}
		folders.mu.Lock()
		defer folders.mu.Unlock()
		if _, err := d.Store.Deployment(r.Context(), name); err != nil {
			return err
		}
		if err := folders.claim(r.Context(), d.Store, name, loc); err != nil {
			return err
		}
		dep, err := d.Store.UpdateDeployment(r.Context(), name, func(dep *api.Deployment) error {
			switch {
			case dep.State.Is(api.StateRunning):
				return errorf(http.StatusConflict, nil, fmt.Sprintf("deployment %s is running an action; wait for it or cancel it first", name))
			case !dep.State.Is(api.StateDown):
				return errorf(http.StatusConflict, nil, fmt.Sprintf("deployment %s is %s: its project folder can change only while it is down (run down first)", name, dep.State))
			}
			dep.ProjectLocation = loc
			return nil
		})
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, dep)
		return nil
	}
}

func deleteDeployment(d Deps) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		name := r.PathValue("name")
		force := false
		if v := r.URL.Query().Get("force"); v != "" {
			var err error
			if force, err = strconv.ParseBool(v); err != nil {
				return errorf(http.StatusBadRequest, err, fmt.Sprintf("force=%q: want true or false", v))
			}
		}
		err := d.Store.DeleteDeployment(r.Context(), name, func(dep api.Deployment) error {
			switch {
			case dep.State.Is(api.StateRunning):
				return errorf(http.StatusConflict, nil, fmt.Sprintf("deployment %s is running an action; cancel it first", name))
			case !dep.State.Is(api.StateDown) && !force:
				return errorf(http.StatusConflict, nil, fmt.Sprintf("deployment %s is %s: run down first, or delete with ?force=true to forget it anyway", name, dep.State))
			}
			return nil
		})
		if err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

func startAction(d Deps) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		name := r.PathValue("name")
		if err := store.CheckName(name); err != nil {
			return err
		}
		var req api.ActionRequest
		if err := decode(w, r, &req); err != nil {
			return err
		}
		id, err := d.Runner.Start(r.Context(), name, req)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusAccepted, api.ActionAccepted{UUID: id})
		return nil
	}
}

func cancelAction(d Deps) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		name := r.PathValue("name")
		if _, err := d.Store.Deployment(r.Context(), name); err != nil {
			return err
		}
		var req api.CancelRequest
		if err := decodeOptional(w, r, &req); err != nil {
			return err
		}
		id, err := d.Runner.Cancel(name, req.UUID)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusAccepted, api.ActionAccepted{UUID: id})
		return nil
	}
}

func deploymentState(d Deps) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		dep, err := d.Store.Deployment(r.Context(), r.PathValue("name"))
		if err != nil {
			return err
		}
		data, err := topology.ReadProjectFile(dep.ProjectLocation, topology.StatePath(dep.ProjectLocation), topology.MaxStateFile)
		if errors.Is(err, fs.ErrNotExist) {
			return errorf(http.StatusNotFound, err, fmt.Sprintf("deployment %s has no state yet: run generate-artefacts", dep.Name))
		}
		if err != nil {
			return err
		}
		if !json.Valid(data) {
			return fmt.Errorf("%s is not valid JSON", topology.StatePath(dep.ProjectLocation))
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(data)
		return nil
	}
}

func deploymentLogs(d Deps) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		idx, err := d.Store.LogIndex(r.Context(), r.PathValue("name"))
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, idx)
		return nil
	}
}
