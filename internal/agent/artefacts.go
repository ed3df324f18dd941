package agent

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/testbedos/testbedos/internal/actlog"
	"github.com/testbedos/testbedos/internal/atomicfile"
	"github.com/testbedos/testbedos/internal/guest/sshkey"
	"github.com/testbedos/testbedos/internal/topology"
)

// Artefact is one file generate-artefacts wrote on the main for a guest of a
// client host, as a guest call names it: its content's sha256 (pushed to the
// client's cache first) and its mode.
type Artefact struct {
	SHA256 string      `json:"sha256"`
	Mode   fs.FileMode `json:"mode"`
}

// maxArtefact bounds one artefact (a seed image is a few MiB).
const maxArtefact = 64 << 20

// artefactDirMode lets QEMU's unprivileged user enter the working folders
// to open a guest's seed and pinned files, without listing them.
const artefactDirMode = 0o711

// guestArtefacts are the files of the main's generated folder of deployment
// dep that guest g's driver reads on the client: the guest's own folder
// (<generated>/<dep>/<kind>/<guest>/, hidden entries aside) and the
// deployment's SSH key, by path relative to the deployment's folder. They
// are pushed (each content once) and the map says what to install where.
func (p *proxyDriver) guestArtefacts(ctx context.Context, dep string, g *topology.Guest, log actlog.Log) (map[string]Artefact, error) {
	if p.h.opts.Generated == "" {
		return nil, fmt.Errorf("guest %s: this main has no folder of generated artefacts to send to host %s", g.Name, p.h.Name())
	}
	base := filepath.Join(p.h.opts.Generated, dep)
	out := map[string]Artefact{}
	for _, dir := range []string{filepath.Join(g.Kind, g.Name), sshkey.Dir} {
		entries, err := os.ReadDir(filepath.Join(base, dir))
		if err != nil {
			return nil, fmt.Errorf("guest %s: artefacts: %w (run generate-artefacts)", g.Name, err)
		}
		for _, e := range entries {
			if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			info, err := e.Info()
			if err != nil {
				return nil, err
			}
			rel := filepath.Join(dir, e.Name())
			hash, _, err := p.h.pushLocal(ctx, filepath.Join(base, rel), rel, log)
			if err != nil {
				return nil, fmt.Errorf("guest %s: artefact %s: %w", g.Name, rel, err)
			}
			out[rel] = Artefact{SHA256: hash, Mode: info.Mode().Perm()}
		}
	}
	return out, nil
}

// installArtefacts copies the artefacts of a guest call from the cache into
// the deployment's working folder on this host, where the driver reads them
// as it would in the main's generated folder. Paths leaving the folder are
// refused; nothing is followed through a symlink.
func (s *server) installArtefacts(deployment string, arts map[string]Artefact) error {
	if len(arts) == 0 {
		return nil
	}
	work := s.workDir(deployment)
	for _, d := range []string{filepath.Join(s.opts.DataDir, "agent"), filepath.Dir(work), work} {
		if err := os.MkdirAll(d, artefactDirMode); err != nil {
			return err
		}
		if err := os.Chmod(d, artefactDirMode); err != nil {
			return err
		}
	}
	root, err := atomicfile.OpenRoot(work)
	if err != nil {
		return err
	}
	defer root.Close()
	for rel, a := range arts {
		if !filepath.IsLocal(rel) {
			return badRequest("artefact %q is not a path inside the deployment's folder", rel)
		}
		present, err := s.cache.has(a.SHA256)
		if err != nil || !present {
			return badRequest("artefact %s (sha256 %s) is not in this host's cache", rel, a.SHA256)
		}
		data, err := topology.ReadRegularFile(s.cache.path(a.SHA256), maxArtefact)
		if err != nil {
			return fmt.Errorf("artefact %s: %w", rel, err)
		}
		if err := root.MkdirAll(filepath.Dir(rel), artefactDirMode); err != nil {
			return err
		}
		if err := root.Write(rel, data, a.Mode.Perm()); err != nil {
			return err
		}
	}
	return nil
}
