// Package topology reads kvm-compose.yaml, validates it with errors that name
// file, line and field, and resolves it into the State every later action
// works from.
//
// The flow is raw YAML → Config (this file's types, positions kept aside) →
// checks (Parse: schema and values; Validate: files) → State (Generate).
package topology

// Limits that keep a pasted or fuzzed file from asking for unbounded work.
const (
	// MaxGuests bounds the guests of one deployment, scaled clones included.
	MaxGuests = 4096
	// MaxInterfaces bounds the interfaces of all guests together.
	MaxInterfaces = 4 * MaxGuests
	// MinMemoryMB is the least memory a libvirt guest may ask for.
	MinMemoryMB = 16
)

// LoadBalancingNaiveRoundRobin places guests without a host on the hosts
// in turn, in YAML order. It is the default and, for now, the only policy.
const LoadBalancingNaiveRoundRobin = "naive_round_robin"

// LoadBalancingResources places each guest without a host on the host with
// the most CPU and memory left once the guests placed before it are
// counted (placement.go).
const LoadBalancingResources = "resources"

// Config is kvm-compose.yaml as written: nothing defaulted, nothing expanded.
// Build it with Parse so that problems found later can still name lines.
type Config struct {
	Machines       []Machine      `yaml:"machines"`
	Network        Network        `yaml:"network"`
	TestbedOptions TestbedOptions `yaml:"testbed_options"`
	// Tooling is the original's section of the same name, which holds no
	// options there either: accepted when empty.
	Tooling *Tooling `yaml:"tooling"`
	// Timeline lists timed changes (timeline.go); nil: none.
	Timeline *TimelineSpec `yaml:"timeline"`

	// file is the name problems carry; lines maps a field path such as
	// "machines[1].network[0].ip" to the line it was written on.
	file  string
	lines map[string]int
	// bad holds the paths the decoder already complained about, so that the
	// checks do not report the same field a second time.
	bad map[string]bool
}

// Machine is one entry of machines[]. At most one of Netns, Libvirt and
// Docker is set; none means netns.
type Machine struct {
	Name    string              `yaml:"name"`
	Network []NetworkAttachment `yaml:"network"`
	// Host pins the machine to a cluster host by name.
	Host    string          `yaml:"host"`
	Netns   *NetnsSection   `yaml:"netns"`
	Libvirt *LibvirtSection `yaml:"libvirt"`
	Docker  *DockerSection  `yaml:"docker"`
	Scaling *Scaling        `yaml:"scaling"`
}

// NetworkAttachment is one NIC of a machine.
type NetworkAttachment struct {
	Switch  string `yaml:"switch"`
	IP      string `yaml:"ip"`
	MAC     string `yaml:"mac"`     // optional; generated from names when empty
	Gateway string `yaml:"gateway"` // optional default route
	// Netem impairs the link from the start (netem qdisc); nil: none.
	Netem *Netem `yaml:"netem"`
	// NetworkName is the original's provider network of the NIC (a
	// bridge mapping's name). Kept for its spelling: the NIC's switch
	// already says where it is attached.
	NetworkName string `yaml:"network_name"`
	// macFrom is the first MAC of the original's scaling mac_range: the
	// n-th clone with the interface gets macFrom+n (scaling.go).
	macFrom string
	// clones are the 0-based clones of a scaled machine that have the
	// interface, sorted; nil means every clone.
	clones []int
}

// NetnsSection configures a network-namespace guest.
type NetnsSection struct {
	SetupScript string `yaml:"setup_script"`
}

// LibvirtSection configures a virtual machine.
type LibvirtSection struct {
	CPUs        int         `yaml:"cpus"`
	MemoryMB    int         `yaml:"memory_mb"`
	SetupScript string      `yaml:"setup_script"`
	Type        LibvirtType `yaml:"libvirt_type"`
	// Username and Password make a cloud-init user with that password.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// StaticIP is the original's address the guest is reached at; it must
	// be one of the machine's own addresses.
	StaticIP string `yaml:"static_ip"`
	// TCPTTYPort serves the guest's serial console on that loopback port.
	TCPTTYPort int `yaml:"tcp_tty_port"`
	// ExtendedGraphicsSupport is written in some of the original's labs,
	// which ignores it; so does this project (the log says so).
	ExtendedGraphicsSupport bool `yaml:"extended_graphics_support"`
	// Scaling is the original's place for it (scaling.go).
	Scaling *Scaling `yaml:"scaling"`
}

// LibvirtType says where the VM's system comes from: exactly one is set.
type LibvirtType struct {
	ExistingDisk *ExistingDisk `yaml:"existing_disk"`
	ISOGuest     *ISOGuest     `yaml:"iso_guest"`
	CloudImage   *CloudImage   `yaml:"cloud_image"`
	Kernel       *KernelBoot   `yaml:"kernel"`
}

// ExistingDisk boots a disk image from the project folder or an allowed
// image folder (Options.ImageDirs).
type ExistingDisk struct {
	Path       string `yaml:"path"`
	DriverType string `yaml:"driver_type"` // raw (the default) | qcow2
	DeviceType string `yaml:"device_type"` // disk (the default) | cdrom
	ReadOnly   bool   `yaml:"readonly"`
	// CreateDeepCopy gives the guest its own full copy instead of an overlay
	// or the file itself; scaled machines need it.
	CreateDeepCopy bool `yaml:"create_deep_copy"`
	// RunScript and Context are written here in some of the original's
	// labs, which ignores them here (they belong to cloud_image); so does
	// this project, and the log says so.
	RunScript string `yaml:"run_script"`
	Context   string `yaml:"context"`
}

// ISOGuest boots an installer or live ISO, from the project folder or an
// allowed image folder.
type ISOGuest struct {
	Path            string `yaml:"path"`
	ExpandGigabytes int    `yaml:"expand_gigabytes"`
	DriverType      string `yaml:"driver_type"` // raw (the default) | qcow2
	DeviceType      string `yaml:"device_type"` // disk (the default) | cdrom
	ReadOnly        bool   `yaml:"readonly"`
}

// CloudImage boots a cloud image downloaded from URL, or, without a URL, the
// published image of a known Name (cloudimage.go), as in the original.
type CloudImage struct {
	URL string `yaml:"url"`
	// Name is a known image name without URL; with one, the optional file
	// name of the cached download.
	Name string `yaml:"name"`
	// ExpandGigabytes grows the guest's disk past the image's size.
	ExpandGigabytes int `yaml:"expand_gigabytes"`
	// The original's documented VM setup: SetupScript runs once after the
	// first boot (the section's setup_script by another name), RunScript at
	// every up, both with Environment exported; Context is a project
	// folder (or file) copied into the guest at /etc/nocloud/context.
	SetupScript string            `yaml:"setup_script"`
	RunScript   string            `yaml:"run_script"`
	Environment map[string]string `yaml:"environment"`
	Context     string            `yaml:"context"`
	// SHA256 is the digest the image must have (hex), checked at up.
	SHA256 string `yaml:"sha256"`
}

// KernelBoot boots a kernel directly.
type KernelBoot struct {
	Kernel  string `yaml:"kernel"`
	Initrd  string `yaml:"initrd"`
	Cmdline string `yaml:"cmdline"`
}

// DockerSection configures a container (see docker.go for its checks).
type DockerSection struct {
	Image string `yaml:"image"`
	// Command and Entrypoint replace the image's; an Entrypoint written as
	// [] clears the image's entrypoint.
	// Either may be one string, split into words as a shell would (no
	// shell runs), as the original writes them.
	Command     ShellWords        `yaml:"command"`
	Entrypoint  ShellWords        `yaml:"entrypoint"`
	Environment map[string]string `yaml:"environment"`
	// EnvFile is a project file of KEY=value lines; Environment wins.
	EnvFile    string         `yaml:"env_file"`
	Volumes    []DockerVolume `yaml:"volumes"`
	Privileged bool           `yaml:"privileged"`
	User       string         `yaml:"user"`
	// Device lists host devices: /dev/x, or /dev/x:/dev/y[:rwm].
	Device      []string `yaml:"device"`
	SetupScript string   `yaml:"setup_script"`
	// Scaling is the original's place for it (scaling.go).
	Scaling *Scaling `yaml:"scaling"`
	// Pull lets up pull an image the daemon lacks; by default nothing is
	// pulled.
	Pull bool `yaml:"pull"`
	// StaticIP is the original's address the container is reached at; it
	// must be one of the machine's own addresses.
	StaticIP string `yaml:"static_ip"`
}

// DockerVolume bind-mounts Source, a file or folder inside the project
// folder, at Target inside the container.
type DockerVolume struct {
	Source   string `yaml:"source"`
	Target   string `yaml:"target"`
	ReadOnly bool   `yaml:"read_only"`
}

// Scaling turns one definition into Count clones <name>-1 … <name>-Count.
// The rest is the original's (scaling.go), also written inside the libvirt
// or docker section there.
type Scaling struct {
	Count       int                         `yaml:"count"`
	Interfaces  map[string]ScalingInterface `yaml:"interfaces"`
	SharedSetup string                      `yaml:"shared_setup"`
	CloneSetup  []CloneScript               `yaml:"clone_setup"`
	CloneRun    []CloneScript               `yaml:"clone_run"`
}

// Network holds the switches, under either spelling: network.switches, or
// the original's network.ovn.switches. Giving both is an error.
type Network struct {
	Switches map[string]SwitchSpec `yaml:"switches"`
	Routers  map[string]RouterSpec `yaml:"routers"`
	OVN      *OVNNetwork           `yaml:"ovn"`
	ACL      *ACLSection           `yaml:"acl"` // acl.go
	// OVS is the original's legacy network section, empty there too.
	OVS *Tooling `yaml:"ovs"`
}

// OVNNetwork is the original's spelling of the switches section.
type OVNNetwork struct {
	Switches map[string]SwitchSpec `yaml:"switches"`
	Routers  map[string]RouterSpec `yaml:"routers"`
	ACL      *ACLSection           `yaml:"acl"` // acl.go
}

// SwitchSpec is one layer-2 switch.
type SwitchSpec struct {
	Subnet string `yaml:"subnet"`
	// External gives the host's side an address on the switch and
	// masquerades it out of the host's default route (routers.go).
	External bool `yaml:"external"`
	// Ports are the original's switch ports; one with localnet makes the
	// switch external.
	Ports []SwitchPortSpec `yaml:"ports"`
}

// TestbedOptions are deployment-wide settings.
type TestbedOptions struct {
	LoadBalancing string `yaml:"load_balancing"`
	// Management gives every guest a mgmt0 interface and a host name
	// (management.go); nil: none.
	Management *Management `yaml:"management"`
	// ReadyTimeout bounds the wait for each VM to be ready (SSH answers,
	// cloud-init done): seconds, or a Go duration such as 10m. Empty: the
	// server's default.
	ReadyTimeout string `yaml:"ready_timeout"`
}

// Kind is the guest kind the machine asks for (netns when none is given).
// With more than one kind section, which Parse rejects, the first wins.
func (m *Machine) Kind() string {
	switch {
	case m.Netns != nil:
		return KindNetns
	case m.Libvirt != nil:
		return KindLibvirt
	case m.Docker != nil:
		return KindDocker
	}
	return KindNetns
}

// SwitchSpecs returns the switches and the field path they were written
// under, whichever spelling was used.
func (c *Config) SwitchSpecs() (map[string]SwitchSpec, string) {
	if c.Network.Switches == nil && c.Network.OVN != nil {
		return c.Network.OVN.Switches, "network.ovn.switches"
	}
	return c.Network.Switches, "network.switches"
}

// line returns the line a field was written on, or that of its nearest
// written parent (a missing field is reported where its section is).
func (c *Config) line(path string) int {
	for p := path; p != ""; p = parentPath(p) {
		if l, ok := c.lines[p]; ok {
			return l
		}
	}
	return 0
}

// has reports whether the field was written in the file.
func (c *Config) has(path string) bool {
	_, ok := c.lines[path]
	return ok
}

// parentPath strips the last ".field" or "[i]" of a field path.
func parentPath(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		switch p[i] {
		case '.', '[':
			return p[:i]
		}
	}
	return ""
}
