package topology

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/testbedos/testbedos/internal/labgen"
)

// originalLabs are labs written in the original TestbedOS's spellings, one
// per shape its schema accepts. Each must generate a state here unchanged.
var originalLabs = []struct {
	name  string
	yaml  string
	files map[string]string
}{
	{
		// Two routers chained over a middle switch; the first serves DHCP
		// and translates to the provider network; static routes reach the
		// far switch through the second router.
		name: "chained-routers",
		yaml: `machines:
  - name: web
    network:
      - switch: lan
        gateway: 10.8.0.1
        mac: "00:00:00:00:10:01"
        ip: dynamic
    docker:
      image: alpine:edge
      command: "sh -c 'echo \"ready now\"; sleep 3600'"
      entrypoint: "/bin/sh -e"
  - name: far
    network:
      - switch: far
        gateway: 10.8.2.1
        mac: "00:00:00:00:10:02"
        ip: "10.8.2.10"
    docker:
      image: alpine:edge
` + labgen.ChainedRouters{Net: "10.8", MAC: "aa", PublicIP: "172.16.1.210", PublicPort: "public-port"}.YAML(),
	},
	{
		// Routes to subnets the router is attached to, an ACL on a switch,
		// and a NIC naming its provider network.
		name: "acl-connected-routes",
		yaml: `machines:
  - name: alpha
    network:
      - {switch: front, gateway: 10.9.0.1, mac: "00:00:00:00:20:01", ip: "10.9.0.11", network_name: public}
    docker: {image: alpine:edge}
  - name: beta
    network:
      - {switch: front, gateway: 10.9.0.1, mac: "00:00:00:00:20:02", ip: "10.9.0.12"}
    docker: {image: alpine:edge}
network:
  ovn:
    switches:
      front: {subnet: "10.9.0.0/24"}
      back: {subnet: "10.9.1.0/24"}
    routers:
      gw:
        ports:
          - {name: gw-front, mac: "00:00:00:00:bb:01", gateway_ip: "10.9.0.1/24", switch: front}
          - {name: gw-back, mac: "00:00:00:00:bb:02", gateway_ip: "10.9.1.1/24", switch: back}
        static_routes:
          - {prefix: "10.9.0.0/24", nexthop: "10.9.0.1"}
          - {prefix: "10.9.1.0/24", nexthop: "10.9.1.1"}
    acl:
      apply_deny_all: false
      switches:
        front:
          - {direction: to-lport, priority: 1001, match: "ip", action: drop}
          - {direction: to-lport, priority: 1002, match: "ip4 && ip4.src == 10.9.0.11 && ip4.dst == 10.9.0.12", action: allow-related}
          - {direction: from-lport, priority: 1003, match: "ip4.src == 10.9.0.12", action: reject}
tooling: {}
testbed_options:
  load_balancing: NaiveRoundRobin
`,
	},
	{
		// A router whose default route and NAT address lie on a provider
		// switch it has no port on, and clones that get a switch each.
		name: "clones-unreachable",
		yaml: `machines:
  - name: node
    libvirt:
      cpus: 1
      memory_mb: 256
      username: lab
      password: lab
      libvirt_type:
        cloud_image:
          name: ubuntu_22_04
          expand_gigabytes: 3
          context: ./share
      scaling:
        count: 2
        shared_setup: shared.sh
        clone_setup:
          - {script: each.sh, clones: [0, 1]}
        clone_run:
          - {script: each.sh, clones: [1]}
        interfaces:
          red:
            clones: [0]
            gateway: "10.10.0.1"
            ip_type: dynamic
            mac_range: {from: "00:00:00:00:30:01", to: "00:00:00:00:30:01"}
          blue:
            clones: [1]
            gateway: "10.10.1.1"
            ip_type:
              ip_range: {from: "10.10.1.20", to: "10.10.1.20"}
            mac_range: {from: "00:00:00:00:30:02", to: "00:00:00:00:30:02"}
network:
  ovn:
    switches:
      red: {subnet: "10.10.0.0/24"}
      blue: {subnet: "10.10.1.0/24"}
      public:
        subnet: "172.16.1.0/24"
        ports:
          - {name: pub, localnet: {network_name: public}}
    routers:
      core:
        ports:
          - {name: core-red, mac: "00:00:00:00:cc:01", gateway_ip: "10.10.0.1/24", switch: red}
          - {name: core-blue, mac: "00:00:00:00:cc:02", gateway_ip: "10.10.1.1/24", switch: blue}
        static_routes:
          - {prefix: "0.0.0.0/0", nexthop: "172.16.1.1"}
        nat:
          - {nat_type: snat, external_ip: "172.16.1.220", logical_ip: "10.10.0.0/16"}
        dhcp:
          - switch: red
            exclude_ips: {from: "10.10.0.1", to: "10.10.0.9"}
`,
		files: map[string]string{"shared.sh": "#!/bin/sh\n", "each.sh": "#!/bin/sh\n", "share/note.txt": "hi\n"},
	},
	{
		// A VM with the documented cloud-image setup, a serial console port
		// and a static address; switch ports of every kind.
		name: "vm-setup-and-ports",
		yaml: `machines:
  - name: vm
    network:
      switch: lan
      gateway: 10.11.0.1
      mac: "00:00:00:00:40:01"
      ip: "10.11.0.10"
    libvirt:
      cpus: 2
      memory_mb: 512
      username: student
      password: secret
      static_ip: 10.11.0.10
      tcp_tty_port: 4555
      libvirt_type:
        cloud_image:
          name: ubuntu_20_04
          expand_gigabytes: 5
          setup_script: ./setup.sh
          run_script: ./run.sh
          context: ./ctx
          environment:
            ROLE: server
            PORT: "8080"
network:
  ovn:
    switches:
      lan:
        subnet: "10.11.0.0/24"
        ports:
          - name: lan-probe
            chassis: main
            internal: {ip: "10.11.0.250", mac: "00:00:00:00:40:fe"}
          - name: lan-rtr
            router: {router_port: r-lan, mac: "00:00:00:00:dd:01"}
    routers:
      r:
        ports:
          - {name: r-lan, mac: "00:00:00:00:dd:01", gateway_ip: "10.11.0.1/24", switch: lan}
`,
		files: map[string]string{"setup.sh": "#!/bin/sh\n", "run.sh": "#!/bin/sh\n", "ctx/a.txt": "a\n"},
	},
	{
		// Disks the original takes from the host's image folder, with its
		// defaults (driver raw, device disk).
		name: "image-folder-disks",
		yaml: `machines:
  - name: disk
    network:
      - {switch: lan, mac: "00:00:00:00:50:01", ip: "10.12.0.10"}
    libvirt:
      cpus: 1
      memory_mb: 256
      libvirt_type:
        existing_disk:
          path: ${IMAGES}/appliance.img
  - name: deep
    network:
      - {switch: lan, mac: "00:00:00:00:50:02", ip: "10.12.0.11"}
    libvirt:
      cpus: 1
      memory_mb: 256
      libvirt_type:
        existing_disk:
          path: ${IMAGES}/appliance.qcow2
          driver_type: qcow2
          device_type: disk
          readonly: false
          create_deep_copy: true
  - name: live
    network:
      - {switch: lan, mac: "00:00:00:00:50:03", ip: "10.12.0.12"}
    libvirt:
      cpus: 1
      memory_mb: 256
      libvirt_type:
        iso_guest:
          path: ${IMAGES}/live.iso
          expand_gigabytes: 2
          device_type: cdrom
          readonly: true
network:
  ovn:
    switches:
      lan: {subnet: "10.12.0.0/24"}
`,
	},
	{
		// A disk from libvirt's folder with fields the original ignores
		// there, and a dynamic address on a switch no router serves DHCP
		// on (the original accepts it; the interface gets no address).
		name: "disk-ignored-fields",
		yaml: `machines:
  - name: emu
    network:
      - {switch: lan, gateway: 10.15.0.1, mac: "00:00:00:00:80:01", ip: "dynamic"}
    libvirt:
      cpus: 1
      memory_mb: 512
      extended_graphics_support: true
      libvirt_type:
        existing_disk:
          path: ${IMAGES}/appliance.qcow2
          driver_type: qcow2
          device_type: disk
          readonly: false
          run_script: ./run.sh
          context: ./ctx/
network:
  ovn:
    switches:
      lan: {subnet: "10.15.0.0/24"}
    routers:
      gw:
        ports:
          - {name: gw-lan, mac: "00:00:00:00:ff:15", gateway_ip: "10.15.0.1/24", switch: lan}
`,
	},
	{
		// Docker clones on a switch each, volumes from ${PWD}.
		name: "docker-clones",
		yaml: `machines:
  - name: webs
    docker:
      image: nginx:stable
      env_file: web.env
      environment: {A: B}
      volumes:
        - {source: "${PWD}/html", target: /usr/share/nginx/html}
      scaling:
        count: 3
        interfaces:
          one:
            clones: [0, 2]
            gateway: "10.13.0.1"
            ip_type: {ip_range: {from: "10.13.0.20", to: "10.13.0.22"}}
            mac_range: {from: "00:00:00:00:60:01", to: "00:00:00:00:60:03"}
          two:
            clones: [1]
            gateway: "10.13.1.1"
            ip_type: {ip_range: {from: "10.13.1.20", to: "10.13.1.20"}}
            mac_range: {from: "00:00:00:00:60:11", to: "00:00:00:00:60:11"}
network:
  ovn:
    switches:
      one: {subnet: "10.13.0.0/24"}
      two: {subnet: "10.13.1.0/24"}
`,
		files: map[string]string{"web.env": "X=1\n", "html/index.html": "hi\n"},
	},
}

// writeLab writes a lab into a fresh project folder.
func writeLab(t *testing.T, yaml string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, DefaultFile), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestOriginalLabsGenerate(t *testing.T) {
	images := t.TempDir()
	for _, f := range []string{"appliance.img", "appliance.qcow2", "live.iso"} {
		if err := os.WriteFile(filepath.Join(images, f), []byte("disk"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, lab := range originalLabs {
		t.Run(lab.name, func(t *testing.T) {
			dir := writeLab(t, strings.ReplaceAll(lab.yaml, "${IMAGES}", images), lab.files)
			st, err := Generate(Options{Deployment: "orig", ProjectDir: dir, ImageDirs: []string{images}})
			if err != nil {
				t.Fatalf("%v", err)
			}
			// up checks the state again, with the same image folders.
			if err := CheckState(st, "orig", st.Project, images); err != nil {
				t.Errorf("CheckState: %v", err)
			}
		})
	}
}

// TestOriginalUnusableAccepted: what the original accepted but cannot work
// (a next hop no port reaches, a NAT address on no attached switch, a route
// to a connected subnet) generates, is marked unused in the state, and is
// explained once, naming file, line and field.
func TestOriginalUnusableAccepted(t *testing.T) {
	find := func(name string) string {
		for _, l := range originalLabs {
			if l.name == name {
				return l.yaml
			}
		}
		t.Fatalf("no lab %s", name)
		return ""
	}
	for _, tc := range []struct {
		lab    string
		routes []string // Unused of each static route, "" for installed
		nat    []string
		notes  []string
	}{
		{"clones-unreachable",
			[]string{"route 0.0.0.0/0 via 172.16.1.1: no port of core reaches it; traffic to it is dropped"},
			[]string{"snat 10.10.0.0/16 → 172.16.1.220: no port of core is on a switch holding 172.16.1.220"},
			[]string{
				"kvm-compose.yaml:47: network.ovn.routers.core.static_routes[0]: route 0.0.0.0/0 via 172.16.1.1: no port of core reaches it",
				"kvm-compose.yaml:49: network.ovn.routers.core.nat[0]: snat 10.10.0.0/16 → 172.16.1.220",
			}},
		{"acl-connected-routes",
			[]string{
				"route 10.9.0.0/24 via 10.9.0.1: gw is attached to 10.9.0.0/24 (port gw-front), whose connected route wins; this route is not installed",
				"route 10.9.1.0/24 via 10.9.1.1: gw is attached to 10.9.1.0/24 (port gw-back)",
			}, nil,
			[]string{"kvm-compose.yaml:21: network.ovn.routers.gw.static_routes[0]: route 10.9.0.0/24", "kvm-compose.yaml:22: network.ovn.routers.gw.static_routes[1]: route 10.9.1.0/24"}},
		{"chained-routers", []string{"", ""}, []string{""}, nil},
	} {
		t.Run(tc.lab, func(t *testing.T) {
			dir := writeLab(t, find(tc.lab), map[string]string{"shared.sh": "", "each.sh": "", "share/x": ""})
			st, err := Generate(Options{Deployment: "orig", ProjectDir: dir})
			if err != nil {
				t.Fatal(err)
			}
			r := st.Routers[0]
			if len(r.StaticRoutes) != len(tc.routes) {
				t.Fatalf("routes %+v", r.StaticRoutes)
			}
			for i, want := range tc.routes {
				if got := r.StaticRoutes[i].Unused; want == "" && got != "" || !strings.HasPrefix(got, want) {
					t.Errorf("route %d unused %q, want %q", i, got, want)
				}
			}
			for i, want := range tc.nat {
				if got := r.NAT[i].Unused; want == "" && got != "" || !strings.HasPrefix(got, want) {
					t.Errorf("nat %d unused %q, want %q", i, got, want)
				}
			}
			var routerNotes []string
			for _, n := range st.Notes {
				if strings.Contains(n, "network.ovn.routers.") {
					routerNotes = append(routerNotes, n)
				}
			}
			if len(routerNotes) != len(tc.notes) {
				t.Fatalf("notes %q, want %d on routers", st.Notes, len(tc.notes))
			}
			for i, want := range tc.notes {
				if !strings.HasPrefix(routerNotes[i], want) {
					t.Errorf("note %q, want it to start %q", routerNotes[i], want)
				}
			}
		})
	}
}

// TestCloneInterfacesOnSomeClones: the original's scaled interfaces give a
// switch to the listed clones only, counting addresses and MACs among them.
func TestCloneInterfacesOnSomeClones(t *testing.T) {
	var lab string
	for _, l := range originalLabs {
		if l.name == "docker-clones" {
			lab = l.yaml
		}
	}
	dir := writeLab(t, lab, map[string]string{"web.env": "X=1\n", "html/index.html": "hi\n"})
	st, err := Generate(Options{Deployment: "orig", ProjectDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"webs-1": {"one 10.13.0.20/24 00:00:00:00:60:01 eth0"},
		"webs-2": {"two 10.13.1.20/24 00:00:00:00:60:11 eth0"},
		"webs-3": {"one 10.13.0.21/24 00:00:00:00:60:02 eth0"},
	}
	for _, g := range st.Guests {
		var got []string
		for _, ifc := range g.Interfaces {
			got = append(got, strings.Join([]string{ifc.Switch, ifc.Address, ifc.MAC, ifc.Name}, " "))
		}
		if strings.Join(got, ";") != strings.Join(want[g.Name], ";") {
			t.Errorf("%s: %q, want %q", g.Name, got, want[g.Name])
		}
	}
}

// TestDockerCommandAsOneString: the original's docker command and
// entrypoint are one string each, split as a shell would, with no shell run.
func TestDockerCommandAsOneString(t *testing.T) {
	dir := writeLab(t, originalLabs[0].yaml, nil)
	st, err := Generate(Options{Deployment: "orig", ProjectDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	d := st.Guests[0].Docker
	if got, want := strings.Join(d.Command, "|"), `sh|-c|echo "ready now"; sleep 3600`; got != want {
		t.Errorf("command %q, want %q", got, want)
	}
	if got, want := strings.Join(d.Entrypoint, "|"), "/bin/sh|-e"; got != want {
		t.Errorf("entrypoint %q, want %q", got, want)
	}
}

// TestOriginalFieldsNotActedOnAreNoted: a field accepted for the original's
// sake that no driver acts on yet is said once in the log, with its line.
func TestOriginalFieldsNotActedOnAreNoted(t *testing.T) {
	var lab string
	for _, l := range originalLabs {
		if l.name == "vm-setup-and-ports" {
			lab = l.yaml
		}
	}
	dir := writeLab(t, lab, map[string]string{"setup.sh": "", "run.sh": "", "ctx/a.txt": ""})
	st, err := Generate(Options{Deployment: "orig", ProjectDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	notes := strings.Join(st.Notes, "\n")
	for _, want := range []string{
		"kvm-compose.yaml:31: network.ovn.switches.lan.ports[0]: internal port lan-probe of switch lan",
	} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
	// The libvirt driver acts on the cloud-image user, console port and
	// scripts: no note says otherwise.
	for _, field := range []string{"libvirt.tcp_tty_port", "libvirt.username", "cloud_image.run_script", "cloud_image.environment", "cloud_image.context"} {
		if strings.Contains(notes, field+": accepted") {
			t.Errorf("notes still call %s unused:\n%s", field, notes)
		}
	}
	if strings.Contains(notes, "lan-rtr") {
		t.Errorf("a router port naming the router's own port needs no note:\n%s", notes)
	}
	g := st.Guests[0]
	if g.Libvirt.TCPTTYPort != 4555 || g.Libvirt.Username != "student" || g.Libvirt.Environment["ROLE"] != "server" || !strings.HasSuffix(g.SetupScript, "/setup.sh") || !strings.HasSuffix(g.Libvirt.RunScript, "/run.sh") || !strings.HasSuffix(g.Libvirt.Context, "/ctx") {
		t.Errorf("libvirt spec %+v, setup %s", g.Libvirt, g.SetupScript)
	}
}

// TestTwoGatewaysOneRoute: the original accepts a gateway on two NICs of
// one machine; the guest gets the first as its default route, and the log
// says the second is not installed.
func TestTwoGatewaysOneRoute(t *testing.T) {
	dir := writeLab(t, `machines:
  - name: two
    network:
      - {switch: sw0, gateway: 10.14.0.1, mac: "00:00:00:00:70:01", ip: "10.14.0.10"}
      - {switch: sw0, gateway: 10.14.0.1, mac: "00:00:00:00:70:02", ip: "10.14.0.11"}
    docker: {image: alpine:edge}
network:
  ovn:
    switches:
      sw0: {subnet: "10.14.0.0/24"}
`, nil)
	st, err := Generate(Options{Deployment: "orig", ProjectDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ifc := st.Guests[0].Interfaces
	if ifc[0].Gateway != "10.14.0.1" || ifc[1].Gateway != "" {
		t.Errorf("gateways %q %q, want the first only", ifc[0].Gateway, ifc[1].Gateway)
	}
	if len(st.Notes) != 1 || !strings.HasPrefix(st.Notes[0], "kvm-compose.yaml:5: machines[0].network[1].gateway: 10.14.0.1 is a second default route of two") {
		t.Errorf("notes %q", st.Notes)
	}
}

// TestImageFolderPaths: a disk outside the project is taken only under an
// allowed image folder, symlinks followed, and a state naming one outside
// them is refused at up.
func TestImageFolderPaths(t *testing.T) {
	images, elsewhere := t.TempDir(), t.TempDir()
	for _, p := range []string{filepath.Join(images, "ok.img"), filepath.Join(elsewhere, "no.img")} {
		if err := os.WriteFile(p, []byte("disk"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(elsewhere, "no.img"), filepath.Join(images, "link.img")); err != nil {
		t.Fatal(err)
	}
	lab := func(path string) string {
		return "machines:\n  - name: vm\n    libvirt:\n      cpus: 1\n      memory_mb: 64\n      libvirt_type:\n        existing_disk: {path: " + path + "}\n"
	}
	for _, tc := range []struct{ path, err string }{
		{filepath.Join(images, "ok.img"), ""},
		{filepath.Join(elsewhere, "no.img"), "is outside the project folder"},
		{filepath.Join(images, "link.img"), "leads through a symlink"},
		{filepath.Join(images, "missing.img"), "does not exist in the image folder"},
	} {
		dir := writeLab(t, lab(tc.path), nil)
		st, err := Generate(Options{Deployment: "orig", ProjectDir: dir, ImageDirs: []string{images}})
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.path, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: %v, want %q", tc.path, err, tc.err)
		case tc.err == "":
			if st.Guests[0].Libvirt.DiskFormat != DiskRaw {
				t.Errorf("driver_type defaults to %q, want raw", st.Guests[0].Libvirt.DiskFormat)
			}
			if err := CheckState(st, "orig", st.Project); err == nil || !strings.Contains(err.Error(), "nor under an image folder") {
				t.Errorf("CheckState without the image folder: %v", err)
			}
		}
	}
}

// TestOriginalIgnoredFieldsAndDynamicWithoutDHCP: fields the original
// ignores are ignored and noted; a dynamic address on a switch without
// DHCP (original spelling) gets no address instead of a refusal.
func TestOriginalIgnoredFieldsAndDynamicWithoutDHCP(t *testing.T) {
	images := t.TempDir()
	if err := os.WriteFile(filepath.Join(images, "appliance.qcow2"), []byte("disk"), 0o644); err != nil {
		t.Fatal(err)
	}
	var lab string
	for _, l := range originalLabs {
		if l.name == "disk-ignored-fields" {
			lab = strings.ReplaceAll(l.yaml, "${IMAGES}", images)
		}
	}
	st, err := Generate(Options{Deployment: "orig", ProjectDir: writeLab(t, lab, nil), ImageDirs: []string{images}})
	if err != nil {
		t.Fatal(err)
	}
	if ifc := st.Guests[0].Interfaces[0]; ifc.Dynamic || ifc.Address != "" {
		t.Errorf("interface %+v, want neither lease nor address", ifc)
	}
	notes := strings.Join(st.Notes, "\n")
	for _, want := range []string{
		"kvm-compose.yaml:4: machines[0].network[0].ip: is dynamic, but no router serves DHCP on switch lan: the interface gets no address",
		"machines[0].libvirt.extended_graphics_support: is ignored",
		"machines[0].libvirt.libvirt_type.existing_disk.run_script: is ignored",
	} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
}
