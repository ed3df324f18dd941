package api

import "time"

// Guest statuses of GET /api/deployments/{name}/guests.
const (
	// GuestRunning: the guest's driver says it is there and running.
	GuestRunning = "running"
	// GuestStopped: the daemon's record holds the guest, but its driver
	// says it is not running (a shut-off VM, a namespace removed by hand, or
	// a host that does not answer).
	GuestStopped = "stopped"
	// GuestAbsent: nothing of the guest is deployed.
	GuestAbsent = "absent"
)

// Guest is one guest of a deployment as GET /api/deployments/{name}/guests
// lists it.
type Guest struct {
	Name       string           `json:"name"`
	Kind       string           `json:"kind"`
	Host       string           `json:"host"`
	Status     string           `json:"status"`
	Interfaces []GuestInterface `json:"interfaces"`
	// Resources is the monitor's latest sample; nil when there is none
	// (the guest is not up, its kind has no stats, or it runs on another
	// host of the cluster).
	Resources *GuestResources `json:"resources"`
}

// GuestInterface is one interface of a guest.
type GuestInterface struct {
	Name   string `json:"name"`
	Switch string `json:"switch"`
	// IP is the address with its prefix (10.0.0.10/24); for an
	// "ip: dynamic" interface the lease, empty until there is one.
	IP     string `json:"ip"`
	MAC    string `json:"mac"`
	Leased bool   `json:"leased"`
	// Impairment is the run-time setting recorded for the interface (its
	// link set down, netem set through the interface route); nil while
	// kvm-compose.yaml's setting is in force.
	Impairment *Impairment `json:"impairment,omitempty"`
}

// GuestResources is what a guest uses, from one sample of the monitor.
// Network bytes are seen from the guest: rx is what it received.
// CPUSeconds and MemoryBytes are null when the guest's driver gives no
// such number (shown as "n/a", never as 0).
type GuestResources struct {
	CPUSeconds  *float64  `json:"cpu_seconds"`
	MemoryBytes *uint64   `json:"memory_bytes"`
	RxBytes     uint64    `json:"rx_bytes"`
	TxBytes     uint64    `json:"tx_bytes"`
	SampledAt   time.Time `json:"sampled_at"`
}

// HostSample is one sample of this host's CPU and memory. CPUSeconds is
// the CPU time spent busy (not idle or waiting for I/O) since boot, over
// all CPUs.
type HostSample struct {
	Time             time.Time `json:"time"`
	CPUSeconds       float64   `json:"cpu_seconds"`
	MemoryBytes      uint64    `json:"memory_bytes"`
	MemoryTotalBytes uint64    `json:"memory_total_bytes"`
}

// HostSeries is the answer of GET /api/monitor/host: the last hour, oldest
// first.
type HostSeries struct {
	IntervalS float64      `json:"interval_s"`
	Samples   []HostSample `json:"samples"`
}

// GuestSample is one sample of a guest; counters are cumulative.
type GuestSample struct {
	Time        time.Time `json:"time"`
	CPUSeconds  float64   `json:"cpu_seconds"`
	MemoryBytes uint64    `json:"memory_bytes"`
	RxBytes     uint64    `json:"rx_bytes"`
	TxBytes     uint64    `json:"tx_bytes"`
	// Interfaces are the counters of each interface (their sum is RxBytes
	// and TxBytes), seen from the guest.
	Interfaces []InterfaceSample `json:"interfaces,omitempty"`
}

// InterfaceSample is one interface's counters in a GuestSample.
type InterfaceSample struct {
	Name    string `json:"name"`
	RxBytes uint64 `json:"rx_bytes"`
	TxBytes uint64 `json:"tx_bytes"`
}

// GuestSeries is the answer of GET
// /api/monitor/deployments/{name}/guests/{guest}: the last hour, oldest
// first (empty when the guest is not up on this host).
type GuestSeries struct {
	IntervalS float64 `json:"interval_s"`
	// Stats is false when the guest's driver gives no CPU and memory
	// numbers: the samples' cpu_seconds and memory_bytes are then 0 and
	// mean nothing.
	Stats   bool          `json:"stats"`
	Samples []GuestSample `json:"samples"`
}
