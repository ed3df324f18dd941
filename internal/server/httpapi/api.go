// Package httpapi holds the REST handlers of SPEC 7. Handlers return errors;
// one renderer (errors.go) maps them to status codes and the JSON error body.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/events"
	"github.com/testbedos/testbedos/internal/logstream"
	"github.com/testbedos/testbedos/internal/store"
)

// Runner starts and cancels actions (actions.Runner).
type Runner interface {
	Start(ctx context.Context, name string, req api.ActionRequest) (string, error)
	// Cancel stops the running action of deployment name; with a non-empty
	// uuid only when that is the running one.
	Cancel(name, uuid string) (string, error)
}

// Deps are what the handlers need.
type Deps struct {
	Store  store.Store
	Runner Runner
	// Snapshots reads guests' snapshots; nil answers 503 on those routes.
	Snapshots Snapshots
	// Live reaches the guests of up deployments (exec, console, capture,
	// impairments); nil answers 503 on those routes.
	Live Live
	Hub  *logstream.Hub
	// Events feeds GET /api/events.
	Events *events.Hub
	Status func() api.ServerStatus
	// Cluster serves the host, cluster configuration and membership routes.
	Cluster Cluster
	Logger  *slog.Logger
	// StreamOpened/StreamClosed, when set, count live log and event
	// streams; StreamOpened's error refuses the stream (shutting down).
	StreamOpened func() error
	StreamClosed func()

	// Plans answers GET …/plan; nil answers 503.
	Plans Planner

	// Guests lists a deployment's guests; nil answers 503 on that route.
	Guests Guests
	// Monitor serves the monitoring routes (monitor.go).
	Monitor Monitor
	// Stopping is closed when the server shuts down: consoles and captures
	// end then.
	Stopping <-chan struct{}
}

type handler func(w http.ResponseWriter, r *http.Request) error

// Register adds every REST route to mux.
func Register(mux *http.ServeMux, d Deps) {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	for _, rt := range routes(d) {
		fn := rt.handler
		mux.HandleFunc(rt.pattern, func(w http.ResponseWriter, r *http.Request) {
			if err := fn(w, r); err != nil {
				writeError(w, r, d.Logger, err)
			}
		})
	}
}

type route struct {
	pattern string
	handler handler
}

// routes is the REST API of SPEC 7, in one table.
func routes(d Deps) []route {
	folders := &folderClaims{}
	return append([]route{
		{"GET /healthz", func(w http.ResponseWriter, r *http.Request) error {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
			return nil
		}},
		{"GET /api/openapi.json", serveOpenAPI(OpenAPI())},
		{"GET /api/config/status", func(w http.ResponseWriter, r *http.Request) error {
			writeJSON(w, http.StatusOK, d.Status())
			return nil
		}},
		{"GET /api/deployments", listDeployments(d)},
		{"POST /api/deployments", createDeployment(d, folders)},
		{"GET /api/deployments/{name}", getDeployment(d)},
		{"PUT /api/deployments/{name}", updateDeployment(d, folders)},
		{"DELETE /api/deployments/{name}", deleteDeployment(d)},
		{"POST /api/deployments/{name}/action", startAction(d)},
		{"POST /api/deployments/{name}/cancel", cancelAction(d)},
		{"GET /api/deployments/{name}/state", deploymentState(d)},
		{"GET /api/deployments/{name}/logs", deploymentLogs(d)},
		{"GET /api/deployments/{name}/plan", deploymentPlan(d)},
		{"GET /api/deployments/{name}/guests", listGuests(d)},
		{"GET /api/deployments/{name}/guests/{guest}/snapshots", listSnapshots(d)},
		{"GET /api/deployments/{name}/guests/{guest}/snapshots/{snapshot}", snapshotInfo(d)},
		{"POST /api/deployments/{name}/guests/{guest}/exec", execGuest(d)},
		{"GET /api/deployments/{name}/guests/{guest}/console", consoleGuest(d)},
		{"GET /api/deployments/{name}/guests/{guest}/interfaces/{iface}", getImpairment(d)},
		{"PUT /api/deployments/{name}/guests/{guest}/interfaces/{iface}", putImpairment(d)},
		{"GET /api/deployments/{name}/guests/{guest}/interfaces/{iface}/capture", captureGuest(d)},
		{"GET /api/logs/{uuid}", logEntry(d)},
		{"GET /api/logs/{uuid}/text", logText(d)},
		{"GET /api/logs/{uuid}/stream", logStream(d)},
		{"GET /api/events", eventStream(d)},
		{"GET /api/monitor/host", monitorHost(d)},
		{"GET /api/monitor/deployments/{name}/guests/{guest}", monitorGuest(d)},
		{ValidateRoute, validateYAML},
	}, clusterRoutes(d)...)
}

// Patterns lists the patterns Register adds, for the OpenAPI check.
func Patterns() []string {
	var out []string
	for _, rt := range routes(Deps{}) {
		out = append(out, rt.pattern)
	}
	return out
}

// JSONErrors makes the mux's own answers for unknown routes (404) and wrong
// methods (405) use the JSON error body too.
func JSONErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern == "" {
			w = &jsonStatus{ResponseWriter: w, r: r}
		}
		mux.ServeHTTP(w, r)
	})
}

// jsonStatus replaces a plain-text error answer by the JSON error body.
type jsonStatus struct {
	http.ResponseWriter
	r       *http.Request
	written bool
}

func (j *jsonStatus) WriteHeader(code int) {
	if j.written {
		return
	}
	j.written = true
	msg := http.StatusText(code)
	switch code {
	case http.StatusNotFound:
		msg = "no route " + j.r.Method + " " + j.r.URL.Path
	case http.StatusMethodNotAllowed:
		msg = "method " + j.r.Method + " not allowed on " + j.r.URL.Path + " (allowed: " + j.Header().Get("Allow") + ")"
	}
	j.Header().Del("X-Content-Type-Options")
	WriteErrorBody(j.ResponseWriter, code, msg)
}

func (j *jsonStatus) Write(b []byte) (int, error) {
	if !j.written {
		j.WriteHeader(http.StatusOK)
	}
	return len(b), nil
}
