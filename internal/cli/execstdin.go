package cli

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/term"

	"github.com/testbedos/testbedos/internal/api"
)

// execStdin is the standard input exec passes on: nothing when it is a
// terminal (a command that waits for typed input would wait for its
// timeout: use console), else all of it, refused over the server's cap.
func (a *app) execStdin() ([]byte, error) {
	in := a.stdin
	if in == nil {
		in = os.Stdin
	}
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return nil, nil
	}
	data, err := io.ReadAll(io.LimitReader(in, api.ExecStdinCap+1))
	if err != nil {
		return nil, fmt.Errorf("reading standard input: %w", err)
	}
	if len(data) > api.ExecStdinCap {
		return nil, fmt.Errorf("standard input is over %d KiB, more than exec passes on: give the command a file in the guest instead, or -n for no input", api.ExecStdinCap>>10)
	}
	return data, nil
}
