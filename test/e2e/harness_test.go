// Package e2e drives the real testbedos-server and kvm-compose binaries:
// real HTTP over the unix socket and TCP, real websockets, real namespaces.
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/client"
	"github.com/testbedos/testbedos/internal/net/nettest"
	"github.com/testbedos/testbedos/internal/topology"
)

// bins holds the binaries built once for the package.
var bins struct{ server, cli string }

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "testbedos-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bins.server = filepath.Join(dir, "testbedos-server")
	bins.cli = filepath.Join(dir, "kvm-compose")
	// Tests run the binaries with the race detector; benchmarks measure
	// them as they ship.
	flag.Parse()
	race := "-race"
	if f := flag.Lookup("test.bench"); f != nil && f.Value.String() != "" {
		race = "-race=false"
	}
	for out, pkg := range map[string]string{bins.server: "../../cmd/testbedos-server", bins.cli: "../../cmd/kvm-compose"} {
		cmd := exec.Command("go", "build", race, "-o", out, pkg)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building", pkg, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is one testbedos-server process.
type server struct {
	cmd     *exec.Cmd
	dataDir string
	socket  string
	stderr  *lockedBuffer
	c       *client.Client
	env     []string
	// args run the binary (default: main); netns, when set, runs it inside
	// that named network namespace (ip netns exec, which gives it a mount
	// namespace of its own too). With hostMounts it keeps the machine's
	// mount namespace (nsenter --net), as a real client host shares one
	// with its dockerd: the volume sources it pins are what dockerd sees.
	args       []string
	netns      string
	hostMounts bool
	// wrap is a command line the binary runs under (inside netns).
	wrap []string
}

// startServer runs testbedos-server main with its own data folder and
// socket, and stops it (SIGTERM) when the test ends.
func startServer(t testing.TB, extraEnv ...string) *server {
	t.Helper()
	dir := t.TempDir()
	// QEMU's unprivileged user must enter the data folder (VM disks and
	// seeds live there); t.TempDir makes 0700 folders.
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s := &server{dataDir: filepath.Join(dir, "data"), socket: filepath.Join(dir, "s.sock"), stderr: &lockedBuffer{}}
	s.env = append(os.Environ(),
		// The race-enabled binaries would otherwise idle 1 s at every exit.
		"GORACE=atexit_sleep_ms=0 halt_on_error=1",
		"TESTBEDOS_DATA_DIR="+s.dataDir,
		"TESTBEDOS_SOCKET="+s.socket,
		"TESTBEDOS_LISTEN=127.0.0.1:0",
	)
	s.env = append(s.env, extraEnv...)
	s.start(t)
	t.Cleanup(func() { s.stop(t) })
	return s
}

func (s *server) start(t testing.TB) {
	t.Helper()
	args := s.args
	if args == nil {
		args = []string{"main"}
	}
	line := append(append(append([]string{}, s.wrap...), bins.server), args...)
	switch {
	case s.netns != "" && s.hostMounts:
		line = append([]string{"nsenter", "--net=/run/netns/" + s.netns}, line...)
	case s.netns != "":
		line = append([]string{"ip", "netns", "exec", s.netns}, line...)
	}
	s.cmd = exec.Command(line[0], line[1:]...)
	s.cmd.Env = s.env
	s.cmd.Stderr = s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c, err := client.New("unix://" + s.socket)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		t.Fatalf("server did not start: %v\n%s", err, s.stderr)
	}
	s.c = c
}

func (s *server) stop(t testing.TB) {
	if s.cmd == nil || s.cmd.ProcessState != nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("server exited with %v\n%s", err, s.stderr)
		}
	case <-time.After(60 * time.Second):
		s.cmd.Process.Kill()
		<-done
		t.Errorf("server ignored SIGTERM for 60 s\n%s", s.stderr)
	}
}

// lockedBuffer is a bytes.Buffer the server process writes while tests read.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var listenLine = regexp.MustCompile(`msg=listening addr=(\S+) network=tcp`)

// tcpURL is the base URL of the server's TCP listener (it listens on a
// random port), read from its log.
func (s *server) tcpURL(t testing.TB) string {
	t.Helper()
	for range 200 {
		if m := listenLine.FindStringSubmatch(s.stderr.String()); m != nil {
			return "http://" + m[1]
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("server log names no TCP address:\n%s", s.stderr)
	return ""
}

// project writes a project folder with kvm-compose.yaml and extra files
// (name -> content; names ending in .sh are made executable).
func project(t *testing.T, yaml string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "kvm-compose.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// uniqueName is a deployment name no other test or run uses.
func uniqueName(prefix string) string {
	b := make([]byte, 3)
	rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// deployment creates a deployment and registers the clean-up of every kernel
// object it may leave, even when the test fails half-way.
func deployment(t *testing.T, s *server, prefix, dir string) string {
	t.Helper()
	name := uniqueName(prefix)
	if _, err := s.c.CreateDeployment(context.Background(), name, dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if st, err := topology.ReadState(topology.StatePath(dir)); err == nil {
			nettest.RemoveAll(st.Prefix)
		}
		nettest.RemoveAll(netnsPrefix(name))
	})
	return name
}

func netnsPrefix(deployment string) string { return "tbos." + deployment + "." }

// act starts an action, follows its log to the end and returns the outcome
// and every line.
func act(t *testing.T, s *server, name string, req api.ActionRequest) (api.Outcome, []string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	id, err := s.c.Action(ctx, name, req)
	if err != nil {
		t.Fatalf("%s: %v", req.Command, err)
	}
	var lines []string
	o, err := s.c.Follow(ctx, id, func(l string) { lines = append(lines, l) })
	if err != nil {
		t.Fatalf("follow %s: %v", req.Command, err)
	}
	return o, lines, id
}

func cmd(name api.CommandName) api.ActionRequest {
	return api.ActionRequest{Command: api.Command{Name: name}}
}

func mustSucceed(t *testing.T, s *server, name string, req api.ActionRequest) []string {
	t.Helper()
	o, lines, _ := act(t, s, name, req)
	if o.ErrorCode != 0 {
		t.Fatalf("%s failed (code %d):\n%s", req.Command, o.ErrorCode, strings.Join(lines, "\n"))
	}
	return lines
}

// state reads the resolved state through the API.
func state(t testing.TB, s *server, name string) topology.State {
	t.Helper()
	raw, err := s.c.State(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	var st topology.State
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// assertNothingLeft checks that no namespace, bridge or veth of the
// deployment remains.
func assertNothingLeft(t *testing.T, st topology.State) {
	t.Helper()
	links, _, err := nettest.Leftovers(st.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	_, namespaces, err := nettest.Leftovers(netnsPrefix(st.Deployment))
	if err != nil {
		t.Fatal(err)
	}
	if len(links) > 0 || len(namespaces) > 0 {
		t.Fatalf("left behind: links %v, namespaces %v", links, namespaces)
	}
}

// generated is the set-up most tests start from: deployment prefix… of
// yaml and files on server s, its artefacts generated.
func generated(t *testing.T, s *server, prefix, yaml string, files map[string]string) generatedLab {
	t.Helper()
	dir := project(t, yaml, files)
	name := deployment(t, s, prefix, dir)
	mustSucceed(t, s, name, cmd(api.CmdGenerateArtefacts))
	return generatedLab{name: name, dir: dir, st: state(t, s, name)}
}
