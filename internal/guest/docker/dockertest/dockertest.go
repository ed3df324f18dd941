// Package dockertest helps tests that need the host's dockerd: a client
// (skipping, or failing under TESTBEDOS_REQUIRE_INTEGRATION=1, when there is
// no daemon) and a small test image imported from Debian's busybox-static,
// since no registry is reachable.
package dockertest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/testbedos/testbedos/internal/testenv"
)

// Busybox is where Debian's busybox-static installs its binary.
const Busybox = "/bin/busybox"

// Client returns a client of the host's dockerd, closed at cleanup. It
// skips t (or fails it, see testenv) when dockerd does not answer.
func Client(t testing.TB) *client.Client {
	t.Helper()
	testenv.RequireRoot(t, "talks to dockerd and plugs veths into containers")
	cli, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
		testenv.Skipf(t, "needs a running dockerd (apt-get install docker.io; scripts/start-docker.sh): %v", err)
	}
	return cli
}

// Image imports a fresh image (busybox's applets under /bin, /etc/passwd
// with root and nobody, empty /tmp) tagged with a unique name, removed at
// cleanup, and returns its reference. changes are Dockerfile instructions
// applied at import (docker import --change), e.g. ENTRYPOINT ["/bin/false"].
func Image(t testing.TB, cli *client.Client, changes ...string) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	ref := "tbos-test-busybox:" + hex.EncodeToString(b)
	importImage(t, cli, ref, changes)
	return ref
}

// ImageAs makes the test image under a fixed reference (an example's
// busybox:local, say) for the test's length: imported now and removed at
// cleanup. A reference the host's dockerd already has is left as it is
// (someone else's image), and neither imported nor removed.
func ImageAs(t testing.TB, cli *client.Client, ref string, changes ...string) {
	t.Helper()
	if _, err := cli.ImageInspect(context.Background(), ref); err == nil {
		t.Logf("dockerd already has %s: using it as it is", ref)
		return
	}
	importImage(t, cli, ref, changes)
}

func importImage(t testing.TB, cli *client.Client, ref string, changes []string) {
	t.Helper()
	if _, err := os.Stat(Busybox); err != nil {
		testenv.Skipf(t, "needs %s (apt-get install busybox-static): %v", Busybox, err)
	}
	archive, err := rootfs()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	res, err := cli.ImageImport(ctx, client.ImageImportSource{Source: archive, SourceName: "-"}, ref, client.ImageImportOptions{Changes: changes})
	if err != nil {
		t.Fatalf("import test image: %v", err)
	}
	_, _ = io.Copy(io.Discard, res)
	res.Close()
	t.Cleanup(func() {
		if _, err := cli.ImageRemove(context.Background(), ref, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil {
			t.Errorf("remove test image %s: %v", ref, err)
		}
	})
}

// rootfs is a tar of the image's tree.
func rootfs() (io.Reader, error) {
	bin, err := os.ReadFile(Busybox)
	if err != nil {
		return nil, err
	}
	out, err := exec.Command(Busybox, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("busybox --list: %w", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := []struct {
		name string
		mode int64
	}{{"bin", 0o755}, {"etc", 0o755}, {"tmp", 0o1777}, {"root", 0o700}, {"proc", 0o555}, {"sys", 0o555}, {"dev", 0o755}}
	for _, d := range dirs {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d.name + "/", Mode: d.mode}); err != nil {
			return nil, err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755, Size: int64(len(bin))}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(bin); err != nil {
		return nil, err
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet == "busybox" || strings.Contains(applet, "/") {
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + applet, Linkname: "busybox", Mode: 0o777}); err != nil {
			return nil, err
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/tmp:/bin/sh\n",
		"etc/group":  "root:x:0:\nnogroup:x:65534:\n",
	}
	for _, name := range []string{"etc/passwd", "etc/group"} {
		body := files[name]
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body))}); err != nil {
			return nil, err
		}
		if _, err := io.WriteString(tw, body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return &buf, nil
}
