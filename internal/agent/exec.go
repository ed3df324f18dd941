package agent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/topology"
)

// Exec of client guests: the main's engine calls Exec on the proxy driver;
// the agent runs the client's own driver's (guest.Execer) through
// POST /api/agent/guests/exec, the command's stdin in the request, its
// output streamed back in order as it comes, its exit status on the last
// line.

var _ guest.Execer = (*proxyDriver)(nil)

// Exec implements guest.Execer. Stdin is read whole first (an exec's stdin
// is bounded: api.ExecStdinCap).
func (p *proxyDriver) Exec(ctx context.Context, dep guest.Deployment, g *topology.Guest, cmd guest.Command) (int, error) {
	req := GuestRequest{Deployment: dep.Name, Guest: *g, Argv: cmd.Argv}
	if cmd.Stdin != nil {
		data, err := io.ReadAll(io.LimitReader(cmd.Stdin, api.ExecStdinCap+1))
		if err != nil {
			return 0, fmt.Errorf("guest %s: stdin: %w", g.Name, err)
		}
		if len(data) > api.ExecStdinCap {
			return 0, fmt.Errorf("guest %s: stdin holds more than the %d bytes an exec on a client host takes", g.Name, api.ExecStdinCap)
		}
		req.Stdin = data
	}
	last, err := p.h.streamOutput(ctx, "guests/exec", req, nil, func(l StreamLine) error {
		return writeOutput(cmd, l)
	})
	return last.Exit, err
}

// writeOutput copies a line's output to the command's writers (nil ones
// drop it).
func writeOutput(cmd guest.Command, l StreamLine) error {
	for _, o := range []struct {
		data []byte
		w    io.Writer
	}{{l.Stdout, cmd.Stdout}, {l.Stderr, cmd.Stderr}} {
		if len(o.data) == 0 || o.w == nil {
			continue
		}
		if _, err := o.w.Write(o.data); err != nil {
			return err
		}
	}
	return nil
}

// execute runs the client driver's Exec for guestCall: output goes into
// the answer's stream as it comes.
func execute(ctx context.Context, drv guest.Driver, dep guest.Deployment, g *topology.Guest, req GuestRequest, sw *streamWriter) (StreamLine, error) {
	x, err := guest.As[guest.Execer](drv)
	if err != nil {
		return StreamLine{}, &httpError{status: http.StatusUnprocessableEntity, err: err}
	}
	cmd := guest.Command{Argv: req.Argv, Stdout: outputWriter{sw: sw}, Stderr: outputWriter{sw: sw, stderr: true}}
	if len(req.Stdin) > 0 {
		cmd.Stdin = bytes.NewReader(req.Stdin)
	}
	code, err := x.Exec(ctx, dep, g, cmd)
	return StreamLine{Exit: code}, err
}

// outputWriter sends what a command writes as stream lines of at most
// maxLine bytes.
type outputWriter struct {
	sw     *streamWriter
	stderr bool
}

func (o outputWriter) Write(p []byte) (int, error) {
	for rest := p; len(rest) > 0; {
		chunk := rest[:min(len(rest), maxLine)]
		rest = rest[len(chunk):]
		l := StreamLine{Stdout: bytes.Clone(chunk)}
		if o.stderr {
			l = StreamLine{Stderr: l.Stdout}
		}
		o.sw.send(l)
	}
	return len(p), nil
}
