package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/net/nettest"
)

const sixGuests = `machines:
  - {name: g1, network: [{switch: sw0, ip: 10.70.0.11}], netns: {setup_script: hello.sh}}
  - {name: g2, network: [{switch: sw0, ip: 10.70.0.12}], netns: {setup_script: hello.sh}}
  - {name: g3, network: [{switch: sw0, ip: 10.70.0.13}], netns: {setup_script: hello.sh}}
  - {name: g4, network: [{switch: sw0, ip: 10.70.0.14}], netns: {setup_script: hello.sh}}
  - {name: g5, network: [{switch: sw0, ip: 10.70.0.15}], netns: {setup_script: hello.sh}}
  - {name: g6, network: [{switch: sw0, ip: 10.70.0.16}], netns: {setup_script: hello.sh}}
network:
  switches:
    sw0: {subnet: 10.70.0.0/24}
`

// Issue 8's acceptance: a main and two clients, each in its own network
// namespace on a test bridge, joined by token; six netns guests on one
// switch spread over the three hosts come up; every guest pings every other
// across the VXLAN tunnels; every host's setup script output is in the
// main's log; down leaves nothing on any host.
func TestGuestsOverThreeHosts(t *testing.T) {
	n := newTestNet(t)
	main := startServer(t, "TESTBEDOS_LISTEN="+n.mainIP()+":3355", "TESTBEDOS_HEARTBEAT_INTERVAL="+heartbeat.String())
	token := joinToken(t, main)
	ev := events(t, main.c)
	var clientNS []string
	clients := map[string]*server{}
	for i, name := range []string{"c1", "c2"} {
		ns, ip := n.addClient(t, i+1)
		clientNS = append(clientNS, ns)
		c := clientServer(t, ns, name, ip, "client", "--join", token)
		c.start(t)
		clients[name] = c
		waitEvent(t, ev, api.EventMemberJoined, name, 20*time.Second)
	}

	dir := project(t, sixGuests, map[string]string{"hello.sh": "#!/bin/sh\necho \"hello from $TESTBEDOS_GUEST\"\n"})
	name := deployment(t, main, "mh", dir)
	mustSucceed(t, main, name, cmd(api.CmdGenerateArtefacts))
	st := state(t, main, name)
	perHost := map[string]int{}
	for _, g := range st.Guests {
		perHost[g.Host]++
	}
	if len(perHost) != 3 || perHost["c1"] != 2 || perHost["c2"] != 2 {
		t.Fatalf("placement %v, want 2 guests on each of 3 hosts", perHost)
	}
	t.Cleanup(func() {
		for _, ns := range clientNS {
			leftoversIn(t, ns, st.Prefix, false)
		}
	})

	log := strings.Join(mustSucceed(t, main, name, cmd(api.CmdUp)), "\n")
	for _, g := range st.Guests {
		want := fmt.Sprintf("[%s] hello from %s", g.Name, g.Name)
		if g.Host != st.Hosts[0].Name {
			want = fmt.Sprintf("[%s] [%s] hello from %s", g.Host, g.Name, g.Name)
		}
		if !strings.Contains(log, want) {
			t.Errorf("the main's log lacks %q:\n%s", want, log)
		}
	}
	for _, from := range st.Guests {
		for _, to := range st.Guests {
			if from.Name == to.Name {
				continue
			}
			ip, _, _ := net.ParseCIDR(to.Interfaces[0].Address)
			ping := func() error { return nettest.Ping(from.Netns.Namespace, ip, 10*time.Second) }
			if c, ok := clients[from.Host]; ok {
				ping = func() error { return pingFromClient(c, from.Netns.Namespace, ip) }
			}
			if err := ping(); err != nil {
				t.Errorf("%s (%s) -> %s (%s): %v", from.Name, from.Host, to.Name, to.Host, err)
			}
		}
	}

	mustSucceed(t, main, name, cmd(api.CmdDown))
	assertNothingLeft(t, st)
	for _, ns := range clientNS {
		if left := leftoversIn(t, ns, st.Prefix, true); len(left) > 0 {
			t.Errorf("left on the client in %s: %v", ns, left)
		}
	}
	for host, c := range clients {
		out, err := exec.Command("nsenter", fmt.Sprintf("--mount=/proc/%d/ns/mnt", c.cmd.Process.Pid), "ip", "netns", "list").CombinedOutput()
		if err != nil || strings.Contains(string(out), netnsPrefix(name)) {
			t.Errorf("namespaces left on %s: %v\n%s", host, err, out)
		}
	}
}

// leftoversIn lists (and with !report, removes) the links of namespace ns
// whose names start with prefix.
func leftoversIn(t testing.TB, ns, prefix string, report bool) []string {
	t.Helper()
	out, err := exec.CommandContext(context.Background(), "ip", "-n", ns, "-o", "link", "show").Output()
	if err != nil {
		return nil
	}
	var left []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		link, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		if strings.HasPrefix(link, prefix) {
			left = append(left, link)
			if !report {
				exec.Command("ip", "-n", ns, "link", "del", link).Run()
			}
		}
	}
	return left
}

// pingFromClient pings ip from a guest namespace a client server made: the
// client runs under "ip netns exec", in a mount namespace of its own, where
// alone its guests' namespaces are mounted.
func pingFromClient(c *server, guestNS string, ip net.IP) error {
	mnt := fmt.Sprintf("/proc/%d/ns/mnt", c.cmd.Process.Pid)
	var out []byte
	var err error
	for range 5 {
		out, err = exec.Command("nsenter", "--mount="+mnt, "ip", "netns", "exec", guestNS, "ping", "-c", "1", "-W", "2", ip.String()).CombinedOutput()
		if err == nil {
			return nil
		}
	}
	return fmt.Errorf("%v: %s", err, out)
}

// Issue 8: a client killed during up fails the action and what was made on
// the other hosts is reverted; a client killed before down leaves its part
// recorded, and it is cleaned when the client comes back.
func TestLostClientsDuringUpAndDown(t *testing.T) {
	n := newTestNet(t)
	main := startServer(t, "TESTBEDOS_LISTEN="+n.mainIP()+":3355", "TESTBEDOS_HEARTBEAT_INTERVAL="+heartbeat.String())
	token := joinToken(t, main)
	ev := events(t, main.c)
	clients := map[string]*server{}
	clientNS := map[string]string{}
	for i, name := range []string{"c1", "c2"} {
		ns, ip := n.addClient(t, i+1)
		c := clientServer(t, ns, name, ip, "client", "--join", token)
		c.start(t)
		clients[name], clientNS[name] = c, ns
		waitEvent(t, ev, api.EventMemberJoined, name, 20*time.Second)
	}
	dir := project(t, sixGuests, map[string]string{"hello.sh": "#!/bin/sh\necho hello\n"})
	name := deployment(t, main, "lost", dir)
	mustSucceed(t, main, name, cmd(api.CmdGenerateArtefacts))
	st := state(t, main, name)
	t.Cleanup(func() {
		for _, ns := range clientNS {
			leftoversIn(t, ns, st.Prefix, false)
		}
	})

	// Kill c1 as soon as up reaches the tunnels: up fails, nothing of it
	// stays on the main or on c2.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	id, err := main.c.Action(ctx, name, cmd(api.CmdUp))
	if err != nil {
		t.Fatal(err)
	}
	killed := false
	var lines []string
	o, err := main.c.Follow(ctx, id, func(l string) {
		lines = append(lines, l)
		if !killed && strings.Contains(l, "] tunnels:") {
			killed = true
			clients["c1"].kill(t)
		}
	})
	if err != nil || !killed || o.ErrorCode != api.ErrorCodeFailed {
		t.Fatalf("up with c1 killed: %+v, %v (killed %v)\n%s", o, err, killed, strings.Join(lines, "\n"))
	}
	assertNothingLeft(t, st)
	if left := leftoversIn(t, clientNS["c2"], st.Prefix, true); len(left) > 0 {
		t.Errorf("the failed up left on c2: %v", left)
	}

	// c1 back (its saved mode); up; c1 killed again; down succeeds and says
	// c1 is offline; c1 back: cleaned.
	waitEvent(t, ev, api.EventMemberLost, "c1", 20*time.Second)
	clients["c1"].args = []string{}
	clients["c1"].start(t)
	waitEvent(t, ev, api.EventMemberJoined, "c1", 20*time.Second)
	mustSucceed(t, main, name, cmd(api.CmdUp))
	clients["c1"].kill(t)
	downLog := strings.Join(mustSucceed(t, main, name, cmd(api.CmdDown)), "\n")
	if !strings.Contains(downLog, "host c1 is offline") {
		t.Errorf("down does not say c1 is offline:\n%s", downLog)
	}
	// The main's own links and its and c2's guests are gone; c1's
	// namespaces wait for c1.
	if links, namespaces, _ := nettest.Leftovers(st.Prefix); len(links) > 0 {
		t.Errorf("down left links on the main: %v (%v)", links, namespaces)
	}
	for _, g := range st.Guests {
		if _, err := os.Stat(nettest.NamespacePath(g.Netns.Namespace)); err == nil && g.Host != "c1" {
			t.Errorf("down left guest %s of %s", g.Name, g.Host)
		}
	}
	if left := leftoversIn(t, clientNS["c2"], st.Prefix, true); len(left) > 0 {
		t.Errorf("down left on c2: %v", left)
	}
	if left := leftoversIn(t, clientNS["c1"], st.Prefix, true); len(left) == 0 {
		t.Fatal("nothing left on the killed c1: the test proves nothing")
	}
	waitEvent(t, ev, api.EventMemberLost, "c1", 20*time.Second)
	clients["c1"].start(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		left := leftoversIn(t, clientNS["c1"], st.Prefix, true)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("c1 was not cleaned after it came back: %v\n%s", left, main.stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	assertNothingLeft(t, st)
}
