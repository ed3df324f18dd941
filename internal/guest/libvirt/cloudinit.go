package libvirt

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/GehirnInc/crypt/sha512_crypt"
	"go.yaml.in/yaml/v3"
	"golang.org/x/crypto/ssh"

	"github.com/testbedos/testbedos/internal/topology"
)

// cloudUser is the user cloud-init makes next to root; both take the
// deployment's key.
const cloudUser = "testbedos"

// NoCloud documents (cloud-init's NoCloud data source).
type (
	cloudMeta struct {
		InstanceID    string `yaml:"instance-id"`
		LocalHostname string `yaml:"local-hostname"`
		// Environment is cloud_image's, where the original puts it: a
		// guest reads it with cloud-init query ds.meta_data.environment.
		Environment map[string]string `yaml:"environment,omitempty"`
	}
	cloudConfig struct {
		Hostname         string            `yaml:"hostname"`
		PreserveHostname bool              `yaml:"preserve_hostname"`
		ManageEtcHosts   bool              `yaml:"manage_etc_hosts"`
		DisableRoot      bool              `yaml:"disable_root"`
		SSHPasswordAuth  bool              `yaml:"ssh_pwauth"`
		SSHDeleteKeys    bool              `yaml:"ssh_deletekeys"`
		SSHKeys          map[string]string `yaml:"ssh_keys"`
		// SSHGenKeyTypes: only the ed25519 key given in SSHKeys; making
		// RSA and ECDSA keys costs seconds of boot under TCG.
		SSHGenKeyTypes    []string    `yaml:"ssh_genkeytypes"`
		SSHAuthorizedKeys []string    `yaml:"ssh_authorized_keys"`
		Users             []any       `yaml:"users"`
		WriteFiles        []cloudFile `yaml:"write_files,omitempty"`
		RunCmd            [][]string  `yaml:"runcmd,omitempty"`
	}
	cloudFile struct {
		Path        string `yaml:"path"`
		Content     string `yaml:"content"`
		Permissions string `yaml:"permissions"`
	}
	cloudUserEntry struct {
		Name       string `yaml:"name"`
		Gecos      string `yaml:"gecos"`
		Sudo       string `yaml:"sudo"`
		Shell      string `yaml:"shell"`
		LockPasswd bool   `yaml:"lock_passwd"`
		// Passwd is the password's SHA-512 crypt hash (libvirt.password).
		Passwd            string   `yaml:"passwd,omitempty"`
		SSHAuthorizedKeys []string `yaml:"ssh_authorized_keys"`
	}
	netConfig struct {
		Version   int                    `yaml:"version"`
		Ethernets map[string]netEthernet `yaml:"ethernets"`
	}
	netEthernet struct {
		Match     map[string]string `yaml:"match"`
		SetName   string            `yaml:"set-name"`
		Addresses []string          `yaml:"addresses,omitempty"`
		Routes    []netRoute        `yaml:"routes,omitempty"`
		// DHCP4: ip: dynamic; the router serving the switch answers.
		DHCP4 bool `yaml:"dhcp4,omitempty"`
	}
	netRoute struct {
		To  string `yaml:"to"`
		Via string `yaml:"via"`
	}
)

// cloudFiles are the seed's files: meta-data (with cloud_image's
// environment), user-data (hostname, root and a sudo user with the
// deployment's key and libvirt's username and password, the host key made
// for the guest, a login on the console port) and network-config (version
// 2: every NIC matched by MAC, named as in the state, with its address and
// the default route).
func cloudFiles(st *topology.State, g *topology.Guest, authorizedKey string, hostKey hostKeyPair) ([]fatFile, error) {
	spec := g.Libvirt
	meta, err := yaml.Marshal(cloudMeta{InstanceID: topology.DomainName(st.Deployment, g.Name), LocalHostname: g.Name, Environment: spec.Environment})
	if err != nil {
		return nil, err
	}
	keys := []string{authorizedKey}
	login, err := loginUser(spec, keys)
	if err != nil {
		return nil, err
	}
	var runcmd [][]string
	if spec.TCPTTYPort > 0 {
		// The console port is the second serial port: a login there too.
		runcmd = append(runcmd, []string{"systemctl", "enable", "--now", "serial-getty@" + ttyTCPDevice + ".service"})
	}
	// With the management network, /etc/hosts is written once with the
	// deployment's names instead of being managed by cloud-init (which
	// would rewrite it at every boot without them).
	var files []cloudFile
	if names := topology.Names(st); len(names) > 0 {
		var b strings.Builder
		fmt.Fprintf(&b, "127.0.0.1 localhost\n127.0.1.1 %s\n::1 localhost ip6-localhost ip6-loopback\n", g.Name)
		for _, n := range names {
			fmt.Fprintf(&b, "%s %s\n", n.Address, n.Name)
		}
		files = append(files, cloudFile{Path: "/etc/hosts", Content: b.String(), Permissions: "0644"})
	}
	user, err := yaml.Marshal(cloudConfig{
		WriteFiles:        files,
		Hostname:          g.Name,
		ManageEtcHosts:    len(files) == 0,
		SSHDeleteKeys:     true,
		SSHKeys:           map[string]string{"ed25519_private": string(hostKey.pem), "ed25519_public": strings.TrimSpace(string(ssh.MarshalAuthorizedKey(hostKey.signer.PublicKey())))},
		SSHGenKeyTypes:    []string{"ed25519"},
		SSHAuthorizedKeys: keys,
		Users:             []any{"default", login},
		RunCmd:            runcmd,
	})
	if err != nil {
		return nil, err
	}
	nc := netConfig{Version: 2, Ethernets: map[string]netEthernet{}}
	for _, ifc := range interfacesOf(st, g) {
		e := netEthernet{Match: map[string]string{"macaddress": ifc.MAC}, SetName: ifc.Name}
		if ifc.Address != "" {
			e.Addresses = []string{ifc.Address}
		}
		e.DHCP4 = ifc.Dynamic
		if ifc.Gateway != "" {
			to := "0.0.0.0/0"
			if gw, err := netip.ParseAddr(ifc.Gateway); err == nil && gw.Is6() {
				to = "::/0"
			}
			e.Routes = []netRoute{{To: to, Via: ifc.Gateway}}
		}
		nc.Ethernets[ifc.Name] = e
	}
	network, err := yaml.Marshal(nc)
	if err != nil {
		return nil, err
	}
	return []fatFile{
		{Name: "meta-data", Data: meta},
		{Name: "user-data", Data: append([]byte("#cloud-config\n"), user...)},
		{Name: "network-config", Data: network},
	}, nil
}

// loginUser is the sudo user cloud-init makes: libvirt's username (else
// testbedos) with the deployment's key and, with a password, its hash
// (a login on the console; SSH keeps to keys).
func loginUser(spec *topology.LibvirtSpec, keys []string) (cloudUserEntry, error) {
	u := cloudUserEntry{Name: cloudUser, Gecos: "TestbedOS", Sudo: "ALL=(ALL) NOPASSWD:ALL", Shell: "/bin/bash", LockPasswd: true, SSHAuthorizedKeys: keys}
	if spec.Username != "" {
		u.Name = spec.Username
	}
	if spec.Password != "" {
		// The SHA-512 crypt ("$6$") hash with a random salt, which
		// cloud-init writes to /etc/shadow as given: the seed never holds
		// the password itself.
		h, err := sha512_crypt.New().Generate([]byte(spec.Password), nil)
		if err != nil {
			return u, err
		}
		u.Passwd, u.LockPasswd = h, false
	}
	return u, nil
}

// interfacesOf are g's interfaces, the first that has no address (not
// dynamic, or dynamic where no router serves DHCP) given libvirt's
// static_ip with its switch's prefix length, as the original's guests are
// reached at that address.
func interfacesOf(st *topology.State, g *topology.Guest) []topology.Interface {
	out := append([]topology.Interface(nil), g.Interfaces...)
	ip, err := netip.ParseAddr(g.Libvirt.StaticIP)
	if err != nil {
		return out
	}
	for i := range out {
		if out[i].Address != "" || out[i].Dynamic {
			continue
		}
		bits := 24
		if ip.Is6() {
			bits = 64
		}
		for _, sw := range st.Switches {
			if p, err := netip.ParsePrefix(sw.Subnet); err == nil && sw.Name == out[i].Switch && p.Addr().Is4() == ip.Is4() {
				bits = p.Bits()
			}
		}
		out[i].Address = netip.PrefixFrom(ip, bits).String()
		break
	}
	return out
}

// cloudSeed is the NoCloud seed disk: a FAT file system labelled CIDATA.
func cloudSeed(st *topology.State, g *topology.Guest, authorizedKey string, hostKey hostKeyPair) ([]byte, error) {
	files, err := cloudFiles(st, g, authorizedKey, hostKey)
	if err != nil {
		return nil, fmt.Errorf("guest %s: cloud-init seed: %w", g.Name, err)
	}
	img, err := fatImage("CIDATA", files, st.GeneratedAt)
	if err != nil {
		return nil, fmt.Errorf("guest %s: cloud-init seed: %w", g.Name, err)
	}
	return img, nil
}
