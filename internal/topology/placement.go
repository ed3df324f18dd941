package topology

// placer picks the host of each guest that names none: in turn (naive
// round robin), or, for load_balancing: resources, the host with the most
// CPU and memory left once the guests already placed are counted (a VM
// counts its cpus and memory_mb, other guests one share of a CPU and no
// memory; a host with no known size counts as one CPU and 1 GiB).
type placer struct {
	hosts     []Host
	resources bool
	turn      int
	cpus      map[string]float64 // used, by host
	mem       map[string]float64
	count     map[string]int
}

func newPlacer(policy string, hosts []Host) *placer {
	return &placer{hosts: hosts, resources: policy == LoadBalancingResources,
		cpus: map[string]float64{}, mem: map[string]float64{}, count: map[string]int{}}
}

// demand is what machine m asks of a host.
func demand(m *Machine) (cpus, memMB float64) {
	if m.Libvirt != nil {
		return float64(m.Libvirt.CPUs), float64(m.Libvirt.MemoryMB)
	}
	return 0.1, 0
}

// take counts m on host.
func (p *placer) take(host string, m *Machine) {
	c, mem := demand(m)
	p.cpus[host] += c
	p.mem[host] += mem
	p.count[host]++
}

// next is the host for m ("" when there are none) and counts it there.
func (p *placer) next(m *Machine) string {
	if len(p.hosts) == 0 {
		return ""
	}
	if !p.resources {
		h := p.hosts[p.turn%len(p.hosts)].Name
		p.turn++
		p.take(h, m)
		return h
	}
	c, mem := demand(m)
	best, bestScore := "", 0.0
	for _, h := range p.hosts {
		capC, capM := float64(h.CPUs), float64(h.MemoryMB)
		if capC <= 0 {
			capC = 1
		}
		if capM <= 0 {
			capM = 1024
		}
		// The share of each left after placing m there; the scarcer one
		// counts.
		score := min((capC-p.cpus[h.Name]-c)/capC, (capM-p.mem[h.Name]-mem)/capM)
		if best == "" || score > bestScore+1e-9 {
			best, bestScore = h.Name, score
		}
	}
	p.take(best, m)
	return best
}
