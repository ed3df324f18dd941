package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/store/file"
)

// GET …/actions pages the logs index newest first, the running action
// included; a bad page is a 400, an unknown deployment a 404.
func TestListActions(t *testing.T) {
	dir := t.TempDir()
	st, err := file.Open(filepath.Join(dir, "deployments"), filepath.Join(dir, "deployed"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := st.CreateDeployment(ctx, api.Deployment{Name: "lab", ProjectLocation: "/lab"}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	for i, code := range []int{api.ErrorCodeOK, api.ErrorCodeFailed, api.ErrorCodeCancelled, -1} {
		e := api.LogEntry{Deployment: "lab", ExecutionTime: t0.Add(time.Duration(i) * time.Minute), Command: api.Command{Name: api.CmdUp}}
		if code >= 0 {
			ms := int64(1500)
			e.ErrorCode, e.DurationMS = &code, &ms
		}
		if err := st.PutLogEntry(ctx, fmt.Sprintf("uuid-%d", i), e); err != nil {
			t.Fatal(err)
		}
	}
	mux := http.NewServeMux()
	Register(mux, Deps{Store: st})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	get := func(path string) (int, api.ActionPage) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var page api.ActionPage
		if resp.StatusCode == http.StatusOK {
			if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
				t.Fatal(err)
			}
		}
		return resp.StatusCode, page
	}
	status, page := get("/api/deployments/lab/actions?limit=3")
	if status != http.StatusOK || page.Total != 4 || len(page.Actions) != 3 || page.Next == nil || *page.Next != 3 {
		t.Fatalf("first page: %d %+v", status, page)
	}
	var outcomes []string
	for _, a := range page.Actions {
		outcomes = append(outcomes, a.UUID+" "+a.Outcome)
	}
	if got := fmt.Sprint(outcomes); got != "[uuid-3 running uuid-2 cancelled uuid-1 failed]" {
		t.Errorf("newest first: %s", got)
	}
	if status, page := get("/api/deployments/lab/actions?limit=3&offset=3"); status != http.StatusOK ||
		len(page.Actions) != 1 || page.Actions[0].Outcome != "succeeded" || page.Next != nil {
		t.Errorf("last page: %d %+v", status, page)
	}
	for path, want := range map[string]int{
		"/api/deployments/none/actions":          http.StatusNotFound,
		"/api/deployments/lab/actions?limit=0":   http.StatusBadRequest,
		"/api/deployments/lab/actions?limit=501": http.StatusBadRequest,
		"/api/deployments/lab/actions?offset=-1": http.StatusBadRequest,
		"/api/deployments/lab/actions?offset=99": http.StatusOK,
	} {
		if status, _ := get(path); status != want {
			t.Errorf("%s: %d, want %d", path, status, want)
		}
	}
}
