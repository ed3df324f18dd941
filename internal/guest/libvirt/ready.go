package libvirt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/testbedos/testbedos/internal/topology"
)

// bootCounter counts the guests of this driver waiting to be ready.
type bootCounter struct {
	mu sync.Mutex
	n  int
}

// enter counts one more booting guest until the returned func is called.
func (b *bootCounter) enter() func() {
	b.mu.Lock()
	b.n++
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		b.n--
		b.mu.Unlock()
	}
}

func (b *bootCounter) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n
}

// readyLimit is how long one guest may take to be ready: the base timeout
// for each round of as many guests as the host has CPUs booting at once
// (under TCG, four guests on two CPUs take about twice as long as one).
type readyLimit struct {
	base   time.Duration
	source string // where base comes from, for the error
	peak   int    // most guests booting at once seen during the wait
	cpus   int
}

func (l *readyLimit) see(booting int) {
	if booting > l.peak {
		l.peak = booting
	}
}

func (l *readyLimit) rounds() int {
	r := (l.peak + l.cpus - 1) / l.cpus
	if r < 1 {
		r = 1
	}
	return r
}

func (l *readyLimit) total() time.Duration { return l.base * time.Duration(l.rounds()) }

// describe explains the limit and how to change it.
func (l *readyLimit) describe() string {
	s := fmt.Sprintf("within %s (%s", l.total(), l.base)
	if r := l.rounds(); r > 1 {
		s += fmt.Sprintf(" × %d: %d guests booting at once on %d CPUs", r, l.peak, l.cpus)
	}
	return s + "; " + l.source + ")"
}

// readyLimitOf is the limit of guest g: testbed_options.ready_timeout of
// its deployment, else the server's.
func (d *Driver) readyLimitOf(spec *topology.LibvirtSpec) *readyLimit {
	l := &readyLimit{base: d.opts.ReadyTimeout, cpus: d.opts.CPUs,
		source: "set testbed_options.ready_timeout in kvm-compose.yaml, or TESTBEDOS_LIBVIRT_READY_TIMEOUT for the whole server"}
	if t, err := topology.ParseReadyTimeout(spec.ReadyTimeout); err == nil && t > 0 {
		l.base = t
		l.source = "testbed_options.ready_timeout is " + spec.ReadyTimeout + ": raise it"
	}
	if l.cpus < 1 {
		l.cpus = 1
	}
	return l
}

// cloudInitWait waits for cloud-init to finish its boot stages and prints
// its status; a guest without cloud-init counts as done. boot-finished is
// the fallback for a cloud-init too old for status --wait.
const cloudInitWait = `if command -v cloud-init >/dev/null 2>&1; then
  cloud-init status --wait >/dev/null 2>&1
  rc=$?
  if [ $rc -ne 0 ] && [ $rc -ne 1 ] && [ $rc -ne 2 ]; then
    while [ ! -e /var/lib/cloud/instance/boot-finished ]; do sleep 1; done
  fi
  cloud-init status 2>/dev/null | head -n 1
  exit $rc
fi
echo "status: done (no cloud-init)"`

// errSessionLost: the SSH connection went away during the wait (cloud-init
// restarts sshd in its config stage): dial again.
var errSessionLost = errors.New("the SSH connection ended")

// awaitCloudInit runs cloudInitWait over client; it returns cloud-init's
// status line, or errSessionLost when the connection went away.
func awaitCloudInit(ctx context.Context, client *ssh.Client) (string, error) {
	sess, err := client.NewSession()
	if err != nil {
		return "", fmt.Errorf("%w: %v", errSessionLost, err)
	}
	defer sess.Close()
	var out bytes.Buffer
	sess.Stdout = &out
	done := make(chan error, 1)
	go func() { done <- sess.Run(cloudInitWait) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		client.Close()
		<-done
		return "", context.Cause(ctx)
	}
	status := strings.TrimSpace(out.String())
	var exit *ssh.ExitError
	switch {
	case err == nil:
		return status, nil
	case errors.As(err, &exit):
		// 1 and 2: cloud-init finished with errors; the guest is up.
		return status + fmt.Sprintf(" (cloud-init exited %d: see /var/log/cloud-init.log in the guest)", exit.ExitStatus()), nil
	default:
		return "", fmt.Errorf("%w: %v", errSessionLost, err)
	}
}

func cloudInitText(status string) string {
	if status == "" {
		return ""
	}
	return ", cloud-init " + status
}
