package cli

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/config"
	"github.com/testbedos/testbedos/internal/net/nettest"
	"github.com/testbedos/testbedos/internal/server"
)

// testServer is a real testbedos-server on 127.0.0.1 (TCP only, token
// required) with its data folder in a temp dir.
type testServer struct {
	url     string
	dataDir string
}

func startServer(t *testing.T) testServer { return startServerTLS(t, config.TLSAuto) }

// startServerTLS is startServer with TESTBEDOS_TLS set to mode.
func startServerTLS(t *testing.T, mode string) testServer {
	t.Helper()
	cfg := config.Server{
		DataDir: filepath.Join(t.TempDir(), "data"), Listen: "127.0.0.1:0",
		DB: "file", Auth: true, HeartbeatInterval: time.Second, HeartbeatMisses: 3,
		LogRetention: time.Hour, LogMaxCount: 100, TLS: mode,
	}
	s, err := server.New(context.Background(), server.Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	ls, stop, err := s.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("server: %v", err)
		}
	})
	scheme := "http://"
	if mode == config.TLSOn {
		scheme = "https://"
	}
	return testServer{url: scheme + ls[0].Addr().String(), dataDir: cfg.DataDir}
}

// staleSocket is a unix socket file nobody listens on, as a server killed
// with kill -9 leaves it.
func staleSocket(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "tbcli") // short: socket paths are limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "stale.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	if fi, err := os.Stat(path); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("stale socket %s: %v", path, err)
	}
	return path
}

// freeTCP is an http:// URL at which nothing listens.
func freeTCP(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String()
	l.Close()
	return url
}

// run runs kvm-compose with exactly env as its environment and tcp as the
// server tried after the socket.
func run(t *testing.T, tcp string, env map[string]string, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	a := &app{
		stdin: strings.NewReader(""), stdout: &out, stderr: &out, defaultTCP: tcp,
		lookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
	}
	code := a.execute(context.Background(), args)
	t.Logf("kvm-compose %s: exit %d\n%s", strings.Join(args, " "), code, out.String())
	return code, out.String()
}

func TestDefaultConnectionFallsBackToTCP(t *testing.T) {
	s := startServer(t)
	for _, tc := range []struct{ name, socket string }{
		{"stale socket", staleSocket(t)},
		{"missing socket", filepath.Join(t.TempDir(), "none.sock")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"TESTBEDOS_SOCKET": tc.socket, "TESTBEDOS_DATA_DIR": s.dataDir}
			code, out := run(t, s.url, env, "deployment", "list")
			if code != 0 || !strings.Contains(out, "NAME") {
				t.Fatalf("deployment list with a %s: exit %d, want 0 over TCP:\n%s", tc.name, code, out)
			}
		})
	}
}

func TestNoServerSaysHowToStartOne(t *testing.T) {
	sock, tcp := staleSocket(t), freeTCP(t)
	for _, tc := range []struct {
		name  string
		args  []string
		tried []string
	}{
		{"default", []string{"deployment", "list"}, []string{"unix://" + sock, tcp}},
		{"named", []string{"--server-connection", tcp, "deployment", "list"}, []string{tcp}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := run(t, tcp, map[string]string{"TESTBEDOS_SOCKET": sock}, tc.args...)
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			want := append([]string{"make run", "testbedos-server main", "systemctl start testbedos-server", "connection refused"}, tc.tried...)
			for _, w := range want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestTokenOverTCP(t *testing.T) {
	s := startServer(t)
	token, err := os.ReadFile(filepath.Join(s.dataDir, "config", "token"))
	if err != nil {
		t.Fatal(err)
	}
	elsewhere := t.TempDir()
	for _, tc := range []struct {
		name string
		env  map[string]string
		code int
		want []string
	}{
		{"TESTBEDOS_DATA_DIR", map[string]string{"TESTBEDOS_DATA_DIR": s.dataDir}, 0, []string{"NAME"}},
		{"TESTBEDOS_TOKEN", map[string]string{"TESTBEDOS_TOKEN": string(token), "TESTBEDOS_DATA_DIR": elsewhere}, 0, []string{"NAME"}},
		{"no token file", map[string]string{"TESTBEDOS_DATA_DIR": elsewhere}, 1,
			[]string{"(401)", "TESTBEDOS_TOKEN", "TESTBEDOS_DATA_DIR", filepath.Join(elsewhere, "config", "token"), "no such file"}},
		{"wrong TESTBEDOS_TOKEN", map[string]string{"TESTBEDOS_TOKEN": "not-the-token-at-all", "TESTBEDOS_DATA_DIR": s.dataDir}, 1,
			[]string{"(401)", "refused the token in TESTBEDOS_TOKEN", "TESTBEDOS_DATA_DIR"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.env["TESTBEDOS_SOCKET"] = "" // TCP only
			code, out := run(t, s.url, tc.env, "deployment", "list")
			if code != tc.code {
				t.Errorf("exit %d, want %d", code, tc.code)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestVersion(t *testing.T) {
	code, out := run(t, freeTCP(t), nil, "--version")
	if code != 0 || strings.TrimSpace(out) != "kvm-compose version "+Version {
		t.Fatalf("--version: exit %d, output %q", code, out)
	}
}

func TestDestroyHintSaysForce(t *testing.T) {
	nettest.RequireRoot(t) // the deployment must really be up
	s := startServer(t)
	dir := t.TempDir()
	yaml := "machines:\n  - name: g\n    network: [{switch: sw0, ip: 10.0.0.2}]\nnetwork:\n  switches:\n    sw0: {subnet: 10.0.0.0/24}\n"
	if err := os.WriteFile(filepath.Join(dir, "kvm-compose.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"TESTBEDOS_SOCKET": "", "TESTBEDOS_DATA_DIR": s.dataDir}
	name := fmt.Sprintf("clihint%d", os.Getpid())
	cli := func(want int, args ...string) string {
		t.Helper()
		code, out := run(t, s.url, env, append([]string{"-p", name, "-i", filepath.Join(dir, "kvm-compose.yaml")}, args...)...)
		if code != want {
			t.Fatalf("kvm-compose %v: exit %d, want %d:\n%s", args, code, want, out)
		}
		return out
	}
	cli(0, "deployment", "create")
	cli(0, "generate-artefacts")
	t.Cleanup(func() {
		run(t, s.url, env, "-p", name, "-i", filepath.Join(dir, "kvm-compose.yaml"), "down")
		nettest.RemoveAll("tbos." + name + ".")
	})
	cli(0, "up")
	out := cli(1, "deployment", "destroy")
	for _, want := range []string{"is up", "kvm-compose down", "kvm-compose deployment destroy " + name + " --force"} {
		if !strings.Contains(out, want) {
			t.Errorf("destroy of an up deployment lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "?force") {
		t.Errorf("destroy speaks of the API's ?force=true, not the CLI's --force:\n%s", out)
	}
	cli(0, "down")
	cli(0, "deployment", "destroy")
}

func TestConnectReasons(t *testing.T) {
	// The reasons a user reads for each address tried.
	sock := staleSocket(t)
	_, out := run(t, freeTCP(t), map[string]string{"TESTBEDOS_SOCKET": sock}, "deployment", "list")
	if !strings.Contains(out, "unix://"+sock+" (connection refused)") {
		t.Errorf("stale socket not named with its reason:\n%s", out)
	}
}
