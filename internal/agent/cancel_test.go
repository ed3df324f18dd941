package agent_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/agent"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/guesttest"
	"github.com/testbedos/testbedos/internal/guest/netns"
	"github.com/testbedos/testbedos/internal/net/hostnet"
	"github.com/testbedos/testbedos/internal/net/nettest"
	"github.com/testbedos/testbedos/internal/topology"
)

// TestCancelReachesClientScript: cancelling the main's call stops the
// script on the client (the real netns driver kills its process group).
func TestCancelReachesClientScript(t *testing.T) {
	nettest.RequireRoot(t)
	prefix := nettest.Prefix(t)
	srv := httptest.NewServer(agent.Handler(agent.Options{
		Name: "host2", DataDir: t.TempDir(),
		Drivers: guest.NewRegistry(netns.New(netns.Options{})), Network: hostnet.NewHost(nil),
	}))
	t.Cleanup(srv.Close)
	remote, err := agent.NewRemoteHost(agent.RemoteOptions{Name: "host2", BaseURL: srv.URL, Client: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := remote.Driver(topology.KindNetns)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pidFile := filepath.Join(t.TempDir(), "pid")
	write(t, filepath.Join(dir, "slow.sh"), "#!/bin/sh\necho $$ > "+pidFile+"\necho started\nexec sleep 30\n", 0o755)
	dep := guest.Deployment{Name: "d1", Files: remote.Files(dir)}
	g := &topology.Guest{Name: "slow", Kind: topology.KindNetns, Host: "host2", Netns: &topology.NetnsGuest{Namespace: prefix + "slow"}}
	ctx := context.Background()
	if _, err := proxy.Create(ctx, dep, g, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Destroy(context.Background(), dep, g, &guesttest.Log{}) })

	log := &guesttest.Log{}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- proxy.RunScript(cctx, dep, g, "slow.sh", log) }()
	var pid int
	started := func() bool { return pid != 0 && strings.Contains(log.Text(), "[host2] [slow] started") }
	for deadline := time.Now().Add(10 * time.Second); !started(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the script did not start:\n%s", log.Text())
		}
		if data, err := os.ReadFile(pidFile); err == nil && strings.HasSuffix(string(data), "\n") {
			pid, _ = strconv.Atoi(strings.TrimSpace(string(data)))
		}
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || errors.Is(err, agent.ErrUnreachable) {
			t.Errorf("cancelled script: %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the cancelled call did not return")
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the script (pid %d) still runs on the client after the main cancelled", pid)
		}
	}
}
