package engine

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/guesttest"
	"github.com/testbedos/testbedos/internal/topology"
)

// routedWorld is world with routers: which routers, external sides and
// DHCP servers exist.
type routedWorld struct {
	*world
	rmu       sync.Mutex
	routers   map[string]bool
	externals map[string]bool
	served    map[string]map[string]string // namespace → seeded leases
	leased    []string
	routerErr error // when set, EnsureRouter fails with it
}

func (w *routedWorld) RouterMissing(ctx context.Context, r topology.Router) ([]string, error) {
	w.rmu.Lock()
	defer w.rmu.Unlock()
	if !w.routers[r.Namespace] {
		return []string{"namespace " + r.Namespace}, nil
	}
	return nil, nil
}

func (w *routedWorld) HasExternal(ctx context.Context, sw topology.Switch) (bool, error) {
	w.rmu.Lock()
	defer w.rmu.Unlock()
	return w.externals[sw.External.Table], nil
}

var _ Routers = (*routedWorld)(nil)

func (w *routedWorld) EnsureRouter(ctx context.Context, r topology.Router) (bool, error) {
	w.rmu.Lock()
	defer w.rmu.Unlock()
	if w.routerErr != nil {
		return false, w.routerErr
	}
	created := !w.routers[r.Namespace]
	w.routers[r.Namespace] = true
	return created, nil
}
func (w *routedWorld) DeleteRouter(ctx context.Context, r topology.Router) error {
	w.rmu.Lock()
	defer w.rmu.Unlock()
	delete(w.routers, r.Namespace)
	delete(w.served, r.Namespace)
	return nil
}
func (w *routedWorld) ServeDHCP(ctx context.Context, r topology.Router, leases map[string]string) error {
	w.rmu.Lock()
	defer w.rmu.Unlock()
	w.served[r.Namespace] = leases
	return nil
}
func (w *routedWorld) EnsureExternal(ctx context.Context, sw topology.Switch) (bool, error) {
	w.rmu.Lock()
	defer w.rmu.Unlock()
	created := !w.externals[sw.External.Table]
	w.externals[sw.External.Table] = true
	return created, nil
}
func (w *routedWorld) DeleteExternal(ctx context.Context, sw topology.Switch) error {
	w.rmu.Lock()
	defer w.rmu.Unlock()
	delete(w.externals, sw.External.Table)
	return nil
}
func (w *routedWorld) Lease(ctx context.Context, nsPath, ifname string) (string, string, error) {
	w.rmu.Lock()
	defer w.rmu.Unlock()
	w.leased = append(w.leased, nsPath+" "+ifname)
	return "10.0.1.20/24", "10.0.1.1", nil
}

func (w *routedWorld) objects() int {
	w.rmu.Lock()
	defer w.rmu.Unlock()
	return len(w.routers) + len(w.externals)
}

const routedTopo = `machines:
  - name: a
    network: [{switch: sw0, ip: 10.0.0.10, gateway: 10.0.0.1}]
  - name: b
    network: [{switch: sw1, ip: dynamic}]
  - name: c
    network: [{switch: sw0, ip: 10.0.0.11}]
network:
  switches:
    sw0: {subnet: 10.0.0.0/24}
    sw1: {subnet: 10.0.1.0/24}
    ext: {subnet: 172.30.0.0/24, external: true}
  routers:
    r1:
      ports:
        - {switch: sw0, gateway_ip: 10.0.0.1/24}
        - {switch: sw1, gateway_ip: 10.0.1.1/24}
        - {switch: ext, gateway_ip: 172.30.0.2/24}
      dhcp: [{switch: sw1}]
`

func newRoutedWorld() *routedWorld {
	return &routedWorld{world: newWorld(), routers: map[string]bool{}, externals: map[string]bool{}, served: map[string]map[string]string{}}
}

func setupRouted(t *testing.T) (*Engine, *routedWorld, api.Deployment) {
	t.Helper()
	w := newRoutedWorld()
	e, d := generatedEngine(t, "lab", routedTopo, nil, Options{Drivers: guest.NewRegistry(w.world), Network: w, Concurrency: 2})
	return e, w, d
}

func TestRoutersUpDown(t *testing.T) {
	e, w, d := setupRouted(t)
	ctx := context.Background()
	log := &guesttest.Log{}
	if err := e.Up(ctx, d, api.UpOptions{}, log); err != nil {
		t.Fatal(err)
	}
	text := log.Text()
	for _, want := range []string{"[3/7] network: 3 switches", "[4/7] routers: 1 router, 1 external switch", "[5/7] guests", "eth0 leased 10.0.1.20/24"} {
		if !strings.Contains(text, want) {
			t.Errorf("up log lacks %q:\n%s", want, text)
		}
	}
	// The ext switch has no guest, but the router needs its bridge.
	if b, _, _ := w.snapshot(); len(b) != 3 {
		t.Fatalf("bridges %v, want one per router switch", b)
	}
	if w.objects() != 2 || len(w.leased) != 1 || !strings.HasSuffix(w.leased[0], "tbos.lab.b eth0") {
		t.Fatalf("routers %v, externals %v, leases taken %v", w.routers, w.externals, w.leased)
	}
	leases, err := e.Leases(ctx, d.Name)
	if err != nil || leases["b"]["eth0"] != "10.0.1.20/24" {
		t.Fatalf("Leases = %v, %v", leases, err)
	}
	// GET …/guests shows it.
	guests, err := e.Guests(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range guests {
		if ifc := g.Interfaces[0]; g.Name == "b" && (!ifc.Leased || ifc.IP != "10.0.1.20/24") {
			t.Errorf("Guests lists b's eth0 as %+v, want leased 10.0.1.20/24", ifc)
		}
	}
	// A restarted daemon serves DHCP again with the lease b holds.
	w.served = map[string]map[string]string{}
	if err := e.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	st, _ := e.readState(d)
	var bMAC string
	for _, g := range st.Guests {
		if g.Name == "b" {
			bMAC = g.Interfaces[0].MAC
		}
	}
	if got := w.served["tbos.lab.router.r1"]; got[bMAC] != "10.0.1.20" {
		t.Fatalf("Resume seeded %v, want %s → 10.0.1.20", w.served, bMAC)
	}
	if err := e.Down(ctx, d, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	w.empty(t)
	if w.objects() != 0 {
		t.Fatalf("down left routers %v, externals %v", w.routers, w.externals)
	}
	if rec, _ := e.Deployed(ctx, d.Name); !rec.empty() {
		t.Fatalf("record after down: %+v", rec)
	}
}

func TestRoutersRevertedOnFailedUp(t *testing.T) {
	e, w, d := setupRouted(t)
	w.failOn = "c"
	ctx := context.Background()
	if err := e.Up(ctx, d, api.UpOptions{}, &guesttest.Log{}); err == nil {
		t.Fatal("up with a failing guest succeeded")
	}
	w.empty(t)
	if w.objects() != 0 {
		t.Fatalf("revert left routers %v, externals %v", w.routers, w.externals)
	}
	if rec, _ := e.Deployed(ctx, d.Name); !rec.empty() {
		t.Fatalf("record after revert: %+v", rec.Hosts)
	}
}

// TestErrorsNameTheirObjectOnce: a driver's or network's error that already
// names its object is not prefixed with the name again.
func TestErrorsNameTheirObjectOnce(t *testing.T) {
	e, w, d := setupRouted(t)
	w.routerErr = errors.New("router r1: no namespace left")
	err := e.Up(context.Background(), d, api.UpOptions{}, &guesttest.Log{})
	if err == nil || strings.Count(err.Error(), "router r1") != 1 {
		t.Errorf("up with a failing router: %v, want router r1 named once", err)
	}
	w.routerErr = nil
	w.failOn = "c"
	err = e.Up(context.Background(), d, api.UpOptions{}, &guesttest.Log{})
	if err == nil || strings.Count(err.Error(), "guest c") != 1 {
		t.Errorf("up with a failing guest: %v, want guest c named once", err)
	}
}

// TestDownCountsRoutersAndExternalSwitchesApart: the routers stage of down
// says what it removes by kind.
func TestDownCountsRoutersAndExternalSwitchesApart(t *testing.T) {
	e, _, d := setupRouted(t)
	ctx := context.Background()
	if err := e.Up(ctx, d, api.UpOptions{}, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	log := &guesttest.Log{}
	if err := e.Down(ctx, d, log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.Text(), "routers: 1 external switch, 1 router") {
		t.Errorf("down's routers stage does not count the external switch apart:\n%s", log.Text())
	}
}
