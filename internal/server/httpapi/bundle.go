package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/bundle"
	"github.com/testbedos/testbedos/internal/store"
	"github.com/testbedos/testbedos/internal/topology"
)

// maxUpload bounds the bundle a POST /api/deployments/import sends (its
// compressed size; bundle.DefaultLimits bound what it unpacks to).
const maxUpload = 4 << 30

func (d Deps) dockerImages() bundle.DockerImages {
	if d.DockerImages != nil {
		return d.DockerImages
	}
	return bundle.EngineImages(bundle.DockerSocket())
}

// projectsDir is where imported deployments get their project folders.
func (d Deps) projectsDir() string {
	if d.DataDir == "" {
		return filepath.Join(os.TempDir(), "testbedos-projects")
	}
	return filepath.Join(d.DataDir, "projects")
}

func exportDeployment(d Deps) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		name := r.PathValue("name")
		if err := store.CheckName(name); err != nil {
			return err
		}
		dep, err := d.Store.Deployment(r.Context(), name)
		if err != nil {
			return err
		}
		src := bundle.Source{Deployment: dep}
		if st, data, err := resolvedState(d, dep); err == nil {
			src.State, src.StateJSON = st, data
			src.Images = bundle.Digests(r.Context(), st, dep.ProjectLocation, d.dockerImages())
		} else if status(err) != http.StatusNotFound {
			return err
		}
		if rec, err := d.Store.Deployed(r.Context(), name); err == nil && len(rec) > 0 {
			src.Record = rec
		} else if err != nil && !errors.Is(err, api.ErrNotFound) {
			return err
		}
		if src.Logs, err = d.Store.LogIndex(r.Context(), name); err != nil {
			return err
		}
		if d.Status != nil {
			src.ServerVersion = d.Status().Version
		}
		w.Header().Set("Content-Type", "application/gzip")
		w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name + ".tar.gz"}))
		if err := bundle.Write(r.Context(), w, src); err != nil {
			// The answer has started: break it off so the client sees a
			// failed transfer, not a short bundle.
			d.Logger.Warn("export failed", "deployment", name, "err", err)
			panic(http.ErrAbortHandler)
		}
		return nil
	}
}

func importDeployment(d Deps, folders *folderClaims) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		r.Body = http.MaxBytesReader(w, r.Body, maxUpload+1<<20)
		mr, err := r.MultipartReader()
		if err != nil {
			return errorf(http.StatusBadRequest, err, "want a multipart/form-data body with the parts bundle (the .tar.gz) and, optionally, name")
		}
		projects := d.projectsDir()
		if err := os.MkdirAll(projects, 0o755); err != nil {
			return err
		}
		var name string
		var spool *os.File
		defer func() {
			if spool != nil {
				spool.Close()
				os.Remove(spool.Name())
			}
		}()
		for {
			part, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return errorf(http.StatusBadRequest, err, "reading the multipart body: "+err.Error())
			}
			switch part.FormName() {
			case "name":
				data, _ := io.ReadAll(io.LimitReader(part, 256))
				name = strings.TrimSpace(string(data))
			case "bundle":
				if spool != nil {
					return errorf(http.StatusBadRequest, nil, "more than one bundle part")
				}
				if spool, err = os.CreateTemp(projects, ".upload-*"); err != nil {
					return err
				}
				n, err := io.Copy(spool, io.LimitReader(part, maxUpload+1))
				if err != nil {
					return errorf(http.StatusBadRequest, err, "receiving the bundle: "+err.Error())
				}
				if n > maxUpload {
					return errorf(http.StatusRequestEntityTooLarge, nil, fmt.Sprintf("the bundle is larger than %d GiB", maxUpload>>30))
				}
			}
			part.Close()
		}
		if spool == nil {
			return errorf(http.StatusBadRequest, nil, "no bundle part: send the .tar.gz in the multipart part named bundle")
		}
		if _, err := spool.Seek(0, io.SeekStart); err != nil {
			return err
		}
		m, err := bundle.ReadManifest(spool)
		if err != nil {
			return err
		}
		if name == "" {
			name = m.Deployment
		}
		if err := store.CheckName(name); err != nil {
			return err
		}
		if _, err := d.Store.Deployment(r.Context(), name); err == nil {
			return errorf(http.StatusConflict, nil, fmt.Sprintf("a deployment named %s exists already: import under another name (name part, or kvm-compose import FILE --name N)", name))
		}
		dir, err := topology.NewProjectDir(projects, name)
		if err != nil {
			return err
		}
		ok := false
		defer func() {
			if !ok {
				os.RemoveAll(dir) // made just now, for this import only
			}
		}()
		if _, err := spool.Seek(0, io.SeekStart); err != nil {
			return err
		}
		m, files, err := bundle.Extract(spool, dir, bundle.DefaultLimits)
		if errors.Is(err, bundle.ErrLimit) {
			return errorf(http.StatusRequestEntityTooLarge, err, err.Error())
		}
		if err != nil {
			return err
		}
		loc, err := checkProjectLocation(dir)
		if err != nil {
			return errorf(http.StatusBadRequest, err, "the bundle's project has no kvm-compose.yaml")
		}
		dep := api.Deployment{Name: name, ProjectLocation: loc, State: api.StateIsDown}
		folders.mu.Lock()
		defer folders.mu.Unlock()
		if _, err := d.Store.Deployment(r.Context(), name); err == nil {
			return fmt.Errorf("deployment %q: %w", name, store.ErrExists)
		}
		if err := folders.claim(r.Context(), d.Store, name, loc); err != nil {
			return err
		}
		if err := d.Store.CreateDeployment(r.Context(), dep); err != nil {
			return err
		}
		ok = true
		images, missing := bundle.Check(r.Context(), m.Images, m.ProjectLocation, loc, d.dockerImages())
		for _, msg := range missing {
			d.Logger.Warn("imported deployment lacks an image", "deployment", name, "image", msg)
		}
		res := api.ImportResult{Deployment: dep, From: m.Deployment, Files: files, Images: images, Missing: missing}
		if data, err := os.ReadFile(filepath.Join(loc, bundle.MetaDir, bundle.ImpairmentsName)); err == nil {
			json.Unmarshal(data, &res.Impairments)
		}
		w.Header().Set("Location", "/api/deployments/"+name)
		writeJSON(w, http.StatusCreated, res)
		return nil
	}
}
