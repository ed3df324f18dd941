package libvirt

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/testbedos/testbedos/internal/actlog"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/topology"
)

var _ guest.PowerSwitch = (*Driver)(nil)

// shutdownGrace is how long Stop waits for the guest to power itself off
// after the ACPI power button before it cuts the power.
const shutdownGrace = 5 * time.Second

// ourDomain looks up the guest's domain and refuses one that is not ours.
func (d *Driver) ourDomain(s *session, dep guest.Deployment, g *topology.Guest) (golibvirt.Domain, error) {
	spec, err := specOf(g)
	if err != nil {
		return golibvirt.Domain{}, err
	}
	dom, err := s.DomainLookupByName(spec.Domain)
	if noDomain(err) {
		return dom, fmt.Errorf("guest %s: domain %s is not defined: run up", g.Name, spec.Domain)
	}
	if err != nil {
		return dom, s.err(fmt.Errorf("look up domain %s: %w", spec.Domain, err))
	}
	f, err := d.verdict(s, dep, g, dom)
	if err != nil {
		return dom, err
	}
	if f.Presence == guest.Foreign {
		return dom, fmt.Errorf("guest %s: %s: %w", g.Name, f.What, guest.ErrForeign)
	}
	return dom, nil
}

// Stop powers the domain off: the ACPI power button first, and after
// shutdownGrace (a guest that ignores it, such as a bare kernel with a
// busybox init) a power cut. The domain stays defined with its disk, so
// Start boots it again.
func (d *Driver) Stop(ctx context.Context, dep guest.Deployment, g *topology.Guest, log actlog.Log) error {
	s, err := d.connect(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	dom, err := d.ourDomain(s, dep, g)
	if err != nil {
		return err
	}
	if !d.domainRunning(s, dom) {
		log.Printf("    guest %s: domain %s is already off", g.Name, dom.Name)
		return nil
	}
	how := "shut down"
	if err := s.DomainShutdown(dom); err == nil {
		deadline := time.Now().Add(shutdownGrace)
		for d.domainRunning(s, dom) && time.Now().Before(deadline) {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	if d.domainRunning(s, dom) {
		how = "powered off (it did not shut down within " + shutdownGrace.String() + ")"
		if err := s.DomainDestroyFlags(dom, golibvirt.DomainDestroyDefault); err != nil && !isCode(err, golibvirt.ErrOperationInvalid) {
			return s.err(fmt.Errorf("stop domain %s: %w", dom.Name, err))
		}
	}
	log.Printf("    guest %s: domain %s %s", g.Name, dom.Name, how)
	return nil
}

// Start boots the stopped domain again with its disk as it is and, for
// guests whose network the server configures, waits until they answer
// over SSH. libvirt makes its taps again on their bridges.
func (d *Driver) Start(ctx context.Context, dep guest.Deployment, g *topology.Guest, log actlog.Log) error {
	s, err := d.connect(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	dom, err := d.ourDomain(s, dep, g)
	if err != nil {
		return err
	}
	err = d.startExisting(ctx, s, dep, g, dom, log)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	return err
}

// domainRunning reports whether the domain runs (or is paused, or on its
// way down): anything but shut off or crashed.
func (d *Driver) domainRunning(s *session, dom golibvirt.Domain) bool {
	state, _, err := s.DomainGetState(dom, 0)
	if err != nil {
		return false
	}
	switch golibvirt.DomainState(state) {
	case golibvirt.DomainShutoff, golibvirt.DomainCrashed:
		return false
	}
	return true
}
