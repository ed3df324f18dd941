package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/net/ovn"
	"github.com/testbedos/testbedos/internal/topology"
)

// Records keeps the daemon's record of what each deployment has deployed
// (the store's deployed/<name>.json). Deployed returns nil, nil when nothing
// is recorded.
type Records interface {
	Deployed(ctx context.Context, name string) ([]byte, error)
	PutDeployed(ctx context.Context, name string, record []byte) error
	DeleteDeployed(ctx context.Context, name string) error
	// DeployedNames lists the deployments that have a record, sorted (to
	// keep VNIs unique across deployments).
	DeployedNames(ctx context.Context) ([]string, error)
}

// recordVersion is bumped when Record changes incompatibly.
const recordVersion = 1

// Record is what a deployment has deployed, per host: the resolved state of
// every object the daemon made, written before each object is made and
// updated once it is. down, revert and recovery work from it alone, never
// from the project folder.
type Record struct {
	Version    int                    `json:"version"`
	Deployment string                 `json:"deployment"`
	Project    string                 `json:"project_location"`
	UpdatedAt  time.Time              `json:"updated_at"`
	Hosts      map[string]*HostRecord `json:"hosts"`
}

// HostRecord is what a deployment has on one host.
type HostRecord struct {
	Bridges map[string]BridgeRecord `json:"bridges,omitempty"` // by bridge name
	Guests  map[string]GuestRecord  `json:"guests,omitempty"`  // by guest name
	Tunnels map[string]TunnelRecord `json:"tunnels,omitempty"` // by link name
	// Routers by namespace (routers) or table (external switches).
	Routers map[string]RouterRecord `json:"routers,omitempty"`
	// ACLTables are the deployment's nftables tables (acl.go), by name.
	ACLTables map[string]ACLTableRecord `json:"acl_tables,omitempty"`
	// Names is the deployment's block of names in the host's hosts file
	// (names.go); nil: none.
	Names *NamesRecord `json:"names,omitempty"`
	// The ovn backend's logical switches, routers and switches' ACLs, by
	// their names in OVN (ovn_switch.go, ovn_router.go, ovn_acl.go).
	OVNSwitches map[string]OVNRecord[ovn.SwitchSpec] `json:"ovn_switches,omitempty"`
	OVNRouters  map[string]OVNRecord[ovn.RouterSpec] `json:"ovn_routers,omitempty"`
	OVNACLs     map[string]OVNRecord[[]ovn.ACLSpec]  `json:"ovn_acls,omitempty"`
}

// TunnelRecord is the VXLAN link of a switch spanning hosts, on one host.
// It is written before the link is made, like a bridge.
type TunnelRecord struct {
	Switch string `json:"switch"`
	// VNI is the switch's VXLAN network identifier, the same on every host
	// of the switch and unique in the cluster.
	VNI    int      `json:"vni"`
	Bridge string   `json:"bridge"`
	Peers  []string `json:"peers"`
	// Made: the deployment created the link, so down deletes it.
	Made bool `json:"made"`
}

// BridgeRecord is one switch's bridge on a host.
type BridgeRecord struct {
	Switch string `json:"switch"`
	// Made: the deployment created the bridge, so down deletes it. A bridge
	// that was there before is used but never deleted.
	Made bool `json:"made"`
	// Firewall: the deployment added the rules that let the bridge's ports
	// talk.
	Firewall bool `json:"firewall"`
	// Shared: a provider network's bridge, which every deployment on the
	// network records; the last one's down removes it (shared.go).
	Shared bool `json:"shared,omitempty"`
}

// GuestRecord is one guest on a host.
type GuestRecord struct {
	Guest topology.Guest `json:"guest"`
	// Pending: about to be made, or being made; down removes it all the
	// same (Destroy is idempotent).
	Pending bool `json:"pending,omitempty"`
	// Leases are the DHCP leases of its ip: dynamic interfaces: interface
	// name → address (CIDR).
	Leases map[string]string `json:"leases,omitempty"`
	// Impairments are the run-time settings of its interfaces (PUT
	// …/interfaces/{iface}), by interface name; they replace
	// kvm-compose.yaml's netem and are set again when up re-makes the guest.
	Impairments map[string]api.Impairment `json:"impairments,omitempty"`
	// Stopped: the guest was stopped (power.go) and stays stopped until it
	// is started: up, apply and restore do not start it, and it is not
	// missing.
	Stopped bool `json:"stopped,omitempty"`
}

// empty reports whether the record holds no object of any kind.
func (r *Record) empty() bool {
	for _, h := range r.Hosts {
		if !h.empty() {
			return false
		}
	}
	return true
}

// empty reports whether h holds no object of any kind.
func (h *HostRecord) empty() bool {
	if h == nil {
		return true
	}
	for _, k := range recordKinds() {
		if len(k.held(h)) > 0 {
			return false
		}
	}
	return true
}

// summary counts what the record holds, kind by kind: "3 guests, 2
// switches, 1 router".
func (r *Record) summary() string {
	var nouns []string
	env := removeEnv{}
	for _, k := range recordKinds() {
		for _, hn := range r.hostNames() {
			h := r.Hosts[hn]
			for _, key := range k.held(h) {
				nouns = append(nouns, k.removal(env, h, key).noun)
			}
		}
	}
	return countNouns(nouns)
}

// host returns the record of host name, made when missing.
func (r *Record) host(name string) *HostRecord {
	if r.Hosts == nil {
		r.Hosts = map[string]*HostRecord{}
	}
	h := r.Hosts[name]
	if h == nil {
		h = &HostRecord{Bridges: map[string]BridgeRecord{}, Guests: map[string]GuestRecord{}, Tunnels: map[string]TunnelRecord{}}
		r.Hosts[name] = h
	}
	if h.Bridges == nil {
		h.Bridges = map[string]BridgeRecord{}
	}
	if h.Guests == nil {
		h.Guests = map[string]GuestRecord{}
	}
	if h.Tunnels == nil {
		h.Tunnels = map[string]TunnelRecord{}
	}
	if h.Routers == nil {
		h.Routers = map[string]RouterRecord{}
	}
	if h.ACLTables == nil {
		h.ACLTables = map[string]ACLTableRecord{}
	}
	return h
}

// hostNames lists the hosts of the record, sorted.
func (r *Record) hostNames() []string {
	var out []string
	for n := range r.Hosts {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// counts says how many guests and bridges the record holds (for tests).
func (r *Record) counts() (guests, bridges int) {
	for _, h := range r.Hosts {
		guests += len(h.Guests)
		bridges += len(h.Bridges)
	}
	return guests, bridges
}

// ledger is the record of one deployment while an action changes it: edits
// under a lock, saved in batches (one write per stage step, not per object).
type ledger struct {
	store Records
	name  string

	mu  sync.Mutex
	rec Record
}

// openLedger reads the record of deployment d, or starts an empty one.
func openLedger(ctx context.Context, store Records, name, project string) (*ledger, error) {
	l := &ledger{store: store, name: name}
	data, err := store.Deployed(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("read the record of what is deployed: %w", err)
	}
	if data == nil {
		l.rec = Record{Version: recordVersion, Deployment: name, Project: project}
		return l, nil
	}
	if err := json.Unmarshal(data, &l.rec); err != nil {
		return nil, fmt.Errorf("the record of what deployment %s has deployed is damaged: %w", name, err)
	}
	if l.rec.Version != recordVersion {
		return nil, fmt.Errorf("the record of what deployment %s has deployed has version %d; this server reads %d", name, l.rec.Version, recordVersion)
	}
	return l, nil
}

// edit changes the record in memory; save writes it.
func (l *ledger) edit(fn func(r *Record)) {
	l.mu.Lock()
	fn(&l.rec)
	l.mu.Unlock()
}

// view reads the record under the lock.
func (l *ledger) view(fn func(r *Record)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fn(&l.rec)
}

// save writes the record durably; an empty record is deleted. It ignores
// ctx's cancellation: a record must be written even as an action is
// cancelled.
func (l *ledger) save(ctx context.Context) error {
	ctx = context.WithoutCancel(ctx)
	l.mu.Lock()
	empty := l.rec.empty()
	l.rec.UpdatedAt = time.Now().UTC()
	data, err := json.MarshalIndent(&l.rec, "", "  ")
	l.mu.Unlock()
	if err != nil {
		return fmt.Errorf("encode the record of what is deployed: %w", err)
	}
	if empty {
		err = l.store.DeleteDeployed(ctx, l.name)
	} else {
		err = l.store.PutDeployed(ctx, l.name, data)
	}
	if err != nil {
		return fmt.Errorf("write the record of what is deployed: %w", err)
	}
	return nil
}

// Deployed returns the record of what deployment name has deployed; a
// deployment with nothing deployed has an empty record.
func (e *Engine) Deployed(ctx context.Context, name string) (Record, error) {
	l, err := openLedger(ctx, e.opts.Records, name, "")
	if err != nil {
		return Record{}, err
	}
	return l.rec, nil
}

// MemoryRecords keeps records in memory: for tests and tools that need no
// durability.
type MemoryRecords struct {
	mu   sync.Mutex
	data map[string][]byte
}

// Deployed implements Records.
func (m *MemoryRecords) Deployed(ctx context.Context, name string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.data[name], nil
}

// PutDeployed implements Records.
func (m *MemoryRecords) PutDeployed(ctx context.Context, name string, record []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.data == nil {
		m.data = map[string][]byte{}
	}
	m.data[name] = append([]byte(nil), record...)
	return nil
}

// DeleteDeployed implements Records.
func (m *MemoryRecords) DeleteDeployed(ctx context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.data, name)
	return nil
}

// DeployedNames implements Records.
func (m *MemoryRecords) DeployedNames(ctx context.Context) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	names := make([]string, 0, len(m.data))
	for n := range m.data {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}
