package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/engine"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/images"
)

// Options configure the agent API of a client host.
type Options struct {
	// Name is this host's name (host.json).
	Name string
	// DataDir is the client's data folder: files pushed by the main go to
	// <DataDir>/cache/files, its record to <DataDir>/agent, the drivers'
	// working files to <DataDir>/agent/work/<deployment>.
	DataDir string
	Drivers *guest.Registry
	Network engine.Network
	// Images is this host's image cache (its drivers'): a cloud image the
	// main pushes for a guest is kept there under its name.
	Images *images.Store
	Logger *slog.Logger
	// Now is the clock of health answers; default time.Now.
	Now func() time.Time
	// UploadIdle is how long a file upload may send nothing before the
	// client drops it, keeping what arrived: a main that vanished
	// mid-transfer does not hold the file's upload forever; default 2 min.
	UploadIdle time.Duration
	// KeepAlive is how often a guest call's stream carries an empty line
	// while the driver is silent, so the main can tell a slow script from a
	// lost host; default 10 s.
	KeepAlive time.Duration
}

type server struct {
	opts    Options
	cache   fileCache
	rec     *records
	uploads *uploads
}

// Handler serves the agent API under /api/agent/. The caller mounts it and
// puts RequireSecret (and pinned TLS) in front.
func Handler(opts Options) http.Handler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.UploadIdle <= 0 {
		opts.UploadIdle = 2 * time.Minute
	}
	if opts.KeepAlive <= 0 {
		opts.KeepAlive = 10 * time.Second
	}
	s := &server{
		opts:    opts,
		cache:   fileCache{dir: filepath.Join(opts.DataDir, "cache", "files")},
		rec:     newRecords(filepath.Join(opts.DataDir, "agent")),
		uploads: &uploads{m: map[string]bool{}},
	}
	mux := http.NewServeMux()
	route := func(pattern string, h func(http.ResponseWriter, *http.Request) error) {
		mux.Handle(pattern, s.errors(h))
	}
	route("GET /api/agent/health", s.health)
	route("GET /api/agent/capabilities", s.capabilities)
	route("GET /api/agent/bridges/{name}", s.hasBridge)
	route("POST /api/agent/bridges/{name}", s.ensureBridge)
	route("DELETE /api/agent/bridges/{name}", s.deleteBridge)
	route("POST /api/agent/firewall/{name}", s.allowBridge)
	route("DELETE /api/agent/firewall/{name}", s.removeBridge)
	route("POST /api/agent/tunnels", s.ensureTunnel)
	route("DELETE /api/agent/tunnels/{name}", s.deleteTunnel)
	route("GET /api/agent/tunnels/{name}", s.hasTunnel)
	route("POST /api/agent/acl-tables", s.ensureACLTable)
	route("DELETE /api/agent/acl-tables/{name}", s.deleteACLTable)
	route("GET /api/agent/acl-tables/{name}", s.hasACLTable)
	route("GET /api/agent/acl-replies", s.aclReplies)
	route("POST /api/agent/bridges/{name}/ports", s.bridgePorts)
	route("POST /api/agent/guests/{op}", s.guestCall)
	route("POST /api/agent/snapshots/{op}", s.snapshotCall)
	route("GET /api/agent/console", s.console)
	route("GET /api/agent/links/{name}", s.linkState)
	route("PUT /api/agent/links/{name}/impairment", s.impairLink)
	route("POST /api/agent/links/{name}/capture", s.captureLink)
	route("HEAD /api/agent/files/{sha256}", s.hasFile)
	route("PUT /api/agent/files/{sha256}", s.putFile)
	route("GET /api/agent/deployed", s.deployments)
	route("GET /api/agent/deployed/{deployment}", s.deployed)
	route("POST /api/agent/deployed/{deployment}/clean", s.clean)
	return mux
}

// httpError is an error with the status to answer it with.
type httpError struct {
	status int
	err    error
}

func (e *httpError) Error() string { return e.err.Error() }
func (e *httpError) Unwrap() error { return e.err }

func badRequest(format string, args ...any) error {
	return &httpError{status: http.StatusBadRequest, err: fmt.Errorf(format, args...)}
}

// decodeRequest reads the JSON body of a call, at most maxRequest bytes,
// into v; a body that does not decode is a 400 naming what (the request).
func decodeRequest(w http.ResponseWriter, r *http.Request, what string, v any) error {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequest)).Decode(v); err != nil {
		return badRequest("%s: %v", what, err)
	}
	return nil
}

// errorBody is the JSON of a failed call that is not a stream.
type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code,omitempty"`
}

// errors renders the error of a handler; one place maps errors to status.
func (s *server) errors(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		status := http.StatusInternalServerError
		var he *httpError
		switch {
		case errors.As(err, &he):
			status = he.status
		case errors.Is(err, fs.ErrNotExist):
			status = http.StatusNotFound
		case errors.Is(err, ErrBadHash):
			status = http.StatusBadRequest
		case errors.Is(err, guest.ErrNoSnapshot):
			status = http.StatusNotFound
		}
		if status >= 500 {
			s.opts.Logger.Error("agent call failed", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		writeAnswer(w, status, errorBody{Error: err.Error(), Code: codeOf(err)})
	})
}

func writeAnswer(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *server) health(w http.ResponseWriter, r *http.Request) error {
	writeAnswer(w, http.StatusOK, Health{Name: s.opts.Name, Time: s.opts.Now().UTC().Format(time.RFC3339Nano)})
	return nil
}

func (s *server) capabilities(w http.ResponseWriter, r *http.Request) error {
	c := Capabilities{Kinds: map[string]guest.Capabilities{}}
	if s.opts.Drivers != nil {
		for _, k := range s.opts.Drivers.Kinds() {
			d, err := s.opts.Drivers.Driver(k)
			if err != nil {
				return err
			}
			c.Kinds[k] = d.Capabilities()
		}
	}
	writeAnswer(w, http.StatusOK, c)
	return nil
}

// linkName is what a Linux interface name may be here.
var linkName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,15}$`)

func (s *server) bridgeName(r *http.Request) (string, error) {
	name := r.PathValue("name")
	if !linkName.MatchString(name) {
		return "", badRequest("invalid bridge name %q", name)
	}
	if s.opts.Network == nil {
		return "", &httpError{status: http.StatusNotImplemented, err: errors.New("this host has no network driver")}
	}
	return name, nil
}

func (s *server) hasBridge(w http.ResponseWriter, r *http.Request) error {
	name, err := s.bridgeName(r)
	if err != nil {
		return err
	}
	ok, err := s.opts.Network.HasBridge(r.Context(), name)
	if err != nil {
		return err
	}
	writeAnswer(w, http.StatusOK, map[string]bool{"exists": ok})
	return nil
}

func (s *server) ensureBridge(w http.ResponseWriter, r *http.Request) error {
	name, err := s.bridgeName(r)
	if err != nil {
		return err
	}
	created, err := s.opts.Network.EnsureBridge(r.Context(), name)
	if err != nil {
		return err
	}
	if created {
		if err := s.rec.editNetwork(func(n *networkFile) {
			b := n.Bridges[name]
			b.Made = true
			n.Bridges[name] = b
		}); err != nil {
			return err
		}
	}
	writeAnswer(w, http.StatusOK, map[string]bool{"created": created})
	return nil
}

func (s *server) deleteBridge(w http.ResponseWriter, r *http.Request) error {
	name, err := s.bridgeName(r)
	if err != nil {
		return err
	}
	if err := s.opts.Network.DeleteBridge(r.Context(), name); err != nil {
		return err
	}
	if err := s.rec.bridgeGone(name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) allowBridge(w http.ResponseWriter, r *http.Request) error {
	name, err := s.bridgeName(r)
	if err != nil {
		return err
	}
	// Recorded first: rules half added are removed all the same.
	if err := s.rec.editNetwork(func(n *networkFile) {
		b := n.Bridges[name]
		b.Firewall = true
		n.Bridges[name] = b
	}); err != nil {
		return err
	}
	if err := s.opts.Network.AllowBridge(r.Context(), name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) removeBridge(w http.ResponseWriter, r *http.Request) error {
	name, err := s.bridgeName(r)
	if err != nil {
		return err
	}
	if err := s.opts.Network.RemoveBridge(r.Context(), name); err != nil {
		return err
	}
	var forget bool
	if err := s.rec.editNetwork(func(n *networkFile) {
		b, ok := n.Bridges[name]
		if !ok {
			return
		}
		b.Firewall = false
		n.Bridges[name] = b
		forget = !b.Made
	}); err != nil {
		return err
	}
	if forget {
		if err := s.rec.bridgeGone(name); err != nil {
			return err
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) hasFile(w http.ResponseWriter, r *http.Request) error {
	hash := r.PathValue("sha256")
	ok, err := s.cache.has(hash)
	if err != nil {
		return err
	}
	if !ok {
		w.Header().Set(receivedHeader, strconv.FormatInt(s.cache.received(hash), 10))
		w.WriteHeader(http.StatusNotFound)
		return nil
	}
	w.Header().Set(pathHeader, s.cache.path(hash))
	w.WriteHeader(http.StatusOK)
	return nil
}

// pathHeader carries, in answers about a file, where the client keeps it;
// receivedHeader, for a file not (wholly) there, how many bytes of it a
// broken upload left, where the next upload resumes.
const (
	pathHeader     = "X-Testbedos-Path"
	receivedHeader = "X-Testbedos-Received"
)

// putFile serves PUT /api/agent/files/{sha256}: the whole file, or with
// Content-Range "bytes START-END/TOTAL" the rest of it from where a broken
// upload ended. One upload of a file at a time.
func (s *server) putFile(w http.ResponseWriter, r *http.Request) error {
	hash := r.PathValue("sha256")
	offset, total, err := contentRange(r)
	if err != nil {
		return err
	}
	if !s.uploads.begin(hash) {
		return &httpError{status: http.StatusConflict, err: fmt.Errorf("file %s: %w", hash, errUploadBusy)}
	}
	defer s.uploads.end(hash)
	body := &idleReader{r: r.Body, rc: http.NewResponseController(w), idle: s.opts.UploadIdle}
	if err := s.cache.put(hash, body, offset, total); err != nil {
		if errors.Is(err, errOffset) {
			w.Header().Set(receivedHeader, strconv.FormatInt(s.cache.received(hash), 10))
			return &httpError{status: http.StatusConflict, err: err}
		}
		return err
	}
	w.Header().Set(pathHeader, s.cache.path(hash))
	w.WriteHeader(http.StatusCreated)
	return nil
}

// contentRange is where the body of an upload starts in the file and the
// file's size (-1: unknown, the body's end is the file's).
func contentRange(r *http.Request) (offset, total int64, err error) {
	cr := r.Header.Get("Content-Range")
	if cr == "" {
		return 0, r.ContentLength, nil
	}
	var end int64
	if _, err := fmt.Sscanf(cr, "bytes %d-%d/%d", &offset, &end, &total); err != nil || offset < 0 || end < offset-1 || end >= total {
		return 0, 0, badRequest("invalid Content-Range %q", cr)
	}
	if r.ContentLength >= 0 && r.ContentLength != end-offset+1 {
		return 0, 0, badRequest("Content-Range %q does not match the body's %d bytes", cr, r.ContentLength)
	}
	return offset, total, nil
}

// idleReader reads an upload's body, failing a read that waits longer
// than idle.
type idleReader struct {
	r    io.Reader
	rc   *http.ResponseController
	idle time.Duration
}

func (i *idleReader) Read(b []byte) (int, error) {
	_ = i.rc.SetReadDeadline(time.Now().Add(i.idle))
	return i.r.Read(b)
}

// uploads are the files being received now.
type uploads struct {
	mu sync.Mutex
	m  map[string]bool
}

func (u *uploads) begin(hash string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.m[hash] {
		return false
	}
	u.m[hash] = true
	return true
}

func (u *uploads) end(hash string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.m, hash)
}

func deploymentName(r *http.Request) (string, error) {
	name := r.PathValue("deployment")
	if !api.ValidName(name) {
		return "", badRequest("invalid deployment name %q", name)
	}
	return name, nil
}

func (s *server) deployed(w http.ResponseWriter, r *http.Request) error {
	name, err := deploymentName(r)
	if err != nil {
		return err
	}
	d, err := s.rec.deployed(name)
	if err != nil {
		return err
	}
	writeAnswer(w, http.StatusOK, d)
	return nil
}

// deployments serves GET /api/agent/deployed: the deployments this host has
// a record of, sorted.
func (s *server) deployments(w http.ResponseWriter, r *http.Request) error {
	names, err := s.rec.names()
	if err != nil {
		return err
	}
	writeAnswer(w, http.StatusOK, map[string][]string{"deployments": names})
	return nil
}
