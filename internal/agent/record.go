package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/testbedos/testbedos/internal/atomicfile"
	"github.com/testbedos/testbedos/internal/topology"
)

// Deployed is what a client host made for one deployment, by its own record
// (the answer of GET /api/agent/deployed/{deployment}). It outlives a
// restart of either host, so the client can be cleaned without the main.
type Deployed struct {
	Deployment string                   `json:"deployment"`
	Guests     map[string]DeployedGuest `json:"guests"`
	// Bridges are the bridges the deployment's guests were attached to,
	// with what this host did to them.
	Bridges map[string]DeployedBridge `json:"bridges"`
}

// DeployedGuest is one guest a client host made, or was making.
type DeployedGuest struct {
	Guest topology.Guest `json:"guest"`
	// Files are the deployment files the guest was made with (ref→sha256).
	Files   map[string]string `json:"files,omitempty"`
	Pending bool              `json:"pending,omitempty"`
}

// DeployedBridge is a bridge as this host's record knows it.
type DeployedBridge struct {
	// Made: the agent created the bridge, so cleaning deletes it.
	Made bool `json:"made"`
	// Firewall: the agent added the rules of the bridge.
	Firewall bool `json:"firewall"`
}

// Empty reports whether the record holds nothing.
func (d *Deployed) Empty() bool { return len(d.Guests) == 0 && len(d.Bridges) == 0 }

// deploymentFile is the on-disk record of one deployment.
type deploymentFile struct {
	Deployment string                   `json:"deployment"`
	Guests     map[string]DeployedGuest `json:"guests"`
	Bridges    []string                 `json:"bridges,omitempty"`
}

// networkFile is the on-disk record of the bridges the agent touched; the
// network calls name no deployment, so bridges are tied to deployments
// through the guests attached to them.
type networkFile struct {
	Bridges map[string]DeployedBridge `json:"bridges"`
}

// records keeps the client's own record under <data>/agent: one file per
// deployment (<deployment>.json) and _network.json. Every change is written
// with atomicfile before it is answered.
type records struct {
	dir string
	mu  sync.Mutex
}

func (r *records) deploymentPath(name string) string { return filepath.Join(r.dir, name+".json") }
func (r *records) networkPath() string               { return filepath.Join(r.dir, "_network.json") }

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("agent record %s: %w", path, err)
	}
	return nil
}

func writeJSON(dir, path string, v any) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, append(data, '\n'), 0o600)
}

func (r *records) loadDeployment(name string) (*deploymentFile, error) {
	f := &deploymentFile{Deployment: name}
	if err := readJSON(r.deploymentPath(name), f); err != nil {
		return nil, err
	}
	if f.Guests == nil {
		f.Guests = map[string]DeployedGuest{}
	}
	return f, nil
}

func (r *records) saveDeployment(f *deploymentFile) error {
	if len(f.Guests) == 0 && len(f.Bridges) == 0 {
		return atomicfile.Remove(r.deploymentPath(f.Deployment))
	}
	return writeJSON(r.dir, r.deploymentPath(f.Deployment), f)
}

func (r *records) loadNetwork() (*networkFile, error) {
	n := &networkFile{}
	if err := readJSON(r.networkPath(), n); err != nil {
		return nil, err
	}
	if n.Bridges == nil {
		n.Bridges = map[string]DeployedBridge{}
	}
	return n, nil
}

func (r *records) saveNetwork(n *networkFile) error {
	if len(n.Bridges) == 0 {
		return atomicfile.Remove(r.networkPath())
	}
	return writeJSON(r.dir, r.networkPath(), n)
}

// editDeployment changes the record of deployment name under the lock.
func (r *records) editDeployment(name string, edit func(*deploymentFile)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	f, err := r.loadDeployment(name)
	if err != nil {
		return err
	}
	edit(f)
	return r.saveDeployment(f)
}

// editNetwork changes the bridge record under the lock.
func (r *records) editNetwork(edit func(*networkFile)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, err := r.loadNetwork()
	if err != nil {
		return err
	}
	edit(n)
	return r.saveNetwork(n)
}

// guestStarting records g as being made for deployment, with the bridges
// its interfaces use.
func (r *records) guestStarting(deployment string, g topology.Guest, files map[string]string) error {
	return r.editDeployment(deployment, func(f *deploymentFile) {
		if _, ok := f.Guests[g.Name]; !ok {
			f.Guests[g.Name] = DeployedGuest{Guest: g, Files: files, Pending: true}
		}
		for _, ifc := range g.Interfaces {
			f.Bridges = addName(f.Bridges, ifc.Bridge)
		}
	})
}

// guestDone records the outcome of a create: made (kept, no longer
// pending) or not made by this call (forgotten unless an earlier call made
// it).
func (r *records) guestDone(deployment string, g topology.Guest, files map[string]string, made bool) error {
	return r.editDeployment(deployment, func(f *deploymentFile) {
		old, ok := f.Guests[g.Name]
		switch {
		case made || ok && !old.Pending:
			f.Guests[g.Name] = DeployedGuest{Guest: g, Files: files}
		default:
			delete(f.Guests, g.Name)
		}
	})
}

func (r *records) guestGone(deployment, name string) error {
	return r.editDeployment(deployment, func(f *deploymentFile) { delete(f.Guests, name) })
}

// bridgeGone forgets a deleted bridge everywhere.
func (r *records) bridgeGone(name string) error {
	if err := r.editNetwork(func(n *networkFile) { delete(n.Bridges, name) }); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	names, err := r.deploymentNames()
	if err != nil {
		return err
	}
	for _, d := range names {
		f, err := r.loadDeployment(d)
		if err != nil {
			return err
		}
		if i := sort.SearchStrings(f.Bridges, name); i < len(f.Bridges) && f.Bridges[i] == name {
			f.Bridges = append(f.Bridges[:i], f.Bridges[i+1:]...)
			if err := r.saveDeployment(f); err != nil {
				return err
			}
		}
	}
	return nil
}

// deploymentNames lists the deployments with a record; the caller holds mu.
func (r *records) deploymentNames() ([]string, error) {
	entries, err := os.ReadDir(r.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		n := e.Name()
		if e.Type().IsRegular() && filepath.Ext(n) == ".json" && n[0] != '_' && n[0] != '.' {
			out = append(out, n[:len(n)-len(".json")])
		}
	}
	return out, nil
}

// names lists the deployments with a record, sorted.
func (r *records) names() ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	names, err := r.deploymentNames()
	sort.Strings(names)
	if names == nil {
		names = []string{}
	}
	return names, err
}

// deployed is the record of deployment name as the API shows it.
func (r *records) deployed(name string) (*Deployed, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f, err := r.loadDeployment(name)
	if err != nil {
		return nil, err
	}
	n, err := r.loadNetwork()
	if err != nil {
		return nil, err
	}
	d := &Deployed{Deployment: name, Guests: f.Guests, Bridges: map[string]DeployedBridge{}}
	for _, b := range f.Bridges {
		if nb, ok := n.Bridges[b]; ok {
			d.Bridges[b] = nb
		}
	}
	return d, nil
}

// sharedBridges are the bridges that deployments other than name use.
func (r *records) sharedBridges(name string) (map[string]bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	names, err := r.deploymentNames()
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, d := range names {
		if d == name {
			continue
		}
		f, err := r.loadDeployment(d)
		if err != nil {
			return nil, err
		}
		for _, b := range f.Bridges {
			out[b] = true
		}
	}
	return out, nil
}

// addName inserts s into the sorted list names once.
func addName(names []string, s string) []string {
	i := sort.SearchStrings(names, s)
	if i < len(names) && names[i] == s {
		return names
	}
	return append(names[:i], append([]string{s}, names[i:]...)...)
}
