package libvirt

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"

	"github.com/testbedos/testbedos/internal/actlog"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/topology"
)

// PoolName is the transient storage pool (a folder, <data>/disks/<name>)
// that holds the disks of a deployment's guests.
func PoolName(deployment string) string { return "tbos." + deployment }

// createVolume makes the guest's disk volume (see volumeOf) and returns
// the image it is a linked clone of, if any. A project disk it clones or
// copies is read through its pin.
func (d *Driver) createVolume(ctx context.Context, s *session, dep guest.Deployment, g *topology.Guest, pins pinnedFiles, log actlog.Log) (backing string, err error) {
	err = d.makeVolume(ctx, s, dep, g, pins, log, &backing)
	return backing, err
}

func (d *Driver) makeVolume(ctx context.Context, s *session, dep guest.Deployment, g *topology.Guest, pins pinnedFiles, log actlog.Log, backing *string) error {
	p := d.depPaths(dep, g)
	v := volumeOf(g.Libvirt, g.Name)
	from := v.backing + v.copyFrom // the project's disk, as the log names it
	v.backing, v.copyFrom = pins.of(v.backing), pins.of(v.copyFrom)
	if v.cloud {
		path, format, err := d.cachedImage(ctx, g.Libvirt, log)
		if err != nil {
			return fmt.Errorf("guest %s: %w", g.Name, err)
		}
		v.backing, v.backingFormat, from = path, format, path
		*backing = path
		if gb := g.Libvirt.ExpandGB; gb > 0 {
			size, err := virtualSize(path, format)
			if err != nil {
				return fmt.Errorf("guest %s: image size: %w", g.Name, err)
			}
			v.capacity = size + uint64(gb)<<30
		}
	}
	name := PoolName(dep.Name)
	defer d.poolLocks.lock(name)()
	pool, err := ensurePool(s, name, p.poolDir)
	if err != nil {
		return err
	}
	xml, err := volumeXML(v)
	if err != nil {
		return err
	}
	switch {
	case v.copyFrom != "":
		err = d.copyVolume(s, dep, pool, v, xml)
	default:
		_, err = s.StorageVolCreateXML(pool, xml, 0)
	}
	if err != nil {
		return s.err(fmt.Errorf("guest %s: create disk %s in pool %s: %w", g.Name, v.name, name, err))
	}
	switch {
	case v.copyFrom != "":
		log.Printf("    guest %s: disk %s: a full copy of %s", g.Name, v.name, from)
	case v.backing != "" && v.capacity > 0:
		log.Printf("    guest %s: disk %s: a linked clone of %s (%s), which stays untouched, grown to %d MiB (expand_gigabytes %d)", g.Name, v.name, from, v.backingFormat, v.capacity>>20, g.Libvirt.ExpandGB)
	case v.backing != "":
		log.Printf("    guest %s: disk %s: a linked clone of %s (%s), which stays untouched", g.Name, v.name, from, v.backingFormat)
	default:
		log.Printf("    guest %s: disk %s: blank, %d MiB thin", g.Name, v.name, v.capacity>>20)
	}
	return nil
}

func volumeXML(v volumeSpec) (string, error) {
	vol := libvirtxml.StorageVolume{
		Name:     v.name,
		Capacity: &libvirtxml.StorageVolumeSize{Unit: "bytes", Value: v.capacity},
		Target:   &libvirtxml.StorageVolumeTarget{Format: &libvirtxml.StorageVolumeTargetFormat{Type: v.format}},
	}
	if v.format == "qcow2" {
		vol.Target.Compat = "1.1"
	}
	if v.capacity > 0 {
		vol.Allocation = &libvirtxml.StorageVolumeSize{Unit: "bytes", Value: 0}
	}
	if v.backing != "" {
		// Capacity 0 takes the size of the backing file.
		vol.BackingStore = &libvirtxml.StorageVolumeBackingStore{
			Path:   v.backing,
			Format: &libvirtxml.StorageVolumeTargetFormat{Type: v.backingFormat},
		}
	}
	return vol.Marshal()
}

// ensurePool returns the deployment's pool, creating it (transient: it
// lives until destroyed or libvirtd's host reboots) if needed.
func ensurePool(s *session, name, dir string) (golibvirt.StoragePool, error) {
	if err := makeDisksDir(dir); err != nil {
		return golibvirt.StoragePool{}, err
	}
	pool, err := s.StoragePoolLookupByName(name)
	if err == nil {
		if err := checkPoolDir(s, pool, dir); err != nil {
			return pool, err
		}
		active, err := s.StoragePoolIsActive(pool)
		if err == nil && active == 0 {
			err = s.StoragePoolCreate(pool, golibvirt.StoragePoolCreateNormal)
		}
		if err != nil {
			return pool, s.err(fmt.Errorf("storage pool %s: %w", name, err))
		}
		return pool, nil
	}
	if !noPool(err) {
		return pool, s.err(fmt.Errorf("look up storage pool %s: %w", name, err))
	}
	xml, err := (&libvirtxml.StoragePool{Type: "dir", Name: name, Target: &libvirtxml.StoragePoolTarget{Path: dir}}).Marshal()
	if err != nil {
		return pool, err
	}
	pool, err = s.StoragePoolCreateXML(xml, golibvirt.StoragePoolCreateNormal)
	if err != nil {
		// Made meanwhile by someone else?
		if again, lerr := s.StoragePoolLookupByName(name); lerr == nil {
			return again, nil
		}
		return pool, s.err(fmt.Errorf("create storage pool %s at %s: %w", name, dir, err))
	}
	return pool, nil
}

// checkPoolDir refuses a pool of our name over another folder than dir:
// another server's (or someone's) pool, whose volumes are not ours to make
// or delete.
func checkPoolDir(s *session, pool golibvirt.StoragePool, dir string) error {
	desc, err := s.StoragePoolGetXMLDesc(pool, 0)
	if err != nil {
		return s.err(fmt.Errorf("storage pool %s: %w", pool.Name, err))
	}
	var px libvirtxml.StoragePool
	if err := px.Unmarshal(desc); err != nil {
		return fmt.Errorf("storage pool %s: %w", pool.Name, err)
	}
	if px.Target == nil || filepath.Clean(px.Target.Path) != filepath.Clean(dir) {
		got := ""
		if px.Target != nil {
			got = px.Target.Path
		}
		return fmt.Errorf("storage pool %s is over %s, not %s: %w", pool.Name, got, dir, guest.ErrForeign)
	}
	return nil
}

// copyVolume makes a full copy of an existing disk: libvirt copies it from
// a volume of a pool over the disk's folder (an existing pool, or a
// transient one made for the copy), keeping it sparse and converting the
// format where needed.
func (d *Driver) copyVolume(s *session, dep guest.Deployment, pool golibvirt.StoragePool, v volumeSpec, xml string) error {
	d.copies.Lock()
	defer d.copies.Unlock()
	dir := filepath.Dir(v.copyFrom)
	src, err := s.StoragePoolLookupByTargetPath(dir)
	switch {
	case err == nil:
		if err := s.StoragePoolRefresh(src, 0); err != nil {
			return fmt.Errorf("refresh storage pool %s: %w", src.Name, err)
		}
	case noPool(err):
		sum := sha256.Sum256([]byte(dir))
		name := PoolName(dep.Name) + ".src-" + hex.EncodeToString(sum[:4])
		pxml, err := (&libvirtxml.StoragePool{Type: "dir", Name: name, Target: &libvirtxml.StoragePoolTarget{Path: dir}}).Marshal()
		if err != nil {
			return err
		}
		if src, err = s.StoragePoolCreateXML(pxml, golibvirt.StoragePoolCreateNormal); err != nil {
			return fmt.Errorf("storage pool over %s: %w", dir, err)
		}
		defer s.StoragePoolDestroy(src)
	default:
		return fmt.Errorf("look up a storage pool over %s: %w", dir, err)
	}
	srcVol, err := s.StorageVolLookupByName(src, filepath.Base(v.copyFrom))
	if err != nil {
		return fmt.Errorf("volume %s: %w", v.copyFrom, err)
	}
	_, err = s.StorageVolCreateXMLFrom(pool, xml, srcVol, 0)
	return err
}

// removeVolumes deletes the guest's volume, through libvirt when the pool
// is there, and its file in any case.
func (d *Driver) removeVolumes(ctx context.Context, s *session, dep guest.Deployment, g *topology.Guest) error {
	name := PoolName(dep.Name)
	defer d.poolLocks.lock(name)()
	pool, err := s.StoragePoolLookupByName(name)
	switch {
	case noPool(err):
	case err != nil:
		return s.err(fmt.Errorf("look up storage pool %s: %w", name, err))
	case checkPoolDir(s, pool, d.depPaths(dep, g).poolDir) != nil:
		// Over another folder: its volumes are not ours to delete.
	default:
		for _, vn := range volumeNames(g.Name) {
			vol, err := s.StorageVolLookupByName(pool, vn)
			if noVolume(err) {
				continue
			}
			if err != nil {
				return s.err(fmt.Errorf("look up volume %s: %w", vn, err))
			}
			if err := s.StorageVolDelete(vol, 0); err != nil && !noVolume(err) {
				return s.err(fmt.Errorf("delete volume %s: %w", vn, err))
			}
		}
	}
	return removeDiskFiles(d.depPaths(dep, g).poolDir, volumeNames(g.Name))
}

// releasePool removes the deployment's pool once it holds no volume; its
// folder goes too when empty. Changes to a pool's volumes hold its lock, so
// a guest being made keeps the pool.
func (d *Driver) releasePool(ctx context.Context, s *session, dep guest.Deployment) error {
	name := PoolName(dep.Name)
	defer d.poolLocks.lock(name)()
	pool, err := s.StoragePoolLookupByName(name)
	switch {
	case noPool(err):
	case err != nil:
		return s.err(fmt.Errorf("look up storage pool %s: %w", name, err))
	case checkPoolDir(s, pool, d.poolDir(dep.WorkDir(), dep.Name)) != nil:
		// Over another folder: not ours to remove.
	default:
		vols, _, err := s.StoragePoolListAllVolumes(pool, 1, 0)
		if err != nil {
			return s.err(fmt.Errorf("storage pool %s: list volumes: %w", name, err))
		}
		if len(vols) > 0 {
			return nil
		}
		if err := s.StoragePoolDestroy(pool); err != nil && !noPool(err) {
			return s.err(fmt.Errorf("remove storage pool %s: %w", name, err))
		}
		if persistent, err := s.StoragePoolIsPersistent(pool); err == nil && persistent == 1 {
			if err := s.StoragePoolUndefine(pool); err != nil && !noPool(err) {
				return s.err(fmt.Errorf("undefine storage pool %s: %w", name, err))
			}
		}
	}
	removeEmptyDisksDir(d.poolDir(dep.WorkDir(), dep.Name))
	return nil
}
