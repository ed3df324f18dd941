package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"

	"github.com/testbedos/testbedos/internal/engine"
	"github.com/testbedos/testbedos/internal/net/capture"
	"github.com/testbedos/testbedos/internal/net/impair"
)

// The links of client guests: the main's engine impairs and captures the
// host-side end of a guest's link the same way on every host (engine.LinkOps),
// so the same works for every guest kind the client runs. On a client the
// agent relays the calls to its own network:
//
//	GET  /api/agent/links/{name}             {"up": bool}
//	PUT  /api/agent/links/{name}/impairment  ImpairRequest → 204
//	POST /api/agent/links/{name}/capture     CaptureRequest → a pcap stream

// ImpairRequest is the body of PUT /api/agent/links/{name}/impairment.
type ImpairRequest struct {
	Impairment impair.Impairment `json:"impairment"`
	Up         bool              `json:"up"`
}

// CaptureRequest is the body of POST /api/agent/links/{name}/capture: the
// filter the main compiled (the same program the main's own capture runs).
type CaptureRequest struct {
	Filter capture.Filter `json:"filter,omitempty"`
}

var _ engine.LinkOps = remoteNetwork{}

// linkOps is this host's network's link operations for the link the path
// names.
func (s *server) linkOps(r *http.Request) (engine.LinkOps, string, error) {
	name := r.PathValue("name")
	if !linkName.MatchString(name) {
		return nil, "", badRequest("invalid link name %q", name)
	}
	ops, ok := s.opts.Network.(engine.LinkOps)
	if !ok {
		return nil, "", &httpError{status: http.StatusNotImplemented, err: fmt.Errorf("this host's network cannot impair or capture links: %w", engine.ErrNoLinkOps)}
	}
	return ops, name, nil
}

func (s *server) linkState(w http.ResponseWriter, r *http.Request) error {
	ops, name, err := s.linkOps(r)
	if err != nil {
		return err
	}
	up, err := ops.LinkUp(r.Context(), name)
	if err != nil {
		return &httpError{status: http.StatusNotFound, err: err}
	}
	writeAnswer(w, http.StatusOK, map[string]bool{"up": up})
	return nil
}

func (s *server) impairLink(w http.ResponseWriter, r *http.Request) error {
	ops, name, err := s.linkOps(r)
	if err != nil {
		return err
	}
	var req ImpairRequest
	if err := decodeRequest(w, r, "impairment", &req); err != nil {
		return err
	}
	// Recorded first: an impairment half set is set again at a restart.
	if err := s.rec.editNetwork(func(n *networkFile) { n.setLink(name, req) }); err != nil {
		return err
	}
	if err := ops.Impair(r.Context(), name, req.Impairment, req.Up); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// captureLink streams the pcap of a link. The answer's status waits for the
// capture's first byte (the pcap header, written once the socket is open),
// so a capture that cannot start is an error answer, not an empty stream.
func (s *server) captureLink(w http.ResponseWriter, r *http.Request) error {
	ops, name, err := s.linkOps(r)
	if err != nil {
		return err
	}
	var req CaptureRequest
	if err := decodeRequest(w, r, "capture", &req); err != nil {
		return err
	}
	fw := &flushWriter{w: w, rc: http.NewResponseController(w)}
	err = ops.Capture(r.Context(), name, req.Filter, fw)
	if fw.started() {
		return nil // the stream ends: the main sees its end
	}
	if err == nil {
		err = errors.New("the capture ended before it started")
	}
	return err
}

// flushWriter writes a streamed answer, each write flushed; its first write
// sends the status.
type flushWriter struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	rc      *http.ResponseController
	written bool
}

func (f *flushWriter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.written {
		f.w.Header().Set("Content-Type", "application/vnd.tcpdump.pcap")
		f.w.WriteHeader(http.StatusOK)
		f.written = true
	}
	n, err := f.w.Write(p)
	if err == nil {
		err = f.rc.Flush()
	}
	return n, err
}

func (f *flushWriter) started() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.written
}

func linkPath(name string, rest ...string) string {
	p := "links/" + url.PathEscape(name)
	for _, r := range rest {
		p += "/" + r
	}
	return p
}

// Impair implements engine.LinkOps.
func (n remoteNetwork) Impair(ctx context.Context, link string, imp impair.Impairment, up bool) error {
	return n.h.callJSON(ctx, http.MethodPut, linkPath(link, "impairment"), ImpairRequest{Impairment: imp, Up: up}, nil)
}

// LinkUp implements engine.LinkOps.
func (n remoteNetwork) LinkUp(ctx context.Context, link string) (bool, error) {
	var out struct {
		Up bool `json:"up"`
	}
	err := n.h.callJSON(ctx, http.MethodGet, linkPath(link), nil, &out)
	return out.Up, err
}

// Capture implements engine.LinkOps: the client captures, the pcap stream
// is copied to w until ctx ends. An error before the stream starts is the
// client's answer.
func (n remoteNetwork) Capture(ctx context.Context, link string, filter capture.Filter, w io.Writer) error {
	data, err := json.Marshal(CaptureRequest{Filter: filter})
	if err != nil {
		return err
	}
	path := linkPath(link, "capture")
	resp, err := n.h.request(ctx, http.MethodPost, path, bytes.NewReader(data), int64(len(data)), http.Header{"Content-Type": {"application/json"}})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return n.h.answerError(resp)
	}
	if _, err := io.Copy(w, resp.Body); err != nil && ctx.Err() == nil {
		return n.h.unreachable(ctx, http.MethodPost, path, err)
	}
	return nil
}
