// Package cli is the kvm-compose command line: one file per verb, all of
// them thin layers over the Go client.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/client"
	"github.com/testbedos/testbedos/internal/config"
	"github.com/testbedos/testbedos/internal/tlsid"
)

// app holds the global flags and what commands share.
type app struct {
	server      string
	projectName string
	input       string
	stdin       io.Reader // nil: os.Stdin
	stdout      io.Writer
	stderr      io.Writer
	// interrupts delivers Ctrl-C; tests feed it by hand.
	interrupts <-chan os.Signal
	lookupEnv  func(string) (string, bool)
	// defaultTCP is the server tried after the socket; tests point it at
	// their own.
	defaultTCP string
	// auth says where the token sent over TCP came from, for the hint of
	// a 401.
	auth tokenSource
	// terminal reports whether a writer is a terminal (progress lines);
	// nil asks the kernel, tests answer by hand.
	terminal func(io.Writer) bool
	// noAsk and verbosity are the original's --no-ask and --verbosity.
	noAsk     bool
	verbosity string
	// ask answers a yes/no question; nil reads the terminal.
	ask func(question string) bool
}

// Version is the kvm-compose version, set at build time with
// -ldflags "-X github.com/testbedos/testbedos/internal/cli.Version=…".
var Version = "dev"

// DefaultTCP is the server the CLI tries when the unix socket does not
// answer.
const DefaultTCP = "http://localhost:3355"

// startHint says how to get a server when none answers.
const startHint = `start one with: make run (in the TestbedOS source folder), testbedos-server main, or systemctl start testbedos-server;
or name a running one with --server-connection unix:///path/to.sock or http://host:port`

// exitError carries the exit status of a command that ran but failed (an
// action's error code), as opposed to a usage or connection error.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// Execute runs kvm-compose with args and returns the exit status.
func Execute(ctx context.Context, args []string, stdout, stderr io.Writer, interrupts <-chan os.Signal) int {
	a := &app{stdout: stdout, stderr: stderr, interrupts: interrupts, lookupEnv: os.LookupEnv, defaultTCP: DefaultTCP}
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
			fmt.Fprintln(stderr, "kvm-compose:", a.guestText(stderr, ee.msg))
		}
		return ee.code
	}
	if client.StatusOf(err) == http.StatusUnauthorized {
		err = fmt.Errorf("%w\nhint: %s", err, a.auth.hint())
	}
	fmt.Fprintln(stderr, "kvm-compose:", a.guestText(stderr, err.Error()))
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
		Version:       Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.server, "server-connection", "", "server to use: unix:///path/to.sock or http://host:port (default: the unix socket when it answers, else http://localhost:3355)")
	pf.StringVarP(&a.projectName, "project-name", "p", "", "deployment name (default: the project folder's name)")
	pf.StringVarP(&a.input, "input", "i", "kvm-compose.yaml", "the project's kvm-compose.yaml; its folder is the project folder")
	a.bindOriginalFlags(root)
	root.AddCommand(
		a.deploymentCommand(),
		a.actionCommand(api.CmdGenerateArtefacts, "Validate kvm-compose.yaml and write the resolved state into artefacts/"),
		a.actionCommand(api.CmdClearArtefacts, "Remove the artefacts folder"),
		a.upCommand(),
		a.actionCommand(api.CmdDown, "Remove every guest and switch of the deployment"),
		a.planCommand(),
		a.applyCommand(),
		a.logsCommand(),
		a.eventsCommand(),
		a.snapshotCommand(),
		a.clusterCommand(),
		a.execCommand(),
		a.consoleCommand(),
		a.netemCommand(),
		a.captureCommand(),
		a.imageCommand(),
		a.cloudImagesCommand(),
		a.actionsCommand(),
		a.filesCommand(),
		a.graphCommand(), a.inventoryCommand(), a.exportCommand(), a.importCommand(),
		a.timelineCommand(),
	)
	root.AddCommand(a.powerCommands()...)
	suggestVerbs(root)
	return root
}

// client connects to the server --server-connection names, else to the
// unix socket, else (when the socket is missing or stale, as after a
// kill -9 of the server) to http://localhost:3355.
//
// The probe of each is bounded by the client's own timeout; its context is
// not the command's so that every verb keeps calling a.client() as before.
func (a *app) client() (*client.Client, error) {
	ctx := context.Background()
	servers := []string{a.server}
	if a.server == "" {
		servers = nil
		sock, set := a.lookupEnv(config.EnvSocket)
		if !set {
			sock = config.DefaultSocket
		}
		if sock != "" {
			servers = append(servers, "unix://"+sock)
		}
		servers = append(servers, a.defaultTCP)
	}
	c, err := client.Connect(ctx, servers, func(c *client.Client) []client.Option {
		if !c.IsTCP() {
			return nil
		}
		var opts []client.Option
		if strings.HasPrefix(c.Server(), "https://") {
			opts = append(opts, client.WithFingerprint(a.serverFingerprint()))
		}
		a.auth = a.token()
		if a.auth.token == "" {
			return opts
		}
		return append(opts, client.WithToken(a.auth.token))
	})
	if errors.Is(err, client.ErrUnreachable) {
		return nil, fmt.Errorf("%w\n%s", err, startHint)
	}
	return c, err
}

func (a *app) getenv(key string) string {
	v, _ := a.lookupEnv(key)
	return v
}

// serverFingerprint pins an https server: TESTBEDOS_SERVER_FINGERPRINT,
// else the certificate of the local data folder (TESTBEDOS_DATA_DIR, else
// the default one); "" when neither is there (the client then says so).
func (a *app) serverFingerprint() string {
	if fp := strings.TrimSpace(a.getenv(config.EnvServerFingerprint)); fp != "" {
		return fp
	}
	server := config.Server{DataDir: a.getenv(config.EnvDataDir)}
	if server.DataDir == "" {
		server.DataDir = config.DefaultDataDir
	}
	cert, err := tlsid.LoadCertificate(filepath.Join(server.TLSDir(), tlsid.CertFile))
	if err != nil {
		return ""
	}
	return tlsid.Fingerprint(cert)
}

// tokenSource is the token the CLI sends over TCP and where it looked.
type tokenSource struct {
	token   string
	fromEnv bool   // TESTBEDOS_TOKEN
	file    string // the token file read or tried
	err     error  // why file gave no token
}

// token is TESTBEDOS_TOKEN, else the token file of TESTBEDOS_DATA_DIR,
// else that of the default data folder.
func (a *app) token() tokenSource {
	if t := strings.TrimSpace(a.getenv(config.EnvToken)); t != "" {
		return tokenSource{token: t, fromEnv: true}
	}
	server := config.Server{DataDir: a.getenv(config.EnvDataDir)}
	if server.DataDir == "" {
		server.DataDir = config.DefaultDataDir
	}
	ts := tokenSource{file: server.TokenPath()}
	data, err := os.ReadFile(ts.file)
	switch {
	case err != nil:
		ts.err = err
	case strings.TrimSpace(string(data)) == "":
		ts.err = errors.New("the file is empty")
	default:
		ts.token = strings.TrimSpace(string(data))
	}
	return ts
}

// hint says, after a 401, which token was sent and how to send the right one.
func (ts tokenSource) hint() string {
	const how = "\nset TESTBEDOS_TOKEN to the token in the server's <data dir>/config/token, or export TESTBEDOS_DATA_DIR=<the server's data dir> " +
		"(make run: the .testbedos folder of the source tree; installed: " + config.DefaultDataDir + ") so the CLI reads its config/token;\n" +
		"the unix socket needs no token"
	switch {
	case ts.fromEnv:
		return "the server refused the token in TESTBEDOS_TOKEN;" + how
	case ts.file == "":
		return "no token was sent;" + how
	case ts.err != nil:
		reason := ts.err.Error()
		if errors.Is(ts.err, fs.ErrNotExist) {
			reason = "no such file"
		}
		return fmt.Sprintf("no token was sent: TESTBEDOS_TOKEN is not set and the CLI could not read %s (%s);%s", ts.file, reason, how)
	}
	return fmt.Sprintf("the server refused the token of %s (TESTBEDOS_TOKEN is not set): is it another server's?%s", ts.file, how)
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
