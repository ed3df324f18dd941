package server

import (
	"crypto/tls"
	"net"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/cluster"
	"github.com/testbedos/testbedos/internal/config"
	"github.com/testbedos/testbedos/internal/tlsid"
)

// setupIdentity makes, at first start, config/host.json and this host's
// certificate in config/tls (whose SANs name the host.json ip), and reads
// them at every later start.
func (s *Server) setupIdentity() error {
	main := s.cfg.Mode != config.ModeClient
	host, err := cluster.LoadOrCreateHost(s.cfg.HostPath(), main, func() api.HostConfig {
		return cluster.DetectHost(cluster.HostProbe{Hostname: s.hostName, Listen: s.cfg.Listen, Main: main})
	})
	if err != nil {
		return err
	}
	s.host = host
	s.identity, err = tlsid.LoadOrCreate(s.cfg.TLSDir(), tlsid.DefaultNames(s.hostName, net.ParseIP(host.IP)))
	return err
}

// tlsListener wraps the TCP listener in TLS when the configuration asks
// for it (auto is TLS unless the address is loopback). The unix
// socket stays plain: it is the trusted local door.
func (s *Server) tlsListener(l net.Listener) net.Listener {
	if !s.cfg.UseTLS() {
		return l
	}
	return tls.NewListener(l, tlsid.ServerConfig(s.identity))
}
