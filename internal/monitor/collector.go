package monitor

import (
	"github.com/prometheus/client_golang/prometheus"
)

// collector exports the latest sample. Series exist only for guests
// recorded up on this host (the monitor drops a guest's series at the
// first sample after it is gone), so no label value comes from a request.
type collector struct {
	m                                *Monitor
	hostCPU, hostMem                 *prometheus.Desc
	guestCPU, guestMem, guestRx, gTx *prometheus.Desc
}

// Collector is the monitor's Prometheus collector.
func (m *Monitor) Collector() prometheus.Collector {
	g := []string{"deployment", "guest"}
	gi := []string{"deployment", "guest", "interface"}
	return &collector{
		m:        m,
		hostCPU:  prometheus.NewDesc("testbedos_host_cpu_seconds_total", "CPU time this host spent busy (not idle or in iowait), over all CPUs.", nil, nil),
		hostMem:  prometheus.NewDesc("testbedos_host_memory_bytes", "Memory in use on this host (MemTotal - MemAvailable).", nil, nil),
		guestCPU: prometheus.NewDesc("testbedos_guest_cpu_seconds_total", "CPU time of a guest on this host.", g, nil),
		guestMem: prometheus.NewDesc("testbedos_guest_memory_bytes", "Memory of a guest on this host.", g, nil),
		guestRx:  prometheus.NewDesc("testbedos_guest_network_receive_bytes_total", "Bytes a guest's interface received.", gi, nil),
		gTx:      prometheus.NewDesc("testbedos_guest_network_transmit_bytes_total", "Bytes a guest's interface sent.", gi, nil),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.hostCPU, c.hostMem, c.guestCPU, c.guestMem, c.guestRx, c.gTx} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	m := c.m
	m.mu.RLock()
	defer m.mu.RUnlock()
	if h, ok := m.host.last(); ok {
		ch <- prometheus.MustNewConstMetric(c.hostCPU, prometheus.CounterValue, h.CPUSeconds)
		ch <- prometheus.MustNewConstMetric(c.hostMem, prometheus.GaugeValue, float64(h.MemoryBytes))
	}
	for k, gs := range m.guests {
		s, ok := gs.samples.last()
		if !ok {
			continue
		}
		if gs.stats {
			ch <- prometheus.MustNewConstMetric(c.guestCPU, prometheus.CounterValue, s.CPUSeconds, k.deployment, k.guest)
			ch <- prometheus.MustNewConstMetric(c.guestMem, prometheus.GaugeValue, float64(s.MemoryBytes), k.deployment, k.guest)
		}
		for _, ifc := range gs.ifaces {
			ch <- prometheus.MustNewConstMetric(c.guestRx, prometheus.CounterValue, float64(ifc.rx), k.deployment, k.guest, ifc.name)
			ch <- prometheus.MustNewConstMetric(c.gTx, prometheus.CounterValue, float64(ifc.tx), k.deployment, k.guest, ifc.name)
		}
	}
}
