package graph

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/topology"
)

func lab() *topology.State {
	return &topology.State{
		Deployment: "lab",
		Switches:   []topology.Switch{{Name: "sw0", Subnet: "10.0.0.0/24"}, {Name: "sw1", Subnet: "10.0.1.0/24"}},
		Routers: []topology.Router{{Name: "r1", Host: "main", Ports: []topology.RouterPort{
			{Name: "r1-sw0", Switch: "sw0", Address: "10.0.0.1/24"}, {Name: "r1-sw1", Switch: "sw1", Address: "10.0.1.1/24"}}}},
		Guests: []topology.Guest{
			{Name: "web", Kind: "netns", Host: "main", Netns: &topology.NetnsGuest{Namespace: "tbos.lab.web"},
				Interfaces: []topology.Interface{{Name: "eth0", Switch: "sw0", Address: "10.0.0.10/24"}}},
			{Name: "vm1", Kind: "libvirt", Host: "h2", Libvirt: &topology.LibvirtSpec{},
				Interfaces: []topology.Interface{{Name: "eth0", Switch: "sw1", Dynamic: true}}},
			{Name: "c1", Kind: "docker", Host: "main", Docker: &topology.DockerSpec{Container: "tbos-lab-c1"},
				Interfaces: []topology.Interface{{Name: "eth0", Switch: "sw1", Address: "10.0.1.20/24"}}},
		},
	}
}

func TestGraphFormats(t *testing.T) {
	g := Build(lab())
	if len(g.Nodes) != 6 || len(g.Edges) != 5 {
		t.Fatalf("%d nodes, %d edges; want 6 and 5", len(g.Nodes), len(g.Edges))
	}
	dot := string(DOT(g))
	for _, want := range []string{`graph "lab" {`, `"guest:web" -- "switch:sw0" [label="eth0 10.0.0.10/24"]`, `"guest:vm1" -- "switch:sw1" [label="eth0 dynamic"]`, `shape=diamond`} {
		if !strings.Contains(dot, want) {
			t.Errorf("dot lacks %q:\n%s", want, dot)
		}
	}
	if m := string(Mermaid(g)); !strings.HasPrefix(m, "graph TD\n") || !strings.Contains(m, `n0["sw0 10.0.0.0/24"]`) {
		t.Errorf("mermaid:\n%s", m)
	}
	if got := dotID(`a"b\c` + "\n"); got != `"a\"b\\c "` {
		t.Errorf("dotID = %s", got)
	}
}

func TestInventory(t *testing.T) {
	live := []api.Guest{{Name: "vm1", Interfaces: []api.GuestInterface{{Name: "eth0", IP: "10.0.1.50/24", Leased: true}}}}
	inv := BuildInventory(lab(), live, VMLogin{User: "root", Key: "/p/artefacts/ssh/id_ed25519"})
	data, err := Ansible(inv)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		All struct {
			Children map[string]struct {
				Hosts map[string]map[string]any `yaml:"hosts"`
			} `yaml:"children"`
		} `yaml:"all"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	vm := doc.All.Children["libvirt"].Hosts["vm1"]
	if vm["ansible_host"] != "10.0.1.50" || vm["ansible_user"] != "root" || vm["ansible_ssh_private_key_file"] != "/p/artefacts/ssh/id_ed25519" {
		t.Errorf("vm1: %v", vm)
	}
	if c := doc.All.Children["docker"].Hosts["c1"]; c["ansible_connection"] != "community.docker.docker" || c["ansible_host"] != "tbos-lab-c1" {
		t.Errorf("c1: %v", c)
	}
	if w := doc.All.Children["netns"].Hosts["web"]; w["ansible_host"] != "10.0.0.10" || w["testbedos_netns"] != "tbos.lab.web" {
		t.Errorf("web: %v", w)
	}
	if h := string(Hosts(inv)); !strings.Contains(h, "10.0.1.50\tvm1.lab.tbos vm1\n") {
		t.Errorf("hosts:\n%s", h)
	}
	if s := string(SSHConfig(inv)); !strings.Contains(s, "Host vm1 vm1.lab.tbos\n  HostName 10.0.1.50\n  User root\n  IdentityFile /p/artefacts/ssh/id_ed25519\n") {
		t.Errorf("ssh-config:\n%s", s)
	}
}
