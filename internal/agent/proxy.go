package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/testbedos/testbedos/internal/actlog"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/topology"
)

// proxyDriver is a guest.Driver of a client host: every call runs the
// client's own driver of that kind through the agent API.
type proxyDriver struct {
	h    *RemoteHost
	kind string
	caps guest.Capabilities
	// remote is what the client's driver can do.
	remote guest.Capabilities
}

// errArtefactsOnClient: the kind writes artefacts at generate-artefacts,
// which the agent does not do on a client host yet.
var errArtefactsOnClient = fmt.Errorf("guests of a kind that writes artefacts (libvirt) cannot run on a client host yet: %w", guest.ErrUnsupported)

var _ guest.Driver = (*proxyDriver)(nil)

// Kind implements guest.Driver.
func (p *proxyDriver) Kind() string { return p.kind }

// Capabilities implements guest.Driver: snapshots as the client's driver
// has them; artefacts never (not proxied).
func (p *proxyDriver) Capabilities() guest.Capabilities { return p.caps }

// Exists implements guest.Driver.
func (p *proxyDriver) Exists(ctx context.Context, dep guest.Deployment, g *topology.Guest) (bool, error) {
	last, err := p.h.stream(ctx, "guests/exists", GuestRequest{Deployment: dep.Name, Guest: *g}, nil)
	return last.Exists, err
}

// Find implements guest.Finder: the client's driver finds the guest in
// any form and says whose it is.
func (p *proxyDriver) Find(ctx context.Context, dep guest.Deployment, g *topology.Guest) (guest.Found, error) {
	last, err := p.h.stream(ctx, "guests/find", GuestRequest{Deployment: dep.Name, Guest: *g}, nil)
	if err != nil || last.Found == nil {
		return guest.Found{}, err
	}
	return *last.Found, nil
}

var _ guest.Finder = (*proxyDriver)(nil)

// Create implements guest.Driver: the files the guest's spec names (disk,
// ISO, kernel, initrd) are pushed first.
func (p *proxyDriver) Create(ctx context.Context, dep guest.Deployment, g *topology.Guest, log actlog.Log) (bool, error) {
	if p.remote.Artefacts {
		return false, fmt.Errorf("guest %s on host %s: %w", g.Name, p.h.Name(), errArtefactsOnClient)
	}
	var refs []string
	if l := g.Libvirt; l != nil {
		refs = []string{l.DiskPath, l.ISOPath, l.Kernel, l.Initrd}
	}
	files, err := p.push(ctx, dep, refs...)
	if err != nil {
		return false, fmt.Errorf("guest %s: %w", g.Name, err)
	}
	vols, err := p.pushVolumes(ctx, dep, g)
	if err != nil {
		return false, fmt.Errorf("guest %s: %w", g.Name, err)
	}
	last, err := p.h.stream(ctx, "guests/create", GuestRequest{Deployment: dep.Name, Guest: *g, Files: files, Volumes: vols}, log)
	return last.Created, err
}

// RunScript implements guest.Driver: the script is pushed (once per
// content), run by the client's driver, and its output arrives in log
// line by line, prefixed with the host's name.
func (p *proxyDriver) RunScript(ctx context.Context, dep guest.Deployment, g *topology.Guest, script string, log actlog.Log) error {
	files, err := p.push(ctx, dep, script)
	if err != nil {
		return fmt.Errorf("guest %s: script: %w", g.Name, err)
	}
	_, err = p.h.stream(ctx, "guests/script", GuestRequest{Deployment: dep.Name, Guest: *g, Files: files, Script: script}, log)
	return err
}

// Destroy implements guest.Driver. It needs no file: down works from the
// record even when the project folder is gone.
func (p *proxyDriver) Destroy(ctx context.Context, dep guest.Deployment, g *topology.Guest, log actlog.Log) error {
	_, err := p.h.stream(ctx, "guests/destroy", GuestRequest{Deployment: dep.Name, Guest: *g}, log)
	return err
}

// push sends the non-empty refs to the client and maps them to their
// sha256.
func (p *proxyDriver) push(ctx context.Context, dep guest.Deployment, refs ...string) (map[string]string, error) {
	files := map[string]string{}
	for _, ref := range refs {
		if ref == "" {
			continue
		}
		rf, ok := dep.Files.(*remoteFiles)
		if !ok || rf.h != p.h {
			return nil, fmt.Errorf("file %s: the deployment's files are not those of host %s", ref, p.h.Name())
		}
		hash, _, err := rf.push(ctx, ref)
		if err != nil {
			return nil, err
		}
		files[ref] = hash
	}
	return files, nil
}

// maxStreamLine bounds one NDJSON line of an answer (a 64 KiB log line,
// escaped).
const maxStreamLine = 8 * maxLine

// stream makes a guest call and copies its log lines into log (nil: none)
// with the prefix "[host] ". The call may last as long as ctx allows, but
// fails as unreachable when the client is silent for IdleTimeout (it sends
// keep-alive lines) or the stream ends before its last line.
func (h *RemoteHost) stream(ctx context.Context, path string, in any, log actlog.Log) (StreamLine, error) {
	return h.streamOutput(ctx, path, in, log, nil)
}

// streamOutput is stream that hands the lines with an exec's output to
// output (nil: none).
func (h *RemoteHost) streamOutput(ctx context.Context, path string, in any, log actlog.Log, output func(StreamLine) error) (StreamLine, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	idle := time.AfterFunc(h.opts.IdleTimeout, func() { cancel(errCallTimeout) })
	defer idle.Stop()

	data, err := json.Marshal(in)
	if err != nil {
		return StreamLine{}, err
	}
	resp, err := h.request(ctx, http.MethodPost, path, bytes.NewReader(data), int64(len(data)),
		http.Header{"Content-Type": {"application/json"}, "Accept": {"application/x-ndjson"}})
	if err != nil {
		return StreamLine{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return StreamLine{}, h.answerError(resp)
	}
	var w io.WriteCloser
	if log != nil {
		w = log.Writer("[" + h.Name() + "] ")
		defer w.Close()
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), maxStreamLine)
	for sc.Scan() {
		idle.Reset(h.opts.IdleTimeout)
		var l StreamLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return StreamLine{}, h.unreachable(ctx, http.MethodPost, path, fmt.Errorf("answer: %w", err))
		}
		switch {
		case l.Stdout != nil || l.Stderr != nil:
			if output != nil {
				if err := output(l); err != nil {
					return StreamLine{}, err
				}
			}
		case l.Line != nil:
			if w != nil {
				_, _ = io.WriteString(w, *l.Line+"\n")
			}
		case l.Error != "":
			return l, newRemoteError(h.Name(), l.Error, l.Code)
		case l.OK:
			return l, nil
		}
	}
	err = sc.Err()
	if err == nil {
		err = errors.New("the answer ended before its outcome")
	}
	return StreamLine{}, h.unreachable(ctx, http.MethodPost, path, err)
}
