package config

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/testbedos/testbedos/internal/logstream"
)

// Programs a knob belongs to.
const (
	ProgramServer = "testbedos-server"
	ProgramCLI    = "kvm-compose"
	ProgramTests  = "tests"
	// ProgramLibrary: read by a library the server uses, not by TestbedOS.
	ProgramLibrary = "testbedos-server (Docker's client library)"
)

// Environment variables read outside the server's flag set: by kvm-compose
// and by the test suite. The server's own are in Knobs with their flags.
const (
	EnvDataDir            = "TESTBEDOS_DATA_DIR"
	EnvSocket             = "TESTBEDOS_SOCKET"
	EnvToken              = "TESTBEDOS_TOKEN"
	EnvServerFingerprint  = "TESTBEDOS_SERVER_FINGERPRINT"
	EnvRequireIntegration = "TESTBEDOS_REQUIRE_INTEGRATION"
)

// Knob is one setting: its environment variable, its flag twin (a flag
// given on the command line wins over the variable, which wins over the
// default), its default as text and what it does.
type Knob struct {
	Env     string
	Flag    string // without the dashes; empty when the program has no flag for it
	Default string
	Doc     string
	Program string
	// Type names the value's kind in the flag's help: string, bool,
	// duration, int or size.
	Type string
	// set parses a value into the server's configuration (server knobs).
	set func(*Server, string) error
}

// Knobs lists every environment variable TestbedOS reads, in the order
// docs/configuration.md shows them. Nothing else in the daemon reads the
// environment: each value reaches its package through Server.
var Knobs = []Knob{
	{Env: EnvDataDir, Flag: "data-dir", Default: DefaultDataDir, Program: ProgramServer, Type: "string",
		Doc: "data folder: records, logs, tokens, certificates, VM disks",
		set: func(c *Server, v string) error { c.DataDir = v; return nil }},
	{Env: "TESTBEDOS_LISTEN", Flag: "listen", Default: DefaultListen, Program: ProgramServer, Type: "string",
		Doc: "TCP address of the API; empty disables TCP",
		set: func(c *Server, v string) error { c.Listen = v; return nil }},
	{Env: EnvSocket, Flag: "socket", Default: DefaultSocket, Program: ProgramServer, Type: "string",
		Doc: "unix socket of the API; empty disables it (kvm-compose tries it first)",
		set: func(c *Server, v string) error { c.Socket = v; return nil }},
	{Env: "TESTBEDOS_DB", Flag: "db", Default: "file", Program: ProgramServer, Type: "string",
		Doc: "store provider: file or sqlite",
		set: func(c *Server, v string) error { c.DB = v; return nil }},
	{Env: "TESTBEDOS_DEV", Flag: "dev", Default: "false", Program: ProgramServer, Type: "bool",
		Doc: "development mode: debug logs, GUI templates read from disk",
		set: func(c *Server, v string) (err error) { c.Dev, err = parseBool(v); return err }},
	{Env: "TESTBEDOS_DEV_DIR", Flag: "dev-dir", Default: "", Program: ProgramServer, Type: "string",
		Doc: "development mode: the source folder of internal/gui (default: found from the build)",
		set: func(c *Server, v string) error { c.DevDir = v; return nil }},
	{Env: "TESTBEDOS_AUTH", Flag: "auth", Default: "on", Program: ProgramServer, Type: "string",
		Doc: "token auth over TCP: on, or off for development only",
		set: func(c *Server, v string) (err error) { c.Auth, err = parseBool(v); return err }},
	{Env: "TESTBEDOS_TLS", Flag: "tls", Default: TLSAuto, Program: ProgramServer, Type: "string",
		Doc: "TLS on the TCP listener: auto (unless it listens on loopback), on or off",
		set: func(c *Server, v string) error { c.TLS = strings.ToLower(v); return nil }},
	{Env: "TESTBEDOS_ALLOWED_HOSTS", Flag: "allowed-hosts", Default: "", Program: ProgramServer, Type: "string",
		Doc: "comma-separated extra host names the API answers to in the Host header (besides localhost, its addresses and this host's name)",
		set: func(c *Server, v string) error {
			c.AllowedHosts = nil
			for _, h := range strings.Split(v, ",") {
				if h = strings.TrimSpace(h); h != "" {
					c.AllowedHosts = append(c.AllowedHosts, h)
				}
			}
			return nil
		}},
	{Env: "TESTBEDOS_MAX_CONNS", Flag: "max-conns", Default: strconv.Itoa(DefaultMaxConns), Program: ProgramServer, Type: "int",
		Doc: "cap on open TCP connections; past it the longest idle ones are closed",
		set: func(c *Server, v string) (err error) { c.MaxConns, err = strconv.Atoi(v); return err }},
	{Env: "TESTBEDOS_MAX_MEMBERS", Flag: "max-members", Default: strconv.Itoa(DefaultMaxMembers), Program: ProgramServer, Type: "int",
		Doc: "cap on the client hosts that may join the main",
		set: func(c *Server, v string) (err error) { c.MaxMembers, err = strconv.Atoi(v); return err }},
	{Env: "TESTBEDOS_IMAGE_DIRS", Flag: "image-dirs", Default: "", Program: ProgramServer, Type: "string",
		Doc: "':'-separated folders outside a project its disks and ISOs may lie under (default /var/lib/libvirt/images and <data>/images)",
		set: func(c *Server, v string) error {
			c.ImageDirs = nil
			for _, d := range strings.Split(v, ":") {
				if d = strings.TrimSpace(d); d != "" {
					if !filepath.IsAbs(d) {
						return fmt.Errorf("%q is not an absolute path", d)
					}
					c.ImageDirs = append(c.ImageDirs, filepath.Clean(d))
				}
			}
			return nil
		}},
	{Env: "TESTBEDOS_NETWORK", Flag: "network", Default: NetworkBridge, Program: ProgramServer, Type: "string",
		Doc: "network backend: bridge (Linux bridges, the default) or ovn (Open vSwitch and OVN)",
		set: func(c *Server, v string) error { c.Network = strings.ToLower(strings.TrimSpace(v)); return nil }},
	{Env: "TESTBEDOS_MAIN_URL", Flag: "main", Default: "", Program: ProgramServer, Type: "string",
		Doc: "client mode: URL of the main server",
		set: func(c *Server, v string) error { c.MainURL = v; return nil }},
	{Env: "TESTBEDOS_TOKEN_FILE", Flag: "token-file", Default: "", Program: ProgramServer, Type: "string",
		Doc: "client mode: file holding the cluster token",
		set: func(c *Server, v string) error { c.TokenFile = v; return nil }},
	{Env: "TESTBEDOS_MAIN_FINGERPRINT", Flag: "main-fingerprint", Default: "", Program: ProgramServer, Type: "string",
		Doc: "client mode: the main's certificate fingerprint (sha256:<hex>)",
		set: func(c *Server, v string) error { c.MainFingerprint = v; return nil }},
	{Env: "TESTBEDOS_HEARTBEAT_INTERVAL", Flag: "heartbeat-interval", Default: "5s", Program: ProgramServer, Type: "duration",
		Doc: "cluster heartbeat interval",
		set: func(c *Server, v string) (err error) { c.HeartbeatInterval, err = time.ParseDuration(v); return err }},
	{Env: "TESTBEDOS_HEARTBEAT_MISSES", Flag: "heartbeat-misses", Default: "3", Program: ProgramServer, Type: "int",
		Doc: "missed heartbeats before a peer is dropped",
		set: func(c *Server, v string) (err error) { c.HeartbeatMisses, err = strconv.Atoi(v); return err }},
	{Env: "TESTBEDOS_LOG_RETENTION", Flag: "log-retention", Default: "720h0m0s", Program: ProgramServer, Type: "duration",
		Doc: "orchestration logs older than this are deleted",
		set: func(c *Server, v string) (err error) { c.LogRetention, err = time.ParseDuration(v); return err }},
	{Env: "TESTBEDOS_LOG_MAX_COUNT", Flag: "log-max-count", Default: "1000", Program: ProgramServer, Type: "int",
		Doc: "orchestration logs kept per deployment at most",
		set: func(c *Server, v string) (err error) { c.LogMaxCount, err = strconv.Atoi(v); return err }},
	{Env: "TESTBEDOS_LOG_MAX_BYTES", Flag: "log-max-bytes", Default: sizeText(logstream.DefaultMaxBytes), Program: ProgramServer, Type: "size",
		Doc: "cap on one action's log, e.g. 256MiB; past it lines are dropped and counted",
		set: func(c *Server, v string) error {
			var s byteSize
			err := s.Set(v)
			c.LogMaxBytes = int64(s)
			return err
		}},
	{Env: "TESTBEDOS_RESTORE", Flag: "restore", Default: RestoreOn, Program: ProgramServer, Type: "string",
		Doc: "at start, bring back what a reboot removed of deployments recorded up (on), or mark them failed (off)",
		set: func(c *Server, v string) error { c.Restore = strings.ToLower(v); return nil }},
	{Env: "TESTBEDOS_MONITOR_INTERVAL", Flag: "monitor-interval", Default: DefaultMonitorInterval.String(), Program: ProgramServer, Type: "duration",
		Doc: "how often guests' CPU, memory and link counters are sampled (10ms to 1h; a bare number is seconds)",
		set: func(c *Server, v string) (err error) { c.MonitorInterval, err = parseInterval(v); return err }},
	{Env: "TESTBEDOS_LIBVIRT_SOCKET", Flag: "libvirt-socket", Default: DefaultLibvirtSocket, Program: ProgramServer, Type: "string",
		Doc: "libvirtd's unix socket",
		set: func(c *Server, v string) error { c.Libvirt.Socket = strings.TrimSpace(v); return nil }},
	{Env: "TESTBEDOS_LIBVIRT_DOMAIN_TYPE", Flag: "libvirt-domain-type", Default: "auto", Program: ProgramServer, Type: "string",
		Doc: "libvirt domain type: auto (boot a test kernel under KVM once, else TCG), kvm or qemu",
		set: func(c *Server, v string) error {
			c.Libvirt.DomainType = strings.TrimSpace(v)
			return c.Libvirt.check()
		}},
	{Env: "TESTBEDOS_LIBVIRT_PROBE_KERNEL", Flag: "libvirt-probe-kernel", Default: "", Program: ProgramServer, Type: "string",
		Doc: "kernel booted to find out whether KVM works (default: the newest /boot/vmlinuz-*; none means TCG)",
		set: func(c *Server, v string) error { c.Libvirt.ProbeKernel = strings.TrimSpace(v); return nil }},
	{Env: "TESTBEDOS_LIBVIRT_IMAGE_CACHE", Flag: "libvirt-image-cache", Default: "", Program: ProgramServer, Type: "string",
		Doc: "folder of downloaded cloud images (default: <data dir>/cache/images)",
		set: func(c *Server, v string) error { c.Libvirt.ImageCache = strings.TrimSpace(v); return nil }},
	{Env: "TESTBEDOS_LIBVIRT_READY_TIMEOUT", Flag: "libvirt-ready-timeout", Default: "3m0s", Program: ProgramServer, Type: "duration",
		Doc: "how long up waits for a VM to answer over SSH",
		set: func(c *Server, v string) (err error) {
			if c.Libvirt.ReadyTimeout, err = time.ParseDuration(strings.TrimSpace(v)); err != nil {
				return err
			}
			return c.Libvirt.check()
		}},

	{Env: EnvDataDir, Program: ProgramCLI, Default: DefaultDataDir,
		Doc: "the server's data folder, where kvm-compose reads the token and certificate of a local server"},
	{Env: EnvSocket, Program: ProgramCLI, Default: DefaultSocket,
		Doc: "the unix socket kvm-compose tries first; empty skips it (--server-connection names a server instead)"},
	{Env: EnvToken, Program: ProgramCLI, Default: "",
		Doc: "the token sent over TCP (default: <data dir>/config/token)"},
	{Env: EnvServerFingerprint, Program: ProgramCLI, Default: "",
		Doc: "pins an https server's certificate, sha256:<hex> (default: the local data folder's certificate)"},

	{Env: "DOCKER_HOST", Program: ProgramLibrary, Default: "unix:///var/run/docker.sock",
		Doc: "dockerd's address for docker guests; DOCKER_API_VERSION, DOCKER_CERT_PATH and DOCKER_TLS_VERIFY are read likewise"},

	{Env: EnvRequireIntegration, Program: ProgramTests, Default: "",
		Doc: "1 turns every skip of an integration test (no root, no libvirtd, …) into a failure; .ci/run sets it"},
	{Env: "TESTBEDOS_TEST_CACHE", Program: ProgramTests, Default: "",
		Doc: "where the test guest image is built and kept (default: $XDG_CACHE_HOME or ~/.cache)"},
	{Env: "TESTBEDOS_GUEST_KERNEL", Program: ProgramTests, Default: "",
		Doc: "kernel version the test guest image boots (default: the newest in /boot)"},
}

// DefaultMonitorInterval is how often the monitor samples by default.
const DefaultMonitorInterval = 5 * time.Second

// DefaultLibvirtSocket is libvirtd's system socket.
const DefaultLibvirtSocket = "/var/run/libvirt/libvirt-sock"

// Libvirt configures the libvirt guest driver.
type Libvirt struct {
	Socket       string
	DomainType   string // auto, kvm or qemu
	ProbeKernel  string
	ImageCache   string
	ReadyTimeout time.Duration
}

func (l Libvirt) check() error {
	switch l.DomainType {
	case "", "auto", "kvm", "qemu":
	default:
		return fmt.Errorf("libvirt domain type %q: want kvm, qemu or auto", l.DomainType)
	}
	if l.ReadyTimeout < 0 {
		return fmt.Errorf("libvirt ready timeout must be positive")
	}
	return nil
}

// parseInterval reads a sampling interval: a Go duration or a number of
// seconds, between 10ms and 1h.
func parseInterval(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		secs, ferr := strconv.ParseFloat(v, 64)
		if ferr != nil {
			return 0, fmt.Errorf("want a duration such as 5s")
		}
		d = time.Duration(secs * float64(time.Second))
	}
	if d < 10*time.Millisecond || d > time.Hour {
		return 0, fmt.Errorf("want between 10ms and 1h")
	}
	return d, nil
}

func sizeText(n int64) string { s := byteSize(n); return s.String() }

// knobValue is a flag whose text is parsed by its knob when the
// configuration is finished, so that a bad flag and a bad variable are
// reported alike.
type knobValue struct {
	text string
	typ  string
}

func (v *knobValue) String() string     { return v.text }
func (v *knobValue) Set(s string) error { v.text = s; return nil }
func (v *knobValue) Type() string       { return v.typ }

// Table renders Knobs as the Markdown table of docs/configuration.md.
func Table() string {
	var b strings.Builder
	b.WriteString("| variable | flag | program | default | what it does |\n|---|---|---|---|---|\n")
	for _, k := range Knobs {
		flag, def := "", k.Default
		if k.Flag != "" {
			flag = "`--" + k.Flag + "`"
		}
		if def != "" {
			def = "`" + def + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", k.Env, flag, k.Program, def, strings.ReplaceAll(k.Doc, "|", `\|`))
	}
	return b.String()
}
