package libvirt

import (
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/topology"
)

// TestReadyLimit: the deadline is the deployment's ready_timeout or the
// server's, once per round of CPUs' worth of guests booting at once, and
// its description says which setting to change.
func TestReadyLimit(t *testing.T) {
	d := New(Options{ReadyTimeout: 180 * time.Second, CPUs: 2})
	l := d.readyLimitOf(&topology.LibvirtSpec{})
	for booting, want := range map[int]time.Duration{1: 180 * time.Second, 2: 180 * time.Second} {
		l.peak = 0
		l.see(booting)
		if l.total() != want {
			t.Errorf("%d booting: %s, want %s", booting, l.total(), want)
		}
	}
	l.see(4)
	l.see(1) // the peak stays
	if l.total() != 360*time.Second {
		t.Errorf("4 booting on 2 CPUs: %s", l.total())
	}
	desc := l.describe()
	for _, want := range []string{"within 6m0s", "3m0s × 2: 4 guests booting at once on 2 CPUs", "testbed_options.ready_timeout", "TESTBEDOS_LIBVIRT_READY_TIMEOUT"} {
		if !strings.Contains(desc, want) {
			t.Errorf("%q lacks %q", desc, want)
		}
	}
	own := d.readyLimitOf(&topology.LibvirtSpec{ReadyTimeout: "10m0s"})
	if own.total() != 10*time.Minute || !strings.Contains(own.describe(), "testbed_options.ready_timeout is 10m0s") {
		t.Errorf("deployment's own: %s %s", own.total(), own.describe())
	}
	var b bootCounter
	leave1, leave2 := b.enter(), b.enter()
	if b.count() != 2 {
		t.Fatal(b.count())
	}
	leave1()
	leave2()
	if b.count() != 0 {
		t.Fatal(b.count())
	}
}

func TestParseInet(t *testing.T) {
	out := "2: eth1    inet 10.0.1.57/24 brd 10.0.1.255 scope global dynamic eth1\\       valid_lft 86391sec preferred_lft 86391sec\n"
	if got := parseInet(out); got != "10.0.1.57/24" {
		t.Fatalf("%q", got)
	}
	if parseInet("") != "" {
		t.Fatal("empty")
	}
}
