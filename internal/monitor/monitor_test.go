package monitor

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/testbedos/testbedos/internal/actlog"
	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/engine"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/topology"
)

func TestParseProcStat(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want float64
		bad  bool
	}{
		// user nice system idle iowait irq softirq steal guest guest_nice
		{"full", "cpu  100 20 30 1000 50 5 5 40 7 0\ncpu0 1 1 1 1 1 1 1 1 1 1\n", 2.0, false},
		{"old kernel", "cpu 100 0 100 500\n", 2.0, false},
		{"no cpu line", "intr 1 2 3\n", 0, true},
		{"garbage", "cpu a b c d e\n", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseProcStat(strings.NewReader(tc.in))
			if (err != nil) != tc.bad || got != tc.want {
				t.Errorf("parseProcStat = %v, %v; want %v (error %v)", got, err, tc.want, tc.bad)
			}
		})
	}
}

func TestParseMeminfo(t *testing.T) {
	used, total, err := parseMeminfo(strings.NewReader("MemTotal:       1000 kB\nMemFree:         100 kB\nMemAvailable:    400 kB\n"))
	if err != nil || used != 600*1024 || total != 1000*1024 {
		t.Errorf("parseMeminfo = %d, %d, %v", used, total, err)
	}
	if _, _, err := parseMeminfo(strings.NewReader("MemTotal: 1000 kB\n")); err == nil {
		t.Error("no MemAvailable: no error")
	}
}

func TestRing(t *testing.T) {
	r := newRing[int](3)
	if _, ok := r.last(); ok {
		t.Error("empty ring has a last value")
	}
	for i := 1; i <= 7; i++ {
		r.push(i)
		want := []int{}
		for v := max(1, i-2); v <= i; v++ {
			want = append(want, v)
		}
		got := r.values()
		if last, _ := r.last(); last != i || len(got) != len(want) || r.len() != len(want) {
			t.Fatalf("after %d: values %v last %d, want %v", i, got, last, want)
		}
		for k := range want {
			if got[k] != want[k] {
				t.Fatalf("after %d: values %v, want %v", i, got, want)
			}
		}
	}
	if cap(r.buf) != 3 {
		t.Errorf("ring grew to %d", cap(r.buf))
	}
}

// fakeHost is a host of one kind, "fake", whose guests use 1 s of CPU more
// per sample.
type fakeHost struct{ drv *fakeDriver }

func (h fakeHost) Name() string             { return "main" }
func (h fakeHost) Network() engine.Network  { return nil }
func (h fakeHost) Files(string) guest.Files { return guest.ProjectFiles{} }
func (h fakeHost) Driver(kind string) (guest.Driver, error) {
	if kind != "fake" {
		return nil, errors.New("no such kind")
	}
	return h.drv, nil
}

type fakeDriver struct{ cpu float64 }

func (d *fakeDriver) Kind() string                     { return "fake" }
func (d *fakeDriver) Capabilities() guest.Capabilities { return guest.Capabilities{Stats: true} }
func (d *fakeDriver) Exists(context.Context, guest.Deployment, *topology.Guest) (bool, error) {
	return true, nil
}
func (d *fakeDriver) Create(context.Context, guest.Deployment, *topology.Guest, actlog.Log) (bool, error) {
	return true, nil
}
func (d *fakeDriver) RunScript(context.Context, guest.Deployment, *topology.Guest, string, actlog.Log) error {
	return nil
}
func (d *fakeDriver) Destroy(context.Context, guest.Deployment, *topology.Guest, actlog.Log) error {
	return nil
}
func (d *fakeDriver) Stats(ctx context.Context, dep guest.Deployment, g *topology.Guest) (guest.Stats, error) {
	d.cpu++
	return guest.Stats{CPUSeconds: d.cpu, MemoryBytes: 4096}, nil
}

func putRecord(t *testing.T, recs *engine.MemoryRecords, dep string, guests ...string) {
	t.Helper()
	hr := &engine.HostRecord{Guests: map[string]engine.GuestRecord{}}
	for _, g := range guests {
		hr.Guests[g] = engine.GuestRecord{Guest: topology.Guest{Name: g, Kind: "fake", Host: "main",
			Interfaces: []topology.Interface{{Name: "eth0", HostName: "h-" + g}}}}
	}
	// A guest being made is not sampled yet.
	hr.Guests["pending"] = engine.GuestRecord{Guest: topology.Guest{Name: "pending", Kind: "fake"}, Pending: true}
	data, err := json.Marshal(engine.Record{Version: 1, Deployment: dep, Hosts: map[string]*engine.HostRecord{"main": hr}})
	if err != nil {
		t.Fatal(err)
	}
	recs.PutDeployed(context.Background(), dep, data)
}

func TestSampleAndCollect(t *testing.T) {
	proc := t.TempDir()
	os.WriteFile(filepath.Join(proc, "stat"), []byte("cpu  100 0 100 500 0 0 0 0 0 0\n"), 0o644)
	os.WriteFile(filepath.Join(proc, "meminfo"), []byte("MemTotal: 2000 kB\nMemAvailable: 500 kB\n"), 0o644)
	recs := &engine.MemoryRecords{}
	putRecord(t, recs, "d1", "a", "b")
	links := func(name string) (uint64, uint64, error) {
		if name == "h-b" {
			return 0, 0, errors.New("gone")
		}
		return 10, 20, nil // host end: received 10, sent 20
	}
	m := New(Options{Interval: time.Second, Keep: 3 * time.Second, Records: recs, Host: fakeHost{&fakeDriver{}}, Links: links, ProcDir: proc})
	ctx := context.Background()
	for range 6 {
		m.Sample(ctx)
	}
	if n := len(m.Host().Samples); n != 4 {
		t.Errorf("host samples kept: %d, want 4 (3 s at 1 s, and the newest)", n)
	}
	if h := m.Host().Samples[0]; h.CPUSeconds != 2 || h.MemoryBytes != 1500*1024 || h.MemoryTotalBytes != 2000*1024 {
		t.Errorf("host sample %+v", h)
	}
	r := m.Latest("d1", "a")
	if r == nil || r.RxBytes != 20 || r.TxBytes != 10 || r.MemoryBytes == nil || *r.MemoryBytes != 4096 || r.CPUSeconds == nil {
		t.Fatalf("latest of a = %+v: want rx 20 and tx 10 (the host end's, swapped)", r)
	}
	if m.Latest("d1", "pending") != nil || m.Latest("d1", "nope") != nil {
		t.Error("a pending or unknown guest has resources")
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(m.Collector())
	want := `
# HELP testbedos_guest_network_receive_bytes_total Bytes a guest's interface received.
# TYPE testbedos_guest_network_receive_bytes_total counter
testbedos_guest_network_receive_bytes_total{deployment="d1",guest="a",interface="eth0"} 20
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "testbedos_guest_network_receive_bytes_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m.Collector(), "testbedos_guest_cpu_seconds_total"); n != 2 {
		t.Errorf("guest cpu series: %d, want 2 (a and b)", n)
	}
	if n := testutil.CollectAndCount(m.Collector(), "testbedos_host_cpu_seconds_total", "testbedos_host_memory_bytes"); n != 2 {
		t.Errorf("host series: %d, want 2", n)
	}

	// A store that does not answer drops no series.
	m.opts.Records = failingRecords{recs}
	m.Sample(ctx)
	if m.Latest("d1", "a") == nil {
		t.Error("a failed listing dropped the series")
	}
	m.opts.Records = recs

	// Down: the record goes, and with the next sample its series.
	recs.DeleteDeployed(ctx, "d1")
	m.Sample(ctx)
	if n := testutil.CollectAndCount(m.Collector(), "testbedos_guest_cpu_seconds_total", "testbedos_guest_memory_bytes",
		"testbedos_guest_network_receive_bytes_total", "testbedos_guest_network_transmit_bytes_total"); n != 0 {
		t.Errorf("guest series after down: %d", n)
	}
	if s := m.Guest("d1", "a"); len(s.Samples) != 0 {
		t.Errorf("series after down: %d samples", len(s.Samples))
	}
}

func TestStartStop(t *testing.T) {
	m := New(Options{Interval: 10 * time.Millisecond})
	m.Start()
	deadline := time.Now().Add(5 * time.Second)
	for len(m.Host().Samples) < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	m.Stop()
	n := len(m.Host().Samples)
	if n < 2 {
		t.Fatalf("%d samples after start", n)
	}
	time.Sleep(30 * time.Millisecond)
	if len(m.Host().Samples) != n {
		t.Error("still sampling after Stop")
	}
}

func TestSVG(t *testing.T) {
	now := time.Now()
	var hs []api.HostSample
	var gs []api.GuestSample
	for i := range 10 {
		ts := now.Add(time.Duration(i-10) * time.Minute)
		hs = append(hs, api.HostSample{Time: ts, CPUSeconds: float64(i * 30), MemoryBytes: 1 << 30, MemoryTotalBytes: 4 << 30})
		gs = append(gs, api.GuestSample{Time: ts, CPUSeconds: float64(i * 6), MemoryBytes: 1 << 20, RxBytes: uint64(300 * i), TxBytes: 200,
			Interfaces: []api.InterfaceSample{{Name: "eth0", RxBytes: uint64(100 * i), TxBytes: 100}, {Name: "eth1", RxBytes: uint64(200 * i), TxBytes: 100}}})
	}
	for name, fn := range map[string]func(*bytes.Buffer) error{
		"host": func(b *bytes.Buffer) error { return HostSVG(b, api.HostSeries{Samples: hs}, now, 0) },
		"guest": func(b *bytes.Buffer) error {
			return GuestSVG(b, api.GuestSeries{Samples: gs}, 4<<30, now, 5*time.Minute)
		},
		"empty guest": func(b *bytes.Buffer) error { return GuestSVG(b, api.GuestSeries{}, 0, now, 0) },
	} {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			if err := fn(&b); err != nil {
				t.Fatal(err)
			}
			var doc struct {
				XMLName xml.Name
				Width   string `xml:"width,attr"`
			}
			if err := xml.Unmarshal(b.Bytes(), &doc); err != nil || doc.XMLName.Local != "svg" {
				t.Fatalf("not an SVG: %v %q", err, b.String()[:min(200, b.Len())])
			}
			t.Logf("%s: %d bytes, width %s", name, b.Len(), doc.Width)
			if doc.Width != "480pt" {
				t.Errorf("%s: width %s: want a plot a person reads (480pt, 640 px)", name, doc.Width)
			}
			svg := b.String()
			switch name {
			case "host":
				if !regexp.MustCompile(`>-60(\.0+)?<`).MatchString(svg) {
					t.Errorf("the host's plot of the hour has no -60 minutes tick")
				}
			case "guest":
				if !regexp.MustCompile(`>-5(\.0+)?<`).MatchString(svg) || strings.Contains(svg, ">-60") || !strings.Contains(svg, "KiB/s") ||
					!strings.Contains(svg, "eth0 rx") || !strings.Contains(svg, "eth1 tx") {
					t.Errorf("the guest's 5-minute plot: its ticks or its network panel are missing")
				}
			}
		})
	}
}

type failingRecords struct{ *engine.MemoryRecords }

func (failingRecords) DeployedNames(context.Context) ([]string, error) {
	return nil, errors.New("store down")
}
