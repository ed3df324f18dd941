package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/testbedos/testbedos/internal/actlog"
	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/atomicfile"

	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/sshkey"
	"github.com/testbedos/testbedos/internal/topology"
)

// writeArtefacts makes the deployment's SSH key (kept when there is one)
// and lets every driver that writes per-guest artefacts write them.
func (e *Engine) writeArtefacts(ctx context.Context, st *topology.State, out *atomicfile.Root, log actlog.Log) error {
	key, err := sshkey.Ensure(out, "testbedos-"+st.Deployment)
	if err != nil {
		return err
	}
	log.Printf("deployment SSH key %s", key.Path)
	for i := range st.Guests {
		g := &st.Guests[i]
		w, err := e.artefactWriter(g)
		if err != nil {
			return fmt.Errorf("guest %s: %w", g.Name, err)
		}
		if w == nil {
			continue
		}
		if err := w.WriteArtefacts(ctx, st, g, out, log); err != nil {
			return fmt.Errorf("guest %s: artefacts: %w", g.Name, err)
		}
	}
	return nil
}

// artefactWriter is the driver that writes guest g's artefacts: its host's
// driver, or for a guest of a client host (whose proxy writes none) the
// main's driver of its kind, which writes them here; the client host's
// proxy pushes them at up and the client's driver makes the paths in them
// its own. Nil: the kind writes none, or has no driver here (up reports
// the missing driver).
func (e *Engine) artefactWriter(g *topology.Guest) (guest.ArtefactWriter, error) {
	host, err := e.opts.Hosts.Host(g.Host)
	if err != nil {
		return nil, err
	}
	drv, err := host.Driver(g.Kind)
	if err != nil {
		return nil, nil
	}
	if w, err := guest.As[guest.ArtefactWriter](drv); err == nil {
		return w, nil
	}
	for _, h := range e.opts.Hosts.List() {
		if !h.Main || h.Name == g.Host {
			continue
		}
		main, err := e.opts.Hosts.Host(h.Name)
		if err != nil {
			return nil, err
		}
		if drv, err := main.Driver(g.Kind); err == nil {
			if w, err := guest.As[guest.ArtefactWriter](drv); err == nil {
				return w, nil
			}
		}
	}
	return nil, nil
}

// generatedDir is the server's folder of what generate-artefacts made for
// deployment name.
func (e *Engine) generatedDir(name string) string {
	return filepath.Join(e.opts.GeneratedDir, name)
}

// statePath is the state of deployment name that up, apply, plan and
// restore read.
func (e *Engine) statePath(name string) string {
	return filepath.Join(e.generatedDir(name), topology.StateFile)
}

// generatedDirMode lets QEMU's unprivileged user enter the generated
// folders to open a guest's seed, without listing them.
const generatedDirMode = 0o711

// writeGenerated writes the artefacts of st into the server's folder of the
// deployment, then their copy into <project>/artefacts, then the copy's
// state.json and last the server's state.json: a state never describes
// artefacts that are not there, and a generate that fails leaves no state
// for up to read. Every write goes through an os.Root: none follows a
// symlink out of its folder.
func (e *Engine) writeGenerated(ctx context.Context, d api.Deployment, st *topology.State, log actlog.Log) error {
	if err := os.MkdirAll(e.opts.GeneratedDir, generatedDirMode); err != nil {
		return fmt.Errorf("generated folder: %w", err)
	}
	data, err := atomicfile.OpenRoot(e.opts.GeneratedDir)
	if err != nil {
		return fmt.Errorf("generated folder: %w", err)
	}
	defer data.Close()
	gen, err := data.Sub(d.Name, generatedDirMode)
	if err != nil {
		return fmt.Errorf("generated folder: %w", err)
	}
	defer gen.Close()
	project, err := atomicfile.OpenRoot(d.ProjectLocation)
	if err != nil {
		return fmt.Errorf("project folder: %w", err)
	}
	defer project.Close()
	copyPath := topology.StatePath(d.ProjectLocation)
	out, err := project.Sub(filepath.Base(filepath.Dir(copyPath)), 0o755)
	if err != nil {
		return fmt.Errorf("artefacts folder: %w", err)
	}
	defer out.Close()
	// A state of an earlier generate must not outlive artefacts that this
	// one is about to replace.
	statePath := filepath.Join(gen.Dir(), topology.StateFile)
	for _, r := range []struct {
		root *atomicfile.Root
		path string
	}{{gen, statePath}, {out, copyPath}} {
		if err := r.root.Remove(r.path); err != nil {
			return fmt.Errorf("remove the old state: %w", err)
		}
	}
	if err := e.writeArtefacts(ctx, st, gen, log); err != nil {
		return err
	}
	state, err := topology.EncodeState(st)
	if err != nil {
		return err
	}
	if err := copyGenerated(gen.Dir(), out); err != nil {
		return fmt.Errorf("copy the artefacts into %s: %w", out.Dir(), err)
	}
	if err := out.Write(copyPath, state, 0o644); err != nil {
		return err
	}
	if err := gen.Write(statePath, state, 0o644); err != nil {
		return err
	}
	log.Printf("resolved %s on %s over %s", count(len(st.Guests), "guest"), count(len(st.Switches), "switch"), count(len(st.Hosts), "host"))
	for _, sw := range st.Switches {
		log.Printf("switch %s %s: bridge %s", sw.Name, sw.Subnet, sw.Bridge)
	}
	for _, g := range st.Guests {
		for _, ifc := range g.Interfaces {
			log.Printf("guest %s (%s on %s): %s %s %s on %s via %s", g.Name, g.Kind, g.Host, ifc.Name, ifc.Address, ifc.MAC, ifc.Switch, ifc.HostName)
		}
	}
	log.Printf("wrote %s, and a copy to read in %s", statePath, out.Dir())
	return nil
}

// maxCopied bounds a file copied into the project's artefacts/; larger
// ones (a console log) stay in the server's folder only.
const maxCopied = 64 << 20

// copyGenerated copies the regular files of the server's generated folder
// src (the state and hidden entries aside) into the project's artefacts
// folder out, keeping their modes. Symlinks are not followed: the folder
// holds none.
func copyGenerated(src string, out *atomicfile.Root) error {
	return filepath.WalkDir(src, func(path string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		switch {
		case de.IsDir() && rel != "." && strings.HasPrefix(de.Name(), "."):
			// The drivers' own (pinned project files).
			return filepath.SkipDir
		case de.IsDir():
			return out.MkdirAll(rel, 0o755)
		case !de.Type().IsRegular() || rel == topology.StateFile || strings.HasPrefix(de.Name(), "."):
			return nil
		}
		info, err := de.Info()
		if err != nil {
			return err
		}
		if info.Size() > maxCopied {
			return nil
		}
		data, err := topology.ReadRegularFile(path, maxCopied)
		if err != nil {
			return err
		}
		return out.Write(rel, data, info.Mode().Perm())
	})
}

// ClearArtefacts removes the project's artefacts folder and, as nothing is
// deployed, the server's generated folder and disks folder of the
// deployment.
func (e *Engine) ClearArtefacts(ctx context.Context, d api.Deployment, log actlog.Log) error {
	if err := e.checkNothingDeployed(ctx, d, api.CmdClearArtefacts); err != nil {
		return err
	}
	dirs := []string{filepath.Dir(topology.StatePath(d.ProjectLocation)), e.generatedDir(d.Name)}
	if e.opts.DisksDir != "" {
		dirs = append(dirs, filepath.Join(e.opts.DisksDir, d.Name))
	}
	removed := 0
	for _, dir := range dirs {
		if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		// RemoveAll deletes a symlink in dir's place, never what it
		// leads to.
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("clear artefacts: %w", err)
		}
		log.Printf("removed %s", dir)
		removed++
	}
	if removed == 0 {
		log.Printf("%s has no artefacts: nothing to clear", d.Name)
	}
	return nil
}
