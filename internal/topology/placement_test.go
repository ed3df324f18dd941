package topology

import (
	"strconv"
	"strings"
	"testing"
)

// TestLoadBalancingResources: guests without a host go where the most CPU
// and memory is left; a guest that names its host is counted there; the
// default stays round robin.
func TestLoadBalancingResources(t *testing.T) {
	n := 10
	vm := func(name, host string) string {
		n++
		s := "  - name: " + name + "\n"
		if host != "" {
			s += "    host: " + host + "\n"
		}
		return s + "    network: [{switch: sw0, ip: 10.0.0." + strconv.Itoa(n) + "}]\n    libvirt:\n      cpus: 1\n      memory_mb: 1024\n      libvirt_type:\n        cloud_image: {url: 'https://example.org/x.img'}\n"
	}
	hosts := []Host{{Name: "main", Main: true, CPUs: 2, MemoryMB: 4096}, {Name: "big", CPUs: 8, MemoryMB: 16384}, {Name: "small", CPUs: 2, MemoryMB: 2048}}
	for _, tc := range []struct {
		policy string
		want   string
	}{
		{"resources", "main big big big big small"},
		{"naive_round_robin", "main main big small main big"},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			yaml := "machines:\n" + vm("pinned", "main") + vm("a", "") + vm("b", "") + vm("c", "") + vm("d", "") + vm("e", "") +
				"network:\n  switches:\n    sw0: {subnet: 10.0.0.0/24}\ntestbed_options:\n  load_balancing: " + tc.policy + "\n"
			dir := writeProject(t, yaml)
			st, err := Generate(Options{Deployment: "lab", ProjectDir: dir, Hosts: hosts})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, g := range st.Guests {
				got = append(got, g.Host)
			}
			if strings.Join(got, " ") != tc.want {
				t.Errorf("placed on %v, want %s", got, tc.want)
			}
		})
	}
}
