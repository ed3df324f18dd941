package libvirt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/atomicfile"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/sshkey"
	"github.com/testbedos/testbedos/internal/testenv"
)

// TestExecOnAGuestThatNeverAnswers: when the guest does not answer SSH
// before the deadline nothing ran, so Exec says so instead of returning the
// deadline a killed command returns (which the API reports as "killed after
// --timeout").
func TestExecOnAGuestThatNeverAnswers(t *testing.T) {
	testenv.RequireRoot(t, "a bridge for the unanswered SSH dial")
	br := fmt.Sprintf("tbxe%d", os.Getpid()%1000000)
	if out, err := exec.Command("ip", "link", "add", br, "type", "bridge").CombinedOutput(); err != nil {
		t.Fatalf("ip link add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "link", "del", br).Run() })
	// A port gives the bridge a carrier, hence a link-local address to
	// dial from; no one answers behind it.
	port := br + "p"
	for _, args := range [][]string{
		{"link", "add", port, "type", "veth", "peer", "name", br + "q"}, {"link", "set", port, "master", br, "up"},
		{"link", "set", br + "q", "up"},
		{"link", "set", br, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	t.Cleanup(func() { exec.Command("ip", "link", "del", port).Run() })
	_ = os.WriteFile("/proc/sys/net/ipv6/conf/"+br+"/accept_dad", []byte("0"), 0o644)
	for i := 0; ; i++ {
		out, _ := exec.Command("ip", "-6", "addr", "show", "dev", br, "scope", "link").Output()
		if strings.Contains(string(out), "fe80") && !strings.Contains(string(out), "tentative") {
			break
		}
		if i == 50 {
			t.Fatalf("bridge %s has no link-local address: %s", br, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	st, g := testState(t)
	g.Interfaces = g.Interfaces[:1]
	g.Interfaces[0].Bridge = br
	art := filepath.Join(st.Project, "artefacts")
	if err := os.MkdirAll(art, 0o755); err != nil {
		t.Fatal(err)
	}
	root, err := atomicfile.OpenRoot(art)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if _, err := sshkey.Ensure(root, "testbedos-lab"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err = New(Options{}).Exec(ctx, guest.LocalDeployment(st), g, guest.Command{Argv: []string{"true"}})
	if err == nil || errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, api.ErrGuestNotAnswering) ||
		!strings.Contains(err.Error(), "did not answer") {
		t.Fatalf("exec on a guest that never answered: %v; want ErrGuestNotAnswering, not a deadline", err)
	}
}
