// Package httpapi holds the REST handlers and their route table (each
// route with its policy). Handlers return errors;
// one renderer (errors.go) maps them to status codes and the JSON error body.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/bundle"
	"github.com/testbedos/testbedos/internal/events"
	"github.com/testbedos/testbedos/internal/logstream"
	"github.com/testbedos/testbedos/internal/store"
	"github.com/testbedos/testbedos/internal/topology"
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
	// Images is the VM image cache; nil answers 503 on /api/images.
	Images Images
	// Stopping is closed when the server shuts down: consoles and captures
	// end then.
	Stopping <-chan struct{}

	// DataDir is the data folder: the daemon's generated states and the
	// project folders of imported deployments (projects/<name>).
	DataDir string
	// TopologySVG draws a state as the GUI does (GET …/graph?format=svg);
	// nil answers 503 for that format.
	TopologySVG func(*topology.State) []byte
	// DockerImages finds docker images' digests for bundles; nil asks the
	// Docker Engine's socket.
	DockerImages bundle.DockerImages
}

type handler func(w http.ResponseWriter, r *http.Request) error

// Register adds every REST route to mux, without their policies (the
// server applies those; see Routes).
func Register(mux *http.ServeMux, d Deps) {
	for _, rt := range Routes(d) {
		mux.Handle(rt.Pattern, rt.Handler)
	}
}

type route struct {
	pattern string
	handler handler
	policy  Policy
}

// routes is the REST API, in one table: each route with the credential
// that opens it and whether it starts work.
func routes(d Deps) []route {
	folders := &folderClaims{}
	return append([]route{
		{"GET /healthz", func(w http.ResponseWriter, r *http.Request) error {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
			return nil
		}, open},
		{"GET /api/openapi.json", serveOpenAPI(OpenAPI()), user},
		{"GET /api/config/status", func(w http.ResponseWriter, r *http.Request) error {
			writeJSON(w, http.StatusOK, d.Status())
			return nil
		}, user},
		{"GET /api/deployments", listDeployments(d), user},
		{"POST /api/deployments", createDeployment(d, folders), user},
		{"GET /api/deployments/{name}", getDeployment(d), user},
		{"PUT /api/deployments/{name}", updateDeployment(d, folders), user},
		{"DELETE /api/deployments/{name}", deleteDeployment(d), user},
		{"POST /api/deployments/{name}/action", startAction(d), action},
		{"POST /api/deployments/{name}/cancel", cancelAction(d), user},
		{"GET /api/deployments/{name}/state", deploymentState(d), user},
		{"GET /api/deployments/{name}/logs", deploymentLogs(d), user},
		{"GET /api/deployments/{name}/actions", listActions(d), user},
		{"GET /api/deployments/{name}/plan", deploymentPlan(d), user},
		{"GET /api/deployments/{name}/guests", listGuests(d), user},
		{FilesListRoute, listProjectFiles(d), user},
		{FilesGetRoute, getProjectFile(d), user},
		{FilesPutRoute, putProjectFile(d), user},
		{FilesDeleteRoute, deleteProjectFile(d), user},
		{"GET /api/deployments/{name}/guests/{guest}/snapshots", listSnapshots(d), user},
		{"GET /api/deployments/{name}/guests/{guest}/snapshots/{snapshot}", snapshotInfo(d), user},
		{"POST /api/deployments/{name}/guests/{guest}/exec", execGuest(d), stream},
		{"GET /api/deployments/{name}/guests/{guest}/console", consoleGuest(d), stream},
		{"GET /api/deployments/{name}/guests/{guest}/interfaces/{iface}", getImpairment(d), user},
		{"PUT /api/deployments/{name}/guests/{guest}/interfaces/{iface}", putImpairment(d), user},
		{"GET /api/deployments/{name}/guests/{guest}/interfaces/{iface}/capture", captureGuest(d), stream},
		{"POST /api/deployments/{name}/guests/{guest}/power", powerGuest(d), action},
		{"POST /api/deployments/{name}/exec", fanoutExec(d), stream},
		{"GET /api/logs/{uuid}", logEntry(d), user},
		{"GET /api/logs/{uuid}/text", logText(d), user},
		{"GET /api/logs/{uuid}/stream", logStream(d), stream},
		{"GET /api/events", eventStream(d), stream},
		{"GET /api/monitor/host", monitorHost(d), user},
		{"GET /api/monitor/deployments/{name}/guests/{guest}", monitorGuest(d), user},
		{ValidateRoute, validateYAML, user},
		{"GET /api/deployments/{name}/graph", deploymentGraph(d), user},
		{"GET /api/deployments/{name}/inventory", deploymentInventory(d), user},
		{"GET /api/deployments/{name}/export", exportDeployment(d), stream},
		// A stream: no deadline while a bundle as large as 4 GiB comes in.
		{"POST /api/deployments/import", importDeployment(d, folders), stream},
		{"GET /api/images", listImages(d), user},
		// An image is streamed in for as long as it takes.
		{"POST /api/images", importImage(d), stream},
		{"DELETE /api/images/{name}", deleteImage(d), user},
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
