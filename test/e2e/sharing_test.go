package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/net/nettest"
	"github.com/testbedos/testbedos/internal/testenv"
	"github.com/testbedos/testbedos/internal/topology"
	"github.com/testbedos/testbedos/sdk/go/testbedos"
)

const sharingLab = `machines:
  - name: a
    network: [{switch: sw0, ip: 10.0.0.10}]
    netns: {setup_script: scripts/a-setup.sh}
  - name: b
    network: [{switch: sw0, ip: 10.0.0.11}]
network:
  switches:
    sw0: {subnet: 10.0.0.0/24}
`

// TestShareLab takes one netns lab through the graph, the inventory, and
// an export imported under a new name and brought up: dot and
// ansible-inventory accept what the server writes, and the copy pings like
// the original.
func TestShareLab(t *testing.T) {
	nettest.RequireRoot(t)
	s := startServer(t)
	dir := project(t, sharingLab, nil)
	os.MkdirAll(filepath.Join(dir, "scripts"), 0o755)
	os.WriteFile(filepath.Join(dir, "scripts", "a-setup.sh"), []byte("#!/bin/sh\necho a is set up\n"), 0o755)
	// A symlink out of the project: never followed into the bundle.
	os.Symlink("/etc/passwd", filepath.Join(dir, "passwd"))
	name := uniqueName("share")
	copyName := uniqueName("shared")
	for _, n := range []string{name, copyName} {
		t.Cleanup(func() { nettest.RemoveAll(netnsPrefix(n)) })
	}
	run := func(dir string, args ...string) string {
		t.Helper()
		code, out := kvmCompose(t, s, dir, args...)
		if code != 0 {
			t.Fatalf("kvm-compose %v: exit %d\n%s", args, code, out)
		}
		return out
	}
	run(dir, "-p", name, "deployment", "create")
	run(dir, "-p", name, "generate-artefacts")
	st := state(t, s, name)
	t.Cleanup(func() { nettest.RemoveAll(st.Prefix) })
	run(dir, "-p", name, "up")
	run(dir, "-p", name, "netem", "a", "eth0", "--delay", "5ms")
	work := t.TempDir()

	t.Run("graph", func(t *testing.T) {
		dot := run(dir, "-p", name, "graph")
		if svg := run(dir, "-p", name, "graph", "--format", "svg"); !strings.Contains(svg, "<svg") || !strings.Contains(svg, `id="topo-guest-a"`) {
			t.Errorf("graph --format svg is not the GUI's picture:\n%.300s", svg)
		}
		if m := run(dir, "-p", name, "graph", "--format", "mermaid"); !strings.HasPrefix(m, "graph TD") {
			t.Errorf("mermaid:\n%s", m)
		}
		path, err := exec.LookPath("dot")
		if err != nil {
			testenv.Skip(t, "no dot (Debian's graphviz) to check the graph: apt-get install graphviz")
		}
		c := exec.Command(path, "-Tsvg")
		c.Stdin = strings.NewReader(dot)
		out, err := c.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "10.0.0.10") {
			t.Fatalf("dot refused the graph: %v\n%s\n%s", err, out, dot)
		}
	})

	t.Run("inventory", func(t *testing.T) {
		inv := filepath.Join(work, "inventory.yaml")
		os.WriteFile(inv, []byte(run(dir, "-p", name, "inventory")), 0o644)
		if h := run(dir, "-p", name, "inventory", "--format", "hosts"); !strings.Contains(h, "10.0.0.11\tb."+name+".tbos b") {
			t.Errorf("hosts:\n%s", h)
		}
		if c := run(dir, "-p", name, "inventory", "--format", "ssh-config"); !strings.Contains(c, "Host a a."+name+".tbos\n  HostName 10.0.0.10") {
			t.Errorf("ssh-config:\n%s", c)
		}
		path, err := exec.LookPath("ansible-inventory")
		if err != nil {
			testenv.Skip(t, "no ansible-inventory (Debian's ansible-core) to check the inventory: apt-get install ansible-core")
		}
		c := exec.Command(path, "-i", inv, "--list")
		c.Env = append(os.Environ(), "ANSIBLE_INVENTORY_UNPARSED_FAILED=true", "ANSIBLE_LOCAL_TEMP="+work, "ANSIBLE_HOME="+work)
		out, err := c.Output()
		if err != nil {
			t.Fatalf("ansible-inventory refused the inventory: %v\n%s", err, out)
		}
		var list struct {
			Meta struct {
				HostVars map[string]map[string]any `json:"hostvars"`
			} `json:"_meta"`
			Netns struct {
				Hosts []string `json:"hosts"`
			} `json:"netns"`
		}
		if err := json.Unmarshal(out, &list); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		slices.Sort(list.Netns.Hosts)
		if !slices.Equal(list.Netns.Hosts, []string{"a", "b"}) || list.Meta.HostVars["a"]["ansible_host"] != "10.0.0.10" {
			t.Fatalf("ansible-inventory --list:\n%s", out)
		}
	})

	t.Run("go sdk", func(t *testing.T) {
		ctx := context.Background()
		c, err := testbedos.New("unix://" + s.socket)
		if err != nil {
			t.Fatal(err)
		}
		g, err := c.Graph(ctx, name)
		if err != nil || len(g.Nodes) != 3 || len(g.Edges) != 2 {
			t.Fatalf("graph %+v: %v", g, err)
		}
		guests, err := c.Guests(ctx, name)
		if err != nil || len(guests) != 2 || guests[0].Status != "running" {
			t.Fatalf("guests %+v: %v", guests, err)
		}
		res, err := c.Exec(ctx, name, "a", testbedos.ExecRequest{Command: []string{"ping", "-c", "1", "-W", "2", "10.0.0.11"}})
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("exec %+v: %v", res, err)
		}
		if _, err := c.Deployment(ctx, "no-such"); testbedos.StatusOf(err) != 404 {
			t.Errorf("unknown deployment: %v, want a 404", err)
		}
	})

	t.Run("bundle", func(t *testing.T) {
		file := filepath.Join(work, "lab.tar.gz")
		run(dir, "-p", name, "export", "-o", file)
		out := run(work, "import", file, "--name", copyName)
		if !strings.Contains(out, "imported deployment "+copyName) || !strings.Contains(out, "kvm-compose -p "+copyName+" netem a eth0 --delay 5ms") {
			t.Fatalf("import:\n%s", out)
		}
		d, err := s.c.Deployment(context.Background(), copyName)
		if err != nil {
			t.Fatal(err)
		}
		if want := filepath.Join(s.dataDir, "projects", copyName); d.ProjectLocation != want {
			t.Errorf("imported into %s, want %s", d.ProjectLocation, want)
		}
		if _, err := os.Lstat(filepath.Join(d.ProjectLocation, "passwd")); err == nil {
			t.Error("the symlink out of the project was carried into the bundle")
		}
		var imp map[string]map[string]api.Impairment
		if data, err := os.ReadFile(filepath.Join(d.ProjectLocation, ".bundle", "impairments.json")); err != nil || json.Unmarshal(data, &imp) != nil || imp["a"]["eth0"].DelayMS != 5 {
			t.Errorf("impairments.json: %s %v", data, err)
		}
		logs, _ := filepath.Glob(filepath.Join(d.ProjectLocation, ".bundle", "logs", "*.log"))
		if len(logs) != 2 { // generate-artefacts, up
			t.Errorf("bundle logs %v, want 2", logs)
		}
		run(work, "-p", copyName, "generate-artefacts")
		cst := state(t, s, copyName)
		t.Cleanup(func() { nettest.RemoveAll(cst.Prefix) })
		if up := run(work, "-p", copyName, "up"); !strings.Contains(up, "a is set up") {
			t.Errorf("up of the copy ran no setup script:\n%s", up)
		}
		if !sameGuests(st, cst) {
			t.Errorf("the copy's guests differ:\n%+v\n%+v", st.Guests, cst.Guests)
		}
		if out, ok := execOK(t, s, copyName, "a", "ping", "-c", "1", "-W", "2", "10.0.0.11"); !ok {
			t.Fatalf("a cannot ping b in the copy:\n%s", out)
		}
		run(work, "-p", copyName, "down")
		assertNothingLeft(t, cst)
	})
	run(dir, "-p", name, "down")
	assertNothingLeft(t, st)
}

// sameGuests compares what a guest is, not the names of its kernel objects
// (nor generated MACs, which derive from the deployment's name).
func sameGuests(a, b topology.State) bool {
	key := func(st topology.State) []string {
		var out []string
		for _, g := range st.Guests {
			for _, in := range g.Interfaces {
				out = append(out, g.Name+" "+g.Kind+" "+in.Name+" "+in.Switch+" "+in.Address)
			}
		}
		slices.Sort(out)
		return out
	}
	return slices.Equal(key(a), key(b))
}
