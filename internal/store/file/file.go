// Package file is the default store provider: one JSON file per deployment
// and one logs index per deployment under <data>/deployments, and the record
// of what is deployed under <data>/deployed, each replaced crash-safely on
// every write.
package file

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/atomicfile"
	"github.com/testbedos/testbedos/internal/store"
)

// Store is the file provider. One read/write lock guards the folder: the
// files are small and writes are dominated by fsync, so finer locks would buy
// nothing but risk.
type Store struct {
	dir      string
	deployed string

	mu sync.RWMutex
	// owner maps action uuid -> deployment, so /api/logs/{uuid} needs no scan.
	owner map[string]string
}

var _ store.Store = (*Store)(nil)

// Open uses dir for deployments and their logs indexes and deployedDir for
// the records of what is deployed (both created if missing), and indexes the
// existing logs.
func Open(dir, deployedDir string) (*Store, error) {
	for _, d := range []string{dir, deployedDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("open file store: %w", err)
		}
		if err := atomicfile.RemoveTemps(d); err != nil {
			return nil, fmt.Errorf("open file store: %w", err)
		}
	}
	s := &Store{dir: dir, deployed: deployedDir, owner: make(map[string]string)}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("open file store: %w", err)
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), store.LogsSuffix+".json")
		if !ok || store.CheckName(name) != nil {
			continue
		}
		idx, err := s.readIndex(name)
		if err != nil {
			return nil, fmt.Errorf("open file store: %w", err)
		}
		for uuid := range idx {
			s.owner[uuid] = name
		}
	}
	return s, nil
}

// Close implements store.Store; the file provider holds nothing open.
func (s *Store) Close() error { return nil }

func (s *Store) deploymentPath(name string) string { return filepath.Join(s.dir, name+".json") }
func (s *Store) indexPath(name string) string {
	return filepath.Join(s.dir, name+store.LogsSuffix+".json")
}

// Deployments implements store.Store.
func (s *Store) Deployments(ctx context.Context) ([]api.Deployment, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list deployments: %w", err)
	}
	var out []api.Deployment
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || store.CheckName(name) != nil {
			continue // logs indexes, temp files, strangers
		}
		d, err := s.read(name)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b api.Deployment) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Deployment implements store.Store.
func (s *Store) Deployment(ctx context.Context, name string) (api.Deployment, error) {
	if err := store.CheckName(name); err != nil {
		return api.Deployment{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.read(name)
}

func (s *Store) read(name string) (api.Deployment, error) {
	var d api.Deployment
	err := readJSON(s.deploymentPath(name), &d)
	if errors.Is(err, fs.ErrNotExist) {
		return d, fmt.Errorf("deployment %q: %w", name, store.ErrNotFound)
	}
	return d, err
}

// CreateDeployment implements store.Store.
func (s *Store) CreateDeployment(ctx context.Context, d api.Deployment) error {
	if err := store.CheckName(d.Name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := os.Stat(s.deploymentPath(d.Name)); err == nil {
		return fmt.Errorf("deployment %q: %w", d.Name, store.ErrExists)
	}
	return writeJSON(s.deploymentPath(d.Name), d)
}

// UpdateDeployment implements store.Store.
func (s *Store) UpdateDeployment(ctx context.Context, name string, fn func(*api.Deployment) error) (api.Deployment, error) {
	if err := store.CheckName(name); err != nil {
		return api.Deployment{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.read(name)
	if err != nil {
		return d, err
	}
	if err := fn(&d); err != nil {
		return d, err
	}
	d.Name = name // the name is the key; fn cannot rename
	return d, writeJSON(s.deploymentPath(name), d)
}

// DeleteDeployment implements store.Store.
func (s *Store) DeleteDeployment(ctx context.Context, name string, check func(api.Deployment) error) error {
	if err := store.CheckName(name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.read(name)
	if err != nil {
		return err
	}
	if check != nil {
		if err := check(d); err != nil {
			return err
		}
	}
	// The index goes first: a crash in between leaves a deployment without
	// history rather than history without a deployment.
	if err := atomicfile.Remove(s.indexPath(name)); err != nil {
		return fmt.Errorf("delete deployment %q: %w", name, err)
	}
	for uuid, owner := range s.owner {
		if owner == name {
			delete(s.owner, uuid)
		}
	}
	if err := atomicfile.Remove(s.deploymentPath(name)); err != nil {
		return fmt.Errorf("delete deployment %q: %w", name, err)
	}
	return nil
}

// LogIndex implements store.Store.
func (s *Store) LogIndex(ctx context.Context, deployment string) (api.LogIndex, error) {
	if err := store.CheckName(deployment); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if _, err := s.read(deployment); err != nil {
		return nil, err
	}
	return s.readIndex(deployment)
}

func (s *Store) readIndex(deployment string) (api.LogIndex, error) {
	idx := api.LogIndex{}
	err := readJSON(s.indexPath(deployment), &idx)
	if errors.Is(err, fs.ErrNotExist) {
		return api.LogIndex{}, nil
	}
	return idx, err
}

// LogEntry implements store.Store.
func (s *Store) LogEntry(ctx context.Context, uuid string) (api.LogEntry, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	owner, ok := s.owner[uuid]
	if !ok {
		return api.LogEntry{}, fmt.Errorf("action %q: %w", uuid, store.ErrNotFound)
	}
	idx, err := s.readIndex(owner)
	if err != nil {
		return api.LogEntry{}, err
	}
	e, ok := idx[uuid]
	if !ok {
		return api.LogEntry{}, fmt.Errorf("action %q: %w", uuid, store.ErrNotFound)
	}
	return e, nil
}

// PutLogEntry implements store.Store.
func (s *Store) PutLogEntry(ctx context.Context, uuid string, e api.LogEntry) error {
	if err := store.CheckName(e.Deployment); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.read(e.Deployment); err != nil {
		return err
	}
	idx, err := s.readIndex(e.Deployment)
	if err != nil {
		return err
	}
	idx[uuid] = e
	if err := writeJSON(s.indexPath(e.Deployment), idx); err != nil {
		return err
	}
	s.owner[uuid] = e.Deployment
	return nil
}

// DeleteLogEntries implements store.Store.
func (s *Store) DeleteLogEntries(ctx context.Context, deployment string, uuids []string) error {
	if err := store.CheckName(deployment); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.read(deployment); errors.Is(err, store.ErrNotFound) {
		return nil // nothing indexed: no orphan index file either
	}
	idx, err := s.readIndex(deployment)
	if err != nil {
		return err
	}
	for _, u := range uuids {
		delete(idx, u)
	}
	if err := writeJSON(s.indexPath(deployment), idx); err != nil {
		return err
	}
	for _, u := range uuids {
		delete(s.owner, u)
	}
	return nil
}

func (s *Store) deployedPath(name string) string { return filepath.Join(s.deployed, name+".json") }

// Deployed implements store.Store.
func (s *Store) Deployed(ctx context.Context, name string) ([]byte, error) {
	if err := store.CheckName(name); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	data, err := os.ReadFile(s.deployedPath(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("deployed record of %q: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("deployed record of %q: %w", name, err)
	}
	return data, nil
}

// PutDeployed implements store.Store.
func (s *Store) PutDeployed(ctx context.Context, name string, record []byte) error {
	if err := store.CheckName(name); err != nil {
		return err
	}
	if !json.Valid(record) {
		return fmt.Errorf("deployed record of %q is not JSON", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return atomicfile.Write(s.deployedPath(name), record, 0o644)
}

// DeleteDeployed implements store.Store.
func (s *Store) DeleteDeployed(ctx context.Context, name string) error {
	if err := store.CheckName(name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := atomicfile.Remove(s.deployedPath(name)); err != nil {
		return fmt.Errorf("delete deployed record of %q: %w", name, err)
	}
	return nil
}

// DeployedNames implements store.Store.
func (s *Store) DeployedNames(ctx context.Context) ([]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	entries, err := os.ReadDir(s.deployed)
	if err != nil {
		return nil, fmt.Errorf("list deployed records: %w", err)
	}
	var out []string
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".json"); ok && store.CheckName(name) == nil {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out, nil
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, append(data, '\n'), 0o644)
}
