package docker

import (
	"context"
	"testing"
	"time"
)

// TestCancelledCreateLeavesNothing: an up whose context ends while Create
// runs (a sibling guest failed, the user cancelled) leaves no container,
// whenever the cancel comes: dockerd may still finish a create whose
// request was cancelled, after the driver's clean-up looked.
func TestCancelledCreateLeavesNothing(t *testing.T) {
	l := newLab(t, `
machines:
  - name: c
    network: [{switch: sw0, ip: 10.81.0.10}]
    docker: {image: IMAGE, command: [sleep, infinity]}
network:
  switches:
    sw0: {subnet: 10.81.0.0/24}
`, nil)
	g := l.guest("c")
	for after := time.Duration(0); after <= 60*time.Millisecond; after += 3 * time.Millisecond {
		ctx, cancel := context.WithTimeout(context.Background(), after)
		made, err := l.drv.Create(ctx, l.dep, g, l.log)
		cancel()
		if made {
			if err := l.drv.Destroy(context.Background(), l.dep, g, l.log); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err == nil {
			t.Fatalf("cancel after %v: not made and no error", after)
		}
		// Give dockerd the time to finish what it was asked.
		time.Sleep(300 * time.Millisecond)
		l.assertGone()
		if t.Failed() {
			t.Fatalf("after a cancel %v into Create (%v)", after, err)
		}
	}
}
