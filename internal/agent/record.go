package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/testbedos/testbedos/internal/api"
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
	// Tunnels are the VXLAN links the agent made on the bridge.
	Tunnels []string `json:"tunnels,omitempty"`
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
	// Links are the impairments the main set on guests' links here (those
	// with something in force), set again when the agent starts: the
	// userspace ones of a kernel without netem ended with its process.
	Links map[string]ImpairRequest `json:"links,omitempty"`
}

// records keeps the client's own record under <data>/agent: one file per
// deployment (<deployment>.json) and _network.json, read once and then kept
// in memory. Every change is on disk before it is answered; changes made
// while a write is under way share the next write (group commit), so
// concurrent guest calls do not queue one fsync each.
type records struct {
	dir string

	mu     sync.Mutex // guards the fields below
	loaded bool
	deps   map[string]*deploymentFile
	net    *networkFile
	gen    map[string]uint64 // edits so far, by file ("" = network)
	saved  map[string]uint64 // edits on disk, by file

	writeMu sync.Mutex // one writer at a time
}

func newRecords(dir string) *records { return &records{dir: dir} }

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

// load reads every record file once; the caller holds mu.
func (r *records) load() error {
	if r.loaded {
		return nil
	}
	deps := map[string]*deploymentFile{}
	entries, err := os.ReadDir(r.dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, e := range entries {
		n := e.Name()
		name, ok := strings.CutSuffix(n, ".json")
		if !e.Type().IsRegular() || !ok || !api.ValidName(name) {
			continue
		}
		f := &deploymentFile{}
		if err := readJSON(filepath.Join(r.dir, n), f); err != nil {
			return err
		}
		f.Deployment = name
		if f.Guests == nil {
			f.Guests = map[string]DeployedGuest{}
		}
		deps[name] = f
	}
	net := &networkFile{}
	if err := readJSON(r.networkPath(), net); err != nil {
		return err
	}
	if net.Bridges == nil {
		net.Bridges = map[string]DeployedBridge{}
	}
	r.deps, r.net, r.loaded = deps, net, true
	r.gen, r.saved = map[string]uint64{}, map[string]uint64{}
	return nil
}

// dep returns the in-memory record of deployment name, made when missing;
// the caller holds mu.
func (r *records) dep(name string) *deploymentFile {
	f := r.deps[name]
	if f == nil {
		f = &deploymentFile{Deployment: name, Guests: map[string]DeployedGuest{}}
		r.deps[name] = f
	}
	return f
}

// edit changes the in-memory record under the lock and writes the files it
// touched (keys: deployment names, "" for the network) before returning.
func (r *records) edit(fn func() []string) error {
	r.mu.Lock()
	if err := r.load(); err != nil {
		r.mu.Unlock()
		return err
	}
	keys := fn()
	want := map[string]uint64{}
	for _, k := range keys {
		r.gen[k]++
		want[k] = r.gen[k]
	}
	r.mu.Unlock()
	for k, g := range want {
		if err := r.flush(k, g); err != nil {
			return err
		}
	}
	return nil
}

// flush makes sure edit number g of file key is on disk: a write that began
// after it covers it too.
func (r *records) flush(key string, g uint64) error {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	r.mu.Lock()
	if r.saved[key] >= g {
		r.mu.Unlock()
		return nil
	}
	now := r.gen[key]
	var (
		path string
		v    any
		keep bool
	)
	if key == "" {
		path, keep = r.networkPath(), len(r.net.Bridges) > 0 || len(r.net.Links) > 0
		v = r.net
	} else {
		f := r.deps[key]
		path, keep = r.deploymentPath(key), f != nil && (len(f.Guests) > 0 || len(f.Bridges) > 0)
		v = f
		if !keep {
			delete(r.deps, key)
		}
	}
	var data []byte
	var err error
	if keep {
		data, err = json.MarshalIndent(v, "", "  ")
	}
	r.mu.Unlock()
	if err != nil {
		return err
	}
	if keep {
		if err = os.MkdirAll(r.dir, 0o700); err == nil {
			err = atomicfile.Write(path, append(data, '\n'), 0o600)
		}
	} else {
		err = atomicfile.Remove(path)
	}
	if err != nil {
		return fmt.Errorf("agent record: %w", err)
	}
	r.mu.Lock()
	r.saved[key] = now
	r.mu.Unlock()
	return nil
}

// editDeployment changes the record of deployment name.
func (r *records) editDeployment(name string, fn func(*deploymentFile)) error {
	return r.edit(func() []string {
		fn(r.dep(name))
		return []string{name}
	})
}

// editNetwork changes the bridge record.
func (r *records) editNetwork(fn func(*networkFile)) error {
	return r.edit(func() []string {
		fn(r.net)
		return []string{""}
	})
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
	return r.edit(func() []string {
		delete(r.net.Bridges, name)
		keys := []string{""}
		for d, f := range r.deps {
			if i := sort.SearchStrings(f.Bridges, name); i < len(f.Bridges) && f.Bridges[i] == name {
				f.Bridges = append(f.Bridges[:i], f.Bridges[i+1:]...)
				keys = append(keys, d)
			}
		}
		return keys
	})
}

// names lists the deployments with a record, sorted.
func (r *records) names() ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.load(); err != nil {
		return nil, err
	}
	names := []string{}
	for d, f := range r.deps {
		if len(f.Guests) > 0 || len(f.Bridges) > 0 {
			names = append(names, d)
		}
	}
	sort.Strings(names)
	return names, nil
}

// deployed is a copy of the record of deployment name as the API shows it.
func (r *records) deployed(name string) (*Deployed, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.load(); err != nil {
		return nil, err
	}
	d := &Deployed{Deployment: name, Guests: map[string]DeployedGuest{}, Bridges: map[string]DeployedBridge{}}
	f := r.deps[name]
	if f == nil {
		return d, nil
	}
	for g, dg := range f.Guests {
		d.Guests[g] = dg
	}
	for _, b := range f.Bridges {
		if nb, ok := r.net.Bridges[b]; ok {
			d.Bridges[b] = nb
		}
	}
	return d, nil
}

// sharedBridges are the bridges that deployments other than name use.
func (r *records) sharedBridges(name string) (map[string]bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.load(); err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for d, f := range r.deps {
		if d == name {
			continue
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
