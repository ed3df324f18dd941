package libvirt

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// TestVirtualSize: expand_gigabytes grows a disk past the size its image
// tells: a qcow2's header field, a raw file's length.
func TestVirtualSize(t *testing.T) {
	dir := t.TempDir()
	hdr := make([]byte, 72)
	copy(hdr, "QFI\xfb")
	binary.BigEndian.PutUint32(hdr[4:], 3)
	binary.BigEndian.PutUint64(hdr[24:], 2<<30)
	qcow := filepath.Join(dir, "a.qcow2")
	raw := filepath.Join(dir, "a.img")
	if err := os.WriteFile(qcow, hdr, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(raw, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		file string
		want uint64
	}{
		{qcow, 2 << 30},
		{raw, 4096},
	}
	for _, tt := range tests {
		format, err := imageFormat(tt.file)
		if err != nil {
			t.Fatal(err)
		}
		got, err := virtualSize(tt.file, format)
		if err != nil || got != tt.want {
			t.Errorf("virtualSize(%s, %s) = %d, %v; want %d", filepath.Base(tt.file), format, got, err, tt.want)
		}
	}
	if _, err := virtualSize(filepath.Join(dir, "short.qcow2"), "qcow2"); err == nil {
		t.Error("virtualSize of a missing file: no error")
	}
}
