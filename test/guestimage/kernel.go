package guestimage

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os/exec"
)

// extractVmlinux returns the uncompressed ELF kernel inside an x86 bzImage,
// if it can boot through PVH (QEMU -kernel vmlinux enters it directly in
// 32-bit mode: no BIOS real-mode setup and no in-guest decompression,
// which under TCG saves seconds). It knows gzip, xz and zstd payloads.
func extractVmlinux(bzImage []byte) ([]byte, error) {
	// The boot protocol's setup header (Documentation/arch/x86/boot.rst).
	if len(bzImage) < 0x250 || string(bzImage[0x202:0x206]) != "HdrS" {
		return nil, errors.New("not a bzImage")
	}
	setupSects := int(bzImage[0x1f1])
	if setupSects == 0 {
		setupSects = 4
	}
	off := (setupSects+1)*512 + int(binary.LittleEndian.Uint32(bzImage[0x248:]))
	n := int(binary.LittleEndian.Uint32(bzImage[0x24c:]))
	if off < 0 || n <= 0 || off+n > len(bzImage) {
		return nil, errors.New("bzImage payload out of range")
	}
	payload := bzImage[off : off+n]
	var out []byte
	var err error
	switch {
	case bytes.HasPrefix(payload, []byte{0x1f, 0x8b}):
		var zr *gzip.Reader
		if zr, err = gzip.NewReader(bytes.NewReader(payload)); err == nil {
			zr.Multistream(false)
			out, err = io.ReadAll(zr)
		}
	case bytes.HasPrefix(payload, []byte("\xfd7zXZ\x00")):
		out, err = filter(payload, "xz", "-dc", "--single-stream")
	case bytes.HasPrefix(payload, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		out, err = filter(payload, "zstd", "-dcq")
	default:
		return nil, fmt.Errorf("unsupported kernel compression (payload starts % x)", payload[:min(6, len(payload))])
	}
	if err != nil {
		return nil, err
	}
	f, err := elf.NewFile(bytes.NewReader(out))
	if err != nil {
		return nil, fmt.Errorf("payload: %v", err)
	}
	if !hasPVHNote(f) {
		return nil, errors.New("kernel has no PVH entry point (CONFIG_PVH)")
	}
	return out, nil
}

// hasPVHNote looks for the Xen ELF note XEN_ELFNOTE_PHYS32_ENTRY (18),
// which QEMU needs to boot an ELF kernel through PVH.
func hasPVHNote(f *elf.File) bool {
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		b, err := io.ReadAll(p.Open())
		if err != nil {
			continue
		}
		for len(b) >= 12 {
			nameSz := int(binary.LittleEndian.Uint32(b[0:]))
			descSz := int(binary.LittleEndian.Uint32(b[4:]))
			typ := binary.LittleEndian.Uint32(b[8:])
			name := 12 + (nameSz+3)&^3
			next := name + (descSz+3)&^3
			if next > len(b) || nameSz > len(b) {
				break
			}
			if nameSz >= 3 && string(b[12:15]) == "Xen" && typ == 18 {
				return true
			}
			b = b[next:]
		}
	}
	return false
}

func filter(in []byte, tool string, args ...string) ([]byte, error) {
	if _, err := exec.LookPath(tool); err != nil {
		return nil, fmt.Errorf("%s not found (scripts/install-test-deps.sh installs it)", tool)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(tool, args...)
	cmd.Stdin = bytes.NewReader(in)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %v: %s", tool, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}
