package httpapi_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/testbedos/testbedos/internal/api"
)

// filesCalls drives the project files routes through d for the contract
// test: every answer they document.
func filesCalls(t *testing.T, c *contract, d door) {
	t.Helper()
	dir := project(t, goodTopology)
	c.do(t, d, call{method: "POST", path: "/api/deployments", body: jsonBody(api.NewDeployment{Name: "files", ProjectLocation: dir}), want: 201})
	octet := map[string][]string{"Content-Type": {"application/octet-stream"}}
	base := "/api/deployments/files/files/"
	c.do(t, d, call{method: "GET", path: "/api/deployments/files/files", want: 200})
	c.do(t, d, call{method: "GET", path: "/api/deployments/nothere/files", want: 404})
	c.do(t, d, call{method: "GET", path: base + "kvm-compose.yaml", want: 200})
	c.do(t, d, call{method: "PUT", path: base + "setup.sh", body: "#!/bin/sh\n", header: octet, want: 201})
	c.do(t, d, call{method: "PUT", path: base + "setup.sh", body: "#!/bin/sh\ntrue\n", header: octet, want: 200})
	c.do(t, d, call{method: "DELETE", path: base + "setup.sh", want: 204})
	for _, m := range []string{"GET", "PUT", "DELETE"} {
		c.do(t, d, call{method: m, path: base + ".hidden", body: "x", header: octet, want: 400})
		c.do(t, d, call{method: m, path: "/api/deployments/nothere/files/a", body: "x", header: octet, want: 404})
	}
	c.do(t, d, call{method: "GET", path: base + "absent", want: 404})
	c.do(t, d, call{method: "DELETE", path: base + "absent", want: 404})
	if err := os.WriteFile(filepath.Join(dir, "big"), []byte(strings.Repeat("x", 2<<20)), 0o644); err != nil {
		t.Fatal(err)
	}
	c.do(t, d, call{method: "GET", path: base + "big", want: 413})
	c.do(t, d, call{method: "PUT", path: base + "big", body: strings.Repeat("x", 2<<20), header: octet, want: 413})
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"GET", "PUT", "DELETE"} {
		c.do(t, d, call{method: m, path: base + "fifo", body: "x", header: octet, want: 422})
	}
	// The project folder replaced by a file behind the server's back.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"GET", "PUT", "DELETE"} {
		c.do(t, d, call{method: m, path: base + "a.sh", body: "x", header: octet, want: 500})
	}
	c.do(t, d, call{method: "GET", path: "/api/deployments/files/files", want: 500})
	c.do(t, d, call{method: "DELETE", path: "/api/deployments/files?force=true", want: 204})
}
