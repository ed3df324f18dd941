package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest/docker/dockertest"
)

// TestBundleImageDigests: a bundle names a docker guest's image with the
// id dockerd gives it, and an import where that image is missing names it
// with that digest.
func TestBundleImageDigests(t *testing.T) {
	cli := dockertest.Client(t)
	image := dockertest.Image(t, cli)
	inspect, err := cli.ImageInspect(context.Background(), image)
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t)
	dir := project(t, `machines:
  - name: c1
    network: [{switch: sw0, ip: 10.0.0.10}]
    docker: {image: `+image+`, command: [sleep, infinity]}
network:
  switches:
    sw0: {subnet: 10.0.0.0/24}
`, nil)
	name := deployment(t, s, "bimg", dir)
	mustSucceed(t, s, name, cmd(api.CmdGenerateArtefacts))
	ctx := context.Background()
	r, err := s.c.Export(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(r)
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	m := manifestOf(t, data)
	if len(m.Images) != 1 || m.Images[0].Ref != image || m.Images[0].SHA256 != inspect.ID || m.Images[0].Guest != "c1" {
		t.Fatalf("manifest images %+v, want %s with id %s", m.Images, image, inspect.ID)
	}

	res, err := s.c.Import(ctx, bytes.NewReader(data), name+"-same")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Missing) != 0 {
		t.Errorf("the image is here, yet the import says: %v", res.Missing)
	}
	// The same bundle naming an image this dockerd has not got.
	gone := "tbos-gone:" + strings.TrimPrefix(name, "bimg-")
	m.Images[0].Ref = gone
	res, err = s.c.Import(ctx, bytes.NewReader(withManifest(t, data, m)), name+"-gone")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Missing) != 1 || !strings.Contains(res.Missing[0], gone) || !strings.Contains(res.Missing[0], inspect.ID) {
		t.Fatalf("missing %q, want %s named with %s", res.Missing, gone, inspect.ID)
	}
}

func manifestOf(t *testing.T, bundle []byte) api.BundleManifest {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(bundle))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	if _, err := tr.Next(); err != nil {
		t.Fatal(err)
	}
	var m api.BundleManifest
	if err := json.NewDecoder(tr).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// withManifest is bundle with its manifest replaced by m.
func withManifest(t *testing.T, bundle []byte, m api.BundleManifest) []byte {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(bundle))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	tw := tar.NewWriter(zw)
	for i := 0; ; i++ {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		if i == 0 {
			body, _ = json.Marshal(m)
			h.Size = int64(len(body))
		}
		tw.WriteHeader(h)
		tw.Write(body)
	}
	tw.Close()
	zw.Close()
	return out.Bytes()
}
