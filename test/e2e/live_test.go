package e2e

import (
	"context"
	"encoding/binary"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/net/nettest"
)

// liveLab limits web's link to 20 kbit/s, from the YAML.
const liveLab = `machines:
  - name: web
    network:
      - switch: sw0
        ip: 10.0.0.10
        netem: {rate_kbit: 20}
  - name: client
    network:
      - switch: sw0
        ip: 10.0.0.20
network:
  switches:
    sw0: {subnet: 10.0.0.0/24}
`

var rttLine = regexp.MustCompile(`= ([\d.]+)/([\d.]+)/([\d.]+)/[\d.]+ ms`)

// pingRTT pings web from client through exec with args and returns the
// mean and the longest round trip; ok is false when no reply came.
func pingRTT(t *testing.T, s *server, name string, args ...string) (avg, longest time.Duration, ok bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	argv := append(append([]string{"ping", "-n", "-q"}, args...), "10.0.0.10")
	res, err := s.c.Exec(ctx, name, "client", api.ExecRequest{Command: argv, TimeoutS: 30})
	if err != nil {
		t.Fatalf("exec ping: %v", err)
	}
	m := rttLine.FindStringSubmatch(res.Stdout)
	if m == nil {
		return 0, 0, false
	}
	ms := func(s string) time.Duration {
		f, _ := strconv.ParseFloat(s, 64)
		return time.Duration(f * float64(time.Millisecond))
	}
	return ms(m[2]), ms(m[3]), true
}

// avgRTT is the mean of three pings.
func avgRTT(t *testing.T, s *server, name string) (time.Duration, bool) {
	t.Helper()
	avg, _, ok := pingRTT(t, s, name, "-c", "3", "-i", "0.2", "-W", "1")
	return avg, ok
}

// burstRTT sends 6 large pings 10 ms apart, waits (up to 10 s) for all
// replies and returns the longest round trip: over a link limited to
// 20 kbit/s (580 ms a packet, a burst of 3) the last waits near 2 s;
// without a limit, about a millisecond.
func burstRTT(t *testing.T, s *server, name string) time.Duration {
	t.Helper()
	_, longest, ok := pingRTT(t, s, name, "-c", "6", "-i", "0.01", "-s", "1400", "-w", "10")
	if !ok {
		t.Errorf("burst of pings: no reply")
	}
	return longest
}

// TestLiveImpairExecConsoleCapture: a rate limit from the YAML and at run
// time shows in ping times, a link down stops pings, the run-time setting
// survives a server restart and a re-made guest; exec, the CLI's exec,
// the console and a capture work on a real namespace. (Delays need the
// kernel's netem: TestLiveNetemDelay.)
func TestLiveImpairExecConsoleCapture(t *testing.T) {
	nettest.RequireRoot(t)
	s := startServer(t)
	lab := generated(t, s, "live", liveLab, nil)
	name, dir, st := lab.name, lab.dir, lab.st
	up := strings.Join(mustSucceed(t, s, name, cmd(api.CmdUp)), "\n")
	if !strings.Contains(up, "guest web: impaired eth0 rate 20kbit (yaml)") {
		t.Errorf("up log does not say web is impaired:\n%s", up)
	}
	ctx := context.Background()

	// The YAML's rate limit.
	if d := burstRTT(t, s, name); d < 500*time.Millisecond {
		t.Errorf("longest rtt of a burst over 20 kbit/s: %v, want over 500 ms", d)
	}
	imp, err := s.c.Impairment(ctx, name, "web", "eth0")
	if err != nil || imp.RateKbit != 20 || !imp.Up || imp.Source != "yaml" || imp.HostLink != st.Guests[0].Interfaces[0].HostName {
		t.Errorf("web eth0: %+v, %v", imp, err)
	}

	// Lifted at run time on web, then set on client's link.
	if _, err := s.c.SetImpairment(ctx, name, "web", "eth0", api.Impairment{Up: true}); err != nil {
		t.Fatal(err)
	}
	// Limited, the burst takes seconds; unlimited, well under one even on
	// a loaded machine.
	if d := burstRTT(t, s, name); d > time.Second {
		t.Errorf("longest rtt of a burst without a limit: %v", d)
	}
	if _, err := s.c.SetImpairment(ctx, name, "client", "eth0", api.Impairment{Up: true, RateKbit: 20}); err != nil {
		t.Fatal(err)
	}
	if d := burstRTT(t, s, name); d < 500*time.Millisecond {
		t.Errorf("longest rtt of a burst with client at 20 kbit/s: %v", d)
	}

	// A link down stops pings; up brings them back, the limit kept.
	if _, err := s.c.SetImpairment(ctx, name, "client", "eth0", api.Impairment{Up: false, RateKbit: 20}); err != nil {
		t.Fatal(err)
	}
	if rtt, ok := avgRTT(t, s, name); ok {
		t.Errorf("ping over a link that is down answered in %v", rtt)
	}
	if imp, _ := s.c.Impairment(ctx, name, "client", "eth0"); imp.Up {
		t.Errorf("client eth0 after down: %+v", imp)
	}
	if _, err := s.c.SetImpairment(ctx, name, "client", "eth0", api.Impairment{Up: true, RateKbit: 20}); err != nil {
		t.Fatal(err)
	}
	if _, ok := avgRTT(t, s, name); !ok {
		t.Error("no ping after the link came back")
	}

	// Out of range values are refused.
	if _, err := s.c.SetImpairment(ctx, name, "client", "eth0", api.Impairment{Up: true, LossPct: 120}); err == nil || !strings.Contains(err.Error(), "loss_pct") {
		t.Errorf("loss 120%%: %v", err)
	}

	// The record survives a restart; up --provision re-makes the guests
	// and sets the run-time limit again.
	// ...with a capture and a console open: they end with the server.
	openCapture, err := s.c.Capture(ctx, name, "web", "eth0", "")
	if err != nil {
		t.Fatal(err)
	}
	defer openCapture.Close()
	openConsole, err := s.c.OpenConsole(ctx, name, "client")
	if err != nil {
		t.Fatal(err)
	}
	defer openConsole.Close()
	stopping := time.Now()
	s.stop(t)
	if took := time.Since(stopping); took > 15*time.Second {
		t.Errorf("the server took %v to stop with a capture and a console open", took)
	}
	s.start(t)
	imp, err = s.c.Impairment(ctx, name, "client", "eth0")
	if err != nil || imp.RateKbit != 20 || imp.Source != "runtime" || !imp.Up {
		t.Errorf("client eth0 after a restart: %+v, %v", imp, err)
	}
	reup := strings.Join(mustSucceed(t, s, name, api.ActionRequest{Command: api.Command{Name: api.CmdUp, Up: api.UpOptions{Provision: true}}}), "\n")
	if !strings.Contains(reup, "guest client: impaired eth0 rate 20kbit (runtime)") || strings.Contains(reup, "guest web: impaired") {
		t.Errorf("re-made guests not impaired as recorded:\n%s", reup)
	}
	if d := burstRTT(t, s, name); d < 500*time.Millisecond {
		t.Errorf("longest rtt of a burst after re-making the guests: %v", d)
	}

	// exec: output, exit status, timeout.
	res, err := s.c.Exec(ctx, name, "web", api.ExecRequest{Command: []string{"sh", "-c", "echo out $TESTBEDOS_GUEST; echo err >&2; exit 3"}})
	if err != nil || res.ExitCode != 3 || res.Stdout != "out web\n" || res.Stderr != "err\n" {
		t.Errorf("exec: %+v, %v", res, err)
	}
	start := time.Now()
	res, err = s.c.Exec(ctx, name, "web", api.ExecRequest{Command: []string{"sh", "-c", "echo started; sleep 30"}, TimeoutS: 1})
	if err != nil || !res.TimedOut || res.ExitCode != -1 || res.Stdout != "started\n" || time.Since(start) > 10*time.Second {
		t.Errorf("exec with timeout: %+v, %v after %v", res, err, time.Since(start))
	}
	res, err = s.c.Exec(ctx, name, "web", api.ExecRequest{Command: []string{"ip", "-o", "addr", "show", "eth0"}})
	if err != nil || !strings.Contains(res.Stdout, "10.0.0.10/24") {
		t.Errorf("exec does not run in the namespace: %+v, %v", res, err)
	}
	code, out := kvmCompose(t, s, dir, "--project-name", name, "exec", "web", "--", "sh", "-c", "echo via cli; exit 7")
	if code != 7 || !strings.Contains(out, "via cli") {
		t.Errorf("kvm-compose exec: exit %d, output %q; want 7", code, out)
	}
	if _, out := kvmCompose(t, s, dir, "--project-name", name, "netem", "client", "eth0"); !strings.Contains(out, "up, rate 20kbit (set at run time)") {
		t.Errorf("kvm-compose netem: %q", out)
	}

	// console: type a command, read its output.
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	con, err := s.c.OpenConsole(cctx, name, "web")
	if err != nil {
		t.Fatal(err)
	}
	if err := con.Resize(100, 30); err != nil {
		t.Fatal(err)
	}
	if _, err := con.Write([]byte("echo console-$((6*7)) $(stty size)\n")); err != nil {
		t.Fatal(err)
	}
	screen := readUntil(t, con, "console-42 30 100")
	if t.Failed() {
		t.Logf("console screen: %q", screen)
	}
	con.Close()

	// capture while pinging: the pcap holds the echo requests and replies.
	capCtx, stopCapture := context.WithCancel(ctx)
	stream, err := s.c.Capture(capCtx, name, "web", "eth0", "icmp")
	if err != nil {
		t.Fatal(err)
	}
	pings := make(chan bool, 1)
	go func() { _, ok := avgRTT(t, s, name); pings <- ok }()
	readICMP(t, stream, "10.0.0.20", "10.0.0.10", 3)
	stopCapture()
	stream.Close()
	if !<-pings {
		t.Error("the pings during the capture failed")
	}

	// The CLI writes the same into a file until Ctrl-C.
	capFile := filepath.Join(t.TempDir(), "web.pcap")
	capCLI := exec.Command(bins.cli, "--project-name", name, "capture", "web", "eth0", "-w", capFile, "--filter", "icmp and host 10.0.0.20")
	capCLI.Dir, capCLI.Env = dir, append(s.env, "TESTBEDOS_SOCKET="+s.socket)
	var capOut strings.Builder
	capCLI.Stdout, capCLI.Stderr = &capOut, &capOut
	if err := capCLI.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200 && fileSize(capFile) < 24; i++ {
		time.Sleep(50 * time.Millisecond)
	}
	avgRTT(t, s, name)
	for i := 0; i < 100 && fileSize(capFile) < 24+6*(16+98); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	capCLI.Process.Signal(os.Interrupt)
	if err := capCLI.Wait(); err != nil {
		t.Errorf("kvm-compose capture after Ctrl-C: %v\n%s", err, capOut.String())
	}
	data, _ := os.ReadFile(capFile)
	if n := len(data); n < 24+6*(16+98) || binary.LittleEndian.Uint32(data) != 0xa1b2c3d4 {
		t.Errorf("kvm-compose capture -w wrote %d bytes (%x…), want the header and 6 pings", n, data[:min(n, 24)])
	}

	mustSucceed(t, s, name, cmd(api.CmdDown))
	assertNothingLeft(t, st)
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// readUntil reads r until want shows up (or 20 s pass).
func readUntil(t *testing.T, r io.Reader, want string) string {
	t.Helper()
	got := make(chan string, 1)
	go func() {
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			b.Write(buf[:n])
			if strings.Contains(b.String(), want) || err != nil {
				got <- b.String()
				return
			}
		}
	}()
	select {
	case s := <-got:
		if !strings.Contains(s, want) {
			t.Errorf("console ended before %q: %q", want, s)
		}
		return s
	case <-time.After(20 * time.Second):
		t.Errorf("console did not show %q within 20 s", want)
		return ""
	}
}
