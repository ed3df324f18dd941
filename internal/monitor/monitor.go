// Package monitor samples this host's CPU and memory and the resource use of
// every guest recorded up on it, every few seconds, keeps the last hour in
// memory (a ring per series, so it never grows), and serves it as series
// for the API and the GUI's plots and as Prometheus metrics.
package monitor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/engine"
	"github.com/testbedos/testbedos/internal/guest"
)

// Defaults.
const (
	DefaultInterval = 5 * time.Second
	DefaultKeep     = time.Hour
)

// LinkCounters reads the byte counters of a host-side link end, as the
// host sees them.
type LinkCounters func(name string) (rx, tx uint64, err error)

// Options configure a Monitor; only Interval and Keep have defaults.
type Options struct {
	Interval time.Duration
	// Keep is how much history is kept (DefaultKeep).
	Keep time.Duration
	// Records is the daemon's record of what is deployed; nil: no guests
	// are sampled.
	Records engine.Records
	// Host is this host (its name in the records, its drivers); nil: no
	// guests are sampled.
	Host engine.Host
	// Links reads interface counters; nil is netlink.
	Links  LinkCounters
	Logger *slog.Logger
	// ProcDir is where /proc is (tests); "" is /proc.
	ProcDir string
}

// Monitor samples in the background between Start and Stop.
type Monitor struct {
	opts Options
	capa int // samples per series

	mu     sync.RWMutex
	host   *ring[api.HostSample]
	guests map[guestKey]*guestSeries

	stop context.CancelFunc
	done chan struct{}
}

type guestKey struct{ deployment, guest string }

// guestSeries is one guest's history and its latest interface counters.
type guestSeries struct {
	samples *ring[api.GuestSample]
	// stats: the guest's driver reports CPU and memory.
	stats  bool
	ifaces []ifaceCounters
}

// ifaceCounters are one interface's bytes, from the guest's view.
type ifaceCounters struct {
	name   string
	rx, tx uint64
}

// New returns a monitor; Start starts sampling.
func New(opts Options) *Monitor {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Keep <= 0 {
		opts.Keep = DefaultKeep
	}
	if opts.Links == nil {
		opts.Links = netlinkCounters
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ProcDir == "" {
		opts.ProcDir = "/proc"
	}
	capa := int(opts.Keep/opts.Interval) + 1
	return &Monitor{opts: opts, capa: capa, host: newRing[api.HostSample](capa), guests: map[guestKey]*guestSeries{}}
}

// Interval is the sampling interval.
func (m *Monitor) Interval() time.Duration { return m.opts.Interval }

// Run samples now and then every interval, until ctx ends.
func (m *Monitor) Run(ctx context.Context) {
	t := time.NewTicker(m.opts.Interval)
	defer t.Stop()
	for {
		m.Sample(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Start runs Run in the background until Stop.
func (m *Monitor) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	m.stop, m.done = cancel, make(chan struct{})
	go func() {
		defer close(m.done)
		m.Run(ctx)
	}()
}

// Stop ends sampling and waits for a sample under way.
func (m *Monitor) Stop() {
	if m.stop == nil {
		return
	}
	m.stop()
	<-m.done
}

// Sample takes one sample of the host and of every guest recorded up on
// it; guests no longer recorded lose their series. It is bounded by the
// interval.
func (m *Monitor) Sample(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, m.opts.Interval)
	defer cancel()
	now := time.Now().UTC()
	if hs, err := m.sampleHost(now); err != nil {
		m.opts.Logger.Debug("monitor: host", "err", err)
	} else {
		m.mu.Lock()
		m.host.push(hs)
		m.mu.Unlock()
	}
	guests, complete := m.recordedGuests(ctx)
	seen := map[guestKey]bool{}
	for _, g := range guests {
		k := guestKey{g.deployment, g.guest.Guest.Name}
		seen[k] = true
		s, stats, ifaces := m.sampleGuest(ctx, g, now)
		m.mu.Lock()
		gs := m.guests[k]
		if gs == nil {
			gs = &guestSeries{samples: newRing[api.GuestSample](m.capa)}
			m.guests[k] = gs
		}
		gs.samples.push(s)
		gs.stats, gs.ifaces = stats, ifaces
		m.mu.Unlock()
	}
	if !complete || ctx.Err() != nil {
		return // not a full picture: drop no series on its word
	}
	m.mu.Lock()
	for k := range m.guests {
		if !seen[k] {
			delete(m.guests, k)
		}
	}
	m.mu.Unlock()
}

func (m *Monitor) sampleHost(now time.Time) (api.HostSample, error) {
	s := api.HostSample{Time: now}
	f, err := os.Open(m.opts.ProcDir + "/stat")
	if err != nil {
		return s, err
	}
	s.CPUSeconds, err = parseProcStat(f)
	f.Close()
	if err != nil {
		return s, err
	}
	f, err = os.Open(m.opts.ProcDir + "/meminfo")
	if err != nil {
		return s, err
	}
	defer f.Close()
	s.MemoryBytes, s.MemoryTotalBytes, err = parseMeminfo(f)
	return s, err
}

// recordedGuest is a guest the record holds as made on this host.
type recordedGuest struct {
	deployment, project string
	guest               engine.GuestRecord
}

// recordedGuests lists the guests recorded up on this host; complete is
// false when some record could not be read.
func (m *Monitor) recordedGuests(ctx context.Context) (out []recordedGuest, complete bool) {
	if m.opts.Records == nil || m.opts.Host == nil {
		return nil, true
	}
	names, err := m.opts.Records.DeployedNames(ctx)
	if err != nil {
		m.opts.Logger.Warn("monitor: list deployed", "err", err)
		return nil, false
	}
	complete = true
	for _, name := range names {
		data, err := m.opts.Records.Deployed(ctx, name)
		if err != nil {
			complete = false
			continue
		}
		if data == nil {
			continue // gone meanwhile
		}
		var rec engine.Record
		if err := json.Unmarshal(data, &rec); err != nil {
			m.opts.Logger.Warn("monitor: record", "deployment", name, "err", err)
			continue
		}
		h := rec.Hosts[m.opts.Host.Name()]
		if h == nil {
			continue
		}
		for _, g := range h.Guests {
			if !g.Pending {
				out = append(out, recordedGuest{deployment: name, project: rec.Project, guest: g})
			}
		}
	}
	return out, complete
}

// sampleGuest reads a guest's stats (when its driver has them) and the
// counters of its interfaces.
func (m *Monitor) sampleGuest(ctx context.Context, rg recordedGuest, now time.Time) (api.GuestSample, bool, []ifaceCounters) {
	g := rg.guest.Guest
	s := api.GuestSample{Time: now}
	stats := false
	if drv, err := m.opts.Host.Driver(g.Kind); err == nil {
		if st, err := guest.As[guest.Statser](drv); err == nil {
			dep := guest.Deployment{Name: rg.deployment, Files: m.opts.Host.Files(rg.project)}
			if v, err := st.Stats(ctx, dep, &g); err == nil {
				s.CPUSeconds, s.MemoryBytes, stats = v.CPUSeconds, v.MemoryBytes, true
			} else {
				m.opts.Logger.Debug("monitor: guest stats", "deployment", rg.deployment, "guest", g.Name, "err", err)
			}
		}
	}
	var ifaces []ifaceCounters
	for _, ifc := range g.Interfaces {
		hostRx, hostTx, err := m.opts.Links(ifc.HostName)
		if err != nil {
			continue
		}
		// What the host end receives, the guest sent.
		c := ifaceCounters{name: ifc.Name, rx: hostTx, tx: hostRx}
		s.RxBytes += c.rx
		s.TxBytes += c.tx
		s.Interfaces = append(s.Interfaces, api.InterfaceSample{Name: c.name, RxBytes: c.rx, TxBytes: c.tx})
		ifaces = append(ifaces, c)
	}
	return s, stats, ifaces
}

func netlinkCounters(name string) (rx, tx uint64, err error) {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return 0, 0, err
	}
	st := link.Attrs().Statistics
	if st == nil {
		return 0, 0, fmt.Errorf("link %s has no statistics", name)
	}
	return st.RxBytes, st.TxBytes, nil
}

// Host is the host's series, oldest first.
func (m *Monitor) Host() api.HostSeries {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return api.HostSeries{IntervalS: m.opts.Interval.Seconds(), Samples: m.host.values()}
}

// Guest is a guest's series, oldest first; empty when it is not recorded
// up on this host.
func (m *Monitor) Guest(deployment, guestName string) api.GuestSeries {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := api.GuestSeries{IntervalS: m.opts.Interval.Seconds(), Samples: []api.GuestSample{}}
	if gs := m.guests[guestKey{deployment, guestName}]; gs != nil {
		out.Samples, out.Stats = gs.samples.values(), gs.stats
	}
	return out
}

// HostSVG draws the host's last window (up to the hour kept).
func (m *Monitor) HostSVG(w io.Writer, win time.Duration) error {
	return HostSVG(w, m.Host(), time.Now(), win)
}

// GuestSVG draws a guest's last window (up to the hour kept).
func (m *Monitor) GuestSVG(w io.Writer, deployment, guestName string, win time.Duration) error {
	var total uint64
	m.mu.RLock()
	if h, ok := m.host.last(); ok {
		total = h.MemoryTotalBytes
	}
	m.mu.RUnlock()
	return GuestSVG(w, m.Guest(deployment, guestName), total, time.Now(), win)
}

// Latest is a guest's latest sample, or nil when there is none.
func (m *Monitor) Latest(deployment, guestName string) *api.GuestResources {
	m.mu.RLock()
	defer m.mu.RUnlock()
	gs := m.guests[guestKey{deployment, guestName}]
	if gs == nil {
		return nil
	}
	s, ok := gs.samples.last()
	if !ok || (!gs.stats && len(gs.ifaces) == 0) {
		return nil
	}
	r := &api.GuestResources{RxBytes: s.RxBytes, TxBytes: s.TxBytes, SampledAt: s.Time}
	if gs.stats {
		r.CPUSeconds, r.MemoryBytes = &s.CPUSeconds, &s.MemoryBytes
	}
	return r
}
