package libvirt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/testbedos/testbedos/internal/actlog"
	"github.com/testbedos/testbedos/internal/images"
	"github.com/testbedos/testbedos/internal/topology"
)

// cachedImage returns the cloud image of spec from the server's image
// cache (downloaded the first time, fetched again when the upstream file
// changed, checked against the YAML's sha256), and its format (qcow2 or
// raw, from its first bytes). The image is the backing file of the guests'
// linked clones, so QEMU's user must be able to read it: a start refused
// for that names the folder to open (permissionHint).
func (d *Driver) cachedImage(ctx context.Context, spec *topology.LibvirtSpec, log actlog.Log) (string, string, error) {
	e, err := d.images.Resolve(ctx, images.Source{Name: spec.ImageName, URL: spec.ImageURL, SHA256: spec.ImageSHA256}, log.Printf)
	if err != nil {
		return "", "", err
	}
	file := d.images.BlobPath(e.SHA256)
	log.Printf("    image %s: sha256 %s, %.1f MiB%s", e.Name, e.SHA256[:16], float64(e.Size)/(1<<20), fromText(e.URL))
	format, err := imageFormat(file)
	return file, format, err
}

func fromText(url string) string {
	if url == "" {
		return ", imported"
	}
	return ", from " + url
}

// imageFormat tells qcow2 from raw by the qcow2 magic.
func imageFormat(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	magic := make([]byte, 4)
	if _, err := io.ReadFull(f, magic); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", err
	}
	if bytes.Equal(magic, []byte("QFI\xfb")) {
		return "qcow2", nil
	}
	return "raw", nil
}

// virtualSize is the size a guest sees of an image: a qcow2's header field
// (big-endian, bytes 24–31), a raw file's length.
func virtualSize(file, format string) (uint64, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if format != "qcow2" {
		info, err := f.Stat()
		if err != nil {
			return 0, err
		}
		return uint64(info.Size()), nil
	}
	hdr := make([]byte, 32)
	if _, err := io.ReadFull(f, hdr); err != nil {
		return 0, fmt.Errorf("%s: qcow2 header: %w", file, err)
	}
	return binary.BigEndian.Uint64(hdr[24:32]), nil
}
