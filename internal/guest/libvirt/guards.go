package libvirt

import (
	"io"

	"github.com/testbedos/testbedos/internal/guest"
)

// What this package implements, checked when it compiles: a renamed method
// fails the build instead of silently turning a capability off.
var (
	_ guest.Driver   = (*Driver)(nil)
	_ guest.Execer   = (*Driver)(nil)
	_ guest.Consoler = (*Driver)(nil)
	_ guest.Statser  = (*Driver)(nil)
)

var (
	_ guest.Snapshotter    = (*Driver)(nil)
	_ guest.ArtefactWriter = (*Driver)(nil)
	_ guest.Terminal       = (*serialTerminal)(nil)
	_ io.Writer            = (*lockedWriter)(nil)
	_ io.ReadWriter        = (*serialBuffer)(nil)
	_ io.Reader            = (*firstRead)(nil)
)
