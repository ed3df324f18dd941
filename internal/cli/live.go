package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/client"
	"github.com/testbedos/testbedos/internal/topology"
)

// exitTimedOut is the exit status of an exec whose timeout killed the
// command, as timeout(1) has it.
const exitTimedOut = 124

// execCommand is "kvm-compose exec GUEST -- CMD…".
func (a *app) execCommand() *cobra.Command {
	var timeout time.Duration
	var noStdin bool
	var fan fanout
	cmd := &cobra.Command{
		Use:   "exec GUEST [--timeout D] [-n] -- CMD [ARG…]  |  exec --all|--guests a,b [--json] -- CMD [ARG…]",
		Short: "Run a command in a guest and exit with its exit status",
		Long: `Runs CMD in GUEST of the up deployment (netns: in its namespace; docker: in
the container; libvirt: over SSH) and prints its stdout and stderr. The exit
status is the command's; 124 when --timeout killed it. Output is capped at
1 MiB per stream. Flags such as --timeout go anywhere before "--"; everything
after it is the command, passed on untouched. No shell runs unless you name
one: exec web -- sh -c 'ip a | grep inet'. A VM that does not answer SSH
before the timeout runs nothing, and the error says so.

Standard input, when it is not a terminal, is read to its end first and
given to the command (at most 512 KiB): echo x | kvm-compose exec web -- cat.
-n gives the command no input (as ssh -n has it), for use in a loop that
reads the same input.

With --all or --guests a,b (and no GUEST) the command runs in those guests at
once and a table of guest, exit code and output is printed (--json: the
results as JSON); the exit status is 1 when it failed anywhere. Every guest
gets the same standard input.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if fan.active() {
				return nil
			}
			if len(args) == 0 || cmd.ArgsLenAtDash() == 0 {
				return errors.New("no guest given: kvm-compose exec GUEST -- CMD [ARG…]")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			name, c, err := a.target(nil)
			if err != nil {
				return err
			}
			secs := int((timeout + time.Second - 1) / time.Second)
			if secs < 1 || secs > api.MaxExecTimeoutS {
				return fmt.Errorf("--timeout %s: give 1s to %ds", timeout, api.MaxExecTimeoutS)
			}
			if fan.active() {
				return a.runFanout(cmd, &fan, args, secs, noStdin)
			}
			// Flags anywhere before "--" are kvm-compose's; what follows it
			// is the command, passed on untouched.
			argv := args[1:]
			if dash := cmd.ArgsLenAtDash(); dash > 1 {
				return fmt.Errorf("one guest before --, got %q: kvm-compose exec GUEST [--timeout D] -- CMD [ARG…]", args[:dash])
			}
			if len(argv) == 0 {
				return errors.New("no command given: kvm-compose exec GUEST -- CMD [ARG…]")
			}
			req := api.ExecRequest{Command: argv, TimeoutS: secs}
			if !noStdin {
				if req.Stdin, err = a.execStdin(); err != nil {
					return err
				}
			}
			res, err := c.Exec(cmd.Context(), name, args[0], req)
			if err != nil {
				return a.explain(cmd.Context(), c, err, name)
			}
			io.WriteString(a.stdout, a.guestText(a.stdout, res.Stdout))
			io.WriteString(a.stderr, a.guestText(a.stderr, res.Stderr))
			if res.Truncated {
				fmt.Fprintln(a.stderr, "kvm-compose: the output was over 1 MiB and is cut")
			}
			switch {
			case res.TimedOut:
				return &exitError{code: exitTimedOut, msg: fmt.Sprintf("%s: killed after --timeout %ds", argv[0], secs)}
			case res.ExitCode != 0:
				return &exitError{code: res.ExitCode}
			}
			return nil
		},
	}
	cmd.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%w\nput the command after --, as in: kvm-compose exec GUEST -- CMD -flag (flags before -- are kvm-compose's)", flagError(cmd, err))
	})
	cmd.Flags().DurationVar(&timeout, "timeout", api.DefaultExecTimeoutS*time.Second, "kill the command after this long (at most 1h)")
	cmd.Flags().BoolVarP(&noStdin, "no-stdin", "n", false, "give the command no input instead of this standard input")
	fan.flags(cmd)
	return cmd
}

// escapeByte leaves the console: Ctrl-], as telnet has it.
const escapeByte = 0x1d

// consoleCommand is "kvm-compose console GUEST".
func (a *app) consoleCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "console GUEST",
		Short: "Open an interactive terminal in a guest (Ctrl-] leaves)",
		Long: `Opens GUEST's terminal: a shell in a netns or docker guest, the serial console
of a libvirt guest (one client at a time: opening it takes it over; press Enter
for a prompt). The local terminal is put in raw mode (every key goes to the
guest, Ctrl-C too) and its size is passed on; Ctrl-] leaves and restores it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, c, err := a.target(nil)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			s, err := c.OpenConsole(ctx, name, args[0])
			if err != nil {
				return a.explain(cmd.Context(), c, err, name)
			}
			defer s.Close()
			fmt.Fprintf(a.stderr, "kvm-compose: connected to %s; Ctrl-] leaves\r\n", args[0])
			in := int(os.Stdin.Fd())
			if term.IsTerminal(in) {
				old, err := term.MakeRaw(in)
				if err != nil {
					return fmt.Errorf("raw terminal mode: %w", err)
				}
				defer term.Restore(in, old)
				a.followWindowSize(ctx, s)
			}
			done := make(chan error, 2)
			go func() {
				_, err := io.Copy(a.stdout, s)
				done <- err
			}()
			go func() {
				buf := make([]byte, 4096)
				for {
					n, err := os.Stdin.Read(buf)
					if n > 0 {
						chunk := buf[:n]
						i := strings.IndexByte(string(chunk), escapeByte)
						if i >= 0 {
							chunk = chunk[:i]
						}
						if len(chunk) > 0 {
							if _, werr := s.Write(chunk); werr != nil {
								done <- werr
								return
							}
						}
						if i >= 0 {
							done <- nil
							return
						}
					}
					if err != nil {
						done <- nil // end of input: leave
						return
					}
				}
			}()
			err = <-done
			cancel()
			fmt.Fprintf(a.stderr, "\r\nkvm-compose: left the console of %s\r\n", args[0])
			if err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			return nil
		},
	}
}

// followWindowSize sends the terminal's size now and on every SIGWINCH.
func (a *app) followWindowSize(ctx context.Context, s *client.Console) {
	out := int(os.Stdout.Fd())
	send := func() {
		if w, h, err := term.GetSize(out); err == nil && w > 0 && h > 0 {
			_ = s.Resize(uint16(w), uint16(h))
		}
	}
	send()
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	go func() {
		defer signal.Stop(winch)
		for {
			select {
			case <-ctx.Done():
				return
			case <-winch:
				send()
			}
		}
	}()
}

// netemCommand is "kvm-compose netem GUEST IFACE [flags]".
func (a *app) netemCommand() *cobra.Command {
	var delay, jitter time.Duration
	var loss, corrupt, rate string
	var down, up, clear bool
	cmd := &cobra.Command{
		Use:   "netem GUEST IFACE [--delay 20ms] [--jitter 5ms] [--loss 1%] [--rate 10mbit] [--corrupt 1%] [--down|--up] [--clear]",
		Short: "Show or change the impairment of a guest's link at run time",
		Long: `Without flags, prints the setting in force on GUEST's interface IFACE. With
flags, changes the fields given and keeps the others (--delay 0 removes the
delay; --clear removes everything and sets the link up). The setting is a
netem qdisc on the host-side end of the link, which delays what the guest
receives; on a kernel without netem the server holds the guest's outgoing
packets instead. Either way a round trip gets the delay once. It is recorded: it survives a restart of the server and is set
again when up re-makes the guest; apply sets it back to kvm-compose.yaml.
--rate takes bit, kbit, mbit or gbit (per second).`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if down && up {
				return errors.New("give --down or --up, not both")
			}
			name, c, err := a.target(nil)
			if err != nil {
				return err
			}
			guest, iface := args[0], args[1]
			cur, err := c.Impairment(cmd.Context(), name, guest, iface)
			if err != nil {
				return a.explain(cmd.Context(), c, err, name)
			}
			f := cmd.Flags()
			if f.NFlag() == 0 {
				fmt.Fprintln(a.stdout, describeImpairment(cur))
				return nil
			}
			imp := cur.Impairment
			if clear {
				imp = api.Impairment{Up: true}
			}
			if f.Changed("delay") {
				imp.DelayMS = int(delay / time.Millisecond)
			}
			if f.Changed("jitter") {
				imp.JitterMS = int(jitter / time.Millisecond)
			}
			for _, p := range []struct {
				flag string
				v    string
				dst  *float64
			}{{"loss", loss, &imp.LossPct}, {"corrupt", corrupt, &imp.CorruptPct}} {
				if f.Changed(p.flag) {
					pct, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(p.v), "%"), 64)
					if err != nil {
						return fmt.Errorf("--%s %q: give a percentage, e.g. 1%%", p.flag, p.v)
					}
					*p.dst = pct
				}
			}
			if f.Changed("rate") {
				kbit, err := parseRate(rate)
				if err != nil {
					return err
				}
				imp.RateKbit = kbit
			}
			if down {
				imp.Up = false
			}
			if up {
				imp.Up = true
			}
			res, err := c.SetImpairment(cmd.Context(), name, guest, iface, imp)
			if err != nil {
				return a.explain(cmd.Context(), c, err, name)
			}
			fmt.Fprintln(a.stdout, describeImpairment(res))
			return nil
		},
	}
	f := cmd.Flags()
	f.DurationVar(&delay, "delay", 0, "delay every packet by this much (e.g. 20ms)")
	f.DurationVar(&jitter, "jitter", 0, "vary the delay by up to this much (needs --delay)")
	f.StringVar(&loss, "loss", "", "drop this share of packets (e.g. 1%)")
	f.StringVar(&corrupt, "corrupt", "", "corrupt this share of packets (e.g. 0.1%)")
	f.StringVar(&rate, "rate", "", "limit the link to this rate (e.g. 10mbit; 0 removes the limit)")
	f.BoolVar(&down, "down", false, "take the link down (both ends lose carrier)")
	f.BoolVar(&up, "up", false, "bring the link back up")
	f.BoolVar(&clear, "clear", false, "remove every impairment and set the link up (other flags apply after)")
	return cmd
}

// parseRate reads "10mbit", "512kbit", "1gbit", "64000bit" or a plain
// number of kbit/s.
func parseRate(s string) (int, error) {
	v := strings.ToLower(strings.TrimSpace(s))
	mult := 1.0
	for _, u := range []struct {
		suffix string
		mult   float64
	}{{"gbit", 1e6}, {"mbit", 1e3}, {"kbit", 1}, {"bit", 1e-3}} {
		if strings.HasSuffix(v, u.suffix) {
			v, mult = strings.TrimSuffix(v, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(v, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("--rate %q: give a rate such as 10mbit, 512kbit or 1gbit", s)
	}
	return int(n * mult), nil
}

// describeImpairment is one line: "web eth0 (host link tb-…): up, delay 20ms (from kvm-compose.yaml)".
func describeImpairment(imp api.InterfaceImpairment) string {
	state := "up"
	if !imp.Up {
		state = "DOWN"
	}
	desc := "no impairment"
	if n := topology.NetemOf(imp.Impairment); !n.IsZero() {
		desc = n.String()
	}
	source := "from kvm-compose.yaml"
	if imp.Source == "runtime" {
		source = "set at run time"
	}
	return fmt.Sprintf("%s %s (host link %s): %s, %s (%s)", imp.Guest, imp.Interface, imp.HostLink, state, desc, source)
}

// captureCommand is "kvm-compose capture GUEST IFACE [-w FILE] [--filter …]".
func (a *app) captureCommand() *cobra.Command {
	var file, filter string
	cmd := &cobra.Command{
		Use:   "capture GUEST IFACE [-w FILE] [--filter EXPR]",
		Short: "Capture the packets of a guest's interface as pcap",
		Long: `Writes a pcap stream of GUEST's interface IFACE (both directions, seen on the
host-side end of the link) to stdout, or to FILE with -w, until Ctrl-C:
  kvm-compose capture web eth0 | wireshark -k -i -
  kvm-compose capture web eth0 -w web.pcap --filter 'icmp and host 10.0.0.10'
--filter takes a subset of tcpdump's language: ip, ip6, arp, icmp, icmp6, tcp,
udp, [src|dst] host A (IPv4), [tcp|udp] [src|dst] port N, combined with and,
or, not and parentheses as tcpdump has them: 'not arp and (tcp or icmp)'.
pcap is binary: on a terminal it is refused; give -w FILE or a pipe.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			toFile := file != "" && file != "-"
			if !toFile && a.isTerminal(a.stdout) {
				return fmt.Errorf("capture writes binary pcap, and standard output is a terminal: "+
					"give -w FILE, or pipe it: kvm-compose capture %s %s | wireshark -k -i -", args[0], args[1])
			}
			name, c, err := a.target(nil)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			go func() {
				select {
				case <-a.interrupts:
					cancel()
				case <-ctx.Done():
				}
			}()
			stream, err := c.Capture(ctx, name, args[0], args[1], filter)
			if err != nil {
				return a.explain(cmd.Context(), c, err, name)
			}
			defer stream.Close()
			out := a.stdout
			if toFile {
				f, err := os.Create(file)
				if err != nil {
					return err
				}
				defer f.Close()
				out = f
				fmt.Fprintf(a.stderr, "kvm-compose: capturing %s %s into %s; Ctrl-C stops\n", args[0], args[1], file)
			}
			// Unbuffered: each packet is written as it comes.
			_, err = io.Copy(out, stream)
			if ctx.Err() != nil || errors.Is(err, syscall.EPIPE) {
				return nil // stopped, or the reader (wireshark) went away
			}
			if err != nil {
				return fmt.Errorf("capture: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "write", "w", "", "write the pcap into FILE instead of stdout")
	cmd.Flags().StringVar(&filter, "filter", "", "capture only what matches (e.g. icmp, tcp port 80, host 10.0.0.10)")
	return cmd
}
