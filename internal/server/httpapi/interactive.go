package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/net/capture"
	"github.com/testbedos/testbedos/internal/store"
	"github.com/testbedos/testbedos/internal/wsterm"
)

// Live works on the guests of up deployments (the engine): exec, console,
// capture and run-time impairments. Errors are in the api categories: an
// unknown guest or interface not found, a deployment that is not up a
// conflict, a kind or host without the feature invalid.
type Live interface {
	Exec(ctx context.Context, d api.Deployment, guestName string, cmd guest.Command) (int, error)
	Console(ctx context.Context, d api.Deployment, guestName string) (guest.Terminal, error)
	Capture(ctx context.Context, d api.Deployment, guestName, iface string, filter capture.Filter, w io.Writer) error
	GetImpairment(ctx context.Context, d api.Deployment, guestName, iface string) (api.InterfaceImpairment, error)
	SetImpairment(ctx context.Context, d api.Deployment, guestName, iface string, imp api.Impairment) (api.InterfaceImpairment, error)
}

// liveGuest checks the names of the request's path and returns the
// deployment and the guest's name.
func liveGuest(d Deps, r *http.Request) (api.Deployment, string, error) {
	name, guestName := r.PathValue("name"), r.PathValue("guest")
	if err := store.CheckName(name); err != nil {
		return api.Deployment{}, "", err
	}
	if !api.ValidName(guestName) {
		return api.Deployment{}, "", errorf(http.StatusBadRequest, nil, fmt.Sprintf("guest name %q does not match %s", guestName, api.NamePattern))
	}
	if iface := r.PathValue("iface"); iface != "" && !api.ValidName(iface) {
		return api.Deployment{}, "", errorf(http.StatusBadRequest, nil, fmt.Sprintf("interface name %q does not match %s", iface, api.NamePattern))
	}
	if d.Live == nil {
		return api.Deployment{}, "", errorf(http.StatusServiceUnavailable, nil, "this server cannot reach guests: it runs without the orchestration engine")
	}
	dep, err := d.Store.Deployment(r.Context(), name)
	return dep, guestName, err
}

// cappedBuffer keeps the first limit bytes written to it.
type cappedBuffer struct {
	mu        sync.Mutex
	buf       []byte
	limit     int
	truncated bool
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	room := c.limit - len(c.buf)
	if len(p) > room {
		c.truncated = true
		p = p[:max(room, 0)]
	}
	c.buf = append(c.buf, p...)
	return len(p), nil
}

func execGuest(d Deps) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		var req api.ExecRequest
		if err := decode(w, r, &req); err != nil {
			return err
		}
		timeout, err := execLimits(req.Command, req.Stdin, req.TimeoutS)
		if err != nil {
			return err
		}
		dep, guestName, err := liveGuest(d, r)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		res, err := runExec(ctx, d.Live, dep, guestName, req.Command, req.Stdin)
		if err != nil {
			if !errors.Is(err, context.DeadlineExceeded) || r.Context().Err() != nil {
				return err
			}
			res.ExitCode, res.TimedOut = -1, true
		}
		writeJSON(w, http.StatusOK, res)
		return nil
	}
}

// execLimits checks the command, standard input and timeout of an exec
// request (one guest or many) and returns the timeout to run it with.
func execLimits(argv []string, stdin []byte, timeoutS int) (time.Duration, error) {
	switch {
	case len(argv) == 0 || argv[0] == "":
		return 0, errorf(http.StatusBadRequest, nil, `"command" must be a non-empty list: the program and its arguments, e.g. ["ip", "addr"]`)
	case slices.ContainsFunc(argv, func(a string) bool { return strings.ContainsRune(a, 0) }):
		return 0, errorf(http.StatusBadRequest, nil, `"command" holds a NUL byte: no program can be given one`)
	case len(stdin) > api.ExecStdinCap:
		return 0, errorf(http.StatusRequestEntityTooLarge, nil, fmt.Sprintf(`"stdin" holds %d bytes, more than the %d an exec takes: copy big files into the guest another way`, len(stdin), api.ExecStdinCap))
	case timeoutS < 0 || timeoutS > api.MaxExecTimeoutS:
		return 0, errorf(http.StatusBadRequest, nil, fmt.Sprintf(`"timeout_s" %d must be between 1 and %d (0: the default %d)`, timeoutS, api.MaxExecTimeoutS, api.DefaultExecTimeoutS))
	case timeoutS == 0:
		return api.DefaultExecTimeoutS * time.Second, nil
	}
	return time.Duration(timeoutS) * time.Second, nil
}

// runExec runs argv in one guest with stdin (none when empty) and returns
// its exit code and capped output, also when err is set.
func runExec(ctx context.Context, live Live, dep api.Deployment, guestName string, argv []string, stdin []byte) (api.ExecResult, error) {
	stdout := &cappedBuffer{limit: api.ExecOutputCap}
	stderr := &cappedBuffer{limit: api.ExecOutputCap}
	gcmd := guest.Command{Argv: argv, Stdout: discardOnFull{stdout}, Stderr: discardOnFull{stderr}}
	if len(stdin) > 0 {
		gcmd.Stdin = bytes.NewReader(stdin)
	}
	code, err := live.Exec(ctx, dep, guestName, gcmd)
	res := api.ExecResult{ExitCode: code}
	stdout.mu.Lock()
	stderr.mu.Lock()
	res.Stdout, res.Stderr = string(stdout.buf), string(stderr.buf)
	res.Truncated = stdout.truncated || stderr.truncated
	stdout.mu.Unlock()
	stderr.mu.Unlock()
	return res, err
}

// discardOnFull claims every write succeeded, so a command whose output
// goes over the cap runs on (its extra output dropped) instead of dying of
// a broken pipe.
type discardOnFull struct{ c *cappedBuffer }

func (d discardOnFull) Write(p []byte) (int, error) {
	_, _ = d.c.Write(p)
	return len(p), nil
}

func consoleGuest(d Deps) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := checkHandshake(w, r); err != nil {
			return err
		}
		dep, guestName, err := liveGuest(d, r)
		if err != nil {
			return err
		}
		if d.StreamOpened != nil {
			if err := d.StreamOpened(); err != nil {
				return err
			}
			defer d.StreamClosed()
		}
		// The terminal outlives the request's context only as long as the
		// websocket does.
		ctx, cancel := untilStopping(context.WithoutCancel(r.Context()), d.Stopping)
		defer cancel()
		ctx, endWithCredential := untilCredentialEnds(ctx, r)
		defer endWithCredential()
		term, err := d.Live.Console(ctx, dep, guestName)
		if err != nil {
			return err // answered before the handshake: a JSON error
		}
		defer term.Close()
		conn, err := acceptStream(w, r)
		if err != nil {
			return nil
		}
		defer conn.CloseNow()
		conn.SetReadLimit(1 << 20)
		go func() {
			defer cancel()
			if wsterm.CopyOut(ctx, conn.Conn, term) && ctx.Err() == nil { // else the reading loop closes
				conn.Close(websocket.StatusNormalClosure, "the console ended")
			}
		}()
		for {
			typ, data, err := conn.Read(ctx)
			if err != nil {
				if credentialEnded(r) {
					closeCredentialEnded(conn)
					return nil
				}
				if ctx.Err() != nil && d.Stopping != nil {
					select {
					case <-d.Stopping:
						conn.closeWithin(websocket.StatusGoingAway, "the server is shutting down", closeGrace)
					default:
					}
				}
				return nil
			}
			if err := wsterm.Input(term, typ, data); err != nil {
				return nil
			}
		}
	}
}

// flushWriter sends every write to the client at once; the first one
// commits the pcap answer.
type flushWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	started bool
}

func (f *flushWriter) Write(p []byte) (int, error) {
	if !f.started {
		f.started = true
		f.w.Header().Set("Content-Type", "application/vnd.tcpdump.pcap")
		f.w.Header().Set("Cache-Control", "no-store")
		f.w.WriteHeader(http.StatusOK)
	}
	n, err := f.w.Write(p)
	if err == nil {
		err = f.rc.Flush()
	}
	return n, err
}

func captureGuest(d Deps) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		filter, err := capture.CompileFilter(r.URL.Query().Get("filter"))
		if err != nil {
			return errorf(http.StatusBadRequest, err, err.Error())
		}
		dep, guestName, err := liveGuest(d, r)
		if err != nil {
			return err
		}
		if d.StreamOpened != nil {
			if err := d.StreamOpened(); err != nil {
				return err
			}
			defer d.StreamClosed()
		}
		fw := &flushWriter{w: w, rc: http.NewResponseController(w)}
		// A capture runs as long as the client wants: no write deadline.
		_ = fw.rc.SetWriteDeadline(time.Time{})
		ctx, cancel := untilStopping(r.Context(), d.Stopping)
		defer cancel()
		ctx, endWithCredential := untilCredentialEnds(ctx, r)
		defer endWithCredential()
		err = d.Live.Capture(ctx, dep, guestName, r.PathValue("iface"), filter, fw)
		if err != nil && !fw.started {
			return err
		}
		if err != nil {
			d.Logger.Warn("capture ended", "guest", guestName, "err", err)
		}
		return nil
	}
}

// untilStopping is ctx, also cancelled when stop is closed.
func untilStopping(ctx context.Context, stop <-chan struct{}) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	if stop != nil {
		go func() {
			select {
			case <-stop:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	return ctx, cancel
}

func getImpairment(d Deps) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		dep, guestName, err := liveGuest(d, r)
		if err != nil {
			return err
		}
		imp, err := d.Live.GetImpairment(r.Context(), dep, guestName, r.PathValue("iface"))
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, imp)
		return nil
	}
}

// impairmentBody is api.Impairment as a PUT carries it: "up" left out is
// true.
type impairmentBody struct {
	Up         *bool   `json:"up"`
	DelayMS    int     `json:"delay_ms"`
	JitterMS   int     `json:"jitter_ms"`
	LossPct    float64 `json:"loss_pct"`
	RateKbit   int     `json:"rate_kbit"`
	CorruptPct float64 `json:"corrupt_pct"`
}

func putImpairment(d Deps) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		var b impairmentBody
		if err := decode(w, r, &b); err != nil {
			return err
		}
		dep, guestName, err := liveGuest(d, r)
		if err != nil {
			return err
		}
		imp := api.Impairment{Up: b.Up == nil || *b.Up, DelayMS: b.DelayMS, JitterMS: b.JitterMS, LossPct: b.LossPct, RateKbit: b.RateKbit, CorruptPct: b.CorruptPct}
		res, err := d.Live.SetImpairment(r.Context(), dep, guestName, r.PathValue("iface"), imp)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, res)
		return nil
	}
}
