package libvirt

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"libvirt.org/go/libvirtxml"

	"github.com/testbedos/testbedos/internal/topology"
)

// Blank disks: kernel guests get a small one (a data disk, and what
// internal snapshots are stored in), iso_guest guests one to install to.
// Both are thin qcow2: unused space costs nothing.
const (
	kernelDiskBytes = 64 << 20
	isoDiskBytes    = 16 << 30
)

// maxCmdline is the x86 kernel command line limit, NUL included.
const maxCmdline = 2048

// domainDoc is a domain document.
type domainDoc struct{ *libvirtxml.Domain }

// maxDomainXML bounds a domain.xml.
const maxDomainXML = 1 << 20

// readDomainXML reads the domain generate-artefacts wrote in the server's
// own folder: a regular file, never through a symlink.
func readDomainXML(path string) (domainDoc, error) {
	data, err := topology.ReadRegularFile(path, maxDomainXML)
	if errors.Is(err, fs.ErrNotExist) {
		return domainDoc{}, fmt.Errorf("%s is missing: run generate-artefacts", path)
	}
	if err != nil {
		return domainDoc{}, err
	}
	dom := &libvirtxml.Domain{}
	if err := dom.Unmarshal(string(data)); err != nil {
		return domainDoc{}, fmt.Errorf("%s: %w (run generate-artefacts)", path, err)
	}
	return domainDoc{dom}, nil
}

// setDomainType makes the domain run under KVM or TCG. Under KVM the guest
// sees the host's CPU; under TCG QEMU's default model.
func setDomainType(dom domainDoc, t string) {
	dom.Type = t
	dom.CPU = nil
	if t == TypeKVM {
		dom.CPU = &libvirtxml.DomainCPU{Mode: "host-passthrough"}
	}
}

// files lists the host files QEMU opens.
func (dom domainDoc) files() []string {
	var out []string
	if os := dom.OS; os != nil {
		for _, f := range []string{os.Kernel, os.Initrd} {
			if f != "" {
				out = append(out, f)
			}
		}
	}
	if dom.Devices != nil {
		for _, disk := range dom.Devices.Disks {
			if disk.Source != nil && disk.Source.File != nil {
				out = append(out, disk.Source.File.File)
			}
		}
	}
	return out
}

// volumeSpec is the disk volume a guest gets in the deployment's pool.
type volumeSpec struct {
	name   string // file name in the pool folder
	format string // of the volume: qcow2 or raw
	// Exactly one source: a linked clone over backing, a full copy of
	// copyFrom, the cached cloud image, or a blank disk of capacity bytes.
	backing, backingFormat string
	copyFrom               string
	cloud                  bool
	capacity               uint64
}

func volumeOf(spec *topology.LibvirtSpec, guestName string) volumeSpec {
	v := volumeSpec{name: guestName + ".qcow2", format: "qcow2"}
	switch spec.Boot {
	case topology.BootExistingDisk:
		if spec.DeepCopy {
			v.copyFrom, v.format = spec.DiskPath, spec.DiskFormat
			if v.format == "raw" {
				v.name = guestName + ".img"
			}
		} else {
			v.backing, v.backingFormat = spec.DiskPath, spec.DiskFormat
		}
	case topology.BootCloudImage:
		v.cloud = true
	case topology.BootISOGuest:
		v.capacity = isoDiskBytes
	default:
		v.capacity = kernelDiskBytes
	}
	return v
}

// volumeNames are every name the guest's volume may have had.
func volumeNames(guestName string) []string {
	return []string{guestName + ".qcow2", guestName + ".img"}
}

// buildDomain writes the domain of a guest. Its type is a placeholder
// (qemu): Create sets the one detected on the host that runs it.
func buildDomain(st *topology.State, g *topology.Guest, p paths, authorizedKey, server string) (domainDoc, error) {
	spec, err := specOf(g)
	if err != nil {
		return domainDoc{}, err
	}
	vol := volumeOf(spec, g.Name)
	port := uint(0)
	dom := &libvirtxml.Domain{
		Type:        TypeQEMU,
		Name:        spec.Domain,
		Description: fmt.Sprintf("TestbedOS deployment %s, guest %s", st.Deployment, g.Name),
		Metadata:    &libvirtxml.DomainMetadata{XML: markXML(st.Deployment, g.Name, server)},
		Memory:      &libvirtxml.DomainMemory{Value: uint(spec.MemoryMB), Unit: "MiB"},
		VCPU:        &libvirtxml.DomainVCPU{Value: uint(spec.CPUs)},
		OS: &libvirtxml.DomainOS{
			Type: &libvirtxml.DomainOSType{Arch: "x86_64", Type: "hvm"},
		},
		Features:   &libvirtxml.DomainFeatureList{ACPI: &libvirtxml.DomainFeature{}, APIC: &libvirtxml.DomainFeatureAPIC{}},
		OnPoweroff: "destroy",
		OnReboot:   "restart",
		OnCrash:    "destroy",
		Devices: &libvirtxml.DomainDeviceList{
			Disks: []libvirtxml.DomainDisk{{
				Device: "disk",
				Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: vol.format, Discard: "unmap"},
				Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: filepath.Join(p.poolDir, vol.name)}},
				Target: &libvirtxml.DomainDiskTarget{Dev: "vda", Bus: "virtio"},
			}},
			// The serial port is a pty, the console libvirt streams
			// (Console), and libvirt logs all it prints to the console
			// log, truncated at each start, which the driver reads at boot.
			Serials: []libvirtxml.DomainSerial{{
				Source: &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}},
				Target: &libvirtxml.DomainSerialTarget{Port: &port},
				Log:    &libvirtxml.DomainChardevLog{File: p.console, Append: "off"},
			}},
			MemBalloon: &libvirtxml.DomainMemBalloon{Model: "none"},
			// No USB controller (libvirt adds one otherwise): no guest
			// has USB devices, and under TCG its emulation costs boot
			// time that bare QEMU does not pay.
			Controllers: []libvirtxml.DomainController{{Type: "usb", Model: "none"}},
		},
	}
	if spec.TCPTTYPort > 0 {
		dom.Devices.Serials = append(dom.Devices.Serials, tcpSerial(spec.TCPTTYPort))
	}
	for _, ifc := range g.Interfaces {
		if ifc.Bridge == "" || ifc.MAC == "" || ifc.HostName == "" {
			return domainDoc{}, fmt.Errorf("guest %s: interface %s: bridge, MAC and host name are required", g.Name, ifc.Name)
		}
		nic := libvirtxml.DomainInterface{
			MAC:    &libvirtxml.DomainInterfaceMAC{Address: ifc.MAC},
			Source: &libvirtxml.DomainInterfaceSource{Bridge: &libvirtxml.DomainInterfaceSourceBridge{Bridge: ifc.Bridge}},
			Target: &libvirtxml.DomainInterfaceTarget{Dev: ifc.HostName},
			Model:  &libvirtxml.DomainInterfaceModel{Type: "virtio"},
		}
		if ifc.MTU > 0 {
			// The tap gets it, and virtio tells the guest (host_mtu).
			nic.MTU = &libvirtxml.DomainInterfaceMTU{Size: uint(ifc.MTU)}
		}
		dom.Devices.Interfaces = append(dom.Devices.Interfaces, nic)
	}
	switch spec.Boot {
	case topology.BootKernel:
		kg := *g
		kg.Interfaces = interfacesOf(st, g)
		cmdline, err := kernelCmdline(spec, &kg, authorizedKey)
		if err != nil {
			return domainDoc{}, err
		}
		dom.OS.Kernel, dom.OS.Initrd, dom.OS.Cmdline = spec.Kernel, spec.Initrd, cmdline
	case topology.BootISOGuest:
		dom.OS.BootDevices = []libvirtxml.DomainBootDevice{{Dev: "cdrom"}, {Dev: "hd"}}
		dom.Devices.Disks = append(dom.Devices.Disks, readOnlyDisk("cdrom", spec.ISOPath, "hdc", "ide"))
		// An installer wants a screen: VNC on localhost only.
		dom.Devices.Graphics = []libvirtxml.DomainGraphic{{VNC: &libvirtxml.DomainGraphicVNC{AutoPort: "yes", Listen: "127.0.0.1"}}}
		dom.Devices.Videos = []libvirtxml.DomainVideo{{Model: libvirtxml.DomainVideoModel{Type: "vga"}}}
	case topology.BootCloudImage:
		dom.OS.BootDevices = []libvirtxml.DomainBootDevice{{Dev: "hd"}}
		dom.Devices.Disks = append(dom.Devices.Disks, readOnlyDisk("disk", p.seed, "vdb", "virtio"))
	default:
		dom.OS.BootDevices = []libvirtxml.DomainBootDevice{{Dev: "hd"}}
	}
	return domainDoc{dom}, nil
}

// readOnlyDisk is a read-only raw disk left out of snapshots.
func readOnlyDisk(device, file, dev, bus string) libvirtxml.DomainDisk {
	return libvirtxml.DomainDisk{
		Device:   device,
		Snapshot: "no",
		Driver:   &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "raw"},
		Source:   &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: file}},
		Target:   &libvirtxml.DomainDiskTarget{Dev: dev, Bus: bus},
		ReadOnly: &libvirtxml.DomainDiskReadOnly{},
	}
}

// kernelCmdline is the YAML's command line followed by the parameters of
// TestbedOS's guest image convention, so that a guest built like
// test/guestimage comes up addressed and with the deployment's key:
// tb.hostname, tb.ip (eth0), tb.net=MAC,CIDR (other NICs), tb.gw and
// tb.key=BASE64(authorized_keys line). Kernels that do not know them ignore
// them. A console on the first serial port is added unless one is given,
// and no_timer_check unless the line has it: under QEMU's TCG on a busy
// host, Linux's check of the IO-APIC timer can miss its window and panic
// at boot ("IO-APIC + timer doesn't work"); kernels set it themselves
// only when they see KVM.
func kernelCmdline(spec *topology.LibvirtSpec, g *topology.Guest, authorizedKey string) (string, error) {
	args := strings.Fields(spec.Cmdline)
	hasConsole, hasTimerCheck := false, false
	for _, a := range args {
		hasConsole = hasConsole || strings.HasPrefix(a, "console=")
		hasTimerCheck = hasTimerCheck || a == "no_timer_check"
	}
	if !hasConsole {
		args = append([]string{"console=ttyS0"}, args...)
	}
	if !hasTimerCheck {
		args = append(args, "no_timer_check")
	}
	args = append(args, "tb.hostname="+g.Name)
	gateway := ""
	for i, ifc := range g.Interfaces {
		if ifc.Gateway != "" && gateway == "" {
			gateway = ifc.Gateway
		}
		if ifc.Address == "" {
			continue
		}
		if i == 0 {
			args = append(args, "tb.ip="+ifc.Address)
		} else {
			args = append(args, fmt.Sprintf("tb.net=%s,%s", ifc.MAC, ifc.Address))
		}
	}
	if gateway != "" {
		args = append(args, "tb.gw="+gateway)
	}
	if authorizedKey != "" {
		args = append(args, "tb.key="+base64.StdEncoding.EncodeToString([]byte(authorizedKey)))
	}
	s := strings.Join(args, " ")
	if len(s) >= maxCmdline {
		return "", fmt.Errorf("guest %s: the kernel command line would be %d bytes, the limit is %d: shorten libvirt_type.kernel.cmdline", g.Name, len(s), maxCmdline-1)
	}
	return s, nil
}
