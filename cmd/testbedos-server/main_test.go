package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/config"
)

// TestModeIsNotWrittenWhileAnotherServerHoldsTheLock starts main mode on a
// data folder another server holds: the start fails, and that server's
// config/mode.json and logs/server.log are left as they were.
func TestModeIsNotWrittenWhileAnotherServerHoldsTheLock(t *testing.T) {
	cfg := config.Server{
		DataDir: t.TempDir(), Listen: "127.0.0.1:0", DB: "file",
		HeartbeatInterval: time.Second, HeartbeatMisses: 3, LogRetention: time.Hour, LogMaxCount: 10,
	}
	other, err := cfg.LockDataDir()
	if err != nil {
		t.Fatal(err)
	}
	defer other.Release()
	theirs := config.SavedMode{Mode: config.ModeClient, MainURL: "https://main.example:8443"}
	if err := other.SaveMode(theirs); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(cfg.ModePath())
	if err != nil {
		t.Fatal(err)
	}

	err = run(context.Background(), cfg, config.ModeMain)
	if !errors.Is(err, config.ErrDataDirInUse) {
		t.Fatalf("start on a held data folder: %v, want ErrDataDirInUse", err)
	}
	after, err := os.ReadFile(filepath.Join(cfg.DataDir, "config", "mode.json"))
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != string(before) {
		t.Fatalf("mode.json rewritten by the refused server:\n%s\nwas:\n%s", after, before)
	}
	if got, err := cfg.LoadMode(); err != nil || got != theirs {
		t.Fatalf("mode after the refused start: %+v %v, want %+v", got, err, theirs)
	}
	if _, err := os.Stat(cfg.ServerLog()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the refused server wrote to the running one's %s (%v)", cfg.ServerLog(), err)
	}
}
