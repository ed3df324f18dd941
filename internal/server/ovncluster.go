package server

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/atomicfile"
	"github.com/testbedos/testbedos/internal/config"
	"github.com/testbedos/testbedos/internal/net/ovn"
	"github.com/testbedos/testbedos/internal/tlsid"
)

// OVN on a cluster: the main runs the northbound and southbound databases
// and ovn-northd; its southbound database listens on its host address over
// SSL (pssl:6642) with the main's certificate, trusting the certificates
// of the members that joined (<data>/ovn/members/<name>.pem, gathered in
// <data>/ovn/members.pem). A member's join answer says where the
// southbound database is and carries the main's certificate; the member
// runs its own Open vSwitch and ovn-controller under <data>/ovn, pointed
// there over SSL with its own certificate. Every host encapsulates Geneve
// from its host.json ovn.encap_ip (a member: its ip when not given); on
// the userspace datapath that address moves from the testbed_nic onto the
// OVS bridge br-phy while the server runs.

// southboundPort is the main's southbound database's port for members.
const southboundPort = "6642"

// ovnServes reports whether this main serves its southbound database to
// members: the ovn backend, and host.json's ovn.encap_ip (the address its
// Geneve leaves from) given.
func ovnServes(cfg config.Server, host api.HostConfig) bool {
	return cfg.Network == config.NetworkOVN && cfg.Mode != config.ModeClient &&
		host.OVN != nil && host.OVN.EncapIP != "" && host.IP != ""
}

// ovnMainOptions adds to o what an ovn main that serves members needs.
func ovnMainOptions(cfg config.Server, host api.HostConfig, o *ovn.Options) error {
	if !ovnServes(cfg, host) {
		return nil
	}
	bundle := filepath.Join(cfg.OVNDir(), "members.pem")
	if err := writeMemberBundle(cfg); err != nil {
		return err
	}
	o.SBListen = []string{"pssl:" + southboundPort + ":" + host.IP}
	o.TLS = &ovn.TLSFiles{Key: filepath.Join(cfg.TLSDir(), tlsid.KeyFile), Cert: filepath.Join(cfg.TLSDir(), tlsid.CertFile), CA: bundle}
	o.EncapIP = host.OVN.EncapIP
	o.Underlay = underlayOf(host, o.EncapIP, o.Logger)
	return nil
}

// ovnChassisOptions are a member's chassis options: its own certificate,
// the main's (written to <data>/ovn/main.pem) as the only one trusted.
func ovnChassisOptions(cfg config.Server, host api.HostConfig, join *api.OVNJoin, log *slog.Logger) (ovn.Options, error) {
	o := ovn.Options{Dir: cfg.OVNDir(), Chassis: host.Name, EncapIP: host.IP, Logger: log}
	if host.OVN != nil && host.OVN.EncapIP != "" {
		o.EncapIP = host.OVN.EncapIP
	}
	if err := os.MkdirAll(cfg.OVNDir(), 0o750); err != nil {
		return o, err
	}
	ca := filepath.Join(cfg.OVNDir(), "main.pem")
	if err := atomicfile.Write(ca, []byte(join.Certificate), 0o644); err != nil {
		return o, fmt.Errorf("the main's certificate: %w", err)
	}
	o.TLS = &ovn.TLSFiles{Key: filepath.Join(cfg.TLSDir(), tlsid.KeyFile), Cert: filepath.Join(cfg.TLSDir(), tlsid.CertFile), CA: ca}
	o.Underlay = underlayOf(host, o.EncapIP, o.Logger)
	return o, nil
}

// underlayOf is the testbed NIC holding ip with its prefix (on the NIC, or
// on br-phy where an earlier run left it); nil without a testbed_nic, with
// the kernel datapath, or when neither holds ip (the log says Geneve from
// this host then needs the address on an OVS bridge set up by hand).
func underlayOf(host api.HostConfig, ip string, log *slog.Logger) *ovn.Underlay {
	if host.TestbedNIC == "" || ovn.KernelDatapath() {
		return nil
	}
	if want, err := netip.ParseAddr(ip); err == nil {
		for _, name := range []string{host.TestbedNIC, ovn.UnderlayBridge} {
			if bits := prefixOn(name, want); bits > 0 {
				return &ovn.Underlay{NIC: host.TestbedNIC, CIDR: fmt.Sprintf("%s/%d", ip, bits)}
			}
		}
	}
	log.Warn("the Geneve address (ovn.encap_ip) is on neither testbed_nic nor br-phy: it stays where it is, and the userspace datapath sends Geneve only from an address on an OVS bridge",
		"encap_ip", ip, "testbed_nic", host.TestbedNIC)
	return nil
}

// prefixOn is the prefix length of address a on link name; 0: not there.
func prefixOn(name string, a netip.Addr) int {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return 0
	}
	addrs, _ := netlink.AddrList(link, netlink.FAMILY_V4)
	for _, x := range addrs {
		if got, ok := netip.AddrFromSlice(x.IP.To4()); ok && got == a {
			ones, _ := x.Mask.Size()
			return ones
		}
	}
	return 0
}

// ovnJoin is, on an ovn main that serves members, what a member's join
// answer carries; it keeps the member's certificate first, trusted from
// then on by the southbound database. nil: the main does not serve.
func (s *Server) ovnJoin(req api.JoinRequest) (*api.OVNJoin, error) {
	if !ovnServes(s.cfg, s.host) {
		return nil, nil
	}
	block, _ := pem.Decode([]byte(req.Certificate))
	if block == nil {
		return nil, fmt.Errorf("%w: certificate: the ovn backend needs the member's certificate (PEM)", api.ErrBadRequest)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil || !tlsid.Equal(tlsid.Fingerprint(cert), req.Fingerprint) {
		return nil, fmt.Errorf("%w: certificate: not the certificate the fingerprint names", api.ErrBadRequest)
	}
	if err := s.trustMember(req.Name, pem.EncodeToMemory(block)); err != nil {
		return nil, err
	}
	main := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.identity.Leaf.Raw})
	return &api.OVNJoin{Southbound: "ssl:" + net.JoinHostPort(s.host.IP, southboundPort), Certificate: string(main)}, nil
}

// trustMember keeps the member's certificate; when it is new, the
// southbound database starts again trusting it (ovsdb-server reads its CA
// file only at start).
func (s *Server) trustMember(name string, certPEM []byte) error {
	dir := filepath.Join(s.cfg.OVNDir(), "members")
	path := filepath.Join(dir, name+".pem")
	if old, err := os.ReadFile(path); err == nil && string(old) == string(certPEM) {
		return nil
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	if err := atomicfile.Write(path, certPEM, 0o644); err != nil {
		return err
	}
	if s.ovnNet == nil {
		return writeMemberBundle(s.cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.reloadMembers(ctx); err != nil {
		return err
	}
	s.log.Info("the southbound database trusts a new member's certificate", "member", name)
	return nil
}

// reloadMembers writes the bundle of the members' certificates again and
// starts the southbound database again to read it.
func (s *Server) reloadMembers(ctx context.Context) error {
	if err := writeMemberBundle(s.cfg); err != nil {
		return err
	}
	if err := s.ovnNet.ReloadSouthboundTLS(ctx); err != nil {
		return fmt.Errorf("ovn: %w", err)
	}
	return nil
}

// ovnForget, on an ovn main that serves members, stops trusting a removed
// member's certificate (the southbound database starts again without it)
// and removes its chassis, which it did not remove itself when it was
// killed or cut off.
func (s *Server) ovnForget(name string) error {
	if !ovnServes(s.cfg, s.host) || s.ovnNet == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := os.Remove(filepath.Join(s.cfg.OVNDir(), "members", name+".pem"))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return err
	default:
		if err := s.reloadMembers(ctx); err != nil {
			return err
		}
	}
	if err := s.ovnNet.DeleteChassis(ctx, name); err != nil {
		return fmt.Errorf("ovn: %w", err)
	}
	s.log.Info("a removed member's chassis and certificate are gone from the southbound database", "member", name)
	return nil
}

// writeMemberBundle gathers the members' certificates (and the main's own,
// so the file is never empty) into <data>/ovn/members.pem, which the
// southbound database reads again when it changes.
func writeMemberBundle(cfg config.Server) error {
	own, err := os.ReadFile(filepath.Join(cfg.TLSDir(), tlsid.CertFile))
	if err != nil {
		return err
	}
	parts := []string{string(own)}
	files, err := filepath.Glob(filepath.Join(cfg.OVNDir(), "members", "*.pem"))
	if err != nil {
		return err
	}
	sort.Strings(files)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		parts = append(parts, string(data))
	}
	if err := os.MkdirAll(cfg.OVNDir(), 0o750); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(cfg.OVNDir(), "members.pem"), []byte(strings.Join(parts, "")), 0o644)
}
