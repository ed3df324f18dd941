package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/engine"
	"github.com/testbedos/testbedos/internal/store/file"
)

// fakeSnapshots answers like the engine: vm1 has snapshot s1, ns1 is of a
// kind without snapshots, other guests are unknown; it records the
// deployments it was asked about.
type fakeSnapshots struct {
	asked []api.Deployment
	fault error
}

var s1 = api.Snapshot{Name: "s1", Created: time.Unix(1700000000, 0).UTC(), State: "running", Memory: true, Disks: []string{"vda"}, Current: true}

func (f *fakeSnapshots) guest(d api.Deployment, guest string) error {
	f.asked = append(f.asked, d)
	switch {
	case f.fault != nil:
		return f.fault
	case guest == "ns1":
		return fmt.Errorf("guest ns1 of kind netns has no snapshots: %w", engine.ErrUnsupported)
	case guest != "vm1":
		return fmt.Errorf("deployment %s has no guest %s: %w", d.Name, guest, engine.ErrNotFound)
	case d.State.Is(api.StateDown):
		return fmt.Errorf("%w: deployment %s is down: run up first", engine.ErrConflict, d.Name)
	}
	return nil
}

func (f *fakeSnapshots) ListSnapshots(ctx context.Context, d api.Deployment, guest string) ([]api.Snapshot, error) {
	if err := f.guest(d, guest); err != nil {
		return nil, err
	}
	return []api.Snapshot{s1}, nil
}

func (f *fakeSnapshots) SnapshotInfo(ctx context.Context, d api.Deployment, guest, snapshot string) (api.Snapshot, error) {
	if err := f.guest(d, guest); err != nil {
		return api.Snapshot{}, err
	}
	if snapshot != "s1" {
		return api.Snapshot{}, fmt.Errorf("guest vm1: no such snapshot %s (it has s1): %w", snapshot, engine.ErrNotFound)
	}
	return s1, nil
}

func TestSnapshotRoutes(t *testing.T) {
	dir := t.TempDir()
	st, err := file.Open(filepath.Join(dir, "deployments"), filepath.Join(dir, "deployed"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, d := range []api.Deployment{
		{Name: "lab", ProjectLocation: "/lab", State: api.StateIsUp},
		{Name: "cold", ProjectLocation: "/cold", State: api.StateIsDown},
	} {
		if err := st.CreateDeployment(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	fake := &fakeSnapshots{}
	serve := func(snaps Snapshots) *httptest.Server {
		mux := http.NewServeMux()
		Register(mux, Deps{Store: st, Snapshots: snaps})
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		return srv
	}
	withEngine, without := serve(fake), serve(nil)

	for _, tc := range []struct {
		srv    *httptest.Server
		path   string
		fault  error
		status int
		want   string // in the body
	}{
		{srv: withEngine, path: "/lab/guests/vm1/snapshots", status: 200, want: `"name": "s1"`},
		{srv: withEngine, path: "/lab/guests/vm1/snapshots/s1", status: 200, want: `"memory": true`},
		{srv: withEngine, path: "/lab/guests/vm1/snapshots/nope", status: 404, want: "no such snapshot nope (it has s1)"},
		{srv: withEngine, path: "/lab/guests/nobody/snapshots", status: 404, want: "has no guest nobody"},
		{srv: withEngine, path: "/nope/guests/vm1/snapshots", status: 404, want: "nope"},
		{srv: withEngine, path: "/lab/guests/ns1/snapshots", status: 422, want: "of kind netns has no snapshots"},
		{srv: withEngine, path: "/lab/guests/ns1/snapshots/s1", status: 422, want: "has no snapshots"},
		{srv: withEngine, path: "/cold/guests/vm1/snapshots", status: 409, want: "run up first"},
		{srv: withEngine, path: "/Lab/guests/vm1/snapshots", status: 400},
		{srv: withEngine, path: "/lab/guests/VM1/snapshots", status: 400, want: "guest name"},
		{srv: withEngine, path: "/lab/guests/vm1/snapshots/S%201", status: 400, want: "snapshot name"},
		{srv: withEngine, path: "/lab/guests/vm1/snapshots", fault: errors.New("libvirtd is gone"), status: 500, want: "libvirtd is gone"},
		{srv: without, path: "/lab/guests/vm1/snapshots", status: 503, want: "cannot read snapshots"},
		{srv: without, path: "/lab/guests/vm1/snapshots/s1", status: 503, want: "cannot read snapshots"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			fake.fault = tc.fault
			resp, err := http.Get(tc.srv.URL + "/api/deployments" + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body json.RawMessage
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.want) {
				t.Errorf("%d %s, want %d with %q", resp.StatusCode, body, tc.status, tc.want)
			}
			if tc.status >= 400 {
				var eb api.ErrorBody
				if json.Unmarshal(body, &eb) != nil || eb.Error.Code != tc.status {
					t.Errorf("error body %s", body)
				}
			}
		})
	}
	fake.fault = nil

	// The engine gets the deployment as recorded, and the list is typed.
	fake.asked = nil
	resp, err := http.Get(withEngine.URL + "/api/deployments/lab/guests/vm1/snapshots")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list api.SnapshotList
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	if list.Guest != "vm1" || len(list.Snapshots) != 1 || !list.Snapshots[0].Created.Equal(s1.Created) {
		t.Errorf("list = %+v", list)
	}
	if len(fake.asked) != 1 || fake.asked[0].ProjectLocation != "/lab" || !fake.asked[0].State.Is(api.StateUp) {
		t.Errorf("the engine was asked about %+v", fake.asked)
	}
	// Reading never touched the record.
	d, err := st.Deployment(ctx, "lab")
	if err != nil || !d.State.Is(api.StateUp) || d.LastActionUUID != nil {
		t.Errorf("after the reads: %+v, %v", d, err)
	}
}
