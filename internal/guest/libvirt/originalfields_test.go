package libvirt

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/GehirnInc/crypt/sha512_crypt"
	"github.com/testbedos/testbedos/internal/guest/guesttest"
	"github.com/testbedos/testbedos/internal/guest/sshkey"
	"github.com/testbedos/testbedos/internal/topology"
)

// The original's cloud-image fields in the seed: the user and its password
// hash, the environment in meta-data, a login on the console port, and
// static_ip on the interface that has no address.
func TestCloudSeedOriginalFields(t *testing.T) {
	st, g := testState(t)
	st.Switches = []topology.Switch{{Name: "sw0", Subnet: "10.0.0.0/24"}, {Name: "sw1", Subnet: "10.1.0.0/16"}}
	g.Interfaces[1].Address = "" // dynamic where no router serves DHCP
	*g.Libvirt = topology.LibvirtSpec{Domain: "tbos.lab.vm1", CPUs: 1, MemoryMB: 256, Boot: topology.BootCloudImage,
		Username: "alice", Password: "s3cret'pw", StaticIP: "10.1.2.3", TCPTTYPort: 4555,
		Environment: map[string]string{"ROLE": "server", "PORT": "8080"}}
	out := testRoot(t)
	hk, err := ensureHostKey(out, filepath.Join(out.Dir(), "hk"), "vm1")
	if err != nil {
		t.Fatal(err)
	}
	files, err := cloudFiles(st, g, "ssh-ed25519 AAAA k", hk)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]string{}
	for _, f := range files {
		byName[f.Name] = string(f.Data)
		if bytes.Contains(f.Data, []byte("s3cret")) {
			t.Errorf("%s holds the password itself", f.Name)
		}
	}
	var user struct {
		Users  []yaml.Node `yaml:"users"`
		RunCmd [][]string  `yaml:"runcmd"`
		PwAuth bool        `yaml:"ssh_pwauth"`
	}
	if err := yaml.Unmarshal([]byte(byName["user-data"]), &user); err != nil {
		t.Fatal(err)
	}
	var u cloudUserEntry
	if len(user.Users) != 2 || user.Users[1].Decode(&u) != nil {
		t.Fatalf("users: %s", byName["user-data"])
	}
	if u.Name != "alice" || u.LockPasswd || u.Sudo == "" || len(u.SSHAuthorizedKeys) != 1 {
		t.Errorf("user = %+v", u)
	}
	if !strings.HasPrefix(u.Passwd, "$6$") || strings.Contains(u.Passwd, "s3cret") ||
		sha512_crypt.New().Verify(u.Passwd, []byte("s3cret'pw")) != nil {
		t.Errorf("passwd %q is not the password's SHA-512 crypt hash", u.Passwd)
	}
	if again, _ := loginUser(g.Libvirt, nil); again.Passwd == u.Passwd {
		t.Error("two hashes of one password share their salt")
	}
	if user.PwAuth {
		t.Error("password login over SSH is on; the password is for the console")
	}
	if len(user.RunCmd) != 1 || strings.Join(user.RunCmd[0], " ") != "systemctl enable --now serial-getty@ttyS1.service" {
		t.Errorf("runcmd = %v", user.RunCmd)
	}
	var meta struct {
		Environment map[string]string `yaml:"environment"`
	}
	if err := yaml.Unmarshal([]byte(byName["meta-data"]), &meta); err != nil || meta.Environment["ROLE"] != "server" || meta.Environment["PORT"] != "8080" {
		t.Errorf("meta-data: %v\n%s", err, byName["meta-data"])
	}
	var nc netConfig
	if err := yaml.Unmarshal([]byte(byName["network-config"]), &nc); err != nil {
		t.Fatal(err)
	}
	if a := nc.Ethernets["eth1"].Addresses; len(a) != 1 || a[0] != "10.1.2.3/16" {
		t.Errorf("eth1 addresses %v, want static_ip with sw1's prefix", a)
	}
	if a := nc.Ethernets["eth0"].Addresses; len(a) != 1 || a[0] != "10.0.0.20/24" {
		t.Errorf("eth0 addresses %v: its own address must stay", a)
	}

	// Without the fields: the testbedos user, locked, no runcmd, and the
	// interface without an address keeps none.
	*g.Libvirt = topology.LibvirtSpec{Domain: "tbos.lab.vm1", Boot: topology.BootCloudImage}
	files, _ = cloudFiles(st, g, "ssh-ed25519 AAAA k", hk)
	for _, f := range files {
		s := string(f.Data)
		if f.Name == "user-data" && (!strings.Contains(s, "name: testbedos") || !strings.Contains(s, "lock_passwd: true") || strings.Contains(s, "runcmd") || strings.Contains(s, " passwd:")) {
			t.Errorf("user-data without the fields:\n%s", s)
		}
		if f.Name == "network-config" && strings.Contains(s, "10.1.") {
			t.Errorf("network-config without static_ip:\n%s", s)
		}
		if f.Name == "meta-data" && strings.Contains(s, "environment") {
			t.Errorf("meta-data:\n%s", s)
		}
	}
}

// tcp_tty_port is a second serial port served on 127.0.0.1; the first
// stays the pty the console streams.
func TestDomainTCPConsole(t *testing.T) {
	st, g := testState(t)
	p := (&Driver{}).pathsOf(t.TempDir(), "lab", g)
	g.Libvirt.TCPTTYPort = 4601
	doc, err := buildDomain(st, g, p, "", "")
	if err != nil {
		t.Fatal(err)
	}
	xml, _ := doc.Marshal()
	sers := doc.Devices.Serials
	if len(sers) != 2 || sers[0].Source.Pty == nil || *sers[1].Target.Port != 1 {
		t.Fatalf("serials:\n%s", xml)
	}
	if tcp := sers[1].Source.TCP; tcp == nil || tcp.Mode != "bind" || tcp.Host != "127.0.0.1" || tcp.Service != "4601" || sers[1].Protocol.Type != "raw" {
		t.Errorf("console port:\n%s", xml)
	}
	if c := doc.Devices.Controllers; len(c) != 1 || c[0].Type != "usb" || c[0].Model != "none" {
		t.Errorf("the domain has a USB controller:\n%s", xml)
	}
	g.Libvirt.TCPTTYPort = 0
	if doc, _ := buildDomain(st, g, p, "", ""); len(doc.Devices.Serials) != 1 {
		t.Errorf("a console port without tcp_tty_port")
	}
}

// A console port another program listens on is refused before anything
// is made.
func TestTTYPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, g := testState(t)
	g.Libvirt.TCPTTYPort = l.Addr().(*net.TCPAddr).Port
	if err := checkTTYPort(g); err == nil || !strings.Contains(err.Error(), "tcp_tty_port "+strconv.Itoa(g.Libvirt.TCPTTYPort)+" is in use") {
		t.Errorf("port in use: %v", err)
	}
	// generate-artefacts refuses it for a guest of the main host, not
	// for one of a client host (whose ports it cannot see).
	st, g := testState(t)
	g.Libvirt.TCPTTYPort = l.Addr().(*net.TCPAddr).Port
	out := testRoot(t)
	if _, err := sshkey.Ensure(out, "c"); err != nil {
		t.Fatal(err)
	}
	drv := New(Options{})
	if err := drv.WriteArtefacts(context.Background(), st, g, out, &guesttest.Log{}); err == nil || !strings.Contains(err.Error(), "is in use") {
		t.Errorf("generate-artefacts with the console port in use: %v", err)
	}
	st.Hosts = []topology.Host{{Name: "main", Main: true}, {Name: "c1"}}
	g.Host = "c1"
	if err := drv.WriteArtefacts(context.Background(), st, g, out, &guesttest.Log{}); err != nil {
		t.Errorf("a client's guest: %v", err)
	}
	l.Close()
	if err := checkTTYPort(g); err != nil {
		t.Errorf("free port: %v", err)
	}
}

// The context is read from the project folder: regular files and folders
// beneath it, never a symlink or a special file, nothing outside it.
func TestContextTar(t *testing.T) {
	project := t.TempDir()
	outside := filepath.Join(t.TempDir(), "secret")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(project, "ctx", "sub"), 0o755))
	must(os.WriteFile(filepath.Join(project, "ctx", "a.txt"), []byte("alpha"), 0o644))
	must(os.WriteFile(filepath.Join(project, "ctx", "sub", "run.sh"), []byte("#!/bin/sh\n"), 0o755))
	must(os.WriteFile(outside, []byte("root only"), 0o600))
	must(os.Symlink(outside, filepath.Join(project, "ctx", "link")))
	must(syscall.Mkfifo(filepath.Join(project, "ctx", "fifo"), 0o644))

	data, err := contextTar(project, filepath.Join(project, "ctx"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		must(err)
		body, _ := io.ReadAll(tr)
		got[h.Name] = string(body) + "|" + strconv.FormatInt(h.Mode, 8)
	}
	want := map[string]string{"a.txt": "alpha|644", "sub/": "|755", "sub/run.sh": "#!/bin/sh\n|755"}
	if len(got) != len(want) {
		t.Errorf("tar holds %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	// The whole project folder: names from its top, hidden ones too.
	must(os.WriteFile(filepath.Join(project, ".hidden"), []byte("h"), 0o644))
	data, err = contextTar(project, project)
	if err != nil || !bytes.Contains(data, []byte("ctx/sub/run.sh")) || !bytes.Contains(data, []byte(".hidden")) {
		t.Errorf("the project as context: %v", err)
	}
	// One file: named as in the project.
	data, err = contextTar(project, filepath.Join(project, "ctx", "a.txt"))
	if err != nil || !bytes.Contains(data, []byte("a.txt")) {
		t.Errorf("one file: %v", err)
	}
	for _, bad := range []string{filepath.Dir(outside), filepath.Join(project, "ctx", "link")} {
		if _, err := contextTar(project, bad); err == nil {
			t.Errorf("context %s accepted", bad)
		}
	}
}
