// Package sqlite is the SQLite store provider (TESTBEDOS_DB=sqlite): every
// deployment and log entry in one database file, written in WAL mode with
// synchronous=FULL so an acknowledged write survives a kill -9 or a power
// cut. It uses modernc.org/sqlite, a pure-Go SQLite: no cgo.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	driver "modernc.org/sqlite" // also registers the "sqlite" database/sql driver
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/atomicfile"
	"github.com/testbedos/testbedos/internal/store"
)

// busyTimeout is how long a statement waits for a lock another process
// holds (a second server by mistake, the sqlite3 shell) before failing.
const busyTimeout = 10 * time.Second

// timeLayout stores execution times in UTC with a fixed width, so the text
// sorts in time order.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

// Store is the SQLite provider. Writes go through a pool of one connection:
// they queue in Go instead of spinning on SQLite's busy handler, and every
// write transaction is BEGIN IMMEDIATE, so a read-modify-write holds the
// write lock from its read on. Reads use their own pool and, in WAL mode,
// never wait for a writer.
type Store struct {
	path  string
	write *sql.DB
	read  *sql.DB
}

var _ store.Store = (*Store)(nil)

// Open opens the database at path, creating it and its folder when missing,
// and brings its schema up to date.
func Open(path string) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open sqlite store: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return nil, fmt.Errorf("open sqlite store: %w", err)
	}
	// SQLite says only "unable to open database file"; the OS says why
	// (read-only file system, permission denied).
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open sqlite store: %w", err)
	}
	f.Close()
	// SQLite syncs the folder for the WAL it creates, not for the database
	// file: a new one must not vanish in a power cut.
	if err := atomicfile.SyncDir(filepath.Dir(abs)); err != nil {
		return nil, fmt.Errorf("open sqlite store: %w", err)
	}
	ms := fmt.Sprint(busyTimeout.Milliseconds())
	write, err := sql.Open("sqlite", dsn(abs, url.Values{
		"_busy_timeout": {ms},
		"_foreign_keys": {"1"},
		"_journal_mode": {"WAL"},
		"_synchronous":  {"FULL"},
		"_txlock":       {"immediate"},
	}))
	if err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", abs, err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)

	ctx := context.Background()
	if err := checkPragmas(ctx, write); err != nil {
		write.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", abs, err)
	}
	if err := applyMigrations(ctx, write); err != nil {
		write.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", abs, err)
	}

	// query_only makes a stray write on a read connection fail loudly
	// instead of bypassing the write queue.
	read, err := sql.Open("sqlite", dsn(abs, url.Values{
		"_busy_timeout": {ms},
		"_foreign_keys": {"1"},
		"_query_only":   {"1"},
	}))
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", abs, err)
	}
	read.SetMaxOpenConns(max(4, runtime.GOMAXPROCS(0)))
	if err := read.PingContext(ctx); err != nil {
		write.Close()
		read.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", abs, err)
	}
	return &Store{path: abs, write: write, read: read}, nil
}

// dsn is a file: URI for the driver. The path is escaped, so a '?' or '#'
// in the data folder cannot be read as parameters.
func dsn(path string, params url.Values) string {
	u := url.URL{Scheme: "file", Path: path, RawQuery: params.Encode()}
	return u.String()
}

// checkPragmas verifies the durability settings took: SQLite ignores a
// journal mode the file system cannot do instead of failing.
func checkPragmas(ctx context.Context, db *sql.DB) error {
	var mode string
	if err := db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return err
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("journal mode is %q, want wal (does the file system support shared memory?)", mode)
	}
	var sync int
	if err := db.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&sync); err != nil {
		return err
	}
	if sync != 2 {
		return fmt.Errorf("synchronous is %d, want 2 (FULL)", sync)
	}
	return nil
}

// Path is the database file.
func (s *Store) Path() string { return s.path }

// Close implements store.Store. The last connection to close checkpoints
// the WAL into the database file.
func (s *Store) Close() error {
	return errors.Join(s.read.Close(), s.write.Close())
}

// Deployments implements store.Store.
func (s *Store) Deployments(ctx context.Context) ([]api.Deployment, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT name, record FROM deployments ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list deployments: %w", err)
	}
	defer rows.Close()
	var out []api.Deployment
	for rows.Next() {
		var name, record string
		if err := rows.Scan(&name, &record); err != nil {
			return nil, fmt.Errorf("sqlite: list deployments: %w", err)
		}
		d, err := decodeDeployment(name, record)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list deployments: %w", err)
	}
	return out, nil
}

// Deployment implements store.Store.
func (s *Store) Deployment(ctx context.Context, name string) (api.Deployment, error) {
	if err := store.CheckName(name); err != nil {
		return api.Deployment{}, err
	}
	return readDeployment(ctx, s.read, name)
}

// querier is what reads need: the read pool or a write transaction.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func readDeployment(ctx context.Context, q querier, name string) (api.Deployment, error) {
	var record string
	err := q.QueryRowContext(ctx, `SELECT record FROM deployments WHERE name = ?`, name).Scan(&record)
	if errors.Is(err, sql.ErrNoRows) {
		return api.Deployment{}, fmt.Errorf("deployment %q: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return api.Deployment{}, fmt.Errorf("sqlite: read deployment %q: %w", name, err)
	}
	return decodeDeployment(name, record)
}

func decodeDeployment(name, record string) (api.Deployment, error) {
	var d api.Deployment
	if err := json.Unmarshal([]byte(record), &d); err != nil {
		return d, fmt.Errorf("sqlite: read deployment %q: %w", name, err)
	}
	d.Name = name // the key wins over the copy in the record
	return d, nil
}

// CreateDeployment implements store.Store.
func (s *Store) CreateDeployment(ctx context.Context, d api.Deployment) error {
	if err := store.CheckName(d.Name); err != nil {
		return err
	}
	record, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("create deployment %q: %w", d.Name, err)
	}
	return s.inTx(ctx, "create deployment "+d.Name, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO deployments (name, record) VALUES (?, ?)
			ON CONFLICT (name) DO NOTHING`, d.Name, string(record))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return keep(fmt.Errorf("deployment %q: %w", d.Name, store.ErrExists))
		}
		return nil
	})
}

// UpdateDeployment implements store.Store. The read, fn and the write run in
// one IMMEDIATE transaction: no other write can come in between.
func (s *Store) UpdateDeployment(ctx context.Context, name string, fn func(*api.Deployment) error) (api.Deployment, error) {
	if err := store.CheckName(name); err != nil {
		return api.Deployment{}, err
	}
	var out api.Deployment
	err := s.inTx(ctx, "update deployment "+name, func(tx *sql.Tx) error {
		d, err := readDeployment(ctx, tx, name)
		if err != nil {
			return keep(err)
		}
		if err := fn(&d); err != nil {
			return keep(err)
		}
		d.Name = name // the name is the key; fn cannot rename
		record, err := json.Marshal(d)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE deployments SET record = ? WHERE name = ?`, string(record), name); err != nil {
			return err
		}
		out = d
		return nil
	})
	return out, err
}

// DeleteDeployment implements store.Store. check runs inside the delete's
// transaction; the log entries go with the deployment.
func (s *Store) DeleteDeployment(ctx context.Context, name string, check func(api.Deployment) error) error {
	if err := store.CheckName(name); err != nil {
		return err
	}
	return s.inTx(ctx, "delete deployment "+name, func(tx *sql.Tx) error {
		d, err := readDeployment(ctx, tx, name)
		if err != nil {
			return keep(err)
		}
		if check != nil {
			if err := check(d); err != nil {
				return keep(err)
			}
		}
		// ON DELETE CASCADE would do it too; saying it keeps the delete
		// right even on a connection without foreign_keys.
		if _, err := tx.ExecContext(ctx, `DELETE FROM log_entries WHERE deployment = ?`, name); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM deployments WHERE name = ?`, name)
		return err
	})
}

// Deployed implements store.Store.
func (s *Store) Deployed(ctx context.Context, name string) ([]byte, error) {
	if err := store.CheckName(name); err != nil {
		return nil, err
	}
	var record string
	err := s.read.QueryRowContext(ctx, `SELECT record FROM deployed WHERE name = ?`, name).Scan(&record)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("deployed record of %q: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: read deployed record of %q: %w", name, err)
	}
	return []byte(record), nil
}

// PutDeployed implements store.Store.
func (s *Store) PutDeployed(ctx context.Context, name string, record []byte) error {
	if err := store.CheckName(name); err != nil {
		return err
	}
	if !json.Valid(record) {
		return fmt.Errorf("deployed record of %q is not JSON", name)
	}
	return s.inTx(ctx, "write deployed record of "+name, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO deployed (name, record) VALUES (?, ?)
			ON CONFLICT (name) DO UPDATE SET record = excluded.record`, name, string(record))
		return err
	})
}

// DeleteDeployed implements store.Store.
func (s *Store) DeleteDeployed(ctx context.Context, name string) error {
	if err := store.CheckName(name); err != nil {
		return err
	}
	return s.inTx(ctx, "delete deployed record of "+name, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM deployed WHERE name = ?`, name)
		return err
	})
}

// DeployedNames implements store.Store.
func (s *Store) DeployedNames(ctx context.Context) ([]string, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT name FROM deployed ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list deployed records: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("sqlite: list deployed records: %w", err)
		}
		out = append(out, name)
	}
	return out, rows.Err()
}

// LogIndex implements store.Store.
func (s *Store) LogIndex(ctx context.Context, deployment string) (api.LogIndex, error) {
	if err := store.CheckName(deployment); err != nil {
		return nil, err
	}
	// One statement, so the deployment and its entries come from one
	// snapshot: no row means no deployment, a NULL uuid means no entries.
	rows, err := s.read.QueryContext(ctx, `SELECT l.uuid, l.entry FROM deployments d
		LEFT JOIN log_entries l ON l.deployment = d.name WHERE d.name = ?`, deployment)
	if err != nil {
		return nil, fmt.Errorf("sqlite: logs of %q: %w", deployment, err)
	}
	defer rows.Close()
	var idx api.LogIndex
	for rows.Next() {
		var uuid, entry sql.NullString
		if err := rows.Scan(&uuid, &entry); err != nil {
			return nil, fmt.Errorf("sqlite: logs of %q: %w", deployment, err)
		}
		if idx == nil {
			idx = api.LogIndex{}
		}
		if !uuid.Valid {
			continue
		}
		e, err := decodeEntry(uuid.String, deployment, entry.String)
		if err != nil {
			return nil, err
		}
		idx[uuid.String] = e
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: logs of %q: %w", deployment, err)
	}
	if idx == nil {
		return nil, fmt.Errorf("deployment %q: %w", deployment, store.ErrNotFound)
	}
	return idx, nil
}

func decodeEntry(uuid, deployment, entry string) (api.LogEntry, error) {
	var e api.LogEntry
	if err := json.Unmarshal([]byte(entry), &e); err != nil {
		return e, fmt.Errorf("sqlite: read action %q: %w", uuid, err)
	}
	e.Deployment = deployment
	return e, nil
}

// LogEntry implements store.Store.
func (s *Store) LogEntry(ctx context.Context, uuid string) (api.LogEntry, error) {
	var deployment, entry string
	err := s.read.QueryRowContext(ctx, `SELECT deployment, entry FROM log_entries WHERE uuid = ?`, uuid).Scan(&deployment, &entry)
	if errors.Is(err, sql.ErrNoRows) {
		return api.LogEntry{}, fmt.Errorf("action %q: %w", uuid, store.ErrNotFound)
	}
	if err != nil {
		return api.LogEntry{}, fmt.Errorf("sqlite: read action %q: %w", uuid, err)
	}
	return decodeEntry(uuid, deployment, entry)
}

// PutLogEntry implements store.Store.
func (s *Store) PutLogEntry(ctx context.Context, uuid string, e api.LogEntry) error {
	if err := store.CheckName(e.Deployment); err != nil {
		return err
	}
	entry, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("put action %q: %w", uuid, err)
	}
	return s.inTx(ctx, "put action "+uuid, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM deployments WHERE name = ?`, e.Deployment).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return keep(fmt.Errorf("deployment %q: %w", e.Deployment, store.ErrNotFound))
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO log_entries (uuid, deployment, execution_time, entry)
			VALUES (?, ?, ?, ?)
			ON CONFLICT (uuid) DO UPDATE SET deployment = excluded.deployment,
				execution_time = excluded.execution_time, entry = excluded.entry`,
			uuid, e.Deployment, e.ExecutionTime.UTC().Format(timeLayout), string(entry))
		return err
	})
}

// DeleteLogEntries implements store.Store. Entries of other deployments and
// unknown uuids are left alone; a missing deployment has nothing to delete.
func (s *Store) DeleteLogEntries(ctx context.Context, deployment string, uuids []string) error {
	if err := store.CheckName(deployment); err != nil {
		return err
	}
	if len(uuids) == 0 {
		return nil
	}
	return s.inTx(ctx, "delete actions of "+deployment, func(tx *sql.Tx) error {
		for _, u := range uuids {
			if _, err := tx.ExecContext(ctx, `DELETE FROM log_entries WHERE deployment = ? AND uuid = ?`, deployment, u); err != nil {
				return err
			}
		}
		return nil
	})
}

// kept marks an error inTx returns as it is: the store's own errors and the
// callers' callbacks' errors, which callers compare.
type kept struct{ err error }

func (k kept) Error() string { return k.err.Error() }

func keep(err error) error { return kept{err} }

// inTx runs fn in a write transaction and commits it. Errors fn marked with
// keep come back as they are; the others (SQLite's) are wrapped with what
// was being done.
func (s *Store) inTx(ctx context.Context, what string, fn func(*sql.Tx) error) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: %s: %w", what, err)
	}
	// Also runs when fn panics, so the one write connection is not lost.
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		if k, ok := err.(kept); ok {
			return k.err
		}
		return fmt.Errorf("sqlite: %s: %w", what, withCause(err))
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: %s: commit: %w", what, withCause(err))
	}
	return nil
}

// withCause adds the system error a SQLite error stands for, so a full disk
// reads and compares (errors.Is(err, syscall.ENOSPC)) as it does with the
// file provider.
func withCause(err error) error {
	var se *driver.Error
	if errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_FULL {
		return fmt.Errorf("%w: %w", err, syscall.ENOSPC)
	}
	return err
}
