// Package config turns flags and their environment-variable twins into the
// server's configuration. A flag given on the command line wins over its
// environment variable, which wins over the default.
package config

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/testbedos/testbedos/internal/logstream"
)

// Modes the server runs in.
const (
	ModeMain   = "main"
	ModeClient = "client"
)

// Server is the configuration of testbedos-server.
type Server struct {
	Mode    string
	DataDir string
	Listen  string // TCP address; empty disables TCP
	Socket  string // unix socket path; empty disables it
	DB      string // file | sqlite
	// Network (TESTBEDOS_NETWORK) is the network backend: NetworkBridge
	// (Linux bridges, the default) or NetworkOVN.
	Network string
	Dev     bool
	Auth    bool
	// TLS is auto (TLS on TCP unless it listens on loopback), on or off.
	TLS string
	// AllowedHosts are names, besides the ones the server listens as, that
	// requests over TCP may carry in their Host header (a DNS name of this
	// host, a reverse proxy's name).
	AllowedHosts []string
	// MaxConns caps the open connections of the TCP listener (the unix
	// socket has a cap of its own); 0 means DefaultMaxConns.
	MaxConns int

	// Client mode.
	MainURL   string
	TokenFile string
	// MainFingerprint pins the main's certificate (client mode).
	MainFingerprint string
	// ClusterToken joins the main (client mode, from a join token or TokenFile).
	ClusterToken string

	HeartbeatInterval time.Duration
	HeartbeatMisses   int

	// LogRetention and LogMaxCount bound the orchestration logs kept.
	LogRetention time.Duration
	LogMaxCount  int
	// LogMaxBytes caps one action's log; past it lines are dropped and
	// counted.
	LogMaxBytes int64

	// Restore (TESTBEDOS_RESTORE) is what the server does at start with a
	// deployment recorded up of which something is missing (a host
	// reboot): on (the default, also when empty) brings it back with an up
	// action of its own; off marks it {"failed": "up"}.
	Restore string
}

// Values of Server.Network.
const (
	NetworkBridge = "bridge"
	NetworkOVN    = "ovn"
)

// Values of Server.Restore.
const (
	RestoreOn  = "on"
	RestoreOff = "off"
)

// Defaults of the server's settings.
const (
	DefaultDataDir = "/var/lib/testbedos"
	DefaultListen  = "127.0.0.1:3355"
	// DefaultMaxConns caps the TCP listener's open connections.
	DefaultMaxConns = 1024
	DefaultSocket   = "/run/testbedos/testbedos.sock"
)

// env is how the configuration reads the environment (os.LookupEnv in
// production, a map in tests).
type env func(string) (string, bool)

// Bind declares the server flags on fs with defaults from the environment.
// It returns a function that finishes the configuration after fs.Parse.
func Bind(fs *pflag.FlagSet, lookup func(string) (string, bool)) func() (Server, error) {
	e := env(lookup)
	var errs []error
	str := func(name, envName, def, usage string) *string {
		if v, ok := e(envName); ok {
			def = v
		}
		return fs.String(name, def, usage+" (env "+envName+")")
	}
	boolean := func(name, envName string, def bool, usage string) *bool {
		if v, ok := e(envName); ok && v != "" {
			b, err := parseBool(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", envName, v, err))
			}
			def = b
		}
		return fs.Bool(name, def, usage+" (env "+envName+")")
	}
	duration := func(name, envName string, def time.Duration, usage string) *time.Duration {
		if v, ok := e(envName); ok && v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", envName, v, err))
			}
			def = d
		}
		return fs.Duration(name, def, usage+" (env "+envName+")")
	}
	integer := func(name, envName string, def int, usage string) *int {
		if v, ok := e(envName); ok && v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", envName, v, err))
			}
			def = n
		}
		return fs.Int(name, def, usage+" (env "+envName+")")
	}
	size := func(name, envName string, def int64, usage string) *int64 {
		v := byteSize(def)
		if s, ok := e(envName); ok && s != "" {
			if err := v.Set(s); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", envName, s, err))
			}
		}
		fs.Var(&v, name, usage+" (env "+envName+")")
		return (*int64)(&v)
	}

	dataDir := str("data-dir", "TESTBEDOS_DATA_DIR", DefaultDataDir, "data folder")
	listen := str("listen", "TESTBEDOS_LISTEN", DefaultListen, "TCP address of the API; empty disables TCP")
	socket := str("socket", "TESTBEDOS_SOCKET", DefaultSocket, "unix socket of the API; empty disables it")
	db := str("db", "TESTBEDOS_DB", "file", "store provider: file or sqlite")
	dev := boolean("dev", "TESTBEDOS_DEV", false, "development mode: debug logs, GUI templates read from disk")
	auth := str("auth", "TESTBEDOS_AUTH", "on", "token auth over TCP: on, or off for development only")
	useTLS := str("tls", "TESTBEDOS_TLS", TLSAuto, "TLS on the TCP listener: auto (unless it listens on loopback), on or off")
	allowedHosts := str("allowed-hosts", "TESTBEDOS_ALLOWED_HOSTS", "", "comma-separated extra host names the API answers to in the Host header (besides localhost, IPs, this host's name)")
	maxConns := integer("max-conns", "TESTBEDOS_MAX_CONNS", DefaultMaxConns, "cap on open TCP connections; past it the longest idle ones are closed")
	mainURL := str("main", "TESTBEDOS_MAIN_URL", "", "client mode: URL of the main server")
	tokenFile := str("token-file", "TESTBEDOS_TOKEN_FILE", "", "client mode: file holding the cluster token")
	mainFP := str("main-fingerprint", "TESTBEDOS_MAIN_FINGERPRINT", "", "client mode: the main's certificate fingerprint (sha256:<hex>)")
	hbInterval := duration("heartbeat-interval", "TESTBEDOS_HEARTBEAT_INTERVAL", 5*time.Second, "cluster heartbeat interval")
	hbMisses := integer("heartbeat-misses", "TESTBEDOS_HEARTBEAT_MISSES", 3, "missed heartbeats before a peer is dropped")
	retention := duration("log-retention", "TESTBEDOS_LOG_RETENTION", 30*24*time.Hour, "orchestration logs older than this are deleted")
	maxLogs := integer("log-max-count", "TESTBEDOS_LOG_MAX_COUNT", 1000, "orchestration logs kept per deployment at most")
	network := str("network", "TESTBEDOS_NETWORK", NetworkBridge, "network backend: bridge (Linux bridges) or ovn (Open vSwitch and OVN)")
	restore := str("restore", "TESTBEDOS_RESTORE", RestoreOn, "at start, bring back what a reboot removed of deployments recorded up (on), or mark them failed (off)")
	maxLogBytes := size("log-max-bytes", "TESTBEDOS_LOG_MAX_BYTES", logstream.DefaultMaxBytes,
		"cap on one action's log, e.g. 256MiB; past it lines are dropped and counted")

	return func() (Server, error) {
		cfg := Server{
			DataDir: *dataDir, Listen: *listen, Socket: *socket, DB: *db, Dev: *dev, TLS: strings.ToLower(*useTLS),
			MainURL: *mainURL, TokenFile: *tokenFile, MainFingerprint: *mainFP,
			HeartbeatInterval: *hbInterval, HeartbeatMisses: *hbMisses,
			LogRetention: *retention, LogMaxCount: *maxLogs, LogMaxBytes: *maxLogBytes,
			Restore: strings.ToLower(*restore), MaxConns: *maxConns, Network: strings.ToLower(*network),
		}
		for _, h := range strings.Split(*allowedHosts, ",") {
			if h = strings.TrimSpace(h); h != "" {
				cfg.AllowedHosts = append(cfg.AllowedHosts, h)
			}
		}
		switch strings.ToLower(*auth) {
		case "on", "true", "1", "yes":
			cfg.Auth = true
		case "off", "false", "0", "no":
			cfg.Auth = false
		default:
			errs = append(errs, fmt.Errorf("auth %q: want on or off", *auth))
		}
		if len(errs) > 0 {
			return cfg, errs[0]
		}
		return cfg, cfg.Validate()
	}
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("want 1/0, true/false, on/off")
}

// Validate checks the configuration and makes the data folder absolute.
func (c *Server) Validate() error {
	if c.DataDir == "" {
		return fmt.Errorf("data folder must not be empty")
	}
	abs, err := filepath.Abs(c.DataDir)
	if err != nil {
		return fmt.Errorf("data folder: %w", err)
	}
	c.DataDir = abs
	if c.Listen == "" && c.Socket == "" {
		return fmt.Errorf("neither a TCP address nor a unix socket to listen on")
	}
	if c.DB != "file" && c.DB != "sqlite" {
		return fmt.Errorf("store %q: want file or sqlite", c.DB)
	}
	switch c.TLS {
	case "":
		c.TLS = TLSAuto
	case TLSAuto, TLSOn, TLSOff:
	default:
		return fmt.Errorf("tls %q: want auto, on or off", c.TLS)
	}
	if c.HeartbeatInterval <= 0 {
		return fmt.Errorf("heartbeat interval must be positive")
	}
	if c.HeartbeatMisses < 1 {
		return fmt.Errorf("heartbeat misses must be at least 1")
	}
	if c.LogRetention <= 0 || c.LogMaxCount < 1 {
		return fmt.Errorf("log retention and log max count must be positive")
	}
	switch c.Restore {
	case "", "1", "true", "yes":
		c.Restore = RestoreOn
	case "0", "false", "no":
		c.Restore = RestoreOff
	case RestoreOn, RestoreOff:
	default:
		return fmt.Errorf("restore %q: want on or off", c.Restore)
	}
	switch c.Network {
	case "":
		c.Network = NetworkBridge
	case NetworkBridge, NetworkOVN:
	default:
		return fmt.Errorf("network %q: want bridge or ovn", c.Network)
	}
	if c.LogMaxBytes == 0 { // a Server built in code rather than by Bind
		c.LogMaxBytes = logstream.DefaultMaxBytes
	}
	if c.LogMaxBytes < 4<<10 {
		return fmt.Errorf("log max bytes must be at least 4KiB")
	}
	return nil
}

// Paths of the data folder.
func (c Server) ConfigDir() string      { return filepath.Join(c.DataDir, "config") }
func (c Server) DeploymentsDir() string { return filepath.Join(c.DataDir, "deployments") }
func (c Server) DeployedDir() string    { return filepath.Join(c.DataDir, "deployed") }
func (c Server) LogsDir() string        { return filepath.Join(c.DataDir, "logs") }

// GeneratedDir holds what generate-artefacts made for the server, one
// folder per deployment; DisksDir the VM disks, and MountsDir the private
// binds of containers' volume sources, one folder per deployment.
func (c Server) GeneratedDir() string { return filepath.Join(c.DataDir, "generated") }
func (c Server) DisksDir() string     { return filepath.Join(c.DataDir, "disks") }
func (c Server) MountsDir() string    { return filepath.Join(c.DataDir, "mounts") }

// OVNDir holds the OVS and OVN daemons' databases, sockets and logs when
// the server runs them (the ovn network backend on a host whose own do not
// run).
func (c Server) OVNDir() string           { return filepath.Join(c.DataDir, "ovn") }
func (c Server) OrchestrationDir() string { return filepath.Join(c.DataDir, "logs", "orchestration") }
func (c Server) ServerLog() string        { return filepath.Join(c.DataDir, "logs", "server.log") }
func (c Server) SQLitePath() string       { return filepath.Join(c.DataDir, "testbedos.db") }
func (c Server) TokenPath() string        { return filepath.Join(c.DataDir, "config", "token") }

// InstanceIDPath holds the id that marks the containers and domains this
// server makes, so that two servers on one host never take each other's.
func (c Server) InstanceIDPath() string { return filepath.Join(c.DataDir, "config", "instance-id") }
func (c Server) HostPath() string       { return filepath.Join(c.DataDir, "config", "host.json") }
func (c Server) ClusterConfigPath() string {
	return filepath.Join(c.DataDir, "config", "kvm-compose-config.json")
}
func (c Server) ClusterTokenPath() string { return filepath.Join(c.DataDir, "config", "cluster-token") }
func (c Server) MemberPath() string       { return filepath.Join(c.DataDir, "config", "member.json") }
func (c Server) TLSDir() string           { return filepath.Join(c.DataDir, "config", "tls") }

// Values of Server.TLS.
const (
	TLSAuto = "auto"
	TLSOn   = "on"
	TLSOff  = "off"
)

// UseTLS reports whether the TCP listener speaks TLS: always with on,
// never with off, and with auto unless Listen is a loopback address.
func (c Server) UseTLS() bool {
	switch c.TLS {
	case TLSOn:
		return true
	case TLSOff:
		return false
	}
	return !IsLoopback(c.Listen)
}

// IsLoopback reports whether a host:port (or a bare host) names only the
// loopback interface: 127.0.0.0/8, ::1 or localhost.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = strings.Trim(addr, "[]")
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// MakeDirs creates the folders of the data layout.
func (c Server) MakeDirs() error {
	for _, d := range []string{c.ConfigDir(), c.DeploymentsDir(), c.DeployedDir(), c.OrchestrationDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("data folder: %w", err)
		}
	}
	return nil
}
