package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// ErrDataDirInUse: another process holds the data folder.
var ErrDataDirInUse = errors.New("data folder in use")

// DataLock is the exclusive hold of one process on a data folder. What only
// the holder may write (config/mode.json) is written through it.
type DataLock struct {
	cfg Server
	f   *os.File
}

// LockDataDir takes an exclusive advisory lock on <data>/.lock, so that two
// servers, or a server and a migration, never share a data folder. The
// kernel drops the lock when the process dies, so a crash leaves no stale
// lock behind. Release it when done.
func (c Server) LockDataDir() (*DataLock, error) {
	if err := os.MkdirAll(c.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data folder: %w", err)
	}
	path := filepath.Join(c.DataDir, ".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: another testbedos-server (or a migration) uses %s", ErrDataDirInUse, c.DataDir)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return &DataLock{cfg: c, f: f}, nil
}

// Release lets another process take the data folder.
func (l *DataLock) Release() { l.f.Close() }
