package bundle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/topology"
)

// DockerImages finds a docker image's id ("sha256:…") and size by name;
// ok is false when the image is not there.
type DockerImages func(ctx context.Context, ref string) (id string, size int64, ok bool, err error)

// Digests lists the images st's guests use with their sha256: docker
// images by id, a VM's disk, ISO, kernel and initrd files by content, a
// cloud image by URL (its digest is the image cache's business). Each
// image is listed once per guest; a file or image that is not there has
// no digest.
func Digests(ctx context.Context, st *topology.State, project string, docker DockerImages) []api.ImageDigest {
	out := []api.ImageDigest{}
	sums := map[string]api.ImageDigest{} // by ref: each file hashed once
	for _, g := range st.Guests {
		add := func(kind, ref string) {
			if ref == "" {
				return
			}
			if d, ok := sums[ref]; ok {
				d.Guest = g.Name
				out = append(out, d)
				return
			}
			d := api.ImageDigest{Guest: g.Name, Kind: kind, Ref: ref}
			switch kind {
			case "docker":
				if docker != nil {
					if id, size, ok, err := docker(ctx, ref); err == nil && ok {
						d.SHA256, d.Size = id, size
					}
				}
			case "url":
			default:
				if sum, size, err := fileDigest(ref); err == nil {
					d.SHA256, d.Size = sum, size
				}
				d.InProject = inside(project, ref)
			}
			sums[ref] = d
			out = append(out, d)
		}
		switch {
		case g.Docker != nil:
			add("docker", g.Docker.Image)
		case g.Libvirt != nil:
			lv := g.Libvirt
			add("disk", lv.DiskPath)
			add("iso", lv.ISOPath)
			add("kernel", lv.Kernel)
			add("initrd", lv.Initrd)
			add("url", lv.ImageURL)
		}
	}
	return out
}

func inside(project, p string) bool {
	rel, err := filepath.Rel(project, p)
	return err == nil && filepath.IsLocal(rel)
}

// fileDigest hashes a regular file, never through a symlink at its last
// component.
func fileDigest(p string) (string, int64, error) {
	f, err := openNoFollow(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil || !info.Mode().IsRegular() {
		return "", 0, fmt.Errorf("%s is not a regular file", p)
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), n, nil
}

// DockerSocket is the Docker Engine's socket: DOCKER_HOST when it names a
// unix socket, else the default.
func DockerSocket() string {
	if h := os.Getenv("DOCKER_HOST"); strings.HasPrefix(h, "unix://") {
		return strings.TrimPrefix(h, "unix://")
	}
	return "/var/run/docker.sock"
}

// EngineImages asks the Docker Engine at socket for images (GET
// /images/{name}/json): the id is the image's content digest.
func EngineImages(socket string) DockerImages {
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}}
	return func(ctx context.Context, ref string) (string, int64, bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker/images/"+url.PathEscape(ref)+"/json", nil)
		if err != nil {
			return "", 0, false, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return "", 0, false, err
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			return "", 0, false, nil
		}
		if resp.StatusCode != http.StatusOK {
			return "", 0, false, fmt.Errorf("docker: image %s: %s", ref, resp.Status)
		}
		var img struct {
			ID   string `json:"Id"`
			Size int64  `json:"Size"`
		}
		if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&img); err != nil {
			return "", 0, false, err
		}
		return img.ID, img.Size, true, nil
	}
}

// Check compares the bundle's images with what this server has: the
// images as found here, and a line per image that is missing or differs,
// naming its digest. project is the new project folder (files inside it
// came with the bundle).
func Check(ctx context.Context, images []api.ImageDigest, oldProject, project string, docker DockerImages) ([]api.ImageDigest, []string) {
	out := []api.ImageDigest{}
	missing := []string{}
	seen := map[string]bool{}
	for _, want := range images {
		got := want
		got.SHA256, got.Size = "", 0
		switch want.Kind {
		case "docker":
			if docker != nil {
				if id, size, ok, err := docker(ctx, want.Ref); err == nil && ok {
					got.SHA256, got.Size = id, size
				}
			}
		case "url":
			out = append(out, want)
			continue
		default:
			if want.InProject {
				if rel, err := filepath.Rel(oldProject, want.Ref); err == nil {
					got.Ref = filepath.Join(project, rel)
				}
			}
			if sum, size, err := fileDigest(got.Ref); err == nil {
				got.SHA256, got.Size = sum, size
			}
		}
		out = append(out, got)
		if want.SHA256 == "" || got.SHA256 == want.SHA256 || seen[want.Ref] {
			continue
		}
		seen[want.Ref] = true
		what := "is not on this server"
		if got.SHA256 != "" {
			what = "differs here (" + got.SHA256 + ")"
		}
		missing = append(missing, fmt.Sprintf("%s image %s %s %s: the bundle's has digest %s (guest %s)", want.Kind, want.Ref, what, hint(want.Kind), want.SHA256, want.Guest))
	}
	return out, missing
}

func hint(kind string) string {
	if kind == "docker" {
		return "(docker load or docker import it before up)"
	}
	return "(put the same file there before up)"
}
