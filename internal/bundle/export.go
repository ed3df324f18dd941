// Package bundle writes and reads deployment bundles: one .tar.gz with a
// deployment's project files, state, action logs, run-time impairments and
// the digests of its images, from which another server makes a new
// deployment that up brings back the same.
package bundle

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"time"

	"golang.org/x/sys/unix"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/topology"
)

// Names inside a bundle.
const (
	ManifestName    = "manifest.json"
	ProjectDir      = "project"
	StateName       = "state.json"
	RecordName      = "deployed.json"
	ImpairmentsName = "impairments.json"
	LogsDir         = "logs"
)

// skipDirs are project folders left out of a bundle: what
// generate-artefacts writes is made again from the rest, and an imported
// project's own bundle is not carried on.
var skipDirs = map[string]bool{"artefacts": true, MetaDir: true}

// Source is what Write puts in a bundle.
type Source struct {
	Deployment api.Deployment
	// State is the resolved state (state.json), nil before
	// generate-artefacts.
	State *topology.State
	// StateJSON is the state file as stored.
	StateJSON []byte
	// Record is the daemon's record of what is deployed, nil when none.
	Record []byte
	Logs   api.LogIndex
	// Images are the images' digests (Digests makes them).
	Images        []api.ImageDigest
	ServerVersion string
}

// Write writes the bundle of src to w: manifest.json first (so a reader
// learns what follows before it extracts anything), then the project
// files, read beneath the project folder without following any symlink.
func Write(ctx context.Context, w io.Writer, src Source) error {
	project := src.Deployment.ProjectLocation
	files, skipped, err := projectFiles(project)
	if err != nil {
		return err
	}
	m := api.BundleManifest{
		Format: api.BundleFormat, Deployment: src.Deployment.Name, ProjectLocation: project,
		State: src.Deployment.State, ExportedAt: time.Now().UTC(), ServerVersion: src.ServerVersion,
		Files: []api.BundleFile{}, Skipped: skipped, Logs: []api.BundleLog{}, Images: src.Images, Captures: []string{},
	}
	if m.Images == nil {
		m.Images = []api.ImageDigest{}
	}
	// Digests first: the manifest leads the archive.
	for _, rel := range files {
		sum, size, err := digestProjectFile(project, rel)
		if err != nil {
			return err
		}
		m.Files = append(m.Files, api.BundleFile{Path: rel, Size: size, SHA256: sum})
	}
	uuids := make([]string, 0, len(src.Logs))
	for id := range src.Logs {
		uuids = append(uuids, id)
	}
	sort.Slice(uuids, func(i, j int) bool {
		a, b := src.Logs[uuids[i]], src.Logs[uuids[j]]
		if !a.ExecutionTime.Equal(b.ExecutionTime) {
			return a.ExecutionTime.Before(b.ExecutionTime)
		}
		return uuids[i] < uuids[j]
	})
	for _, id := range uuids {
		e := src.Logs[id]
		_, err := os.Lstat(e.LogPath)
		m.Logs = append(m.Logs, api.BundleLog{UUID: id, Entry: e, Missing: err != nil})
	}

	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	now := time.Now()
	addBytes := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: now, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	mj, _ := json.MarshalIndent(m, "", "  ")
	if err := addBytes(ManifestName, mj); err != nil {
		return err
	}
	for _, f := range m.Files {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := addProjectFile(tw, project, f); err != nil {
			return err
		}
	}
	if src.StateJSON != nil {
		if err := addBytes(StateName, src.StateJSON); err != nil {
			return err
		}
	}
	if src.Record != nil {
		if err := addBytes(RecordName, src.Record); err != nil {
			return err
		}
		if imp := impairments(src.Record); imp != nil {
			data, _ := json.MarshalIndent(imp, "", "  ")
			if err := addBytes(ImpairmentsName, data); err != nil {
				return err
			}
		}
	}
	idx, _ := json.MarshalIndent(src.Logs, "", "  ")
	if err := addBytes(path.Join(LogsDir, "index.json"), idx); err != nil {
		return err
	}
	for _, l := range m.Logs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if l.Missing {
			continue
		}
		if err := addLog(tw, l); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

// projectFiles lists the project's regular files (slash-separated, relative
// paths), sorted; symlinks and special files are skipped, never followed.
func projectFiles(project string) (files, skipped []string, err error) {
	err = filepath.WalkDir(project, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(project, p)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			if skipDirs[rel] {
				return fs.SkipDir
			}
			return nil
		case d.Type().IsRegular():
			files = append(files, rel)
		default:
			skipped = append(skipped, rel)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("list the project folder %s: %w", project, err)
	}
	return files, skipped, nil
}

func digestProjectFile(project, rel string) (string, int64, error) {
	f, err := topology.OpenProjectFile(project, rel)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("read %s: %w", f.Name(), err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), n, nil
}

// addProjectFile copies exactly the bytes the manifest counted: a file that
// changed since is an error, not a bundle that disagrees with itself.
func addProjectFile(tw *tar.Writer, project string, bf api.BundleFile) error {
	f, err := topology.OpenProjectFile(project, bf.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: ProjectDir + "/" + bf.Path, Mode: int64(info.Mode().Perm()), Size: bf.Size, ModTime: info.ModTime(), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(tw, h), f, bf.Size); err != nil {
		return fmt.Errorf("%s changed while it was exported: %w", f.Name(), err)
	}
	if "sha256:"+hex.EncodeToString(h.Sum(nil)) != bf.SHA256 {
		return fmt.Errorf("%s changed while it was exported; export again", f.Name())
	}
	return nil
}

// addLog copies one action log, opened without following a symlink; a log
// that grows meanwhile (a running action) is cut at its size when opened.
func addLog(tw *tar.Writer, l api.BundleLog) error {
	f, err := openNoFollow(l.Entry.LogPath)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if !info.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", l.Entry.LogPath)
	}
	if err := tw.WriteHeader(&tar.Header{Name: LogsDir + "/" + l.UUID + ".log", Mode: 0o644, Size: info.Size(), ModTime: info.ModTime(), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err = io.CopyN(tw, f, info.Size())
	return err
}

func openNoFollow(p string) (*os.File, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	return os.NewFile(uintptr(fd), p), nil
}

// impairments picks the run-time impairments out of a deployed record:
// guest → interface → setting; nil when there are none.
func impairments(record []byte) map[string]map[string]api.Impairment {
	var r struct {
		Hosts map[string]struct {
			Guests map[string]struct {
				Impairments map[string]api.Impairment `json:"impairments"`
			} `json:"guests"`
		} `json:"hosts"`
	}
	if json.Unmarshal(record, &r) != nil {
		return nil
	}
	out := map[string]map[string]api.Impairment{}
	for _, h := range r.Hosts {
		for g, gr := range h.Guests {
			if len(gr.Impairments) > 0 {
				out[g] = gr.Impairments
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// ErrNotBundle: the upload is not a bundle this server reads.
var ErrNotBundle = api.Categorized(api.ErrBadRequest, "not a TestbedOS bundle")
