// Package store defines where deployments and their action logs index live.
// Providers (store/file, store/sqlite) implement Store; storetest holds the
// contract suite every provider passes.
package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/testbedos/testbedos/internal/api"
)

// Errors callers branch on. Providers wrap them with %w.
var (
	ErrNotFound    = api.Categorized(api.ErrNotFound, "not found")
	ErrExists      = api.Categorized(api.ErrConflict, "already exists")
	ErrInvalidName = api.Categorized(api.ErrBadRequest, "invalid name")
)

// Store keeps deployments and the index of their action logs. Every method is
// safe for concurrent use; every write is durable when it returns.
type Store interface {
	// Deployments lists every deployment, sorted by name.
	Deployments(ctx context.Context) ([]api.Deployment, error)
	// Deployment returns one deployment or ErrNotFound.
	Deployment(ctx context.Context, name string) (api.Deployment, error)
	// CreateDeployment adds d, or fails with ErrExists.
	CreateDeployment(ctx context.Context, d api.Deployment) error
	// UpdateDeployment reads the deployment, lets fn change it and writes
	// it back, atomically with respect to every other call. An error from
	// fn aborts the update and is returned as is.
	UpdateDeployment(ctx context.Context, name string, fn func(*api.Deployment) error) (api.Deployment, error)
	// DeleteDeployment removes the deployment and its logs index. When check
	// is not nil it sees the record first, under the same lock, and its error
	// cancels the delete.
	DeleteDeployment(ctx context.Context, name string, check func(api.Deployment) error) error

	// LogIndex returns the logs index of one deployment (empty when it has
	// no actions yet, ErrNotFound when the deployment does not exist).
	LogIndex(ctx context.Context, deployment string) (api.LogIndex, error)
	// LogEntry finds one action by uuid, whatever its deployment.
	LogEntry(ctx context.Context, uuid string) (api.LogEntry, error)
	// PutLogEntry adds or replaces the entry uuid in the index of
	// e.Deployment, which must exist.
	PutLogEntry(ctx context.Context, uuid string, e api.LogEntry) error
	// DeleteLogEntries removes entries from a deployment's index.
	DeleteLogEntries(ctx context.Context, deployment string, uuids []string) error

	// Deployed returns the daemon's record of what it has deployed for the
	// deployment name (the engine's JSON, opaque here), or ErrNotFound when
	// nothing is recorded. The record outlives a forced delete of its
	// deployment: what it names still exists.
	Deployed(ctx context.Context, name string) ([]byte, error)
	// PutDeployed replaces the record of name, durably.
	PutDeployed(ctx context.Context, name string, record []byte) error
	// DeleteDeployed removes the record of name; a missing one is no error.
	DeleteDeployed(ctx context.Context, name string) error
	// DeployedNames lists the names that have a record, sorted.
	DeployedNames(ctx context.Context) ([]string, error)

	Close() error
}

// CheckName validates a deployment name before it touches a file system.
func CheckName(name string) error {
	if !api.ValidName(name) {
		return fmt.Errorf("%w: deployment name %q must match %s", ErrInvalidName, name, api.NamePattern)
	}
	// deployments/<x>-logs.json is the logs index of deployment x, so a
	// deployment called "x-logs" would share that file name.
	if strings.HasSuffix(name, LogsSuffix) {
		return fmt.Errorf("%w: deployment name %q: names ending in %q are reserved for logs indexes", ErrInvalidName, name, LogsSuffix)
	}
	return nil
}

// LogsSuffix ends the name of a deployment's logs index file.
const LogsSuffix = "-logs"
