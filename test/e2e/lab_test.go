package e2e

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/google/nftables"
	"github.com/moby/moby/client"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest/docker/dockertest"
	"github.com/testbedos/testbedos/internal/net/nettest"
)

// labMachines: on sw0 a namespace (a) and a container (box); on sw1 a
// namespace (b) and a container (dyn), both with DHCP; target on sw2,
// which has no route back: only the router's SNAT lets the others reach it.
const labMachines = `machines:
  - name: a
    network: [{switch: sw0, ip: 10.0.0.10, gateway: 10.0.0.1}]
  - name: box
    network: [{switch: sw0, ip: 10.0.0.20, gateway: 10.0.0.1}]
    docker:
      image: IMAGE
      command: [sleep, infinity]
      setup_script: box-setup.sh
  - name: b
    network: [{switch: sw1, ip: dynamic}]
  - name: dyn
    network: [{switch: sw1, ip: dynamic}]
    docker:
      image: IMAGE
      command: [sleep, infinity]
  - name: target
    network: [{switch: sw2, ip: 10.0.2.10}]
`

// labACL drops exactly a's TCP connections to port 7005 on b.
const labACL = `switches:
  sw1:
    - {direction: to-lport, priority: 100, match: 'outport == "b" && ip4.src == 10.0.0.10 && tcp.dst == 7005', action: drop}
`

const labNetwork = `network:
  switches:
    sw0: {subnet: 10.0.0.0/24}
    sw1: {subnet: 10.0.1.0/24}
    sw2: {subnet: 10.0.2.0/24}
  routers:
    r1:
      ports:
        - {name: r1-sw0, switch: sw0, gateway_ip: 10.0.0.1/24}
        - {name: r1-sw1, switch: sw1, gateway_ip: 10.0.1.1/24}
        - {name: r1-sw2, switch: sw2, gateway_ip: 10.0.2.1/24}
      nat: [{nat_type: snat, logical_ip: 10.0.0.0/23, external_ip: 10.0.2.1}]
      dhcp: [{switch: sw1, exclude_ips: {from: 10.0.1.1, to: 10.0.1.19}}]
  acl:
`

// The same in the original's spelling, under network.ovn.
const labNetworkOVN = `network:
  ovn:
    switches:
      sw0: {subnet: 10.0.0.0/24}
      sw1: {subnet: 10.0.1.0/24}
      sw2: {subnet: 10.0.2.0/24}
    routers:
      lr0:
        ports:
          - {name: lr0-sw0, mac: "00:00:00:00:ff:01", gateway_ip: 10.0.0.1/24, switch: sw0}
          - {name: lr0-sw1, mac: "00:00:00:00:ff:02", gateway_ip: 10.0.1.1/24, switch: sw1}
          - {name: lr0-sw2, gateway_ip: 10.0.2.1/24, switch: sw2}
        nat: [{nat_type: snat, external_ip: 10.0.2.1, logical_ip: 10.0.0.0/23}]
        dhcp:
          - switch: sw1
            exclude_ips: {from: 10.0.1.1, to: 10.0.1.19}
    acl:
`

// indent puts n spaces before every line of s.
func indent(s string, n int) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n"+pad) + "\n"
}

// TestRoutedContainerLab is issue 10's acceptance in one deployment:
// namespaces and containers on two switches joined by a router reach each
// other, DHCP leases for both kinds, an ACL drops exactly what it names,
// SNAT towards a switch with no route back, and down leaves nothing; in
// both spellings.
func TestRoutedContainerLab(t *testing.T) {
	nettest.RequireRoot(t)
	cli := dockertest.Client(t)
	image := dockertest.Image(t, cli)
	s := startServer(t)
	for _, tc := range []struct{ spelling, network string }{
		{"network", labNetwork + indent(labACL, 4)},
		{"network.ovn", labNetworkOVN + indent(labACL, 6)},
	} {
		t.Run(tc.spelling, func(t *testing.T) {
			dir := project(t, strings.ReplaceAll(labMachines, "IMAGE", image)+tc.network, map[string]string{
				"box-setup.sh": "#!/bin/sh\necho \"box setup in $TESTBEDOS_GUEST\"; ip -o -4 addr show dev eth0\n",
			})
			name := deployment(t, s, "clab", dir)
			t.Cleanup(func() { removeContainers(cli, name, "box", "dyn") })
			mustSucceed(t, s, name, cmd(api.CmdGenerateArtefacts))
			st := state(t, s, name)
			log := strings.Join(mustSucceed(t, s, name, cmd(api.CmdUp)), "\n")
			for _, want := range []string{"[box] box setup in box", "10.0.0.20/24", "guest dyn: eth0 leased 10.0.1.", "guest b: eth0 leased 10.0.1."} {
				if !strings.Contains(log, want) {
					t.Errorf("up log lacks %q:\n%s", want, log)
				}
			}
			leases := guestLeases(t, s, name)
			bIP, dynIP := leases["b"], leases["dyn"]
			if !strings.HasPrefix(bIP, "10.0.1.") || !strings.HasPrefix(dynIP, "10.0.1.") || bIP == dynIP {
				raw, _ := s.c.GuestsJSON(context.Background(), name)
				t.Fatalf("leases from GET …/guests: b %q, dyn %q; want two addresses of sw1:\n%s", bIP, dynIP, raw)
			}
			if out := execIn(t, s, name, "dyn", "ip", "-o", "-4", "addr", "show", "dev", "eth0"); !strings.Contains(out, dynIP+"/24") {
				t.Errorf("dyn's ip addr does not show its lease %s:\n%s", dynIP, out)
			}
			ns := func(g string) string { return netnsPrefix(name) + g }
			addr := map[string]string{"a": "10.0.0.10", "box": "10.0.0.20", "b": bIP, "dyn": dynIP, "target": "10.0.2.10"}
			containers := map[string]bool{"box": true, "dyn": true}
			// Every pair both ways, through the router when they are on
			// different switches; the containers ping with exec.
			for _, from := range []string{"a", "box", "b", "dyn"} {
				for _, to := range []string{"a", "box", "b", "dyn", "target"} {
					if from == to {
						continue
					}
					if containers[from] {
						if out, ok := execOK(t, s, name, from, "ping", "-c", "1", "-W", "5", addr[to]); !ok {
							t.Errorf("%s → %s (%s): %s", from, to, addr[to], out)
						}
					} else if err := nettest.Ping(ns(from), net.ParseIP(addr[to]), 5*time.Second); err != nil {
						t.Errorf("%s → %s (%s): %v", from, to, addr[to], err)
					}
				}
			}

			// The ACL drops a's TCP to port 7005 on b, and nothing else.
			for _, f := range []struct {
				from, to string
				port     string
				pass     bool
			}{
				{"a", "b", "7005", false},
				{"a", "b", "7006", true},      // another port
				{"box", "b", "7005", true},    // another source
				{"b", "a", "7005", true},      // the other way
				{"a", "target", "7005", true}, // another destination
			} {
				err := connect(t, s, name, ns, containers, f.from, f.to, addr[f.to]+":"+f.port)
				if f.pass && err != nil {
					t.Errorf("TCP %s → %s:%s should pass: %v", f.from, f.to, f.port, err)
				} else if !f.pass && err == nil {
					t.Errorf("TCP %s → %s:%s should be dropped by the ACL, but got through", f.from, f.to, f.port)
				}
			}

			// The target sees the router's address; between the inner
			// switches nothing is translated.
			for _, from := range []string{"a", "b", "box"} {
				if src := seenBy(t, s, name, ns, containers, from, "target", "10.0.2.10:7001"); src != "10.0.2.1" {
					t.Errorf("target sees %s's connection from %s, want 10.0.2.1 (SNAT)", from, src)
				}
			}
			if src := seenBy(t, s, name, ns, containers, "box", "b", bIP+":7002"); src != "10.0.0.20" {
				t.Errorf("b sees box's connection from %s, want 10.0.0.20", src)
			}

			mustSucceed(t, s, name, cmd(api.CmdDown))
			assertNothingLeft(t, st)
			for _, g := range st.Guests {
				if g.Docker == nil {
					continue
				}
				if _, err := cli.ContainerInspect(context.Background(), g.Docker.Container, client.ContainerInspectOptions{}); !cerrdefs.IsNotFound(err) {
					t.Errorf("container %s after down: %v", g.Docker.Container, err)
				}
			}
			if left := hostTables(t, st.Prefix); len(left) > 0 {
				t.Errorf("down left nft tables %v", left)
			}
		})
	}
}

// guestLeases reads GET /api/deployments/{name}/guests: guest → the
// address (without prefix) of its leased eth0.
func guestLeases(t *testing.T, s *server, name string) map[string]string {
	t.Helper()
	raw, err := s.c.GuestsJSON(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	var guests []api.Guest
	if err := json.Unmarshal(raw, &guests); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	out := map[string]string{}
	for _, g := range guests {
		for _, ifc := range g.Interfaces {
			if ifc.Leased {
				out[g.Name] = strings.Split(ifc.IP, "/")[0]
			}
		}
	}
	return out
}

// execIn runs argv in a guest through the API and returns its output; it
// fails the test when the command fails.
func execIn(t *testing.T, s *server, name, guest string, argv ...string) string {
	t.Helper()
	out, ok := execOK(t, s, name, guest, argv...)
	if !ok {
		t.Fatalf("exec %v in %s: %s", argv, guest, out)
	}
	return out
}

func execOK(t *testing.T, s *server, name, guest string, argv ...string) (string, bool) {
	t.Helper()
	res, err := s.c.Exec(context.Background(), name, guest, api.ExecRequest{Command: argv, TimeoutS: 20})
	if err != nil {
		t.Fatalf("exec %v in %s: %v", argv, guest, err)
	}
	return res.Stdout + res.Stderr, res.ExitCode == 0
}

// connect opens a TCP connection from guest from to addr, where guest to
// listens; nil when it was accepted.
func connect(t *testing.T, s *server, name string, ns func(string) string, containers map[string]bool, from, to, addr string) error {
	t.Helper()
	ln, err := nettest.ListenTCP(ns(to), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return dial(t, s, name, ns, containers, from, addr)
}

func dial(t *testing.T, s *server, name string, ns func(string) string, containers map[string]bool, from, addr string) error {
	t.Helper()
	if containers[from] {
		host, port, _ := net.SplitHostPort(addr)
		if out, ok := execOK(t, s, name, from, "nc", "-w", "2", host, port); !ok {
			return &net.OpError{Op: "dial", Net: "tcp", Err: errString("nc in " + from + ": " + out)}
		}
		return nil
	}
	c, err := nettest.DialTCP(ns(from), addr, 2*time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

type errString string

func (e errString) Error() string { return string(e) }

// seenBy connects from guest from to addr, served by namespace guest to,
// and returns the source address the listener saw.
func seenBy(t *testing.T, s *server, name string, ns func(string) string, containers map[string]bool, from, to, addr string) string {
	t.Helper()
	seen := listenOnce(t, ns(to), addr)
	if err := dial(t, s, name, ns, containers, from, addr); err != nil {
		t.Fatalf("dial %s from %s: %v", addr, from, err)
	}
	return seen()
}

// hostTables lists the host's nft tables, of any family, whose name starts
// with prefix.
func hostTables(t *testing.T, prefix string) []string {
	t.Helper()
	conn, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	tables, err := conn.ListTables()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, tb := range tables {
		if strings.HasPrefix(tb.Name, prefix) {
			out = append(out, tb.Name)
		}
	}
	return out
}
