package topology

import "time"

// StateVersion is bumped when the layout of State changes incompatibly.
const StateVersion = 1

// State is the fully resolved testbed that generate-artefacts writes to
// <project>/artefacts/state.json. Every other action reads it, so it carries
// every name the drivers need: nothing is derived again at up or down time.
type State struct {
	Version     int       `json:"version"`
	Deployment  string    `json:"deployment"`
	Project     string    `json:"project"` // absolute project folder
	Source      string    `json:"source"`  // absolute path of kvm-compose.yaml
	GeneratedAt time.Time `json:"generated_at"`
	// Prefix starts the name of every kernel object of this deployment
	// (bridges, veths, taps), so leftovers can be found by name.
	Prefix   string   `json:"prefix"`
	Hosts    []Host   `json:"hosts"`
	Switches []Switch `json:"switches"`
	Guests   []Guest  `json:"guests"`
	// Routers run on the main host (routers.go).
	Routers []Router `json:"routers,omitempty"`
	// ACL is the switches' access control lists (acl.go); nil: none.
	ACL *ACL `json:"acl,omitempty"`
	// Notes say what parts of the file the original accepted mean here
	// (a route no port reaches, a port kind with no bridge counterpart);
	// up writes each to the action's log once.
	Notes []string `json:"notes,omitempty"`
	// Timeline is the file's timeline (timeline.go); nil: none.
	Timeline *Timeline `json:"timeline,omitempty"`
}

// Host is a machine of the cluster that guests are placed on.
type Host struct {
	Name string `json:"name"`
	Main bool   `json:"main"`
	// IP is the host's address (host.json's ip) that VXLAN tunnels of
	// switches spanning hosts run between; whoever builds the host list
	// sets it. A cluster of one host needs none.
	IP string `json:"ip,omitempty"`
	// CPUs and MemoryMB are the host's (host.json), for load_balancing:
	// resources; 0 when not known.
	CPUs     int   `json:"cpus,omitempty"`
	MemoryMB int64 `json:"memory_mb,omitempty"`
}

// Switch is one layer-2 segment: a Linux bridge on every host that has a
// guest on it.
type Switch struct {
	Name   string `json:"name"`
	Subnet string `json:"subnet"` // CIDR, e.g. 10.0.0.0/24
	Bridge string `json:"bridge"` // kernel name, at most 15 bytes
	// Tunnel is the kernel name of the VXLAN link that joins the switch's
	// bridges when its guests are placed on more than one host; empty for
	// a switch on one host.
	Tunnel string `json:"tunnel,omitempty"`
	// Hosts are the hosts the switch's guests are placed on, sorted.
	Hosts []string `json:"hosts,omitempty"`
	// External is set on a switch whose host side is masqueraded out.
	External *ExternalSide `json:"external,omitempty"`
}

// TunnelMTU is the MTU of guest interfaces on switches that span hosts: a
// 1500-byte underlay less VXLAN's 50 bytes of outer headers.
const TunnelMTU = 1450

// Spans reports whether the switch's guests are on more than one host.
func (s *Switch) Spans() bool { return len(s.Hosts) > 1 }

// Guest kinds.
const (
	KindNetns   = "netns"
	KindLibvirt = "libvirt"
	KindDocker  = "docker"
)

// Guest is one resolved machine.
type Guest struct {
	Name       string      `json:"name"`
	Kind       string      `json:"kind"`
	Host       string      `json:"host"`
	Interfaces []Interface `json:"interfaces"`
	// SetupScript is the absolute path of the script to run inside the guest
	// after up; it always lies inside the project folder.
	SetupScript string `json:"setup_script,omitempty"`
	// CloneScripts run after SetupScript, in order: the original's
	// scaling clone_setup then clone_run entries that name this clone.
	CloneScripts []string     `json:"clone_scripts,omitempty"`
	Netns        *NetnsGuest  `json:"netns,omitempty"`
	Libvirt      *LibvirtSpec `json:"libvirt,omitempty"`
	Docker       *DockerSpec  `json:"docker,omitempty"`
	// Clone is the 1-based number of a scaled clone (<machine>-<Clone>), 0
	// for a machine that is not scaled.
	Clone int `json:"clone,omitempty"`
}

// Interface is one NIC of a guest, attached to a switch.
type Interface struct {
	Switch string `json:"switch"`
	Bridge string `json:"bridge"`
	// Name is the interface name inside the guest (eth0, eth1, …).
	Name string `json:"name"`
	// HostName is the host-side end (veth peer or tap), at most 15 bytes.
	HostName string `json:"host_name"`
	Address  string `json:"address"` // CIDR with the switch prefix, e.g. 10.0.0.10/24
	MAC      string `json:"mac"`
	Gateway  string `json:"gateway,omitempty"`
	// MTU of both ends of the interface; 0 leaves the kernel's default.
	// Interfaces on switches spanning hosts get TunnelMTU.
	MTU int `json:"mtu,omitempty"`
	// Netem is the impairment kvm-compose.yaml sets on the link; nil: none.
	Netem *Netem `json:"netem,omitempty"`
	// Dynamic: the address comes from the switch's DHCP server at up
	// (Address and Gateway are empty).
	Dynamic bool `json:"dynamic,omitempty"`
}

// Netem is a link impairment, as netem qdisc parameters. The zero value
// impairs nothing.
type Netem struct {
	DelayMS    int     `yaml:"delay_ms" json:"delay_ms,omitempty"`
	JitterMS   int     `yaml:"jitter_ms" json:"jitter_ms,omitempty"`
	LossPct    float64 `yaml:"loss_pct" json:"loss_pct,omitempty"`
	RateKbit   int     `yaml:"rate_kbit" json:"rate_kbit,omitempty"`
	CorruptPct float64 `yaml:"corrupt_pct" json:"corrupt_pct,omitempty"`
}

// NetnsGuest holds what the netns driver needs.
type NetnsGuest struct {
	// Namespace is the name under /run/netns.
	Namespace string `json:"namespace"`
}

// Libvirt boot sources: the keys of libvirt_type in kvm-compose.yaml.
const (
	BootExistingDisk = "existing_disk"
	BootISOGuest     = "iso_guest"
	BootCloudImage   = "cloud_image"
	BootKernel       = "kernel"
)

// LibvirtSpec holds what the libvirt driver needs. Every path is absolute,
// symlink-free and inside the project folder.
type LibvirtSpec struct {
	Domain   string `json:"domain"`
	CPUs     int    `json:"cpus"`
	MemoryMB int    `json:"memory_mb"`
	// ReadyTimeout bounds the wait for the guest to be ready (a Go
	// duration; empty: the server's default), from testbed_options.
	ReadyTimeout string `json:"ready_timeout,omitempty"`
	// Boot is one of the Boot* constants; the fields below it are set for
	// that source only.
	Boot string `json:"boot"`
	// existing_disk
	DiskPath   string `json:"disk_path,omitempty"`
	DiskFormat string `json:"disk_format,omitempty"` // raw | qcow2
	DeepCopy   bool   `json:"deep_copy,omitempty"`
	// iso_guest
	ISOPath string `json:"iso_path,omitempty"`
	// cloud_image
	ImageURL  string `json:"image_url,omitempty"`
	ImageName string `json:"image_name,omitempty"` // the image's name in the server's image cache
	// ImageSHA256 is the digest the image must have (hex), when given.
	ImageSHA256 string `json:"image_sha256,omitempty"`
	// ExpandGB grows the disk this many GiB past the image's size.
	ExpandGB int `json:"expand_gigabytes,omitempty"`
	// kernel
	Kernel  string `json:"kernel,omitempty"`
	Initrd  string `json:"initrd,omitempty"`
	Cmdline string `json:"cmdline,omitempty"`
	// DeviceType (disk | cdrom) and ReadOnly say how existing_disk's or
	// iso_guest's file is attached.
	DeviceType string `json:"device_type,omitempty"`
	ReadOnly   bool   `json:"readonly,omitempty"`
	// The original's cloud-image setup: a cloud-init user, the address
	// the guest is reached at, the loopback TCP port of its serial console
	// (0: none), a script run at every up after the setup script, the
	// environment exported to both, and a project file or folder copied
	// into the guest at ContextTarget.
	Username    string            `json:"username,omitempty"`
	Password    string            `json:"password,omitempty"`
	StaticIP    string            `json:"static_ip,omitempty"`
	TCPTTYPort  int               `json:"tcp_tty_port,omitempty"`
	RunScript   string            `json:"run_script,omitempty"`
	Environment map[string]string `json:"environment,omitempty"`
	Context     string            `json:"context,omitempty"`
}

// ContextTarget is where a cloud image's context lands inside the guest,
// as in the original.
const ContextTarget = "/etc/nocloud/context"

// DockerSpec holds what the docker driver needs. Every path is absolute,
// symlink-free and inside the project folder.
type DockerSpec struct {
	Container string `json:"container"`
	Image     string `json:"image"`
	// Pull: an image the daemon lacks may be pulled at up.
	Pull    bool     `json:"pull,omitempty"`
	Command []string `json:"command,omitempty"`
	// Entrypoint replaces the image's when set; ResetEntrypoint clears it
	// (the YAML said entrypoint: []).
	Entrypoint      []string          `json:"entrypoint,omitempty"`
	ResetEntrypoint bool              `json:"reset_entrypoint,omitempty"`
	Environment     map[string]string `json:"environment,omitempty"`
	EnvFile         string            `json:"env_file,omitempty"`
	Volumes         []VolumeSpec      `json:"volumes,omitempty"`
	Privileged      bool              `json:"privileged,omitempty"`
	User            string            `json:"user,omitempty"`
	Devices         []DeviceSpec      `json:"devices,omitempty"`
	// ExtraHosts are "name:address" lines added to the container's
	// /etc/hosts: the management network's names.
	ExtraHosts []string `json:"extra_hosts,omitempty"`
}

// VolumeSpec is one bind mount of a project file or folder.
type VolumeSpec struct {
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"read_only,omitempty"`
}

// DeviceSpec is one host device given to a container.
type DeviceSpec struct {
	Host        string `json:"host"`
	Container   string `json:"container"`
	Permissions string `json:"permissions"` // of r, w, m
}
