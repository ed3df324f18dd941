package topology

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// TestOriginalScaling: the original's scaling inside the libvirt section,
// with its interfaces map, ip_range, mac_range and shared_setup, resolves to
// the same clones as this project's spelling.
func TestOriginalScaling(t *testing.T) {
	dir := writeProject(t, yamlLines(
		"machines:",
		"  - name: server",
		"    libvirt:",
		"      cpus: 1",
		"      memory_mb: 256",
		"      libvirt_type:",
		"        cloud_image: {name: ubuntu_20_04, expand_gigabytes: 2}",
		"      scaling:",
		"        count: 3",
		"        shared_setup: shared_setup.sh",
		"        clone_setup:",
		"          - {script: clone_setup.sh, clones: [0, 2]}",
		"        clone_run:",
		"          - {script: run.sh, clones: [2]}",
		"        interfaces:",
		"          sw1:",
		"            clones: [0, 1, 2]",
		"            ip_type: {ip_range: {from: 10.0.1.10, to: 10.0.1.12}}",
		"          sw0:",
		"            clones: [2, 1, 0]",
		"            gateway: 10.0.0.1",
		"            ip_type: {ip_range: {from: 10.0.0.10, to: 10.0.0.20}}",
		"            mac_range: {from: '00:00:00:00:00:01', to: '00:00:00:00:00:03'}",
		"  - name: web",
		"    network: [{switch: sw0, ip: 10.0.0.5}]",
		"    docker:",
		"      image: busybox:local",
		"      scaling: {count: 2}",
		"network:",
		"  ovn:",
		"    switches:",
		"      sw0: {subnet: 10.0.0.0/24}",
		"      sw1: {subnet: 10.0.1.0/24}",
	), "shared_setup.sh", "clone_setup.sh", "run.sh")
	st, err := Generate(Options{Deployment: "lab", ProjectDir: dir, Hosts: []Host{{Name: "h", Main: true}}})
	if err != nil {
		t.Fatal(err)
	}
	type want struct{ name, addrs, macs, script, clone string }
	wants := []want{
		{"server-1", "10.0.1.10/24 10.0.0.10/24", "00:00:00:00:00:01", "shared_setup.sh", "clone_setup.sh"},
		{"server-2", "10.0.1.11/24 10.0.0.11/24", "00:00:00:00:00:02", "shared_setup.sh", ""},
		{"server-3", "10.0.1.12/24 10.0.0.12/24", "00:00:00:00:00:03", "shared_setup.sh", "clone_setup.sh run.sh"},
		{"web-1", "10.0.0.5/24", "", "", ""},
		{"web-2", "10.0.0.6/24", "", "", ""},
	}
	if len(st.Guests) != len(wants) {
		t.Fatalf("%d guests, want %d", len(st.Guests), len(wants))
	}
	for i, w := range wants {
		g := st.Guests[i]
		var addrs []string
		for _, ifc := range g.Interfaces {
			addrs = append(addrs, ifc.Address)
		}
		if g.Name != w.name || strings.Join(addrs, " ") != w.addrs || (w.script != "" && filepath.Base(g.SetupScript) != w.script) {
			t.Errorf("guest %d = %s %v script %q, want %+v", i, g.Name, addrs, g.SetupScript, w)
		}
		var clone []string
		for _, s := range g.CloneScripts {
			if filepath.Dir(s) != realPath(t, dir) {
				t.Errorf("clone script %s is not resolved into the project %s", s, dir)
			}
			clone = append(clone, filepath.Base(s))
		}
		if strings.Join(clone, " ") != w.clone {
			t.Errorf("guest %s clone scripts = %v, want %s", g.Name, clone, w.clone)
		}
		if w.macs != "" && (len(g.Interfaces) != 2 || g.Interfaces[1].MAC != w.macs || g.Interfaces[1].Gateway != "10.0.0.1") {
			t.Errorf("guest %s sw0 = %+v, want mac %s via 10.0.0.1", g.Name, g.Interfaces, w.macs)
		}
	}
}

// TestOriginalScalingProblems: what the original's scaling spelling gets
// wrong, or what this project does not do, is a problem at the right line.
func TestOriginalScalingProblems(t *testing.T) {
	head := []string{
		"machines:",
		"  - name: s",
		"    libvirt:",
		"      cpus: 1",
		"      memory_mb: 256",
		"      libvirt_type: {cloud_image: {name: cirros_0_6_2}}",
		"      scaling:",
		"        count: 3",
	}
	tail := []string{
		"network:",
		"  switches:",
		"    sw0: {subnet: 10.0.0.0/24}",
	}
	tests := []struct {
		name  string
		lines []string
		line  int
		field string
	}{
		{"clone out of range", []string{"        interfaces:", "          sw0: {clones: [0, 5], ip_type: {ip_range: {from: 10.0.0.10, to: 10.0.0.20}}}"}, 10, "machines[0].libvirt.scaling.interfaces.sw0.clones"},
		{"range too small", []string{"        interfaces:", "          sw0: {ip_type: {ip_range: {from: 10.0.0.10, to: 10.0.0.11}}}"}, 10, "machines[0].libvirt.scaling.interfaces.sw0.ip_type.ip_range"},
		{"bad ip_type", []string{"        interfaces:", "          sw0:", "            ip_type: static"}, 11, "machines[0].libvirt.scaling.interfaces.sw0.ip_type"},
		{"mac range too small", []string{"        interfaces:", "          sw0:", "            ip_type: {ip_range: {from: 10.0.0.10, to: 10.0.0.20}}", "            mac_range: {from: '02:00:00:00:00:01', to: '02:00:00:00:00:02'}"}, 12, "machines[0].libvirt.scaling.interfaces.sw0.mac_range"},
		{"clone_setup clone out of range", []string{"        clone_setup:", "          - {script: x.sh, clones: [3]}"}, 10, "machines[0].scaling.clone_setup[0].script"},
		{"clone_run without clones", []string{"        clone_run:", "          - script: x.sh"}, 10, "machines[0].scaling.clone_run[0].clones"},
		{"ip outside subnet", []string{"        interfaces:", "          sw0: {ip_type: {ip_range: {from: 10.0.1.10, to: 10.0.1.20}}}"}, 10, "machines[0].network[0].ip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := yamlLines(append(append(append([]string{}, head...), tt.lines...), tail...)...)
			_, err := Parse(DefaultFile, []byte(src))
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("Parse = %v, want problems", err)
			}
			for _, p := range verr.Problems {
				if p.Field == tt.field && p.Line == tt.line {
					return
				}
			}
			t.Errorf("problems = %v, want %s at line %d", verr.Problems, tt.field, tt.line)
		})
	}
}
