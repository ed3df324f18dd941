package server

import (
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/config"
	"github.com/testbedos/testbedos/internal/tlsid"
)

// An ovn main with ovn.encap_ip answers a join with its southbound
// database and certificate, and from then on trusts the member's
// certificate; a certificate the fingerprint does not name is refused; a
// main without encap_ip serves no southbound database.
func TestOVNJoinTrustsTheMembersCertificate(t *testing.T) {
	cfg := config.Server{DataDir: t.TempDir(), Network: config.NetworkOVN, Mode: config.ModeMain}
	id, err := tlsid.LoadOrCreate(cfg.TLSDir(), tlsid.DefaultNames("main", nil))
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{cfg: cfg, identity: id, host: api.HostConfig{Name: "main", IP: "10.0.0.1", OVN: &api.OVNConfig{EncapIP: "10.0.0.1"}}}
	member, err := tlsid.LoadOrCreate(t.TempDir(), tlsid.DefaultNames("main", nil))
	if err != nil {
		t.Fatal(err)
	}
	certPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: member.Leaf.Raw}))

	if _, err := s.ovnJoin(api.JoinRequest{Name: "c1", Fingerprint: id.Fingerprint, Certificate: certPEM}); !errors.Is(err, api.ErrBadRequest) {
		t.Errorf("a certificate the fingerprint does not name: %v", err)
	}
	ans, err := s.ovnJoin(api.JoinRequest{Name: "c1", Fingerprint: member.Fingerprint, Certificate: certPEM})
	if err != nil || ans == nil || ans.Southbound != "ssl:10.0.0.1:6642" || !strings.Contains(ans.Certificate, "BEGIN CERTIFICATE") {
		t.Fatalf("join answer %+v, %v", ans, err)
	}
	bundle, err := os.ReadFile(filepath.Join(cfg.OVNDir(), "members.pem"))
	if err != nil || !strings.Contains(string(bundle), certPEM) || strings.Count(string(bundle), "BEGIN CERTIFICATE") != 2 {
		t.Errorf("members.pem holds %d certificates, the member's: %v (%v)", strings.Count(string(bundle), "BEGIN CERTIFICATE"), strings.Contains(string(bundle), certPEM), err)
	}

	s.host.OVN = nil
	if ans, err := s.ovnJoin(api.JoinRequest{Name: "c2"}); ans != nil || err != nil {
		t.Errorf("a main without ovn.encap_ip: %+v, %v", ans, err)
	}
}
