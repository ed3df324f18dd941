package topology

import (
	"errors"
	"strings"
	"testing"
)

// yamlLines joins its arguments as lines, so that line n of the document is
// argument n (counting from 1) and expected line numbers can be read off.
func yamlLines(lines ...string) string { return strings.Join(lines, "\n") + "\n" }

// sw0 is a network section to end documents with.
var sw0 = []string{
	"network:",
	"  switches:",
	"    sw0: {subnet: 10.0.0.0/24}",
}

func doc(lines ...string) string { return yamlLines(append(lines, sw0...)...) }

func parseProblems(t *testing.T, src string) []Problem {
	t.Helper()
	_, err := Parse("kvm-compose.yaml", []byte(src))
	if err == nil {
		return nil
	}
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("Parse error is %T, want *ValidationError: %v", err, err)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("errors.Is(err, ErrInvalid) = false for %v", err)
	}
	return verr.Problems
}

// problemCases each hold exactly one mistake. The fuzzer starts from them too.
var problemCases = []struct {
	name  string
	src   string
	line  int
	field string
	msg   string // substring of the message
}{
	{"unknown top-level field", doc(
		"machines:",
		"  - name: web",
		"colour: blue",
	), 3, "colour", "is not a known field (known: machines, network, testbed_options, timeline, tooling)"},
	{"unknown machine field", doc(
		"machines:",
		"  - name: web",
		"    nme: web2",
	), 3, "machines[0].nme", "is not a known field"},
	{"cpus not an integer", doc(
		"machines:",
		"  - name: vm",
		"    libvirt:",
		"      cpus: abc",
		"      memory_mb: 256",
		"      libvirt_type: {cloud_image: {url: 'https://example.org/a.img'}}",
	), 4, "machines[0].libvirt.cpus", `"abc" is not an integer`},
	{"cpus a list", doc(
		"machines:",
		"  - name: vm",
		"    libvirt:",
		"      cpus: [1]",
		"      memory_mb: 256",
		"      libvirt_type: {cloud_image: {url: 'https://example.org/a.img'}}",
	), 4, "machines[0].libvirt.cpus", "is a list, not an integer"},
	{"bool not a bool", doc(
		"machines:",
		"  - name: vm",
		"    libvirt:",
		"      cpus: 1",
		"      memory_mb: 256",
		"      libvirt_type:",
		"        existing_disk:",
		"          path: d.qcow2",
		"          driver_type: qcow2",
		"          create_deep_copy: maybe",
	), 10, "machines[0].libvirt.libvirt_type.existing_disk.create_deep_copy", `"maybe" is not a boolean`},
	{"name a mapping", doc(
		"machines:",
		"  - name: {first: web}",
	), 2, "machines[0].name", "is a mapping, not a string"},
	{"machines a mapping", doc(
		"machines:",
		"  web: {}",
	), 1, "machines", "is a mapping, not a list"},
	{"missing name", doc(
		"machines:",
		"  - network: [{switch: sw0, ip: 10.0.0.2}]",
	), 2, "machines[0].name", "is required"},
	{"bad name", doc(
		"machines:",
		"  - name: Web",
	), 2, "machines[0].name", `"Web" is not a valid name`},
	{"name with a dot", doc(
		"machines:",
		"  - name: a.b",
	), 2, "machines[0].name", "is not a valid name"},
	{"duplicate name", doc(
		"machines:",
		"  - name: web",
		"  - name: db",
		"  - name: web",
	), 4, "machines[2].name", "web is already the name of web (machines[0].name, line 2)"},
	{"duplicate name after scaling", doc(
		"machines:",
		"  - name: web",
		"    scaling: {count: 3}",
		"  - name: web-2",
	), 4, "machines[1].name", "web-2 is already the name of clone web-2"},
	{"ip outside subnet (the spec's example)", doc(
		"machines:",
		"  - name: web",
		"    network:",
		"      - switch: sw0",
		"        ip: 10.0.0.10",
		"        gateway: 10.0.0.1",
		"    netns:",
		"      setup_script: web-setup.sh",
		"  - name: client",
		"    network:",
		"      - switch: sw0",
		"        ip: 10.1.0.5",
	), 12, "machines[1].network[0].ip", "10.1.0.5 is outside switch sw0 subnet 10.0.0.0/24"},
	{"ip is the network address", doc(
		"machines:",
		"  - name: a",
		"    network: [{switch: sw0, ip: 10.0.0.0}]",
	), 3, "machines[0].network[0].ip", "10.0.0.0 is the network address of switch sw0 subnet 10.0.0.0/24"},
	{"ip is the broadcast address", doc(
		"machines:",
		"  - name: a",
		"    network: [{switch: sw0, ip: 10.0.0.255}]",
	), 3, "machines[0].network[0].ip", "is the broadcast address"},
	{"ip not an address", doc(
		"machines:",
		"  - name: a",
		"    network: [{switch: sw0, ip: 10.0.0.300}]",
	), 3, "machines[0].network[0].ip", "10.0.0.300 is not an IP address"},
	{"ip missing", doc(
		"machines:",
		"  - name: a",
		"    network:",
		"      - switch: sw0",
	), 4, "machines[0].network[0].ip", "is required"},
	{"duplicate ip", doc(
		"machines:",
		"  - name: a",
		"    network: [{switch: sw0, ip: 10.0.0.2}]",
		"  - name: b",
		"    network: [{switch: sw0, ip: 10.0.0.2}]",
	), 5, "machines[1].network[0].ip", "10.0.0.2 of b is already used by a (machines[0].network[0].ip, line 3)"},
	{"duplicate ip with a clone", doc(
		"machines:",
		"  - name: a",
		"    network: [{switch: sw0, ip: 10.0.0.2}]",
		"    scaling: {count: 3}",
		"  - name: b",
		"    network: [{switch: sw0, ip: 10.0.0.4}]",
	), 6, "machines[1].network[0].ip", "10.0.0.4 of b is already used by clone a-3"},
	{"malformed mac", doc(
		"machines:",
		"  - name: a",
		"    network:",
		"      - switch: sw0",
		"        ip: 10.0.0.2",
		"        mac: 02:00:00:00:00",
	), 6, "machines[0].network[0].mac", "is not a MAC address"},
	{"multicast mac", doc(
		"machines:",
		"  - name: a",
		"    network:",
		"      - {switch: sw0, ip: 10.0.0.2, mac: '01:00:5e:00:00:01'}",
	), 4, "machines[0].network[0].mac", "is a multicast address"},
	{"duplicate mac", doc(
		"machines:",
		"  - name: a",
		"    network: [{switch: sw0, ip: 10.0.0.2, mac: '02:00:00:00:00:aa'}]",
		"  - name: b",
		"    network: [{switch: sw0, ip: 10.0.0.3, mac: '02:00:00:00:00:AA'}]",
	), 5, "machines[1].network[0].mac", "02:00:00:00:00:aa is already used by a"},
	{"unknown switch", doc(
		"machines:",
		"  - name: a",
		"    network: [{switch: sw9, ip: 10.0.0.2}]",
	), 3, "machines[0].network[0].switch", "sw9 is not defined under network.switches"},
	{"switch missing", doc(
		"machines:",
		"  - name: a",
		"    network:",
		"      - ip: 10.0.0.2",
	), 4, "machines[0].network[0].switch", "is required"},
	{"bad cidr", yamlLines(
		"machines:",
		"  - name: a",
		"    network: [{switch: sw0, ip: 10.0.0.2}]",
		"network:",
		"  switches:",
		"    sw0: {subnet: 10.0.0.0/33}",
	), 6, "network.switches.sw0.subnet", "10.0.0.0/33 is not a CIDR subnet"},
	{"cidr with host bits", yamlLines(
		"machines:",
		"  - name: a",
		"network:",
		"  switches:",
		"    sw0:",
		"      subnet: 10.0.0.1/24",
	), 6, "network.switches.sw0.subnet", "has host bits set: the subnet is 10.0.0.0/24"},
	{"subnet missing", yamlLines(
		"machines:",
		"  - name: a",
		"network:",
		"  switches:",
		"    sw0: {}",
	), 5, "network.switches.sw0.subnet", "is required"},
	{"bad switch name", yamlLines(
		"machines:",
		"  - name: a",
		"network:",
		"  switches:",
		"    Sw/0: {subnet: 10.0.0.0/24}",
	), 5, "network.switches.Sw/0", "is not a valid switch name"},
	{"gateway outside subnet", doc(
		"machines:",
		"  - name: a",
		"    network:",
		"      - switch: sw0",
		"        ip: 10.0.0.2",
		"        gateway: 192.168.1.1",
	), 6, "machines[0].network[0].gateway", "192.168.1.1 is outside switch sw0 subnet"},
	{"gateway is own address", doc(
		"machines:",
		"  - name: a",
		"    network: [{switch: sw0, ip: 10.0.0.2, gateway: 10.0.0.2}]",
	), 3, "machines[0].network[0].gateway", "own address"},
	{"no machines", doc(
		"machines: []",
	), 1, "machines", "must list at least one machine"},
	{"machines missing", doc(), 0, "machines", "must list at least one machine"},
	{"empty file", "", 0, "machines", "must list at least one machine"},
	{"only comments", "# nothing\n", 0, "machines", "must list at least one machine"},
	{"libvirt cpus 0", doc(
		"machines:",
		"  - name: vm",
		"    libvirt:",
		"      cpus: 0",
		"      memory_mb: 256",
		"      libvirt_type: {iso_guest: {path: a.iso}}",
	), 4, "machines[0].libvirt.cpus", "0 must be at least 1"},
	{"libvirt memory 0", doc(
		"machines:",
		"  - name: vm",
		"    libvirt:",
		"      cpus: 1",
		"      memory_mb: 0",
		"      libvirt_type: {iso_guest: {path: a.iso}}",
	), 5, "machines[0].libvirt.memory_mb", "0 is below the minimum of 16 MiB"},
	{"libvirt memory missing", doc(
		"machines:",
		"  - name: vm",
		"    libvirt:",
		"      cpus: 1",
		"      libvirt_type: {iso_guest: {path: a.iso}}",
	), 3, "machines[0].libvirt.memory_mb", "is required"},
	{"libvirt without type", doc(
		"machines:",
		"  - name: vm",
		"    libvirt:",
		"      cpus: 1",
		"      memory_mb: 64",
	), 3, "machines[0].libvirt.libvirt_type", "must give one of existing_disk, iso_guest, cloud_image, kernel"},
	{"libvirt with two types", doc(
		"machines:",
		"  - name: vm",
		"    libvirt:",
		"      cpus: 1",
		"      memory_mb: 64",
		"      libvirt_type:",
		"        iso_guest: {path: a.iso}",
		"        kernel: {kernel: vmlinuz}",
	), 6, "machines[0].libvirt.libvirt_type", "gives iso_guest and kernel: give exactly one"},
	{"bad driver type", doc(
		"machines:",
		"  - name: vm",
		"    libvirt:",
		"      cpus: 1",
		"      memory_mb: 64",
		"      libvirt_type:",
		"        existing_disk: {path: d.img, driver_type: vmdk}",
	), 7, "machines[0].libvirt.libvirt_type.existing_disk.driver_type", `"vmdk" is not raw or qcow2`},
	{"scaled disk without deep copy", doc(
		"machines:",
		"  - name: vm",
		"    libvirt:",
		"      cpus: 1",
		"      memory_mb: 64",
		"      libvirt_type:",
		"        existing_disk: {path: d.img, driver_type: raw}",
		"    scaling: {count: 2}",
	), 7, "machines[0].libvirt.libvirt_type.existing_disk.create_deep_copy", "must be true for a scaled machine"},
	{"cloud image url", doc(
		"machines:",
		"  - name: vm",
		"    libvirt:",
		"      cpus: 1",
		"      memory_mb: 64",
		"      libvirt_type:",
		"        cloud_image:",
		"          url: ftp://example.org/x.img",
	), 8, "machines[0].libvirt.libvirt_type.cloud_image.url", "is not an http or https URL"},
	{"docker without image", doc(
		"machines:",
		"  - name: c",
		"    docker:",
		"      setup_script: s.sh",
	), 3, "machines[0].docker.image", "is required"},
	{"two kinds", doc(
		"machines:",
		"  - name: c",
		"    netns: {}",
		"    docker: {image: alpine}",
	), 2, "machines[0]", "has sections netns and docker"},
	{"scaling count 0", doc(
		"machines:",
		"  - name: a",
		"    scaling:",
		"      count: 0",
	), 4, "machines[0].scaling.count", "0 must be at least 1"},
	{"scaling too many", doc(
		"machines:",
		"  - name: a",
		"    scaling: {count: 100000}",
	), 3, "machines[0].scaling.count", "100000 is more than the 4096 guests allowed"},
	{"too many guests", doc(
		"machines:",
		"  - name: a",
		"    scaling: {count: 4000}",
		"  - name: b",
		"    scaling: {count: 97}",
	), 1, "machines", "make 4097 guests once scaled; at most 4096"},
	{"too many interfaces", yamlLines(
		"machines:",
		"  - name: a",
		"    network: &n [{switch: s, ip: 10.0.0.1}, {switch: s, ip: 10.1.0.1}, {switch: s, ip: 10.2.0.1}, {switch: s, ip: 10.3.0.1}, {switch: s, ip: 10.4.0.1}]",
		"    scaling: {count: 4000}",
		"network: {switches: {s: {subnet: 10.0.0.0/8}}}",
	), 1, "machines", "make 20000 interfaces once scaled; at most 16384"},
	{"scaled ips leave the subnet", doc(
		"machines:",
		"  - name: a",
		"    network: [{switch: sw0, ip: 10.0.0.250}]",
		"    scaling: {count: 6}",
	), 3, "machines[0].network[0].ip", "10.0.0.250 counts up to 10.0.0.255 for clone a-6, which is the broadcast address"},
	{"mac on a scaled machine", doc(
		"machines:",
		"  - name: a",
		"    network: [{switch: sw0, ip: 10.0.0.2, mac: '02:00:00:00:00:01'}]",
		"    scaling: {count: 2}",
	), 3, "machines[0].network[0].mac", "cannot be given on a scaled machine"},
	{"scaled name too long", doc(
		"machines:",
		"  - name: "+strings.Repeat("a", 62),
		"    scaling: {count: 10}",
	), 2, "machines[0].name", "is too long to scale"},
	{"bad load balancing", doc(
		"machines:",
		"  - name: a",
		"testbed_options:",
		"  load_balancing: random",
	), 4, "testbed_options.load_balancing", `"random" is not supported`},
	{"ovn and switches", yamlLines(
		"machines:",
		"  - name: a",
		"network:",
		"  switches: {}",
		"  ovn:",
		"    switches: {}",
	), 5, "network.ovn", "cannot be given together with network.switches"},
	{"unknown switch under ovn", yamlLines(
		"machines:",
		"  - name: a",
		"    network: [{switch: sw1, ip: 10.0.0.2}]",
		"network:",
		"  ovn:",
		"    switches:",
		"      sw0: {subnet: 10.0.0.0/24}",
	), 3, "machines[0].network[0].switch", "sw1 is not defined under network.ovn.switches"},
	{"duplicate key", doc(
		"machines:",
		"  - name: a",
		"    name: b",
	), 3, "machines[0].name", "is given twice (first on line 2)"},
	{"syntax error", yamlLines(
		"machines:",
		"  - name: a",
		"    network",
		"    netns: {}",
	), 3, "", "YAML syntax error: could not find expected ':'"},
	{"second document", yamlLines(
		"machines: [{name: a}]",
		"---",
		"machines: [{name: b}]",
	), 2, "", "second YAML document"},
	{"not a mapping", yamlLines(
		"# a list is not a topology",
		"- name: a",
	), 2, "", "the file must be a mapping with machines, network and testbed_options, not a list"},
	{"alias to nothing useful", doc(
		"base: &b {name: a}",
		"machines: [*b]",
	), 1, "base", "is not a known field"},
}

func TestParseProblems(t *testing.T) {
	for _, tt := range problemCases {
		t.Run(tt.name, func(t *testing.T) {
			ps := parseProblems(t, tt.src)
			if len(ps) != 1 {
				t.Fatalf("got %d problems, want 1:\n%s", len(ps), (&ValidationError{ps}).Error())
			}
			p := ps[0]
			if p.File != "kvm-compose.yaml" || p.Line != tt.line || p.Field != tt.field || !strings.Contains(p.Message, tt.msg) {
				t.Errorf("got  %s:%d: [%s] [%s]\nwant %s:%d: [%s] [...%s...]", p.File, p.Line, p.Field, p.Message, "kvm-compose.yaml", tt.line, tt.field, tt.msg)
			}
		})
	}
}

func TestProblemFormat(t *testing.T) {
	src := yamlLines(
		"machines:",
		"  - name: a",
		"    network: [{switch: sw0, ip: 10.1.0.5}]",
		"  - name: b",
		"    libvirt: {cpus: abc, memory_mb: 0, libvirt_type: {kernel: {kernel: k}}}",
		"network: {switches: {sw0: {subnet: 10.0.0.0/24}}}",
	)
	_, err := Parse("kvm-compose.yaml", []byte(src))
	want := "kvm-compose.yaml:3: machines[0].network[0].ip 10.1.0.5 is outside switch sw0 subnet 10.0.0.0/24\n" +
		"kvm-compose.yaml:5: machines[1].libvirt.cpus \"abc\" is not an integer\n" +
		"kvm-compose.yaml:5: machines[1].libvirt.memory_mb 0 is below the minimum of 16 MiB"
	if err == nil || err.Error() != want {
		t.Fatalf("error:\n%v\nwant:\n%s", err, want)
	}
}

func TestProblemsSortedAndAllReported(t *testing.T) {
	src := yamlLines(
		"machines:",
		"  - name: B",
		"    network: [{switch: nope, ip: x}]",
		"  - name: ok",
		"    bogus: 1",
		"network: {switches: {sw0: {subnet: 300.0.0.0/8}}}",
	)
	ps := parseProblems(t, src)
	var got []string
	for _, p := range ps {
		got = append(got, p.Field)
	}
	want := []string{
		"machines[0].name",
		"machines[0].network[0].ip",
		"machines[0].network[0].switch",
		"machines[1].bogus",
		"network.switches.sw0.subnet",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("fields = %v, want %v", got, want)
	}
	for i := 1; i < len(ps); i++ {
		if ps[i].Line < ps[i-1].Line {
			t.Errorf("problems not sorted by line: %v", ps)
		}
	}
}

func TestParseAccepts(t *testing.T) {
	tests := []struct {
		name string
		src  string
	}{
		{"quickstart-like", doc(
			"machines:",
			"  - name: web",
			"    network:",
			"      - switch: sw0",
			"        ip: 10.0.0.10",
			"        mac: \"02:00:00:00:00:10\"",
			"        gateway: 10.0.0.1",
			"    netns:",
			"      setup_script: web-setup.sh",
			"  - name: idle",
		)},
		{"netns section empty", doc(
			"machines:",
			"  - name: web",
			"    netns:",
		)},
		{"unused switch", yamlLines(
			"machines: [{name: a, network: [{switch: sw0, ip: 10.0.0.2}]}]",
			"network: {switches: {sw0: {subnet: 10.0.0.0/24}, spare: {subnet: 10.9.0.0/16}}}",
		)},
		{"ipv6", yamlLines(
			"machines: [{name: a, network: [{switch: v6, ip: 'fd00::10'}]}]",
			"network: {switches: {v6: {subnet: 'fd00::/64'}}}",
		)},
		{"anchors and merge keys", yamlLines(
			"machines:",
			"  - &vm",
			"    name: vm1",
			"    network: [{switch: sw0, ip: 10.0.0.2}]",
			"    libvirt: &lv {cpus: 2, memory_mb: 512, libvirt_type: {cloud_image: {url: 'https://e.org/x.img'}}}",
			"  - <<: *vm",
			"    name: vm2",
			"    network: [{switch: sw0, ip: 10.0.0.3}]",
			"network: {switches: {sw0: {subnet: 10.0.0.0/24}}}",
		)},
		{"point-to-point /31", yamlLines(
			"machines: [{name: a, network: [{switch: p, ip: 10.9.0.0}]}, {name: b, network: [{switch: p, ip: 10.9.0.1}]}]",
			"network: {switches: {p: {subnet: 10.9.0.0/31}}}",
		)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if ps := parseProblems(t, tt.src); len(ps) > 0 {
				t.Fatalf("unexpected problems:\n%s", (&ValidationError{ps}).Error())
			}
		})
	}
}

func TestSelfMergeDoesNotLoop(t *testing.T) {
	src := "machines:\n  - &m\n    name: a\n    <<: *m\n"
	_, _ = Parse("", []byte(src)) // must return
}
