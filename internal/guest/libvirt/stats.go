package libvirt

import (
	"context"
	"fmt"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/topology"
)

// Stats implements guest.Statser from libvirt's domain info: the CPU time
// of the domain's vCPUs and QEMU's own threads, and the resident memory of
// the QEMU process (the RSS memory stat), or the memory the domain has been
// given when libvirt cannot say.
func (d *Driver) Stats(ctx context.Context, dep guest.Deployment, g *topology.Guest) (guest.Stats, error) {
	var st guest.Stats
	err := d.withDomain(ctx, g, func(s *session, dom golibvirt.Domain) error {
		_, _, memKiB, _, cpuNS, err := s.DomainGetInfo(dom)
		if err != nil {
			return s.err(fmt.Errorf("domain %s: info: %w", dom.Name, err))
		}
		st = statsOf(cpuNS, memKiB, nil)
		// Only a running domain has memory stats.
		if mem, err := s.DomainMemoryStats(dom, uint32(golibvirt.DomainMemoryStatNr), 0); err == nil {
			st = statsOf(cpuNS, memKiB, mem)
		}
		return nil
	})
	return st, err
}

// statsOf makes Stats of DomainGetInfo's CPU time (ns) and memory (KiB)
// and the domain's memory stats.
func statsOf(cpuNS, memKiB uint64, mem []golibvirt.DomainMemoryStat) guest.Stats {
	st := guest.Stats{CPUSeconds: float64(cpuNS) / 1e9, MemoryBytes: memKiB * 1024}
	for _, m := range mem {
		if golibvirt.DomainMemoryStatTags(m.Tag) == golibvirt.DomainMemoryStatRss {
			st.MemoryBytes = m.Val * 1024
		}
	}
	return st
}
