package e2e

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest/docker/dockertest"
	"github.com/testbedos/testbedos/internal/topology"
)

// clientLiveLab puts a namespace (its link delayed 30 ms by the YAML) and
// a container with a volume on client c1, and a namespace on the main; the
// time line delays the container's link, then sets it down.
const clientLiveLab = `machines:
  - name: nsg
    host: c1
    network: [{switch: sw0, ip: 10.0.0.20, netem: {delay_ms: 30}}]
  - name: box
    host: c1
    network: [{switch: sw0, ip: 10.0.0.10}]
    docker:
      image: IMAGE
      command: [sleep, infinity]
      volumes: [{source: ./shared, target: /shared}]
  - name: mg
    host: MAIN
    network: [{switch: sw0, ip: 10.0.0.30}]
network:
  switches:
    sw0: {subnet: 10.0.0.0/24}
timeline:
  - {at: 0s, guest: box, interface: eth0, netem: {delay_ms: 60}}
  - {at: 200ms, guest: box, interface: eth0, link: down}
`

// Issue 18 item 4 on a client host: a namespace and a container (with a
// volume) placed on a client. Exec (stdin too, and the fan-out over both
// hosts), the console to a shell, a capture of pings, the YAML's netem and
// a run-time 100 ms delay in ping times, a link down that cuts pings, the
// time line's changes; down leaves nothing on either host.
func TestLiveFeaturesOnClientGuests(t *testing.T) {
	n := newTestNet(t)
	cli := dockertest.Client(t)
	image := dockertest.Image(t, cli)
	main := startServer(t, "TESTBEDOS_LISTEN="+n.mainIP()+":3355", "TESTBEDOS_HEARTBEAT_INTERVAL="+heartbeat.String())
	ev := events(t, main.c)
	ns, ip := n.addClient(t, 1)
	c1 := clientServer(t, ns, "c1", ip, "client", "--join", joinToken(t, main))
	c1.hostMounts = true
	c1.start(t)
	waitEvent(t, ev, api.EventMemberJoined, "c1", 20*time.Second)

	lab := strings.NewReplacer("IMAGE", image, "MAIN", hostOf(t)).Replace(clientLiveLab)
	dir := project(t, lab, nil)
	if err := os.MkdirAll(filepath.Join(dir, "shared", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "shared", "hello.txt"), []byte("hello from the main\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	name := deployment(t, main, "cl", dir)
	t.Cleanup(func() { removeContainers(cli, name, "box") })
	mustSucceed(t, main, name, cmd(api.CmdGenerateArtefacts))
	st := state(t, main, name)
	t.Cleanup(func() { leftoversIn(t, ns, st.Prefix, false) })
	up := strings.Join(mustSucceed(t, main, name, cmd(api.CmdUp)), "\n")
	if !strings.Contains(up, "guest nsg: impaired eth0 delay 30ms (yaml)") {
		t.Errorf("up log does not say nsg is delayed:\n%s", up)
	}
	ctx := context.Background()

	t.Run("exec", func(t *testing.T) { clientExec(t, main, name) })
	t.Run("console", func(t *testing.T) {
		for _, g := range []string{"nsg", "box"} {
			con, err := main.c.OpenConsole(ctx, name, g)
			if err != nil {
				t.Fatalf("%s: %v", g, err)
			}
			if err := con.Resize(100, 30); err != nil {
				t.Fatal(err)
			}
			if _, err := con.Write([]byte("echo console-$((6*7)) $(stty size)\n")); err != nil {
				t.Fatal(err)
			}
			readUntil(t, con, "console-42 30 100")
			con.Close()
		}
	})
	t.Run("capture", func(t *testing.T) {
		capCtx, stop := context.WithCancel(ctx)
		defer stop()
		stream, err := main.c.Capture(capCtx, name, "box", "eth0", "icmp")
		if err != nil {
			t.Fatal(err)
		}
		defer stream.Close()
		pings := make(chan error, 1)
		go func() { _, err := pingFrom(main, name, "mg", "10.0.0.10"); pings <- err }()
		readICMP(t, stream, "10.0.0.30", "10.0.0.10", 3)
		if err := <-pings; err != nil {
			t.Error(err)
		}
	})
	t.Run("impairments", func(t *testing.T) { clientImpairments(t, main, name) })
	t.Run("timeline", func(t *testing.T) {
		mustSucceed(t, main, name, cmd(api.CmdTimeline))
		imp, err := main.c.Impairment(ctx, name, "box", "eth0")
		if err != nil || imp.DelayMS != 60 || imp.Up || imp.Source != "runtime" {
			t.Errorf("box eth0 after the time line: %+v, %v", imp, err)
		}
		if rtt, err := pingFrom(main, name, "mg", "10.0.0.10"); err == nil {
			t.Errorf("pings over a link the time line set down: %v", rtt)
		}
	})

	mustSucceed(t, main, name, cmd(api.CmdDown))
	assertNothingLeft(t, st)
	if left := leftoversIn(t, ns, st.Prefix, true); len(left) > 0 {
		t.Errorf("left on the client: %v", left)
	}
	out, err := exec.Command("nsenter", fmt.Sprintf("--mount=/proc/%d/ns/mnt", c1.cmd.Process.Pid), "ip", "netns", "list").CombinedOutput()
	if err != nil || strings.Contains(string(out), netnsPrefix(name)) {
		t.Errorf("namespaces left on c1: %v\n%s", err, out)
	}
	if left, _ := os.ReadDir(filepath.Join(c1.dataDir, "agent", "work", name, "volumes")); len(left) > 0 {
		t.Errorf("volume copies left on c1: %v", left)
	}
	if _, err := cli.ContainerInspect(ctx, topology.ContainerName(name, "box"), client.ContainerInspectOptions{}); err == nil {
		t.Error("the container is left on c1")
	}
}

// hostOf is the main's name in the cluster: it has no host.json, so the
// machine's.
func hostOf(t *testing.T) string {
	t.Helper()
	h, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// clientExec: stdin, stdout, stderr and the exit status of a command in a
// client's container; the volume's file from the main; the fan-out over
// guests of both hosts.
func clientExec(t *testing.T, main *server, name string) {
	ctx := context.Background()
	res, err := main.c.Exec(ctx, name, "box", api.ExecRequest{Command: []string{"sh", "-c", "cat; cat /shared/hello.txt; echo err >&2; exit 3"}, Stdin: []byte("typed\n")})
	if err != nil || res.ExitCode != 3 || res.Stdout != "typed\nhello from the main\n" || res.Stderr != "err\n" {
		t.Errorf("exec in box: %+v, %v", res, err)
	}
	res, err = main.c.Exec(ctx, name, "nsg", api.ExecRequest{Command: []string{"sh", "-c", "echo started; sleep 30"}, TimeoutS: 1})
	if err != nil || !res.TimedOut || res.Stdout != "started\n" {
		t.Errorf("exec past its timeout in nsg: %+v, %v", res, err)
	}
	all, err := main.c.ExecAll(ctx, name, api.FanoutExecRequest{Command: []string{"ip", "-o", "-4", "addr", "show", "eth0"}})
	if err != nil || len(all.Results) != 3 {
		t.Fatalf("fan-out exec: %+v, %v", all, err)
	}
	ips := map[string]string{"nsg": "10.0.0.20/", "box": "10.0.0.10/", "mg": "10.0.0.30/"}
	for _, r := range all.Results {
		if r.Error != "" || r.ExitCode != 0 || !strings.Contains(r.Stdout, ips[r.Guest]) {
			t.Errorf("fan-out exec in %s: %+v", r.Guest, r)
		}
	}
}

// clientImpairments: the YAML's 30 ms on nsg's link, a run-time 100 ms,
// the link down and up again, as ping times from nsg to box show them.
func clientImpairments(t *testing.T, main *server, name string) {
	ctx := context.Background()
	rttIn := func(what string, lo, hi time.Duration) {
		t.Helper()
		rtt, err := pingFrom(main, name, "nsg", "10.0.0.10")
		t.Logf("rtt %s: %v", what, rtt)
		if err != nil || rtt < lo || rtt > hi {
			t.Errorf("rtt %s: %v (%v), want %v..%v", what, rtt, err, lo, hi)
		}
	}
	rttIn("with the YAML's 30 ms", 30*time.Millisecond, 500*time.Millisecond)
	set := func(imp api.Impairment) {
		t.Helper()
		if _, err := main.c.SetImpairment(ctx, name, "nsg", "eth0", imp); err != nil {
			t.Fatal(err)
		}
	}
	set(api.Impairment{Up: true, DelayMS: 100})
	rttIn("with a run-time 100 ms", 100*time.Millisecond, 700*time.Millisecond)
	imp, err := main.c.Impairment(ctx, name, "nsg", "eth0")
	if err != nil || imp.DelayMS != 100 || !imp.Up || imp.Source != "runtime" {
		t.Errorf("nsg eth0: %+v, %v", imp, err)
	}
	set(api.Impairment{Up: false})
	if rtt, err := pingFrom(main, name, "nsg", "10.0.0.10"); err == nil {
		t.Errorf("pings over a link down: %v", rtt)
	}
	set(api.Impairment{Up: true})
	// The neighbour entry failed while the link was down: pings answer
	// again once it is probed anew.
	var rtt time.Duration
	for i := 0; i < 10; i++ {
		if rtt, err = pingFrom(main, name, "nsg", "10.0.0.10"); err == nil {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if t.Logf("rtt with the link up, no delay: %v", rtt); err != nil || rtt >= 100*time.Millisecond {
		t.Errorf("rtt with the link up again, no delay: %v (%v), want under 100 ms", rtt, err)
	}
}

// pingFrom pings ip three times from guest through exec and returns the
// mean round trip; extra are more ping flags (a packet size).
func pingFrom(s *server, name, guest, ip string, extra ...string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	argv := append(append([]string{"ping", "-n", "-q", "-c", "3", "-i", "0.2", "-W", "2"}, extra...), ip)
	res, err := s.c.Exec(ctx, name, guest, api.ExecRequest{Command: argv, TimeoutS: 30})
	if err != nil {
		return 0, err
	}
	m := rttLine.FindStringSubmatch(res.Stdout)
	if m == nil {
		return 0, fmt.Errorf("ping %s from %s: no reply: %s%s", ip, guest, res.Stdout, res.Stderr)
	}
	var ms float64
	fmt.Sscan(m[2], &ms)
	return time.Duration(ms * float64(time.Millisecond)), nil
}

// readICMP reads a pcap stream until it holds n echo requests from → to
// and n replies; every packet must be IPv4 ICMP.
func readICMP(t *testing.T, stream io.Reader, from, to string, n int) {
	t.Helper()
	r := bufio.NewReader(stream)
	var ghdr [24]byte
	if _, err := io.ReadFull(r, ghdr[:]); err != nil || binary.LittleEndian.Uint32(ghdr[:]) != 0xa1b2c3d4 || binary.LittleEndian.Uint32(ghdr[20:]) != 1 {
		t.Fatalf("pcap header %x: %v", ghdr, err)
	}
	var requests, replies int
	for requests < n || replies < n {
		var rec [16]byte
		if _, err := io.ReadFull(r, rec[:]); err != nil {
			t.Fatalf("pcap record after %d requests, %d replies: %v", requests, replies, err)
		}
		pkt := make([]byte, binary.LittleEndian.Uint32(rec[8:]))
		if _, err := io.ReadFull(r, pkt); err != nil {
			t.Fatal(err)
		}
		if len(pkt) < 34+1 || pkt[12] != 0x08 || pkt[13] != 0 || pkt[23] != 1 {
			t.Fatalf("the icmp filter let through %x", pkt[:min(len(pkt), 40)])
		}
		src, dst := net.IP(pkt[26:30]).String(), net.IP(pkt[30:34]).String()
		switch typ := pkt[34]; {
		case typ == 8 && src == from && dst == to:
			requests++
		case typ == 0 && src == to && dst == from:
			replies++
		}
	}
}
