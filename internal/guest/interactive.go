package guest

import (
	"context"
	"io"

	"github.com/testbedos/testbedos/internal/topology"
)

// Command is a program to run inside a guest. Argv[0] is looked up in the
// guest's PATH. Stdin may be nil (no input); Stdout and Stderr may be nil
// (output discarded).
type Command struct {
	Argv   []string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// Execer is a driver that runs commands inside its guests.
type Execer interface {
	// Exec runs cmd inside the guest, which must be up, and returns its exit
	// status. A command that ran and exited non-zero is not an error; one
	// that could not be started is. ctx bounds the run: when it ends the
	// command is killed and Exec returns ctx's error.
	Exec(ctx context.Context, dep Deployment, g *topology.Guest, cmd Command) (exitCode int, err error)
}

// Terminal is an interactive session inside a guest: what is written is
// typed, what is read is the screen. Close ends the session.
type Terminal interface {
	io.ReadWriteCloser
	// Resize sets the terminal's size in characters.
	Resize(cols, rows uint16) error
}

// Consoler is a driver whose guests have an interactive terminal: a shell
// for namespaces and containers, the serial console for virtual machines.
type Consoler interface {
	Console(ctx context.Context, dep Deployment, g *topology.Guest) (Terminal, error)
}
