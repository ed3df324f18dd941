package engine

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/guesttest"
	"github.com/testbedos/testbedos/internal/topology"
)

const managedTopo = `machines:
  - name: a
    network: [{switch: sw0, ip: 10.0.0.1}]
  - name: b
    network: [{switch: sw0, ip: 10.0.0.2}]
network:
  switches:
    sw0: {subnet: 10.0.0.0/24}
testbed_options:
  management: {subnet: 172.31.9.0/24}
`

// The management network gives each guest mgmt0 and the host file a
// block of names that down removes; without it nothing is added.
func TestManagementNames(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "kvm-compose.yaml"), []byte(managedTopo), 0o644)
	hosts := filepath.Join(t.TempDir(), "hosts")
	os.WriteFile(hosts, []byte("127.0.0.1 localhost\n"), 0o644)
	w := newRoutedWorld()
	e := New(Options{Drivers: guest.NewRegistry(w.world), Network: w, HostsFile: hosts})
	d := api.Deployment{Name: "lab", ProjectLocation: dir, State: api.StateIsUp}
	ctx := context.Background()
	if err := e.GenerateArtefacts(ctx, d, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	st, err := e.readState(d)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range st.Guests {
		last := g.Interfaces[len(g.Interfaces)-1]
		if last.Name != "mgmt0" || last.Switch != topology.ManagementSwitch {
			t.Errorf("guest %s: last interface %+v", g.Name, last)
		}
	}
	if err := e.Up(ctx, d, api.UpOptions{}, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(hosts)
	want := "127.0.0.1 localhost\n# BEGIN testbedos lab\n172.31.9.2 a.lab.tbos\n172.31.9.3 b.lab.tbos\n# END testbedos lab\n"
	if string(data) != want {
		t.Errorf("hosts file after up:\n%s\nwant:\n%s", data, want)
	}
	if m, err := e.Missing(ctx, d); err != nil || len(m) != 0 {
		t.Errorf("missing: %v %v", m, err)
	}
	os.WriteFile(hosts, []byte("127.0.0.1 localhost\n"), 0o644)
	if m, _ := e.Missing(ctx, d); len(m) != 1 || !strings.Contains(m[0], "names") {
		t.Errorf("missing after the block was removed by hand: %v", m)
	}
	if err := e.Up(ctx, d, api.UpOptions{}, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(hosts); string(data) != want {
		t.Errorf("hosts file after up again:\n%s", data)
	}
	if err := e.Down(ctx, d, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(hosts); string(data) != "127.0.0.1 localhost\n" {
		t.Errorf("hosts file after down:\n%s", data)
	}
}

func TestManagementValidation(t *testing.T) {
	for _, tc := range []struct{ opts, want string }{
		{"management: {subnet: nope}", `testbed_options.management.subnet "nope" is not an IPv4 subnet`},
		{"management: {subnet: 10.0.0.0/16}", "overlaps switch sw0"},
		{"management: {subnet: 172.31.0.0/31}", "has room for 0 guests"},
		{"management: {}", "testbed_options.management.subnet is required"},
	} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "kvm-compose.yaml"), []byte(strings.Replace(managedTopo, "management: {subnet: 172.31.9.0/24}", tc.opts, 1)), 0o644)
		_, err := topology.Generate(topology.Options{Deployment: "lab", ProjectDir: dir})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "kvm-compose.yaml:10:") {
			t.Errorf("%s: got %v, want kvm-compose.yaml:10: …%s", tc.opts, err, tc.want)
		}
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "kvm-compose.yaml"), []byte(strings.Split(managedTopo, "testbed_options")[0]), 0o644)
	st, err := topology.Generate(topology.Options{Deployment: "lab", ProjectDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Switches) != 1 || len(st.Guests[0].Interfaces) != 1 || len(topology.Names(st)) != 0 {
		t.Errorf("without management: %+v", st.Switches)
	}
}
