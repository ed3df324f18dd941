// Package cluster is the cluster's control plane: this host's host.json,
// the main's membership (join, kvm-compose-config.json, heartbeats with one
// timer per member) and the client's side (join, heartbeats to the main,
// re-join).
package cluster

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/atomicfile"
)

// HostProbe is what DetectHost reads of the machine; tests replace it.
type HostProbe struct {
	Hostname string
	// Listen is the TCP address the server listens on.
	Listen string
	Main   bool
	// RouteFile is /proc/net/route, MeminfoFile /proc/meminfo.
	RouteFile, MeminfoFile string
}

// DetectHost describes this host: its name from the hostname, the ip of the
// interface the listen address uses (or, for a wildcard or loopback listen
// address, of the default-route interface), cpus and memory.
func DetectHost(p HostProbe) api.HostConfig {
	if p.RouteFile == "" {
		p.RouteFile = "/proc/net/route"
	}
	if p.MeminfoFile == "" {
		p.MeminfoFile = "/proc/meminfo"
	}
	h := api.HostConfig{Name: hostName(p.Hostname), IsMainHost: p.Main, CPUs: runtime.NumCPU(), MemoryMB: memoryMB(p.MeminfoFile)}
	host, _, err := net.SplitHostPort(p.Listen)
	if err != nil {
		host = p.Listen
	}
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() && !ip.IsLoopback() {
		h.IP = ip.String()
		h.TestbedNIC = interfaceOf(ip)
		return h
	}
	if nic := defaultRouteInterface(p.RouteFile); nic != "" {
		if ip := firstIPv4(nic); ip != nil {
			h.IP, h.TestbedNIC = ip.String(), nic
			return h
		}
	}
	h.IP, h.TestbedNIC = "127.0.0.1", "lo"
	return h
}

// hostName makes a host name a valid cluster name: the first label, lower
// case, other characters replaced by '-'.
func hostName(s string) string {
	s, _, _ = strings.Cut(strings.ToLower(s), ".")
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '-'
		}
	}
	s = strings.TrimLeft(string(b), "-_")
	if len(s) > 63 {
		s = s[:63]
	}
	if s == "" {
		return "host"
	}
	return s
}

func interfaceOf(ip net.IP) string {
	ifs, err := net.Interfaces()
	if err != nil {
		return ""
	}
	for _, ifc := range ifs {
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
				return ifc.Name
			}
		}
	}
	return ""
}

func firstIPv4(nic string) net.IP {
	ifc, err := net.InterfaceByName(nic)
	if err != nil {
		return nil
	}
	addrs, _ := ifc.Addrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			return n.IP
		}
	}
	return nil
}

// defaultRouteInterface reads the interface of the IPv4 default route from
// /proc/net/route ("" when there is none).
func defaultRouteInterface(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 8 && fields[1] == "00000000" && fields[7] == "00000000" {
			return fields[0]
		}
	}
	return ""
}

func memoryMB(path string) int64 {
	data, err := os.ReadFile(path)
	if err != nil {
		return 1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err == nil && kb >= 1024 {
				return kb / 1024
			}
		}
	}
	return 1
}

// LoadHost reads host.json; what the original's host.json leaves out
// (name, cpus, memory_mb) comes from this machine.
func LoadHost(path string) (api.HostConfig, error) {
	return loadHost(path, MachineDefaults(""))
}

// MachineDefaults are this machine's name (from hostname, or the
// machine's own when empty), CPU count and memory.
func MachineDefaults(hostname string) api.HostDefaults {
	if hostname == "" {
		hostname, _ = os.Hostname()
	}
	return api.HostDefaults{Name: hostName(hostname), CPUs: runtime.NumCPU(), MemoryMB: memoryMB("/proc/meminfo")}
}

func loadHost(path string, d api.HostDefaults) (api.HostConfig, error) {
	h, err := readHost(path)
	if err != nil {
		return h, err
	}
	h = h.WithDefaults(d)
	if err := h.Validate(); err != nil {
		return api.HostConfig{}, fmt.Errorf("%s: %w", path, err)
	}
	return h, nil
}

// readHost decodes host.json without checking it.
func readHost(path string) (api.HostConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return api.HostConfig{}, err
	}
	var h api.HostConfig
	if err := json.Unmarshal(data, &h); err != nil {
		return api.HostConfig{}, fmt.Errorf("%s: %w", path, err)
	}
	return h, nil
}

// LoadOrCreateHost reads host.json, or writes detect() there when it is
// absent; fields the original's host.json leaves out (name, cpus,
// memory_mb) come from detect() too. The mode decides is_main_host
// whatever the file says.
func LoadOrCreateHost(path string, main bool, detect func() api.HostConfig) (api.HostConfig, error) {
	h, err := readHost(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		h = detect()
	case err != nil:
		return h, err
	default:
		if h.Name == "" || h.CPUs == 0 || h.MemoryMB == 0 {
			d := detect()
			h = h.WithDefaults(api.HostDefaults{Name: d.Name, CPUs: d.CPUs, MemoryMB: d.MemoryMB})
		}
		if err := h.Validate(); err != nil {
			return api.HostConfig{}, fmt.Errorf("%s: %w", path, err)
		}
		if h.IsMainHost == main {
			return h, nil
		}
	}
	h.IsMainHost = main
	return h, SaveHost(path, h)
}

// SaveHost validates h and writes it to path crash-safely.
func SaveHost(path string, h api.HostConfig) error {
	if err := h.Validate(); err != nil {
		return err
	}
	data, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, append(data, '\n'), 0o644)
}
