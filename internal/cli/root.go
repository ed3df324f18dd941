// Package cli is the kvm-compose command line: one file per verb, all of
// them thin layers over the Go client.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/client"
	"github.com/testbedos/testbedos/internal/config"
)

// app holds the global flags and what commands share.
type app struct {
	server      string
	projectName string
	input       string
	stdout      io.Writer
	stderr      io.Writer
	// interrupts delivers Ctrl-C; tests feed it by hand.
	interrupts <-chan os.Signal
	lookupEnv  func(string) (string, bool)
}

// exitError carries the exit status of a command that ran but failed (an
// action's error code), as opposed to a usage or connection error.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// Execute runs kvm-compose with args and returns the exit status.
func Execute(ctx context.Context, args []string, stdout, stderr io.Writer, interrupts <-chan os.Signal) int {
	a := &app{stdout: stdout, stderr: stderr, interrupts: interrupts, lookupEnv: os.LookupEnv}
	return a.execute(ctx, args)
}

// execute runs the command line args and returns the exit status.
func (a *app) execute(ctx context.Context, args []string) int {
	stderr := a.stderr
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetOut(a.stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintln(stderr, "kvm-compose:", ee.msg)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "kvm-compose:", err)
	return 1
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "kvm-compose",
		Short: "Describe a virtual network testbed in kvm-compose.yaml and bring it up and down",
		Long: `kvm-compose drives a TestbedOS server. Run it in a project folder holding
kvm-compose.yaml: create the deployment once, generate its artefacts, then
bring it up and down. Long actions stream their log live; Ctrl-C cancels the
action on the server; the exit status is the action's outcome.
` + exitCodesHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.server, "server-connection", "", "server to use: unix:///path/to.sock or http://host:port (default: the unix socket when present, else http://localhost:3355)")
	pf.StringVarP(&a.projectName, "project-name", "p", "", "deployment name (default: the project folder's name)")
	pf.StringVarP(&a.input, "input", "i", "kvm-compose.yaml", "the project's kvm-compose.yaml; its folder is the project folder")
	root.AddCommand(
		a.deploymentCommand(),
		a.actionCommand(api.CmdGenerateArtefacts, "Validate kvm-compose.yaml and write the resolved state into artefacts/"),
		a.actionCommand(api.CmdClearArtefacts, "Remove the artefacts folder"),
		a.upCommand(),
		a.actionCommand(api.CmdDown, "Remove every guest and switch of the deployment"),
		a.logsCommand(),
		a.eventsCommand(),
		a.snapshotCommand(),
	)
	return root
}

// client connects to the server the flags name.
func (a *app) client() (*client.Client, error) {
	server := a.server
	if server == "" {
		server = "http://localhost:3355"
		sock, set := a.lookupEnv("TESTBEDOS_SOCKET")
		if !set {
			sock = config.DefaultSocket
		}
		if sock != "" {
			if fi, err := os.Stat(sock); err == nil && fi.Mode()&os.ModeSocket != 0 {
				server = "unix://" + sock
			}
		}
	}
	var opts []client.Option
	if !strings.HasPrefix(server, "unix://") && !strings.HasPrefix(server, "/") {
		if tok := a.token(); tok != "" {
			opts = append(opts, client.WithToken(tok))
		}
	}
	return client.New(server, opts...)
}

func (a *app) getenv(key string) string {
	v, _ := a.lookupEnv(key)
	return v
}

// token is TESTBEDOS_TOKEN, else the server's token file when readable.
func (a *app) token() string {
	if t := a.getenv("TESTBEDOS_TOKEN"); t != "" {
		return t
	}
	server := config.Server{DataDir: a.getenv("TESTBEDOS_DATA_DIR")}
	if server.DataDir == "" {
		server.DataDir = config.DefaultDataDir
	}
	data, err := os.ReadFile(server.TokenPath())
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

// projectDir is the absolute folder of --input.
func (a *app) projectDir() (string, error) {
	in, err := filepath.Abs(a.input)
	if err != nil {
		return "", err
	}
	if filepath.Base(in) != "kvm-compose.yaml" {
		return "", fmt.Errorf("--input %s: the server reads kvm-compose.yaml from the project folder; name the file kvm-compose.yaml", a.input)
	}
	return filepath.Dir(in), nil
}

var notNameChar = regexp.MustCompile(`[^a-z0-9_-]+`)

// deploymentName is --project-name, else the project folder's name made into
// a valid deployment name.
func (a *app) deploymentName() (string, error) {
	if a.projectName != "" {
		if !api.ValidName(a.projectName) {
			return "", fmt.Errorf("--project-name %q must match %s", a.projectName, api.NamePattern)
		}
		return a.projectName, nil
	}
	dir, err := a.projectDir()
	if err != nil {
		return "", err
	}
	name := notNameChar.ReplaceAllString(strings.ToLower(filepath.Base(dir)), "-")
	name = strings.TrimLeft(name, "_-")
	if len(name) > 63 {
		name = name[:63]
	}
	if !api.ValidName(name) {
		return "", fmt.Errorf("cannot make a deployment name from folder %s: give one with --project-name", dir)
	}
	return name, nil
}

// nameArg is the deployment named by args[0], else by the flags.
func (a *app) nameArg(args []string) (string, error) {
	if len(args) > 0 {
		return args[0], nil
	}
	return a.deploymentName()
}

// target is the deployment named by args[0] (else by the flags) and a
// client of the server to ask about it.
func (a *app) target(args []string) (string, *client.Client, error) {
	name, err := a.nameArg(args)
	if err != nil {
		return "", nil, err
	}
	c, err := a.client()
	return name, c, err
}

// explain adds a hint to errors users hit often.
func explain(err error, name string) error {
	if client.StatusOf(err) == 404 && strings.Contains(err.Error(), "deployment") {
		return fmt.Errorf("%w\nhint: create it first with: kvm-compose deployment create %s", err, name)
	}
	return err
}
