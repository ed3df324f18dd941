package netplumb

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/testbedos/testbedos/internal/netplumb/nettest"
)

func TestVXLANJoinsBridgesAcrossHosts(t *testing.T) {
	lab := newTunnelLab(t)
	ctx := context.Background()

	// Without the tunnel, the hosts' bridges are separate segments.
	if err := nettest.Ping(lab.guestA, lab.addrB, 500*time.Millisecond); err == nil {
		t.Fatal("guest A reaches guest B before any tunnel exists")
	}
	if a, b := lab.makeTunnels(t); !a || !b {
		t.Fatalf("EnsureVXLAN created = %v, %v; want true on both hosts", a, b)
	}
	if err := nettest.Ping(lab.guestA, lab.addrB, 5*time.Second); err != nil {
		t.Fatalf("across the tunnel: %v", err)
	}
	if err := nettest.Ping(lab.guestB, lab.addrC, 5*time.Second); err != nil {
		t.Fatalf("across the tunnel, to the other guest of host A: %v", err)
	}

	inNS(t, lab.hostA, func() error {
		link, err := netlink.LinkByName(lab.specA.Name)
		if err != nil {
			return err
		}
		vx, ok := link.(*netlink.Vxlan)
		switch {
		case !ok:
			t.Errorf("link %s is a %s", lab.specA.Name, link.Type())
		case vx.Learning || vx.Group != nil && !vx.Group.IsUnspecified() || vx.VxlanId != labVNI || vx.Port != VXLANPort || vx.MTU != labMTU:
			t.Errorf("vxlan = learning %v, group %v, VNI %d, port %d, MTU %d; want no learning, no group, %d, %d, %d",
				vx.Learning, vx.Group, vx.VxlanId, vx.Port, vx.MTU, labVNI, VXLANPort, labMTU)
		}
		br, _ := netlink.LinkByName("br")
		if link.Attrs().MasterIndex != br.Attrs().Index {
			t.Errorf("vxlan is not on the bridge")
		}
		peers, err := Peers(lab.specA.Name)
		if err != nil || !slices.Equal(peers, []string{labUnderlayB}) {
			t.Errorf("Peers = %v, %v; want [%s]", peers, err, labUnderlayB)
		}

		// Ensure again: found, not made, FDB unchanged.
		created, err := EnsureVXLAN(ctx, lab.specA)
		if err != nil || created {
			t.Errorf("second EnsureVXLAN = %v, %v; want false, nil", created, err)
		}
		if peers, _ := Peers(lab.specA.Name); len(peers) != 1 {
			t.Errorf("after a second EnsureVXLAN, peers %v", peers)
		}

		// SetPeers adds and removes entries to match the list.
		three := []string{"10.250.0.7", labUnderlayB, "10.250.0.9"}
		if err := SetPeers(ctx, lab.specA.Name, three); err != nil {
			return err
		}
		if peers, _ := Peers(lab.specA.Name); !slices.Equal(peers, []string{labUnderlayB, "10.250.0.7", "10.250.0.9"}) {
			t.Errorf("after SetPeers(%v): %v", three, peers)
		}
		if err := SetPeers(ctx, lab.specA.Name, []string{labUnderlayB}); err != nil {
			return err
		}
		if peers, _ := Peers(lab.specA.Name); !slices.Equal(peers, []string{labUnderlayB}) {
			t.Errorf("after SetPeers back: %v", peers)
		}

		// A link of another kind or another VNI is not taken over.
		other := lab.specA
		other.Name = "br"
		if _, err := EnsureVXLAN(ctx, other); !errors.Is(err, ErrNotVXLAN) {
			t.Errorf("EnsureVXLAN over a bridge = %v, want ErrNotVXLAN", err)
		}
		other = lab.specA
		other.VNI++
		if _, err := EnsureVXLAN(ctx, other); !errors.Is(err, ErrNotVXLAN) {
			t.Errorf("EnsureVXLAN with another VNI = %v, want ErrNotVXLAN", err)
		}
		other = lab.specA
		other.Local = "10.250.0.5"
		if _, err := EnsureVXLAN(ctx, other); !errors.Is(err, ErrNotVXLAN) {
			t.Errorf("EnsureVXLAN with another local address = %v, want ErrNotVXLAN", err)
		}
		// A bad peer refused after the link is made leaves no link.
		fresh := lab.specA
		fresh.Name += "n"
		fresh.Peers = []string{"::1"}
		if _, err := EnsureVXLAN(ctx, fresh); err == nil {
			t.Errorf("EnsureVXLAN with an IPv6 peer on an IPv4 tunnel succeeded")
		}
		if ok, _ := LinkExists(fresh.Name); ok {
			t.Errorf("a failed EnsureVXLAN left link %s", fresh.Name)
		}
		if err := DeleteVXLAN(ctx, "br"); !errors.Is(err, ErrNotVXLAN) {
			t.Errorf("DeleteVXLAN of a bridge = %v, want ErrNotVXLAN", err)
		}
		return nil
	})
	if err := nettest.Ping(lab.guestA, lab.addrB, 3*time.Second); err != nil {
		t.Fatalf("after the checks, across the tunnel: %v", err)
	}

	inNS(t, lab.hostA, func() error {
		if err := DeleteVXLAN(ctx, lab.specA.Name); err != nil {
			return err
		}
		if ok, err := LinkExists(lab.specA.Name); err != nil || ok {
			t.Errorf("after DeleteVXLAN the link exists: %v, %v", ok, err)
		}
		return DeleteVXLAN(ctx, lab.specA.Name) // missing is fine
	})
}

func TestVXLANSpecChecked(t *testing.T) {
	good := VXLANSpec{Name: "tbx", VNI: 1, Local: "192.0.2.1", Peers: []string{"192.0.2.2"}, Bridge: "br"}
	for name, edit := range map[string]func(*VXLANSpec){
		"long name":   func(s *VXLANSpec) { s.Name = "a-name-of-16-byt" },
		"VNI 0":       func(s *VXLANSpec) { s.VNI = 0 },
		"VNI 2^24":    func(s *VXLANSpec) { s.VNI = 1 << 24 },
		"no local":    func(s *VXLANSpec) { s.Local = "" },
		"bad peer":    func(s *VXLANSpec) { s.Peers = []string{"host-b"} },
		"empty name":  func(s *VXLANSpec) { s.Name = "" },
		"slash name":  func(s *VXLANSpec) { s.Name = "a/b" },
		"local label": func(s *VXLANSpec) { s.Local = "main" },
	} {
		t.Run(name, func(t *testing.T) {
			s := good
			edit(&s)
			if _, err := EnsureVXLAN(context.Background(), s); err == nil {
				t.Errorf("EnsureVXLAN(%+v) succeeded", s)
			}
		})
	}
	if _, _, err := good.check(); err != nil {
		t.Errorf("good spec refused: %v", err)
	}
}
