package aclnft

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"

	"github.com/testbedos/testbedos/internal/net/bridge"
	"github.com/testbedos/testbedos/internal/net/nettest"
	"github.com/testbedos/testbedos/internal/testenv"
)

// TestAllowRelatedIsStateful puts a client and a server on a bridge behind
// apply_deny_all and one allow-related rule (the server's port 80, as in
// examples/security-lab). Real replies pass; a packet shaped like a reply
// (the server sending from its port 80 to a port the client listens on,
// which no rule allows) is dropped where conntrack sees bridged traffic,
// and passes only in the stateless fallback, which the test forces by
// pointing the sysctl reads at zeros.
func TestAllowRelatedIsStateful(t *testing.T) {
	nettest.RequireRoot(t)
	prefix := nettest.Prefix(t)
	// A fresh namespace: no firewall of the host's, and its own conntrack.
	if !nettest.InNewNetns(t, prefix) {
		return
	}
	if !TrackedReplies().IPv4 {
		testenv.Skip(t, "br_netfilter does not hand bridged IPv4 to the IP hooks here (net.bridge.bridge-nf-call-iptables is not 1)")
	}
	ctx := context.Background()
	br := prefix + "br"
	if _, err := bridge.Ensure(ctx, br); err != nil {
		t.Fatal(err)
	}
	client, server := prefix+"c", prefix+"s"
	addrs := map[string]string{client: "10.9.0.1/24", server: "10.9.0.2/24"}
	for _, ns := range []string{client, server} {
		nettest.AddNamespace(t, ns)
		if err := nettest.AddVethTo(ns, ns+"h", "eth0", br, 0); err != nil {
			t.Fatal(err)
		}
		if err := nettest.InNamespace(ns, func() error { return nettest.SetAddrUp("eth0", addrs[ns]) }); err != nil {
			t.Fatal(err)
		}
	}
	spec := TableSpec{Name: prefix + "acl", Switches: []SwitchSpec{{
		Switch: "lan", Ports: []string{client + "h", server + "h"},
		Names:   map[string]string{"client": client + "h", "server": server + "h"},
		DenyAll: true,
		Rules:   []RuleSpec{{Direction: "to-lport", Priority: 90, Match: `outport == "server" && tcp.dst == 80`, Action: "allow-related"}},
	}}}
	t.Cleanup(func() { _ = DeleteTable(context.Background(), spec.Name) })

	// reach dials to:port from from, from local port sport (0: any), and
	// reports whether the connection was made and a byte came back.
	reach := func(from, to string, toAddr string, port, sport int) bool {
		t.Helper()
		ln, err := nettest.ListenTCP(to, net.JoinHostPort(toAddr, strconv.Itoa(port)))
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
				_, _ = c.Write([]byte{1})
				c.Close()
			}
		}()
		var ok bool
		err = nettest.InNamespace(from, func() error {
			d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{Port: sport},
				// The port may still have connections in TIME_WAIT.
				Control: func(_, _ string, rc syscall.RawConn) error {
					var serr error
					err := rc.Control(func(fd uintptr) {
						serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
					})
					return errors.Join(err, serr)
				}}
			c, err := d.Dial("tcp4", net.JoinHostPort(toAddr, strconv.Itoa(port)))
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return nil // dropped
			}
			if err != nil {
				return err
			}
			defer c.Close()
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			b := make([]byte, 1)
			_, err = c.Read(b)
			ok = err == nil
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}

	for _, tt := range []struct {
		name      string
		stateless bool
	}{{"stateful", false}, {"stateless fallback", true}} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.stateless {
				dir := t.TempDir()
				for _, f := range []string{"bridge-nf-call-iptables", "bridge-nf-call-ip6tables"} {
					if err := os.WriteFile(filepath.Join(dir, f), []byte("0\n"), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				old := sysctl
				sysctl = dir + "/"
				t.Cleanup(func() { sysctl = old })
			}
			if _, err := EnsureTable(ctx, spec); err != nil {
				t.Fatal(err)
			}
			if ok, err := HasTable(ctx, spec.Name); err != nil || !ok {
				t.Fatalf("HasTable = %v, %v after EnsureTable", ok, err)
			}
			if !reach(client, server, "10.9.0.2", 80, 0) {
				t.Errorf("client to server port 80: the connection or its replies were dropped")
			}
			if reach(client, server, "10.9.0.2", 81, 0) {
				t.Errorf("client to server port 81 passed; no rule allows it")
			}
			// A reply-shaped packet: from the server's port 80 to the
			// client, with no connection behind it.
			if got := reach(server, client, "10.9.0.1", 5555, 80); got != tt.stateless {
				t.Errorf("server port 80 to client port 5555 passed = %v, want %v", got, tt.stateless)
			}
		})
	}
	// The bridge table relies on the inet one: without it, it is not whole.
	if _, err := EnsureTable(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := deleteInet(spec.Name); err != nil {
		t.Fatal(err)
	}
	if ok, err := HasTable(ctx, spec.Name); err != nil || ok {
		t.Errorf("HasTable = %v, %v without the inet table; want false", ok, err)
	}
	if err := DeleteTable(ctx, spec.Name); err != nil {
		t.Fatal(err)
	}
	if ok, _ := HasTable(ctx, spec.Name); ok {
		t.Errorf("table left after DeleteTable")
	}
}

// deleteInet removes the inet table name alone.
func deleteInet(name string) error {
	conn, err := nftables.New()
	if err != nil {
		return err
	}
	conn.DelTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: name})
	return conn.Flush()
}
