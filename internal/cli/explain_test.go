package cli

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/client"
	"github.com/testbedos/testbedos/internal/server/httpapi"
)

// liveExecutor makes the server serve the routes of up deployments' guests
// (exec, console, snapshots…); only a deployment's absence is answered
// here, so none of them is ever called.
type liveExecutor struct {
	*stagedExecutor
	httpapi.Live
	httpapi.Snapshots
}

func (liveExecutor) Guests(ctx context.Context, d api.Deployment) ([]api.Guest, error) {
	return nil, nil
}

// Every verb on a deployment, in a folder without kvm-compose.yaml, says
// so (as up does) instead of only "not found".
func TestDeploymentVerbsWithoutYAMLSaySo(t *testing.T) {
	e := newCLIEnvWith(t, &liveExecutor{stagedExecutor: &stagedExecutor{}})
	empty := filepath.Join(t.TempDir(), "empty")
	os.Mkdir(empty, 0o755)
	for _, verb := range [][]string{
		{"exec", "web", "--", "true"}, {"exec", "--all", "--", "true"}, {"logs"}, {"logs", "--format", "json"},
		{"plan"}, {"actions"}, {"deployment", "info"}, {"console", "web"}, {"graph"}, {"inventory"},
		{"files", "list"}, {"snapshot", "list", "vm"}, {"netem", "web", "eth0"}, {"capture", "web", "eth0"},
		{"stop", "web"}, {"down"}, {"up"},
	} {
		t.Run(strings.Join(verb, " "), func(t *testing.T) {
			_, wait := e.run(append([]string{"-i", filepath.Join(empty, "kvm-compose.yaml")}, verb...)...)
			code, _, stderr := wait()
			if code == 0 || !strings.Contains(stderr, "no kvm-compose.yaml in "+empty) || !strings.Contains(stderr, "--project-name NAME") {
				t.Errorf("exit %d, want an error naming the missing kvm-compose.yaml:\n%s", code, stderr)
			}
		})
	}
}

// A 404 for something in a deployment the server has (a guest) is not
// turned into a missing deployment or kvm-compose.yaml.
func TestExplainLeavesOtherNotFound(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/api/deployments/lab" {
			w.Write([]byte(`{"name":"lab","state":"up"}`))
			return
		}
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"error":{"code":404,"message":"deployment lab has no guest nope"}}`))
	}))
	t.Cleanup(ts.Close)
	c, err := client.New(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	a := &app{input: filepath.Join(t.TempDir(), "kvm-compose.yaml")}
	_, err = c.GuestsJSON(context.Background(), "lab")
	if client.StatusOf(err) != http.StatusNotFound {
		t.Fatalf("fake server: %v", err)
	}
	got := a.explain(context.Background(), c, err, "lab")
	if got != err {
		t.Errorf("explained as %q, want the server's error as it is", got)
	}
}
