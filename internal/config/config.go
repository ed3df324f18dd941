// Package config turns flags and their environment-variable twins into the
// server's configuration. A flag given on the command line wins over its
// environment variable, which wins over the default.
package config

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
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
	// MaxMembers caps the clients of the main's cluster; 0 means
	// DefaultMaxMembers.
	MaxMembers int
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
	// LogMaxBytes caps one action's log; past it lines are dropped and counted.
	LogMaxBytes int64

	// MonitorInterval is how often guests are sampled.
	MonitorInterval time.Duration
	// DevDir is the source folder of internal/gui in development mode.
	DevDir string
	// Libvirt configures the libvirt guest driver.
	Libvirt Libvirt
	// ImageDirs (TESTBEDOS_IMAGE_DIRS, separated by ':') are the folders
	// outside a project that its existing_disk and iso_guest paths may lie
	// under; empty means libvirt's image folder and <data>/images.
	ImageDirs []string

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

// Defaults of the configuration.
const (
	DefaultDataDir = "/var/lib/testbedos"
	DefaultListen  = "127.0.0.1:3355"
	// DefaultMaxMembers caps the clients of a cluster.
	DefaultMaxMembers = 256
	// DefaultMaxConns caps the TCP listener's open connections.
	DefaultMaxConns = 1024
	DefaultSocket   = "/run/testbedos/testbedos.sock"
)

// Bind declares a flag on fs for every server knob, its default taken from
// the knob's environment variable when that is set. It returns a function
// that finishes the configuration after fs.Parse: a flag given on the
// command line wins over its variable, which wins over the default.
func Bind(fs *pflag.FlagSet, lookup func(string) (string, bool)) func() (Server, error) {
	type bound struct {
		knob  Knob
		value *knobValue
	}
	var flags []bound
	for _, k := range Knobs {
		if k.Program != ProgramServer {
			continue
		}
		v := &knobValue{text: k.Default, typ: k.Type}
		if s, ok := lookup(k.Env); ok && (s != "" || k.Type == "string") {
			v.text = s
		}
		fs.Var(v, k.Flag, k.Doc+" (env "+k.Env+")")
		if k.Type == "bool" {
			fs.Lookup(k.Flag).NoOptDefVal = "true"
		}
		flags = append(flags, bound{k, v})
	}
	return func() (Server, error) {
		var cfg Server
		for _, b := range flags {
			if err := b.knob.set(&cfg, b.value.text); err != nil {
				return cfg, fmt.Errorf("--%s (env %s) %q: %w", b.knob.Flag, b.knob.Env, b.value.text, err)
			}
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
	if c.MonitorInterval == 0 {
		c.MonitorInterval = DefaultMonitorInterval
	}
	if err := c.Libvirt.check(); err != nil {
		return err
	}
	if c.Libvirt.ImageCache == "" {
		c.Libvirt.ImageCache = filepath.Join(c.DataDir, "cache", "images")
	}
	return nil
}

// Paths of the data folder (its layout is in docs/architecture.md).
func (c Server) ConfigDir() string      { return filepath.Join(c.DataDir, "config") }
func (c Server) DeploymentsDir() string { return filepath.Join(c.DataDir, "deployments") }
func (c Server) DeployedDir() string    { return filepath.Join(c.DataDir, "deployed") }
func (c Server) LogsDir() string        { return filepath.Join(c.DataDir, "logs") }

// GeneratedDir holds what generate-artefacts made for the server, one
// folder per deployment; DisksDir the VM disks, and MountsDir the private
// binds of containers' volume sources, one folder per deployment.
func (c Server) GeneratedDir() string { return filepath.Join(c.DataDir, "generated") }
func (c Server) DisksDir() string     { return filepath.Join(c.DataDir, "disks") }

// ImageFolders are the folders outside a project that its disks and ISOs
// may lie under: ImageDirs, or libvirt's image folder and <data>/images.
func (c Server) ImageFolders() []string {
	if len(c.ImageDirs) > 0 {
		return c.ImageDirs
	}
	return []string{"/var/lib/libvirt/images", filepath.Join(c.DataDir, "images")}
}
func (c Server) MountsDir() string { return filepath.Join(c.DataDir, "mounts") }

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
func (c Server) JoinTokensPath() string {
	return filepath.Join(c.DataDir, "config", "join-tokens.json")
}
func (c Server) MemberPath() string { return filepath.Join(c.DataDir, "config", "member.json") }
func (c Server) TLSDir() string     { return filepath.Join(c.DataDir, "config", "tls") }

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
