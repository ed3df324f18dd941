package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/net/nettest"
)

// kill9 kills the server process with SIGKILL and reaps it.
func (s *server) kill9(t *testing.T) {
	t.Helper()
	s.cmd.Process.Kill()
	s.cmd.Wait()
}

// assertRecordsIntact parses every record file of the data folder and reads
// every deployment and index through the API.
func assertRecordsIntact(t *testing.T, s *server) map[string]api.Deployment {
	t.Helper()
	dir := filepath.Join(s.dataDir, "deployments")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(e.Name(), ".") {
			t.Fatalf("temp file %s of an interrupted write survived the restart", e.Name())
		}
		if !json.Valid(data) || len(data) == 0 {
			t.Fatalf("record %s is torn: %q", e.Name(), data)
		}
	}
	ctx := context.Background()
	list, err := s.c.Deployments(ctx)
	if err != nil {
		t.Fatalf("list after restart: %v", err)
	}
	for name, d := range list {
		if d.State.Is(api.StateRunning) {
			t.Errorf("deployment %s still running after restart", name)
		}
		idx, err := s.c.Logs(ctx, name)
		if err != nil {
			t.Fatalf("logs of %s: %v", name, err)
		}
		for id, e := range idx {
			if !e.Finished() {
				t.Errorf("action %s of %s still unfinished after restart", id, name)
			}
		}
	}
	return list
}

// TestKill9DuringWrites kills the server again and again while clients
// create, change, act on and delete deployments; every restart must find
// every record whole and nothing running.
func TestKill9DuringWrites(t *testing.T) {
	s := startServer(t)
	dir := project(t, "machines:\n  - name: a\n    network: [{switch: sw0, ip: 10.9.0.2}]\nnetwork:\n  switches:\n    sw0: {subnet: 10.9.0.0/24}\n", nil)
	rounds := 8
	if testing.Short() {
		rounds = 3
	}
	for round := range rounds {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ctx.Err() == nil; i++ {
					name := fmt.Sprintf("k%d-%d", w, i%5)
					s.c.CreateDeployment(ctx, name, dir)
					s.c.UpdateDeployment(ctx, name, dir)
					s.c.Action(ctx, name, cmd(api.CmdGenerateArtefacts))
					s.c.Action(ctx, name, cmd(api.CmdClearArtefacts))
					if i%3 == 0 {
						s.c.DeleteDeployment(ctx, name, true)
					}
				}
			}()
		}
		time.Sleep(time.Duration(50+rand.IntN(250)) * time.Millisecond)
		s.kill9(t)
		cancel()
		wg.Wait()
		s.start(t)
		list := assertRecordsIntact(t, s)
		t.Logf("round %d: %d deployments intact after SIGKILL", round, len(list))
	}
}

// TestKill9DuringUp kills the server in the middle of an up: after the
// restart the action is failed with the interrupted code, the deployment is
// failed, and down removes what the killed up had made.
func TestKill9DuringUp(t *testing.T) {
	nettest.RequireRoot(t)
	s := startServer(t)
	lab := generated(t, s, "kill", threeGuests, map[string]string{"web-setup.sh": "#!/bin/sh\necho sleeping\nsleep 60\n"})
	name, st := lab.name, lab.st
	ctx := context.Background()
	id, err := s.c.Action(ctx, name, cmd(api.CmdUp))
	if err != nil {
		t.Fatal(err)
	}
	followCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	s.c.Follow(followCtx, id, func(l string) {
		if strings.Contains(l, "[web] sleeping") {
			s.kill9(t)
		}
	})
	s.start(t)
	assertRecordsIntact(t, s)
	e, err := s.c.LogEntry(ctx, id)
	if err != nil || e.ErrorCode == nil || *e.ErrorCode != api.ErrorCodeInterrupted || !strings.Contains(e.Error, "interrupted") {
		t.Fatalf("interrupted action = %+v, %v", e, err)
	}
	d, _ := s.c.Deployment(ctx, name)
	if !d.State.Is(api.StateFailed) || d.State.Failed.Name != api.CmdUp {
		t.Fatalf("state after restart = %v", d.State)
	}
	// A late follower of the interrupted action still gets its log and outcome.
	var lines []string
	o, err := s.c.Follow(ctx, id, func(l string) { lines = append(lines, l) })
	if err != nil || o.ErrorCode != api.ErrorCodeInterrupted || !strings.Contains(strings.Join(lines, "\n"), "[web] sleeping") {
		t.Fatalf("follow after restart: %+v, %v, %d lines", o, err, len(lines))
	}
	mustSucceed(t, s, name, cmd(api.CmdDown))
	assertNothingLeft(t, st)
}

// TestOneServerPerDataFolder: a second server, or a migration, on a data
// folder in use is refused; after a SIGKILL the lock is free again.
func TestOneServerPerDataFolder(t *testing.T) {
	s := startServer(t)
	second := exec.Command(bins.server, "main", "--socket", filepath.Join(t.TempDir(), "other.sock"))
	second.Env = s.env
	out, err := second.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "another testbedos-server") {
		t.Fatalf("second server on the same data folder: %v\n%s", err, out)
	}
	migrate := exec.Command(bins.server, "migrate", "--from", "file", "--to", "sqlite")
	migrate.Env = s.env
	out, err = migrate.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "stop the server first") {
		t.Fatalf("migrate while serving: %v\n%s", err, out)
	}
	s.kill9(t)
	s.start(t)
}
