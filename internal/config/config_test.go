package config

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func bind(t *testing.T, env map[string]string, args ...string) (Server, error) {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	finish := Bind(fs, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err := fs.Parse(args); err != nil {
		return Server{}, err
	}
	return finish()
}

func TestFlagsEnvironmentDefaults(t *testing.T) {
	cfg, err := bind(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != DefaultDataDir || cfg.Listen != DefaultListen || cfg.Socket != DefaultSocket || cfg.DB != "file" || !cfg.Auth || cfg.Dev {
		t.Fatalf("defaults: %+v", cfg)
	}
	if cfg.HeartbeatInterval != 5*time.Second || cfg.HeartbeatMisses != 3 {
		t.Fatalf("heartbeat defaults: %+v", cfg)
	}
	env := map[string]string{"TESTBEDOS_DATA_DIR": "/tmp/x", "TESTBEDOS_LISTEN": ":1", "TESTBEDOS_DEV": "1",
		"TESTBEDOS_AUTH": "off", "TESTBEDOS_DB": "sqlite", "TESTBEDOS_HEARTBEAT_INTERVAL": "2s"}
	cfg, err = bind(t, env)
	if err != nil || cfg.DataDir != "/tmp/x" || cfg.Listen != ":1" || !cfg.Dev || cfg.Auth || cfg.DB != "sqlite" || cfg.HeartbeatInterval != 2*time.Second {
		t.Fatalf("environment: %+v, %v", cfg, err)
	}
	cfg, err = bind(t, env, "--listen", "127.0.0.1:9", "--dev=false")
	if err != nil || cfg.Listen != "127.0.0.1:9" || cfg.Dev {
		t.Fatalf("a flag must win over its environment twin: %+v, %v", cfg, err)
	}
	for _, bad := range []map[string]string{
		{"TESTBEDOS_DEV": "maybe"}, {"TESTBEDOS_AUTH": "sometimes"}, {"TESTBEDOS_DB": "postgres"},
		{"TESTBEDOS_HEARTBEAT_INTERVAL": "soon"}, {"TESTBEDOS_HEARTBEAT_MISSES": "0"},
		{"TESTBEDOS_LISTEN": "", "TESTBEDOS_SOCKET": ""},
	} {
		if _, err := bind(t, bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestLockDataDir(t *testing.T) {
	cfg := Server{DataDir: t.TempDir()}
	lock, err := cfg.LockDataDir()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.LockDataDir(); !errors.Is(err, ErrDataDirInUse) {
		t.Fatalf("second lock: %v, want ErrDataDirInUse", err)
	}
	lock.Release()
	lock2, err := cfg.LockDataDir()
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	lock2.Release()
}

func TestSaveModeThroughTheLock(t *testing.T) {
	cfg := Server{DataDir: t.TempDir()}
	if m, err := cfg.LoadMode(); err != nil || m.Mode != ModeMain {
		t.Fatalf("no mode.json: %+v %v, want main", m, err)
	}
	lock, err := cfg.LockDataDir()
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	want := SavedMode{Mode: ModeClient, MainURL: "https://main.example:8443"}
	if err := lock.SaveMode(want); err != nil {
		t.Fatal(err)
	}
	if got, err := cfg.LoadMode(); err != nil || got != want {
		t.Fatalf("LoadMode: %+v %v, want %+v", got, err, want)
	}
}

func TestLogMaxBytes(t *testing.T) {
	tests := []struct {
		env, flag string
		want      int64
	}{
		{"", "", 256 << 20},
		{"4MiB", "", 4 << 20},
		{"1048576", "", 1 << 20},
		{"512K", "", 512 << 10},
		{"2G", "", 2 << 30},
		{"4MiB", "8MiB", 8 << 20},
	}
	for _, tc := range tests {
		t.Run(tc.env+"/"+tc.flag, func(t *testing.T) {
			env := map[string]string{}
			if tc.env != "" {
				env["TESTBEDOS_LOG_MAX_BYTES"] = tc.env
			}
			var args []string
			if tc.flag != "" {
				args = []string{"--log-max-bytes", tc.flag}
			}
			cfg, err := bind(t, env, args...)
			if err != nil || cfg.LogMaxBytes != tc.want {
				t.Fatalf("LogMaxBytes = %d, %v; want %d", cfg.LogMaxBytes, err, tc.want)
			}
		})
	}
	for _, bad := range []string{"lots", "-1", "4TiB", "1KiB"} {
		if _, err := bind(t, map[string]string{"TESTBEDOS_LOG_MAX_BYTES": bad}); err == nil {
			t.Errorf("TESTBEDOS_LOG_MAX_BYTES=%q accepted", bad)
		}
	}
	if _, err := bind(t, nil, "--log-max-bytes", "3 apples"); err == nil {
		t.Error("--log-max-bytes '3 apples' accepted")
	}
}

func TestUseTLS(t *testing.T) {
	tests := []struct {
		mode, listen string
		want         bool
	}{
		{TLSAuto, "127.0.0.1:3355", false},
		{TLSAuto, "[::1]:3355", false},
		{TLSAuto, "localhost:3355", false},
		{TLSAuto, "0.0.0.0:3355", true},
		{TLSAuto, "10.1.2.3:3355", true},
		{TLSAuto, ":3355", true},
		{TLSOn, "127.0.0.1:3355", true},
		{TLSOff, "10.1.2.3:3355", false},
	}
	for _, tc := range tests {
		c := Server{TLS: tc.mode, Listen: tc.listen}
		if got := c.UseTLS(); got != tc.want {
			t.Errorf("TLS=%s listen %s: UseTLS %v, want %v", tc.mode, tc.listen, got, tc.want)
		}
	}
}

func TestTLSFlagAndEnv(t *testing.T) {
	tests := []struct {
		env, flag, want string
		bad             bool
	}{
		{"", "", TLSAuto, false},
		{"on", "", TLSOn, false},
		{"OFF", "", TLSOff, false},
		{"on", "off", TLSOff, false},
		{"sometimes", "", "", true},
	}
	for _, tc := range tests {
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		env := map[string]string{"TESTBEDOS_DATA_DIR": t.TempDir()}
		if tc.env != "" {
			env["TESTBEDOS_TLS"] = tc.env
		}
		finish := Bind(fs, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		var args []string
		if tc.flag != "" {
			args = []string{"--tls", tc.flag}
		}
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		cfg, err := finish()
		if (err != nil) != tc.bad || (!tc.bad && cfg.TLS != tc.want) {
			t.Errorf("env %q flag %q: %q %v, want %q (error %v)", tc.env, tc.flag, cfg.TLS, err, tc.want, tc.bad)
		}
	}
}

// TestImageDirs: TESTBEDOS_IMAGE_DIRS lists the folders outside a project
// its disks may lie under; by default libvirt's and <data>/images.
func TestImageDirs(t *testing.T) {
	cfg, err := bind(t, map[string]string{"TESTBEDOS_DATA_DIR": "/srv/tb"})
	if err != nil || strings.Join(cfg.ImageFolders(), ":") != "/var/lib/libvirt/images:/srv/tb/images" {
		t.Fatalf("default image folders %v, %v", cfg.ImageFolders(), err)
	}
	cfg, err = bind(t, map[string]string{"TESTBEDOS_IMAGE_DIRS": "/a:/b/"})
	if err != nil || strings.Join(cfg.ImageFolders(), ":") != "/a:/b" {
		t.Fatalf("image folders %v, %v", cfg.ImageFolders(), err)
	}
	if _, err := bind(t, map[string]string{"TESTBEDOS_IMAGE_DIRS": "relative"}); err == nil {
		t.Error("a relative image folder was accepted")
	}
}

// TESTBEDOS_NETWORK chooses the network backend: bridge by default, ovn
// on request, anything else refused.
func TestNetworkBackend(t *testing.T) {
	for env, want := range map[string]string{"": NetworkBridge, "bridge": NetworkBridge, "OVN": NetworkOVN} {
		vars := map[string]string{}
		if env != "" {
			vars["TESTBEDOS_NETWORK"] = env
		}
		cfg, err := bind(t, vars)
		if err != nil || cfg.Network != want {
			t.Errorf("TESTBEDOS_NETWORK=%q: %q, %v; want %q", env, cfg.Network, err, want)
		}
	}
	if _, err := bind(t, map[string]string{"TESTBEDOS_NETWORK": "vxlan"}); err == nil || !strings.Contains(err.Error(), "want bridge or ovn") {
		t.Errorf("TESTBEDOS_NETWORK=vxlan: %v, want refused", err)
	}
}
