package libvirt

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/testbedos/testbedos/internal/topology"
)

// maxContext bounds the files of a cloud image's context together.
const maxContext = 64 << 20

// contextTar packs cloud_image's context, read once from the project
// folder: a folder's regular files and folders (symlinks and special files
// are left out, and nothing is read from outside the project), or one
// file, named as in the project.
func contextTar(project, ref string) ([]byte, error) {
	rel, err := filepath.Rel(project, ref)
	if err != nil || !topology.Within(project, ref) {
		return nil, fmt.Errorf("context %s is outside the project folder %s", ref, project)
	}
	root, err := os.OpenRoot(project)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	info, err := root.Lstat(rel)
	if err != nil {
		return nil, fmt.Errorf("context: %w", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	var total int64
	add := func(name, file string, info fs.FileInfo) error {
		if info.IsDir() {
			return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: int64(info.Mode().Perm()), ModTime: info.ModTime()})
		}
		if total += info.Size(); total > maxContext {
			return fmt.Errorf("context %s: more than %d MiB", ref, maxContext>>20)
		}
		f, err := root.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: info.Size(), Mode: int64(info.Mode().Perm()), ModTime: info.ModTime()}); err != nil {
			return err
		}
		n, err := io.Copy(tw, io.LimitReader(f, info.Size()))
		if err == nil && n != info.Size() {
			err = fmt.Errorf("%s changed while it was read", file)
		}
		return err
	}
	switch {
	case info.Mode().IsRegular():
		err = add(filepath.Base(rel), rel, info)
	case info.IsDir():
		err = fs.WalkDir(root.FS(), filepath.ToSlash(rel), func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			name := p
			if top := filepath.ToSlash(rel); top != "." {
				name = strings.TrimPrefix(strings.TrimPrefix(p, top), "/")
			} else if p == "." {
				name = ""
			}
			if name == "" || !(e.IsDir() || e.Type().IsRegular()) {
				return nil
			}
			info, err := e.Info()
			if err != nil {
				return err
			}
			return add(path.Clean(name), filepath.FromSlash(p), info)
		})
	default:
		err = errors.New("is not a regular file or a folder")
	}
	if err != nil {
		return nil, fmt.Errorf("context %s: %w", ref, err)
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// copyContext unpacks the context generate-artefacts packed into the
// guest at topology.ContextTarget, over the guest's SSH client.
func copyContext(ctx context.Context, client *ssh.Client, g *topology.Guest, p paths) error {
	if g.Libvirt.Context == "" {
		return nil
	}
	data, err := topology.ReadRegularFile(p.contextTar, maxContext+maxContext/8)
	if err != nil {
		return fmt.Errorf("guest %s: context: %w (run generate-artefacts)", g.Name, err)
	}
	sess, err := client.NewSession()
	if err != nil {
		return fmt.Errorf("guest %s: ssh session: %w", g.Name, err)
	}
	defer sess.Close()
	stop := context.AfterFunc(ctx, func() { sess.Close() })
	defer stop()
	sess.Stdin = bytes.NewReader(data)
	t := shellQuote(topology.ContextTarget)
	out, err := sess.CombinedOutput("mkdir -p " + t + " && tar -xf - --no-same-owner -C " + t)
	if err != nil {
		return fmt.Errorf("guest %s: copy the context to %s: %w: %s", g.Name, topology.ContextTarget, err, tail(out, 500))
	}
	return nil
}
