package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/testbedos/testbedos/internal/net/nettest"
	"github.com/testbedos/testbedos/internal/testenv"
)

// python3 is Debian's interpreter (the SDK needs nothing else).
func python3(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/python3"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	p, err := exec.LookPath("python3")
	if err != nil {
		testenv.Skip(t, "no python3 to run the Python SDK's tests: apt-get install python3")
	}
	return p
}

func runPython(t *testing.T, env []string, args ...string) {
	t.Helper()
	c := exec.Command(python3(t), append([]string{"-m", "unittest", "-v"}, args...)...)
	c.Dir = filepath.Join("..", "..", "sdk", "python")
	c.Env = env
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("python3 -m unittest %v: %v\n%s", args, err, out)
	}
	t.Logf("%s", out)
}

// TestPythonSDKMatchesOpenAPI runs the Python SDK's check against the
// OpenAPI document: every operation has a method.
func TestPythonSDKMatchesOpenAPI(t *testing.T) {
	runPython(t, os.Environ(), "tests.test_openapi")
}

// TestPythonSDKLive runs the Python SDK's live test against a real server:
// a netns lab deployed, exec, impaired, captured and destroyed.
func TestPythonSDKLive(t *testing.T) {
	nettest.RequireRoot(t)
	s := startServer(t)
	dir := project(t, `machines:
  - name: a
    network: [{switch: sw0, ip: 10.0.0.10}]
  - name: b
    network: [{switch: sw0, ip: 10.0.0.11}]
network:
  switches:
    sw0: {subnet: 10.0.0.0/24}
`, nil)
	name := uniqueName("pysdk")
	t.Cleanup(func() { nettest.RemoveAll(netnsPrefix(name)) })
	token, err := os.ReadFile(filepath.Join(s.dataDir, "config", "token"))
	if err != nil {
		t.Fatal(err)
	}
	env := append(s.env, "TESTBEDOS_SOCKET="+s.socket, "TESTBEDOS_LIVE_PROJECT="+dir, "TESTBEDOS_LIVE_NAME="+name,
		"TESTBEDOS_LIVE_URL="+s.tcpURL(t), "TESTBEDOS_LIVE_TOKEN="+strings.TrimSpace(string(token)))
	runPython(t, env, "tests.test_live")
}
