package topology

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Validate checks every file the topology names: relative to projectDir or
// absolute, it must resolve, symlinks followed, to a regular file inside
// projectDir. Problems come back as a *ValidationError; a project folder that
// cannot be read is a plain error.
func (c *Config) Validate(projectDir string, imageDirs ...string) error {
	_, ps, err := c.resolveFiles(projectDir, imageDirs)
	if err != nil {
		return err
	}
	return newValidationError(ps)
}

// fileRef is one path the YAML names.
type fileRef struct {
	field string // e.g. machines[0].netns.setup_script
	path  string // as written
	dirOK bool   // a folder will do too (a volume's source)
	// image: a disk or ISO, which may also lie under an allowed image
	// folder (Options.ImageDirs) outside the project.
	image bool
}

// files lists the paths machine i names, skipping empty ones.
func (m *Machine) files(mp string) []fileRef {
	var refs []fileRef
	add := func(field, path string) {
		if path != "" {
			refs = append(refs, fileRef{mp + "." + field, path, false, false})
		}
	}
	if m.Netns != nil {
		add("netns.setup_script", m.Netns.SetupScript)
	}
	if l := m.Libvirt; l != nil {
		add("libvirt.setup_script", l.SetupScript)
		image := func(field, path string) {
			if path != "" {
				refs = append(refs, fileRef{field: mp + "." + field, path: path, image: true})
			}
		}
		if d := l.Type.ExistingDisk; d != nil {
			image("libvirt.libvirt_type.existing_disk.path", d.Path)
		}
		if g := l.Type.ISOGuest; g != nil {
			image("libvirt.libvirt_type.iso_guest.path", g.Path)
		}
		if ci := l.Type.CloudImage; ci != nil {
			const cp = "libvirt.libvirt_type.cloud_image."
			add(cp+"setup_script", ci.SetupScript)
			add(cp+"run_script", ci.RunScript)
			if ci.Context != "" {
				refs = append(refs, fileRef{mp + "." + cp + "context", ci.Context, true, false})
			}
		}
		if k := l.Type.Kernel; k != nil {
			add("libvirt.libvirt_type.kernel.kernel", k.Kernel)
			add("libvirt.libvirt_type.kernel.initrd", k.Initrd)
		}
	}
	if d := m.Docker; d != nil {
		add("docker.setup_script", d.SetupScript)
		add("docker.env_file", d.EnvFile)
		for j, v := range d.Volumes {
			if v.Source != "" {
				refs = append(refs, fileRef{fmt.Sprintf("%s.docker.volumes[%d].source", mp, j), v.Source, true, false})
			}
		}
	}
	if s := m.Scaling; s != nil {
		for _, f := range cloneScriptFields(s) {
			add(f.field, f.script)
		}
	}
	return refs
}

// resolveFiles checks the files and maps each field path to the absolute,
// symlink-free path of its file.
func (c *Config) resolveFiles(projectDir string, imageDirs []string) (map[string]string, []Problem, error) {
	if projectDir == "" {
		return nil, nil, errors.New("topology: no project folder given")
	}
	root, err := filepath.Abs(projectDir)
	if err != nil {
		return nil, nil, fmt.Errorf("topology: project folder %s: %w", projectDir, err)
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, nil, fmt.Errorf("topology: project folder: %w", err)
	}
	resolved := map[string]string{}
	ps := problems{c: c}
	for i := range c.Machines {
		for _, ref := range c.Machines[i].files(fmt.Sprintf("machines[%d]", i)) {
			real, msg := projectFile(root, realRoot, ref.path, ref.dirOK)
			// A disk or ISO outside the project may lie under an image
			// folder; one named inside the project is the project's (a
			// missing one "does not exist").
			if msg != "" && ref.image && !Within(root, absUnder(root, ref.path)) {
				real, msg = imageFile(root, realRoot, ref.path, imageDirs)
			}
			if msg != "" {
				ps.addf(ref.field, "%s %s", ref.path, msg)
				continue
			}
			resolved[ref.field] = real
		}
	}
	return resolved, ps.list, nil
}

// absUnder is path made absolute against root, ${PWD} expanded.
func absUnder(root, path string) string {
	target := ExpandPWD(path, root)
	if !filepath.IsAbs(target) {
		target = filepath.Join(root, target)
	}
	return filepath.Clean(target)
}

// projectFile resolves path (relative to root, or absolute) to a regular file
// inside the project, or says why it cannot.
func projectFile(root, realRoot, path string, dirOK bool) (string, string) {
	if strings.ContainsRune(path, 0) {
		return "", "is not a valid path"
	}
	target := ExpandPWD(path, root)
	if !filepath.IsAbs(target) {
		target = filepath.Join(root, target)
	}
	target = filepath.Clean(target)
	if !Within(root, target) && !Within(realRoot, target) {
		return "", fmt.Sprintf("is outside the project folder %s", root)
	}
	real, err := filepath.EvalSymlinks(target)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", "does not exist in the project folder"
	case err != nil:
		return "", fmt.Sprintf("cannot be read: %v", err)
	case !Within(realRoot, real):
		return "", fmt.Sprintf("leads through a symlink to %s, outside the project folder %s", real, root)
	}
	info, err := os.Stat(real)
	switch {
	case err != nil:
		return "", fmt.Sprintf("cannot be read: %v", err)
	case dirOK && info.IsDir():
	case !info.Mode().IsRegular() && dirOK:
		return "", "is not a regular file or a folder"
	case !info.Mode().IsRegular():
		return "", "is not a regular file"
	}
	return real, ""
}

// ExpandPWD replaces ${PWD} (and $PWD) in a path of the YAML with the
// project folder, as the original's kvm-compose does.
func ExpandPWD(path, projectDir string) string {
	if !strings.Contains(path, "$") {
		return path
	}
	return strings.NewReplacer("${PWD}", projectDir, "$PWD", projectDir).Replace(path)
}

// Within reports whether path is dir or below it; both are clean and absolute.
func Within(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}
