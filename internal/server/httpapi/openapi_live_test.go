package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/getkin/kin-openapi/openapi3filter"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/net/capture"
	"github.com/testbedos/testbedos/internal/topology"
)

// The fake's live guests: liveGuest answers everything, noexecGuest is of
// a kind without the features. Any other guest is the real engine's (whose
// deployments here never have guests recorded: 404 or 409).
const (
	liveGuest   = "vm1"
	noexecGuest = "noexec"
)

var errNoFeature = fmt.Errorf("guest %s: %w", noexecGuest, guest.ErrUnsupported)

func (f *fakeEngine) Exec(ctx context.Context, d api.Deployment, g string, cmd guest.Command) (int, error) {
	switch g {
	case noexecGuest:
		return 0, errNoFeature
	case liveGuest:
		if cmd.Argv[0] == "cat" && cmd.Stdin != nil {
			_, err := io.Copy(cmd.Stdout, cmd.Stdin)
			return 0, err
		}
		if cmd.Argv[0] == "sleep" {
			fmt.Fprintln(cmd.Stdout, "sleeping")
			<-ctx.Done()
			return -1, ctx.Err()
		}
		fmt.Fprintln(cmd.Stdout, strings.Join(cmd.Argv, " "))
		fmt.Fprintln(cmd.Stderr, "warn")
		return 3, nil
	}
	return f.real.Exec(ctx, d, g, cmd)
}

// echoTerminal echoes what is typed; it records resizes.
type echoTerminal struct {
	r     *io.PipeReader
	w     *io.PipeWriter
	mu    sync.Mutex
	sizes []string
}

func (e *echoTerminal) Read(p []byte) (int, error)  { return e.r.Read(p) }
func (e *echoTerminal) Write(p []byte) (int, error) { return e.w.Write(p) }
func (e *echoTerminal) Close() error                { e.w.Close(); return e.r.Close() }
func (e *echoTerminal) Resize(c, r uint16) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.sizes = append(e.sizes, fmt.Sprintf("%dx%d", c, r))
	// Say so on the screen, so the test can wait for it.
	go fmt.Fprintf(e.w, "[resized %dx%d]", c, r)
	return nil
}

func (f *fakeEngine) Console(ctx context.Context, d api.Deployment, g string) (guest.Terminal, error) {
	switch g {
	case noexecGuest:
		return nil, errNoFeature
	case liveGuest:
		r, w := io.Pipe()
		return &echoTerminal{r: r, w: w}, nil
	}
	return f.real.Console(ctx, d, g)
}

func (f *fakeEngine) Capture(ctx context.Context, d api.Deployment, g, iface string, filter capture.Filter, w io.Writer) error {
	switch g {
	case noexecGuest:
		return errNoFeature
	case liveGuest:
		_, err := w.Write([]byte{0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 1, 0, 0, 0})
		return err
	}
	return f.real.Capture(ctx, d, g, iface, filter, w)
}

func (f *fakeEngine) GetImpairment(ctx context.Context, d api.Deployment, g, iface string) (api.InterfaceImpairment, error) {
	switch g {
	case noexecGuest:
		return api.InterfaceImpairment{}, errNoFeature
	case liveGuest:
		return api.InterfaceImpairment{Guest: g, Interface: iface, HostLink: "tb-x", Impairment: api.Impairment{Up: true, DelayMS: 20}, Source: "yaml"}, nil
	}
	return f.real.GetImpairment(ctx, d, g, iface)
}

func (f *fakeEngine) SetImpairment(ctx context.Context, d api.Deployment, g, iface string, imp api.Impairment) (api.InterfaceImpairment, error) {
	n := topology.Netem{DelayMS: imp.DelayMS, JitterMS: imp.JitterMS, LossPct: imp.LossPct, RateKbit: imp.RateKbit, CorruptPct: imp.CorruptPct}
	switch {
	case n.Check() != nil || (g != liveGuest && g != noexecGuest):
		// The real engine checks the values first.
		return f.real.SetImpairment(ctx, d, g, iface, imp)
	case g == noexecGuest:
		return api.InterfaceImpairment{}, errNoFeature
	}
	return api.InterfaceImpairment{Guest: g, Interface: iface, HostLink: "tb-x", Impairment: imp, Source: "runtime"}, nil
}

// liveExchanges drives the guest routes (exec, console, interfaces,
// capture) of deployment lab, which has no guest recorded as made.
func liveExchanges(t *testing.T, c *contract, tb *testbed) {
	openapi3filter.RegisterBodyDecoder("application/vnd.tcpdump.pcap", openapi3filter.FileBodyDecoder)
	tcp := tb.tcp
	const g = "/api/deployments/lab/guests/"
	exec := func(guest, body string, want int, v verdict) []byte {
		t.Helper()
		_, data := c.do(t, tcp, call{method: "POST", path: g + guest + "/exec", body: body, want: want, doc: v})
		return data
	}
	var res api.ExecResult
	if err := json.Unmarshal(exec(liveGuest, `{"command":["echo","hi"]}`, 200, docAccepts), &res); err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 3 || res.Stdout != "echo hi\n" || res.Stderr != "warn\n" {
		t.Errorf("exec: %+v", res)
	}
	start := time.Now()
	res = api.ExecResult{}
	if err := json.Unmarshal(exec(liveGuest, `{"command":["sleep"],"timeout_s":1}`, 200, docAccepts), &res); err != nil {
		t.Fatal(err)
	}
	if !res.TimedOut || res.ExitCode != -1 || res.Stdout != "sleeping\n" || time.Since(start) > 10*time.Second {
		t.Errorf("exec with a timeout: %+v after %v", res, time.Since(start))
	}
	res = api.ExecResult{}
	if err := json.Unmarshal(exec(liveGuest, `{"command":["cat"],"stdin":"eA=="}`, 200, docAccepts), &res); err != nil || res.Stdout != "x" {
		t.Errorf("exec with stdin: %+v (%v)", res, err)
	}
	exec(liveGuest, `{"command":["cat"],"stdin":"`+strings.Repeat("QUFB", api.ExecStdinCap/3+2)+`"}`, 413, docRejects)
	exec(liveGuest, `{"command":[]}`, 400, docRejects)
	exec(liveGuest, `{"command":["x"],"timeout_s":3601}`, 400, docRejects)
	exec(liveGuest, `{"command":["x"],"extra":1}`, 400, docRejects)
	exec("Web", `{"command":["x"]}`, 400, docRejects)
	exec("web", `{"command":["x"]}`, 409, docAccepts) // not recorded as made
	exec(noexecGuest, `{"command":["x"]}`, 422, docAccepts)
	c.do(t, tcp, call{method: "POST", path: "/api/deployments/nope/guests/web/exec", body: `{"command":["x"]}`, want: 404})

	// Interfaces.
	ifc := g + liveGuest + "/interfaces/eth0"
	var imp api.InterfaceImpairment
	c.doJSON(t, tcp, call{method: "GET", path: ifc, want: 200}, &imp)
	if imp.DelayMS != 20 || !imp.Up {
		t.Errorf("impairment: %+v", imp)
	}
	imp = api.InterfaceImpairment{}
	c.doJSON(t, tcp, call{method: "PUT", path: ifc, body: `{"delay_ms":100,"loss_pct":2.5}`, want: 200}, &imp)
	if imp.DelayMS != 100 || imp.LossPct != 2.5 || !imp.Up || imp.Source != "runtime" {
		t.Errorf("impairment put: %+v", imp)
	}
	for _, x := range []call{
		{method: "PUT", path: ifc, body: `{"loss_pct":150}`, want: 422, doc: docRejects},
		{method: "PUT", path: ifc, body: `{"jitter_ms":5}`, want: 422, doc: docEither},
		{method: "PUT", path: ifc, body: `{"delay_ms":"x"}`, want: 400, doc: docRejects},
		{method: "PUT", path: ifc, body: `{"up":false,"colour":1}`, want: 400, doc: docRejects},
		{method: "PUT", path: g + "web/interfaces/eth0", body: `{"up":false}`, want: 409},
		{method: "PUT", path: g + noexecGuest + "/interfaces/eth0", body: `{"up":false}`, want: 422, doc: docEither},
		{method: "PUT", path: "/api/deployments/nope/guests/web/interfaces/eth0", body: `{}`, want: 404},
		{method: "GET", path: g + "web/interfaces/eth0", want: 409},
		{method: "GET", path: g + noexecGuest + "/interfaces/eth0", want: 422},
		{method: "GET", path: g + liveGuest + "/interfaces/Eth0", want: 400, doc: docRejects},
		{method: "GET", path: "/api/deployments/nope/guests/web/interfaces/eth0", want: 404},
	} {
		c.do(t, tcp, x)
	}

	// Capture.
	capture := g + liveGuest + "/interfaces/eth0/capture"
	hdr, body := c.do(t, tcp, call{method: "GET", path: capture + "?filter=icmp", want: 200})
	if ct := hdr.Get("Content-Type"); ct != "application/vnd.tcpdump.pcap" || len(body) != 24 {
		t.Errorf("capture: %q, %d bytes", ct, len(body))
	}
	c.do(t, tcp, call{method: "GET", path: capture + "?filter=" + url.QueryEscape("not arp and (tcp or udp)"), want: 200})
	_, body = c.do(t, tcp, call{method: "GET", path: capture + "?filter=tcp+xor+udp", want: 400})
	if !strings.Contains(string(body), `\"xor\"`) {
		t.Errorf("capture with a bad filter: %s", body)
	}
	c.do(t, tcp, call{method: "GET", path: g + "web/interfaces/eth0/capture", want: 409})
	c.do(t, tcp, call{method: "GET", path: g + noexecGuest + "/interfaces/eth0/capture", want: 422})
	c.do(t, tcp, call{method: "GET", path: "/api/deployments/nope/guests/web/interfaces/eth0/capture", want: 404})

	// Console.
	console := g + liveGuest + "/console"
	consoleSession(t, c, tcp, console)
	c.do(t, tcp, call{method: "GET", path: console, want: 426, doc: docRejects})
	badVersion := wsHeaders()
	badVersion.Set("Sec-Websocket-Version", "12")
	c.do(t, tcp, call{method: "GET", path: console, header: badVersion, want: 400, doc: docRejects})
	crossOrigin := wsHeaders()
	crossOrigin.Set("Origin", "http://elsewhere.example")
	c.do(t, tcp, call{method: "GET", path: console, header: crossOrigin, want: 403})
	c.do(t, tcp, call{method: "GET", path: g + "web/console", header: wsHeaders(), want: 409})
	c.do(t, tcp, call{method: "GET", path: g + noexecGuest + "/console", header: wsHeaders(), want: 422})
	c.do(t, tcp, call{method: "GET", path: "/api/deployments/nope/guests/web/console", header: wsHeaders(), want: 404})
}

// consoleSession types into the fake's echoing console and reads it back,
// and resizes it.
func consoleSession(t *testing.T, c *contract, d door, path string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rec := &recorder{base: d.client.Transport}
	header := http.Header{"Authorization": {"Bearer " + d.token}}
	conn, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(d.base, "http")+path, &websocket.DialOptions{HTTPClient: &http.Client{Transport: rec}, HTTPHeader: header})
	if err != nil {
		t.Fatalf("console: %v", err)
	}
	defer conn.CloseNow()
	c.check(t, docAccepts, rec.req.WithContext(context.WithValue(context.Background(), viaSocket{}, d.socket)), resp.StatusCode, resp.Header, nil)
	readUntil := func(want string) {
		t.Helper()
		var got string
		for !strings.Contains(got, want) {
			_, data, err := conn.Read(ctx)
			if err != nil {
				t.Fatalf("console: read %q so far, waiting for %q: %v", got, want, err)
			}
			got += string(data)
		}
	}
	if err := conn.Write(ctx, websocket.MessageBinary, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	readUntil("hello")
	if err := conn.Write(ctx, websocket.MessageText, []byte(`{"type":"resize","cols":120,"rows":40}`)); err != nil {
		t.Fatal(err)
	}
	readUntil("[resized 120x40]")
	conn.Close(websocket.StatusNormalClosure, "")
}

// liveFaults asks the guest routes of a deployment whose record is broken
// (after realFaults): real faults, 500.
func liveFaults(t *testing.T, c *contract, tb *testbed) {
	const g = "/api/deployments/broken/guests/web"
	for _, x := range []call{
		{method: "POST", path: g + "/exec", body: `{"command":["x"]}`},
		{method: "GET", path: g + "/console", header: wsHeaders()},
		{method: "GET", path: g + "/interfaces/eth0"},
		{method: "PUT", path: g + "/interfaces/eth0", body: `{}`},
		{method: "GET", path: g + "/interfaces/eth0/capture"},
	} {
		x.want = 500
		c.do(t, tb.tcp, x)
	}
}

// liveUnavailable asks the guest routes of a server without the engine.
func liveUnavailable(t *testing.T, c *contract, plain *testbed) {
	const g = "/api/deployments/lab/guests/vm1"
	for _, x := range []call{
		{method: "POST", path: g + "/exec", body: `{"command":["x"]}`},
		{method: "GET", path: g + "/console", header: wsHeaders()},
		{method: "GET", path: g + "/interfaces/eth0"},
		{method: "PUT", path: g + "/interfaces/eth0", body: `{}`},
		{method: "GET", path: g + "/interfaces/eth0/capture"},
	} {
		x.want = 503
		c.do(t, plain.tcp, x)
	}
}
