package vxlan

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/testbedos/testbedos/internal/net/links"
	"github.com/testbedos/testbedos/internal/net/nettest"
)

func TestVXLANJoinsBridgesAcrossHosts(t *testing.T) {
	lab := newTunnelLab(t)
	ctx := context.Background()

	// Without the tunnel, the hosts' bridges are separate segments.
	if err := nettest.Ping(lab.guestA, lab.addrB, 500*time.Millisecond); err == nil {
		t.Fatal("guest A reaches guest B before any tunnel exists")
	}
	if a, b := lab.makeTunnels(t); !a || !b {
		t.Fatalf("Ensure created = %v, %v; want true on both hosts", a, b)
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
		case vx.Learning || vx.Group != nil && !vx.Group.IsUnspecified() || vx.VxlanId != labVNI || vx.Port != Port || vx.MTU != labMTU:
			t.Errorf("vxlan = learning %v, group %v, VNI %d, port %d, MTU %d; want no learning, no group, %d, %d, %d",
				vx.Learning, vx.Group, vx.VxlanId, vx.Port, vx.MTU, labVNI, Port, labMTU)
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
		created, err := Ensure(ctx, lab.specA)
		if err != nil || created {
			t.Errorf("second Ensure = %v, %v; want false, nil", created, err)
		}
		if peers, _ := Peers(lab.specA.Name); len(peers) != 1 {
			t.Errorf("after a second Ensure, peers %v", peers)
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
		if _, err := Ensure(ctx, other); !errors.Is(err, ErrNotVXLAN) {
			t.Errorf("Ensure over a bridge = %v, want ErrNotVXLAN", err)
		}
		other = lab.specA
		other.VNI++
		if _, err := Ensure(ctx, other); !errors.Is(err, ErrNotVXLAN) {
			t.Errorf("Ensure with another VNI = %v, want ErrNotVXLAN", err)
		}
		other = lab.specA
		other.Local = "10.250.0.5"
		if _, err := Ensure(ctx, other); !errors.Is(err, ErrNotVXLAN) {
			t.Errorf("Ensure with another local address = %v, want ErrNotVXLAN", err)
		}
		// A bad peer refused after the link is made leaves no link.
		fresh := lab.specA
		fresh.Name += "n"
		fresh.Peers = []string{"::1"}
		if _, err := Ensure(ctx, fresh); err == nil {
			t.Errorf("Ensure with an IPv6 peer on an IPv4 tunnel succeeded")
		}
		if ok, _ := links.Exists(fresh.Name); ok {
			t.Errorf("a failed Ensure left link %s", fresh.Name)
		}
		if err := Delete(ctx, "br"); !errors.Is(err, ErrNotVXLAN) {
			t.Errorf("Delete of a bridge = %v, want ErrNotVXLAN", err)
		}
		return nil
	})
	if err := nettest.Ping(lab.guestA, lab.addrB, 3*time.Second); err != nil {
		t.Fatalf("after the checks, across the tunnel: %v", err)
	}

	inNS(t, lab.hostA, func() error {
		if err := Delete(ctx, lab.specA.Name); err != nil {
			return err
		}
		if ok, err := links.Exists(lab.specA.Name); err != nil || ok {
			t.Errorf("after Delete the link exists: %v, %v", ok, err)
		}
		return Delete(ctx, lab.specA.Name) // missing is fine
	})
}

func TestVXLANSpecChecked(t *testing.T) {
	good := Spec{Name: "tbx", VNI: 1, Local: "192.0.2.1", Peers: []string{"192.0.2.2"}, Bridge: "br"}
	for name, edit := range map[string]func(*Spec){
		"long name":   func(s *Spec) { s.Name = "a-name-of-16-byt" },
		"VNI 0":       func(s *Spec) { s.VNI = 0 },
		"VNI 2^24":    func(s *Spec) { s.VNI = 1 << 24 },
		"no local":    func(s *Spec) { s.Local = "" },
		"bad peer":    func(s *Spec) { s.Peers = []string{"host-b"} },
		"empty name":  func(s *Spec) { s.Name = "" },
		"slash name":  func(s *Spec) { s.Name = "a/b" },
		"local label": func(s *Spec) { s.Local = "main" },
	} {
		t.Run(name, func(t *testing.T) {
			s := good
			edit(&s)
			if _, err := Ensure(context.Background(), s); err == nil {
				t.Errorf("Ensure(%+v) succeeded", s)
			}
		})
	}
	if _, _, err := good.check(); err != nil {
		t.Errorf("good spec refused: %v", err)
	}
}
