package topology

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var fixedNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestGenerateQuickstart(t *testing.T) {
	project, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	st, err := Generate(Options{
		Deployment: "quickstart",
		ProjectDir: "testdata",
		File:       "quickstart.yaml",
		Hosts:      []Host{{Name: "main", Main: true}, {Name: "c1"}},
		Now:        func() time.Time { return fixedNow },
	})
	if err != nil {
		t.Fatal(err)
	}
	// The names are pinned: if they change, a down after an upgrade no
	// longer finds what an up before it made.
	bridge := "tbed4f0bcaed27"
	want := &State{
		Version:     StateVersion,
		Deployment:  "quickstart",
		Project:     project,
		Source:      filepath.Join(project, "quickstart.yaml"),
		GeneratedAt: fixedNow,
		Prefix:      "tbed4f0",
		Hosts:       []Host{{Name: "main", Main: true}, {Name: "c1"}},
		Switches:    []Switch{{Name: "sw0", Subnet: "10.0.0.0/24", Bridge: bridge, Tunnel: "tbed4f0xcaed27", Hosts: []string{"c1", "main"}}},
		Guests: []Guest{
			{
				Name: "web", Kind: KindNetns, Host: "main",
				Interfaces:  []Interface{{Switch: "sw0", Bridge: bridge, Name: "eth0", HostName: "tbed4f0vb9307b7", Address: "10.0.0.10/24", MAC: "02:b9:30:7b:7c:b0", MTU: TunnelMTU}},
				SetupScript: filepath.Join(project, "web-setup.sh"),
				Netns:       &NetnsGuest{Namespace: "tbos.quickstart.web"},
			},
			{
				Name: "client1", Kind: KindNetns, Host: "c1",
				Interfaces: []Interface{{Switch: "sw0", Bridge: bridge, Name: "eth0", HostName: "tbed4f0v8d9f5ad", Address: "10.0.0.21/24", MAC: "02:8d:9f:5a:d3:1e", MTU: TunnelMTU}},
				Netns:      &NetnsGuest{Namespace: "tbos.quickstart.client1"},
			},
			{
				Name: "client2", Kind: KindNetns, Host: "main",
				Interfaces: []Interface{{Switch: "sw0", Bridge: bridge, Name: "eth0", HostName: "tbed4f0v86e151a", Address: "10.0.0.22/24", MAC: "02:86:e1:51:a7:1a", MTU: TunnelMTU}},
				Netns:      &NetnsGuest{Namespace: "tbos.quickstart.client2"},
			},
		},
	}
	if !reflect.DeepEqual(st, want) {
		t.Errorf("state:\n%+v\nwant:\n%+v", st, want)
	}
}

// writeProject makes a project folder holding kvm-compose.yaml and files.
func writeProject(t *testing.T, yaml string, files ...string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, DefaultFile), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestGenerateScalingAndPlacement(t *testing.T) {
	dir := writeProject(t, yamlLines(
		"machines:",
		"  - name: web",
		"    network:",
		"      - {switch: sw0, ip: 10.0.0.10, gateway: 10.0.0.1}",
		"      - {switch: sw1, ip: 10.1.0.10}",
		"    netns: {setup_script: scripts/web.sh}",
		"    scaling: {count: 3}",
		"  - name: db",
		"    host: c2",
		"    network: [{switch: sw0, ip: 10.0.0.5, mac: '02:AA:bb:cc:dd:ee'}]",
		"  - name: vm",
		"    libvirt:",
		"      cpus: 2",
		"      memory_mb: 512",
		"      libvirt_type: {existing_disk: {path: disk.qcow2, driver_type: qcow2}}",
		"  - name: box",
		"    docker: {image: alpine:3}",
		"network:",
		"  ovn:",
		"    switches:",
		"      sw0: {subnet: 10.0.0.0/24}",
		"      sw1: {subnet: 10.1.0.0/16}",
	), "scripts/web.sh", "disk.qcow2")
	st, err := Generate(Options{
		Deployment: "lab",
		ProjectDir: dir,
		Hosts:      []Host{{Name: "main", Main: true}, {Name: "c1"}, {Name: "c2"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ name, kind, host, addrs string }
	var got []row
	macs := map[string]bool{}
	for _, g := range st.Guests {
		var addrs []string
		for _, ifc := range g.Interfaces {
			addrs = append(addrs, ifc.Name+"="+ifc.Address)
			if macs[ifc.MAC] {
				t.Errorf("MAC %s given twice", ifc.MAC)
			}
			macs[ifc.MAC] = true
			if len(ifc.HostName) > 15 || len(ifc.Bridge) > 15 {
				t.Errorf("kernel name too long: %q %q", ifc.HostName, ifc.Bridge)
			}
		}
		got = append(got, row{g.Name, g.Kind, g.Host, strings.Join(addrs, " ")})
	}
	want := []row{
		{"web-1", KindNetns, "main", "eth0=10.0.0.10/24 eth1=10.1.0.10/16"},
		{"web-2", KindNetns, "c1", "eth0=10.0.0.11/24 eth1=10.1.0.11/16"},
		{"web-3", KindNetns, "c2", "eth0=10.0.0.12/24 eth1=10.1.0.12/16"},
		{"db", KindNetns, "c2", "eth0=10.0.0.5/24"},
		{"vm", KindLibvirt, "main", ""},
		{"box", KindDocker, "c1", ""},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("guests:\n%v\nwant:\n%v", got, want)
	}
	web2 := st.Guests[1]
	if web2.Clone != 2 || web2.Interfaces[0].Gateway != "10.0.0.1" || web2.SetupScript != filepath.Join(realPath(t, dir), "scripts/web.sh") {
		t.Errorf("web-2 = %+v", web2)
	}
	if web2.Interfaces[0].MAC != DefaultMAC("lab", "web-2", 0) || web2.Netns.Namespace != "tbos.lab.web-2" {
		t.Errorf("web-2 names = %+v", web2)
	}
	if mac := st.Guests[3].Interfaces[0].MAC; mac != "02:aa:bb:cc:dd:ee" {
		t.Errorf("db MAC = %s, want the given one in canonical form", mac)
	}
	wantVM := &LibvirtSpec{Domain: "tbos.lab.vm", CPUs: 2, MemoryMB: 512, Boot: BootExistingDisk,
		DiskPath: filepath.Join(realPath(t, dir), "disk.qcow2"), DiskFormat: "qcow2", DeviceType: DeviceDisk}
	if !reflect.DeepEqual(st.Guests[4].Libvirt, wantVM) {
		t.Errorf("vm libvirt = %+v, want %+v", st.Guests[4].Libvirt, wantVM)
	}
	if d := st.Guests[5].Docker; d == nil || d.Image != "alpine:3" || d.Container != "tbos.lab.box" {
		t.Errorf("box docker = %+v", d)
	}
	if len(st.Switches) != 2 || st.Switches[1].Name != "sw1" || st.Switches[1].Bridge != BridgeName("lab", "sw1") {
		t.Errorf("switches = %+v", st.Switches)
	}
}

func realPath(t *testing.T, p string) string {
	t.Helper()
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestGenerateUnknownHost(t *testing.T) {
	dir := writeProject(t, doc(
		"machines:",
		"  - name: a",
		"    host: nowhere",
	))
	_, err := Generate(Options{Deployment: "lab", ProjectDir: dir, Hosts: []Host{{Name: "main", Main: true}}})
	var verr *ValidationError
	if !errors.As(err, &verr) || len(verr.Problems) != 1 {
		t.Fatalf("err = %v", err)
	}
	if p := verr.Problems[0]; p.Line != 3 || p.Field != "machines[0].host" || p.Message != "nowhere is not a host of the cluster (hosts: main)" {
		t.Errorf("problem = %+v", p)
	}
}

func TestGenerateDefaultHost(t *testing.T) {
	dir := writeProject(t, doc("machines: [{name: a}]"))
	st, err := Generate(Options{Deployment: "lab", ProjectDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	host := "localhost"
	if len(st.Hosts) != 1 || st.Hosts[0] != (Host{Name: host, Main: true}) || st.Guests[0].Host != host {
		t.Errorf("hosts = %+v, guest host %q", st.Hosts, st.Guests[0].Host)
	}
	if st.GeneratedAt.IsZero() || st.GeneratedAt.Location() != time.UTC {
		t.Errorf("GeneratedAt = %v", st.GeneratedAt)
	}
}

func TestGenerateReportsParseAndFileProblemsTogether(t *testing.T) {
	dir := writeProject(t, doc(
		"machines:",
		"  - name: a",
		"    netns: {setup_script: missing.sh}",
		"    colour: red",
	))
	_, err := Generate(Options{Deployment: "lab", ProjectDir: dir, Hosts: []Host{{Name: "h"}}})
	var verr *ValidationError
	if !errors.As(err, &verr) || len(verr.Problems) != 2 {
		t.Fatalf("err = %v", err)
	}
	if verr.Problems[0].Field != "machines[0].netns.setup_script" || verr.Problems[1].Field != "machines[0].colour" {
		t.Errorf("problems = %+v", verr.Problems)
	}
}

func TestGenerateMissingFile(t *testing.T) {
	_, err := Generate(Options{Deployment: "lab", ProjectDir: t.TempDir(), Hosts: []Host{{Name: "h"}}})
	if !errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrInvalid) {
		t.Errorf("err = %v, want fs.ErrNotExist", err)
	}
}

func TestGenerateBadOptions(t *testing.T) {
	dir := writeProject(t, doc("machines: [{name: a}]"))
	for _, opts := range []Options{
		{Deployment: "../x", ProjectDir: dir},
		{Deployment: "lab"},
		{Deployment: "lab", ProjectDir: dir, Hosts: []Host{{Name: "h"}, {Name: "h"}}},
	} {
		if _, err := Generate(opts); err == nil {
			t.Errorf("Generate(%+v) succeeded", opts)
		}
	}
}

func TestResolveNameCollision(t *testing.T) {
	// Two machines whose generated MAC collides with a written one.
	mac := DefaultMAC("lab", "b", 0)
	c, err := Parse("", []byte(doc(
		"machines:",
		"  - name: a",
		"    network: [{switch: sw0, ip: 10.0.0.2, mac: '"+mac+"'}]",
		"  - name: b",
		"    network: [{switch: sw0, ip: 10.0.0.3}]",
	)))
	if err != nil {
		t.Fatal(err)
	}
	_, ps := c.resolve(resolveEnv{deployment: "lab", hosts: []Host{{Name: "h"}}})
	if len(ps) != 1 || ps[0].Field != "machines[1].network[0].mac" || ps[0].Line != 5 || !strings.Contains(ps[0].Message, "is already used by a eth0") {
		t.Errorf("problems = %+v", ps)
	}
}

func TestSpanningSwitchGetsTunnelAndMTU(t *testing.T) {
	dir := writeProject(t, yamlLines(
		"machines:",
		"  - name: a",
		"    network: [{switch: wide, ip: 10.0.0.1}, {switch: narrow, ip: 10.1.0.1}]",
		"  - name: b",
		"    network: [{switch: wide, ip: 10.0.0.2}]",
		"  - name: c",
		"    host: h1",
		"    network: [{switch: narrow, ip: 10.1.0.2}]",
		"network:",
		"  switches:",
		"    wide: {subnet: 10.0.0.0/24}",
		"    narrow: {subnet: 10.1.0.0/24}",
	))
	st, err := Generate(Options{Deployment: "lab", ProjectDir: dir,
		Hosts: []Host{{Name: "h1", Main: true, IP: "192.0.2.1"}, {Name: "h2", IP: "192.0.2.2"}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := []string{st.Guests[0].Host, st.Guests[1].Host, st.Guests[2].Host}; strings.Join(got, ",") != "h1,h2,h1" {
		t.Fatalf("placement %v, want round robin h1,h2 and c pinned to h1", got)
	}
	for _, sw := range st.Switches {
		switch sw.Name {
		case "wide":
			if !sw.Spans() || sw.Tunnel != TunnelName("lab", "wide") || len(sw.Tunnel) > 15 || strings.Join(sw.Hosts, ",") != "h1,h2" {
				t.Errorf("wide = %+v, want a tunnel over h1,h2", sw)
			}
		case "narrow":
			if sw.Spans() || sw.Tunnel != "" {
				t.Errorf("narrow = %+v, want no tunnel", sw)
			}
		}
	}
	for _, g := range st.Guests {
		for _, ifc := range g.Interfaces {
			want := 0
			if ifc.Switch == "wide" {
				want = TunnelMTU
			}
			if ifc.MTU != want {
				t.Errorf("%s %s on %s: MTU %d, want %d", g.Name, ifc.Name, ifc.Switch, ifc.MTU, want)
			}
		}
	}
	if err := CheckState(st, "lab", st.Project); err != nil {
		t.Errorf("CheckState of a generated state: %v", err)
	}
}

func TestVNIInRangeAndStable(t *testing.T) {
	seen := map[int]string{}
	for i := range 200 {
		sw := fmt.Sprintf("sw%d", i)
		v := VNI("lab", sw)
		if v < 1 || v > MaxVNI || v != VNI("lab", sw) {
			t.Fatalf("VNI(lab, %s) = %d: out of 1..%d or unstable", sw, v, MaxVNI)
		}
		if other, dup := seen[v]; dup {
			t.Logf("%s and %s share VNI %d (the engine probes on)", sw, other, v)
		}
		seen[v] = sw
	}
}
