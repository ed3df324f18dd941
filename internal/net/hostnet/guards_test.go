package hostnet_test

import (
	"github.com/testbedos/testbedos/internal/engine"
	"github.com/testbedos/testbedos/internal/net/hostnet"
)

// The engine's interfaces Host serves, checked when the tests compile (the
// engine finds the optional ones with type assertions, which a renamed
// method would otherwise turn off silently). hostnet does not import the
// engine, so the check lives here.
var (
	_ engine.Network       = (*hostnet.Host)(nil)
	_ engine.Tunnels       = (*hostnet.Host)(nil)
	_ engine.TunnelChecker = (*hostnet.Host)(nil)
	_ engine.ACLs          = (*hostnet.Host)(nil)
	_ engine.ACLChecker    = (*hostnet.Host)(nil)
	_ engine.Routers       = (*hostnet.Host)(nil)
	_ engine.RouterChecker = (*hostnet.Host)(nil)
	_ engine.LinkOps       = (*hostnet.Host)(nil)
)
