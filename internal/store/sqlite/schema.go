package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ErrSchemaTooNew means the database was written by a newer server: this one
// does not know its tables and refuses to touch them.
var ErrSchemaTooNew = errors.New("database schema is newer than this server")

// migrations are applied in order; migrations[i] brings the schema to
// version i+1. Append new ones, never edit an applied one.
var migrations = []string{
	// 1: deployments and their logs index. A deployment is its api.Deployment
	// JSON keyed by name; a log entry is its api.LogEntry JSON with the
	// columns queries need beside it. The JSON keeps the wire shapes (state,
	// command) exact without a column per option.
	`CREATE TABLE deployments (
		name   TEXT NOT NULL PRIMARY KEY,
		record TEXT NOT NULL CHECK (json_valid(record))
	) STRICT;
	CREATE TABLE log_entries (
		uuid           TEXT NOT NULL PRIMARY KEY,
		deployment     TEXT NOT NULL REFERENCES deployments(name) ON DELETE CASCADE,
		execution_time TEXT NOT NULL, -- UTC, fixed width: sorts as time
		entry          TEXT NOT NULL CHECK (json_valid(entry))
	) STRICT;
	CREATE INDEX log_entries_by_deployment ON log_entries(deployment, execution_time);`,
	// 2: the daemon's record of what it deployed, the engine's JSON by
	// deployment name. No foreign key: the record outlives a forced delete
	// of its deployment, since what it names still exists.
	`CREATE TABLE deployed (
		name   TEXT NOT NULL PRIMARY KEY,
		record TEXT NOT NULL CHECK (json_valid(record))
	) STRICT;`,
}

// applyMigrations brings the schema of db up to len(migrations) in one
// transaction: a crash half way leaves the previous version intact.
func applyMigrations(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
		version    INTEGER NOT NULL PRIMARY KEY,
		applied_at TEXT NOT NULL
	) STRICT`); err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&current); err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	if current > len(migrations) {
		return fmt.Errorf("%w: version %d, this server knows up to %d", ErrSchemaTooNew, current, len(migrations))
	}
	if current == len(migrations) {
		return nil // nothing to write: leave the transaction unused
	}
	now := time.Now().UTC().Format(time.RFC3339)
	for v := current + 1; v <= len(migrations); v++ {
		if _, err := tx.ExecContext(ctx, migrations[v-1]); err != nil {
			return fmt.Errorf("schema: migrate to version %d: %w", v, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version, applied_at) VALUES (?, ?)`, v, now); err != nil {
			return fmt.Errorf("schema: migrate to version %d: %w", v, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	return nil
}
