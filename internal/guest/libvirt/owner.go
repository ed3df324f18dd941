package libvirt

import (
	"context"
	"encoding/xml"
	"fmt"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/topology"
)

// metadataNS marks our domains (their <metadata>).
const metadataNS = "https://testbedos.org/xmlns/libvirt-guest/1"

// mark is the <tbos:guest> element of a domain's metadata: the deployment,
// the guest and the server (its instance id) that defined it.
type mark struct {
	Deployment string `xml:"deployment,attr"`
	Guest      string `xml:"guest,attr"`
	Server     string `xml:"server,attr"`
}

// markXML is the metadata element that marks a domain as ours.
func markXML(deployment, guestName, server string) string {
	return fmt.Sprintf(`<tbos:guest xmlns:tbos=%q deployment=%q guest=%q server=%q/>`, metadataNS, deployment, guestName, server)
}

// Find implements guest.Finder: a domain of the guest's name, running or
// shut off, is ours when its metadata marks it as this deployment's guest
// defined by this server, foreign otherwise.
func (d *Driver) Find(ctx context.Context, dep guest.Deployment, g *topology.Guest) (guest.Found, error) {
	spec, err := specOf(g)
	if err != nil {
		return guest.Found{}, err
	}
	s, err := d.connect(ctx)
	if err != nil {
		return guest.Found{}, err
	}
	defer s.close()
	dom, err := s.DomainLookupByName(spec.Domain)
	if noDomain(err) {
		return guest.Found{}, nil
	}
	if err != nil {
		return guest.Found{}, s.err(fmt.Errorf("look up domain %s: %w", spec.Domain, err))
	}
	return d.verdict(s, dep, g, dom)
}

// verdict tells whether dom, in guest g's place, is ours.
func (d *Driver) verdict(s *session, dep guest.Deployment, g *topology.Guest, dom golibvirt.Domain) (guest.Found, error) {
	what := "domain " + dom.Name
	state, _, err := s.DomainGetState(dom, 0)
	if noDomain(err) {
		return guest.Found{}, nil
	}
	if err != nil {
		return guest.Found{}, s.err(fmt.Errorf("domain %s: state: %w", dom.Name, err))
	}
	running := golibvirt.DomainState(state) == golibvirt.DomainRunning
	if !running {
		what = "shut-off " + what
	}
	var m mark
	md, err := s.DomainGetMetadata(dom, int32(golibvirt.DomainMetadataElement), golibvirt.OptString{metadataNS}, 0)
	switch {
	case isCode(err, golibvirt.ErrNoDomainMetadata):
	case noDomain(err):
		return guest.Found{}, nil
	case err != nil:
		return guest.Found{}, s.err(fmt.Errorf("domain %s: metadata: %w", dom.Name, err))
	default:
		if err := xml.Unmarshal([]byte(md), &m); err != nil {
			m = mark{}
		}
	}
	switch {
	case m.Deployment != dep.Name || m.Guest != g.Name:
		return guest.Found{Presence: guest.Foreign, What: fmt.Sprintf("%s, not marked as guest %s of deployment %s", what, g.Name, dep.Name), Complete: running}, nil
	case m.Server == "" && d.opts.Instance != "":
		// Defined before servers marked their domains: the record
		// decides.
		return guest.Found{Presence: guest.Unmarked, What: what, Complete: running}, nil
	case m.Server != d.opts.Instance:
		return guest.Found{Presence: guest.Foreign, What: what + " of another server (another data folder)", Complete: running}, nil
	}
	return guest.Found{Presence: guest.Ours, What: what, Complete: running}, nil
}
