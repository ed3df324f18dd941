package engine

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/guesttest"
	"github.com/testbedos/testbedos/internal/topology"
)

// aclWorld is the fake host with ACL tables.
type aclWorld struct {
	*world
	mu     sync.Mutex
	tables map[string]ACLTableSpec
}

func (w *aclWorld) EnsureACLTable(ctx context.Context, spec ACLTableSpec) (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, had := w.tables[spec.Name]
	w.tables[spec.Name] = spec
	return !had, nil
}

func (w *aclWorld) DeleteACLTable(ctx context.Context, name string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.tables, name)
	return nil
}

func (w *aclWorld) HasACLTable(ctx context.Context, name string) (bool, error) {
	_, ok := w.table(name)
	return ok, nil
}

func (w *aclWorld) ACLReplies(context.Context) string { return "allow-related is a fake" }

var _ ACLs = (*aclWorld)(nil)

func (w *aclWorld) table(name string) (ACLTableSpec, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s, ok := w.tables[name]
	return s, ok
}

const aclTopo = topo + `  acl:
    switches:
      sw1:
        - {direction: to-lport, priority: 1, match: 'inport == "c" && icmp4', action: drop}
`

func aclSetup(t *testing.T) (*Engine, *aclWorld, api.Deployment) {
	t.Helper()
	w := &aclWorld{world: newWorld(), tables: map[string]ACLTableSpec{}}
	e, d := generatedEngine(t, "lab", aclTopo, shellScript, Options{Drivers: guest.NewRegistry(w.world), Network: w, Concurrency: 2})
	return e, w, d
}

func TestACLTableUpDown(t *testing.T) {
	e, w, d := aclSetup(t)
	ctx := context.Background()
	log := &guesttest.Log{}
	if err := e.Up(ctx, d, api.UpOptions{}, log); err != nil {
		t.Fatal(err)
	}
	name := topology.ACLTableName("lab")
	spec, ok := w.table(name)
	if !ok || len(spec.Switches) != 1 || spec.Switches[0].Switch != "sw1" || len(spec.Switches[0].Ports) != 2 {
		t.Fatalf("table after up: %+v (present %v)", spec, ok)
	}
	if !strings.Contains(log.Text(), "] acl: 1 rule, 1 table") {
		t.Errorf("no acl stage line:\n%s", log.Text())
	}
	rec, _ := e.Deployed(ctx, "lab")
	if _, ok := rec.Hosts[rec.hostNames()[0]].ACLTables[name]; !ok {
		t.Fatalf("not recorded: %+v", rec)
	}
	if err := e.Down(ctx, d, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	if _, ok := w.table(name); ok {
		t.Fatal("down left the table")
	}
	w.empty(t)
	if rec, _ := e.Deployed(ctx, "lab"); !rec.empty() {
		t.Fatalf("record after down: %+v", rec)
	}
}

func TestFailedUpRevertsACLTable(t *testing.T) {
	e, w, d := aclSetup(t)
	w.failOn = "c"
	if err := e.Up(context.Background(), d, api.UpOptions{}, &guesttest.Log{}); err == nil {
		t.Fatal("up with a failing guest succeeded")
	}
	if _, ok := w.table(topology.ACLTableName("lab")); ok {
		t.Fatal("a failed up left its ACL table")
	}
	w.empty(t)
	if rec, _ := e.Deployed(context.Background(), "lab"); !rec.empty() {
		t.Fatalf("record after the revert: %+v", rec)
	}
}

func TestACLsNeedAHostThatHasThem(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "kvm-compose.yaml"), []byte(aclTopo), 0o644)
	os.WriteFile(filepath.Join(dir, "s.sh"), []byte("#!/bin/sh\n"), 0o755)
	w := newWorld()
	e := New(Options{Drivers: guest.NewRegistry(w), Network: w})
	d := api.Deployment{Name: "lab", ProjectLocation: dir}
	ctx := context.Background()
	if err := e.GenerateArtefacts(ctx, d, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	err := e.Up(ctx, d, api.UpOptions{}, &guesttest.Log{})
	if err == nil || !strings.Contains(err.Error(), ErrNoACLs.Error()) {
		t.Fatalf("up = %v, want %v", err, ErrNoACLs)
	}
	w.empty(t)
}
