package libvirt

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"libvirt.org/go/libvirtxml"

	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/topology"
)

// pinnedFiles maps the project files QEMU opens for a guest (an
// existing_disk, an ISO, a kernel and initrd) to their pins under the
// guest's working folder (guest.Pin): QEMU opens the files that were
// checked, and a project folder swapped for a symlink cannot make a
// root-only file a VM's disk, CD or initrd.
type pinnedFiles map[string]string

// pinDir is the guest's folder of pinned files; hidden, it is not copied
// into the project's artefacts.
func (p paths) pinDir() string { return filepath.Join(p.dir, ".pinned") }

// pinFiles pins the project files of spec, replacing earlier pins (after a
// host reboot the binds are gone and their targets are empty files).
func pinFiles(ctx context.Context, dep guest.Deployment, spec *topology.LibvirtSpec, p paths) (pinnedFiles, error) {
	if err := guest.Unpin(p.pinDir()); err != nil {
		return nil, err
	}
	pins := pinnedFiles{}
	for _, f := range []struct{ name, ref string }{
		{"disk", spec.DiskPath}, {"iso", spec.ISOPath}, {"kernel", spec.Kernel}, {"initrd", spec.Initrd},
	} {
		if f.ref == "" {
			continue
		}
		if err := pins.pin(ctx, dep, f.ref, filepath.Join(p.pinDir(), f.name)); err != nil {
			return nil, errors.Join(err, guest.Unpin(p.pinDir()))
		}
	}
	return pins, nil
}

func (pins pinnedFiles) pin(ctx context.Context, dep guest.Deployment, ref, target string) error {
	f, err := guest.OpenFile(ctx, dep.Files, ref)
	if err != nil {
		return fmt.Errorf("%s: %w", ref, err)
	}
	defer f.Close()
	if err := guest.Pin(f, target); err != nil {
		return err
	}
	pins[ref] = target
	return nil
}

// of is the pin of path, or path when it is not a pinned project file.
func (pins pinnedFiles) of(path string) string {
	if p, ok := pins[path]; ok {
		return p
	}
	return path
}

// localize makes the domain generate-artefacts wrote this host's: the
// files QEMU opens are this host's (its disk in this host's disks folder,
// the seed and console log in this host's working folder, the kernel,
// initrd and ISO pinned here), and the domain is marked as defined by this
// server. On the main that changes nothing; a domain written on the main
// for a client host's guest gets the client's folders and instance.
func (d *Driver) localize(dom domainDoc, dep guest.Deployment, g *topology.Guest, p paths, pins pinnedFiles) {
	spec := g.Libvirt
	dom.Metadata = &libvirtxml.DomainMetadata{XML: markXML(dep.Name, g.Name, d.opts.Instance)}
	if o := dom.OS; o != nil {
		if spec.Kernel != "" {
			o.Kernel = pins.of(spec.Kernel)
		}
		if spec.Initrd != "" {
			o.Initrd = pins.of(spec.Initrd)
		}
	}
	if dom.Devices == nil {
		return
	}
	files := map[string]string{"vda": filepath.Join(p.poolDir, volumeOf(spec, g.Name).name)}
	switch spec.Boot {
	case topology.BootCloudImage:
		files["vdb"] = p.seed
	case topology.BootISOGuest:
		files["hdc"] = pins.of(spec.ISOPath)
	}
	for i := range dom.Devices.Disks {
		disk := &dom.Devices.Disks[i]
		if disk.Source == nil || disk.Source.File == nil || disk.Target == nil {
			continue
		}
		if f, ok := files[disk.Target.Dev]; ok {
			disk.Source.File.File = f
		}
	}
	for i := range dom.Devices.Serials {
		if l := dom.Devices.Serials[i].Log; l != nil {
			l.File = p.console
		}
	}
}
