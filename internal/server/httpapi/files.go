package httpapi

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/topology"
)

// The project files routes: the GUI edits and uploads kvm-compose.yaml and
// the project's scripts through them, so a user without a shell can change
// a lab. Every path is resolved inside the deployment's project folder
// (no "..", no symlink out of it); a write replaces the file atomically.
const (
	FilesListRoute   = "GET /api/deployments/{name}/files"
	FilesGetRoute    = "GET /api/deployments/{name}/files/{path...}"
	FilesPutRoute    = "PUT /api/deployments/{name}/files/{path...}"
	FilesDeleteRoute = "DELETE /api/deployments/{name}/files/{path...}"
)

const (
	// maxProjectFile bounds a file read or written through these routes.
	maxProjectFile = maxBody
	// maxListed bounds the listing of a project folder.
	maxListed = 500
	// maxListDepth is how deep the listing goes into sub-folders.
	maxListDepth = 4
)

// ProjectFile and ProjectFiles are the answers of the files routes.
type (
	ProjectFile  = api.ProjectFile
	ProjectFiles = api.ProjectFiles
)

// filePath checks the path of a files route: relative, clean, no hidden
// component (the daemon's and editors' own files), no NUL.
func filePath(p string) (string, error) {
	bad := func(why string) error {
		return errorf(http.StatusBadRequest, nil, fmt.Sprintf("file path %q %s", p, why))
	}
	switch {
	case p == "":
		return "", errorf(http.StatusBadRequest, nil, "a file path must follow files/ (GET …/files lists them)")
	case strings.ContainsRune(p, 0):
		return "", bad("holds a NUL byte")
	case strings.HasPrefix(p, "/"):
		return "", bad("must be relative to the project folder")
	case path.Clean(p) != p:
		return "", bad("is not clean (no ., .. or doubled /)")
	}
	for _, c := range strings.Split(p, "/") {
		if strings.HasPrefix(c, ".") {
			return "", bad("has a hidden or parent component; those files are not served")
		}
	}
	return p, nil
}

// projectOf reads the deployment the request names.
// projectFileOf is the deployment and the checked file path of a route on
// one project file.
func projectFileOf(d Deps, r *http.Request) (api.Deployment, string, error) {
	dep, err := projectOf(d, r)
	if err != nil {
		return dep, "", err
	}
	p, err := filePath(r.PathValue("path"))
	return dep, p, err
}

func projectOf(d Deps, r *http.Request) (api.Deployment, error) {
	dep, err := d.Store.Deployment(r.Context(), r.PathValue("name"))
	if err != nil {
		return dep, err
	}
	if dep.ProjectLocation == "" {
		return dep, errorf(http.StatusNotFound, nil, "deployment "+dep.Name+" has no project folder")
	}
	return dep, nil
}

func getProjectFile(d Deps) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		dep, p, err := projectFileOf(d, r)
		if err != nil {
			return err
		}
		data, err := topology.ReadProjectFile(dep.ProjectLocation, p, maxProjectFile)
		if err != nil {
			return fileError(err, p)
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(data)
		return nil
	}
}

func listProjectFiles(d Deps) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		dep, err := projectOf(d, r)
		if err != nil {
			return err
		}
		list, err := listProject(dep.ProjectLocation)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, list)
		return nil
	}
}

func putProjectFile(d Deps) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		dep, p, err := projectFileOf(d, r)
		if err != nil {
			return err
		}
		data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxProjectFile))
		if err != nil {
			return err
		}
		created, err := writeProjectFile(dep.ProjectLocation, p, data)
		if err != nil {
			return fileError(err, p)
		}
		code := http.StatusOK
		if created {
			code = http.StatusCreated
		}
		writeJSON(w, code, ProjectFile{Path: p, Size: int64(len(data)), Executable: isScript(data)})
		return nil
	}
}

func deleteProjectFile(d Deps) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		dep, p, err := projectFileOf(d, r)
		if err != nil {
			return err
		}
		if p == topology.DefaultFile {
			return errorf(http.StatusBadRequest, nil, "DELETE takes files other than "+topology.DefaultFile)
		}
		root, err := os.OpenRoot(dep.ProjectLocation)
		if err != nil {
			return err
		}
		defer root.Close()
		info, err := root.Lstat(p)
		if err != nil {
			return fileError(err, p)
		}
		if !info.Mode().IsRegular() {
			return fileError(fmt.Errorf("%s %w", p, topology.ErrNotRegular), p)
		}
		if err := root.Remove(p); err != nil {
			return fileError(err, p)
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// writeProjectFile replaces p inside project with data: written to a
// temporary file beside it, synced, then renamed over it, so a reader sees
// the old file or the new one whole. A new file's folders are made; a
// script (#!) is made executable, an existing file keeps its mode.
func writeProjectFile(project, p string, data []byte) (created bool, err error) {
	root, err := os.OpenRoot(project)
	if err != nil {
		return false, err
	}
	defer root.Close()
	mode := fs.FileMode(0o644)
	if isScript(data) {
		mode = 0o755
	}
	switch info, err := root.Lstat(p); {
	case err == nil && !info.Mode().IsRegular():
		return false, fmt.Errorf("%s %w", p, topology.ErrNotRegular)
	case err == nil:
		mode = info.Mode().Perm()
		if isScript(data) {
			mode |= 0o111 & (mode >> 2)
		}
	case errors.Is(err, fs.ErrNotExist):
		created = true
		if dir := path.Dir(p); dir != "." {
			if err := root.MkdirAll(dir, 0o755); err != nil {
				return false, err
			}
		}
	default:
		return false, err
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	tmp := path.Join(path.Dir(p), ".tmp-"+hex.EncodeToString(rnd[:])+"-"+path.Base(p))
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return false, err
	}
	defer root.Remove(tmp) // gone after the rename; cleans up a failure
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode) // past the umask
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, err
	}
	return created, root.Rename(tmp, p)
}

func isScript(data []byte) bool { return bytes.HasPrefix(data, []byte("#!")) }

// listProject lists the regular files of the project folder, hidden ones
// and deep folders left out.
func listProject(project string) (ProjectFiles, error) {
	root, err := os.OpenRoot(project)
	if err != nil {
		return ProjectFiles{}, err
	}
	defer root.Close()
	out := ProjectFiles{Files: []ProjectFile{}}
	err = fs.WalkDir(root.FS(), ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return nil // an unreadable folder is left out
		}
		if p != "." && strings.HasPrefix(e.Name(), ".") {
			if e.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if e.IsDir() {
			if strings.Count(p, "/") >= maxListDepth {
				return fs.SkipDir
			}
			return nil
		}
		if !e.Type().IsRegular() {
			return nil
		}
		if len(out.Files) == maxListed {
			out.Truncated = true
			return fs.SkipAll
		}
		info, err := e.Info()
		if err != nil {
			return nil
		}
		out.Files = append(out.Files, ProjectFile{Path: p, Size: info.Size(), Executable: info.Mode()&0o100 != 0})
		return nil
	})
	sort.Slice(out.Files, func(i, j int) bool { return out.Files[i].Path < out.Files[j].Path })
	return out, err
}

// fileError puts a file error in its category: absent is 404, a path out
// of the folder 400, too large 413, not a regular file 422.
func fileError(err error, p string) error {
	var pe *fs.PathError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return errorf(http.StatusNotFound, err, fmt.Sprintf("the project folder has no file %s", p))
	case errors.Is(err, topology.ErrTooLarge):
		return errorf(http.StatusRequestEntityTooLarge, err, fmt.Sprintf("%s is larger than %d bytes", p, maxProjectFile))
	case errors.Is(err, topology.ErrEscapes), errors.As(err, &pe) && strings.Contains(pe.Err.Error(), "escapes"):
		return errorf(http.StatusBadRequest, err, fmt.Sprintf("%s leads out of the project folder", p))
	}
	return err
}
