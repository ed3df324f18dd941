package images

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// users maps an image's sha256 to the deployments whose disks are linked
// clones of it: every qcow2 under DisksDir/<deployment>/ whose backing file
// is an image of this cache. The disks are the truth, so nothing has to be
// registered and released.
func (s *Store) users() map[string][]string {
	out := map[string][]string{}
	if s.opts.DisksDir == "" {
		return out
	}
	deps, err := os.ReadDir(s.opts.DisksDir)
	if err != nil {
		return out
	}
	prefix := s.blobDir() + string(filepath.Separator)
	for _, dep := range deps {
		if !dep.IsDir() {
			continue
		}
		files, _ := filepath.Glob(filepath.Join(s.opts.DisksDir, dep.Name(), "*"))
		seen := map[string]bool{}
		for _, f := range files {
			b := backingFile(f)
			if !strings.HasPrefix(b, prefix) {
				continue
			}
			sum := strings.TrimPrefix(b, prefix)
			if !seen[sum] {
				seen[sum] = true
				out[sum] = append(out[sum], dep.Name())
			}
		}
	}
	for _, v := range out {
		sort.Strings(v)
	}
	return out
}

// backingFile is a qcow2's backing file name ("" for none or not qcow2):
// its offset (bytes 8–15) and length (16–19) are in the header.
func backingFile(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	hdr := make([]byte, 20)
	if _, err := io.ReadFull(f, hdr); err != nil || string(hdr[:4]) != "QFI\xfb" {
		return ""
	}
	off := binary.BigEndian.Uint64(hdr[8:16])
	n := binary.BigEndian.Uint32(hdr[16:20])
	if off == 0 || n == 0 || n > 4096 {
		return ""
	}
	name := make([]byte, n)
	if _, err := f.ReadAt(name, int64(off)); err != nil {
		return ""
	}
	return string(name)
}

// CheckReadable says how to fix a path QEMU's unprivileged user
// (libvirt-qemu on Debian) cannot reach: every folder above it must be
// searchable by others and the file readable. nil when it can.
func CheckReadable(path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	if info.Mode().Perm()&0o004 == 0 {
		return fmt.Errorf("QEMU runs as an unprivileged user and cannot read %s, mode %s: chmod o+r %s",
			path, strconv.FormatUint(uint64(info.Mode().Perm()), 8), path)
	}
	for dir := filepath.Dir(path); ; dir = filepath.Dir(dir) {
		di, err := os.Stat(dir)
		if err == nil && di.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("QEMU runs as an unprivileged user and cannot enter %s, mode %s, above %s: make it searchable, e.g. chmod o+x %s, or keep the data folder (TESTBEDOS_DATA_DIR) or project elsewhere",
				dir, strconv.FormatUint(uint64(di.Mode().Perm()), 8), path, dir)
		}
		if dir == "/" || dir == "." {
			return nil
		}
	}
}
