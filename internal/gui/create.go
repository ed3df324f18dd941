package gui

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/topology"
)

// MaxYAML bounds a pasted or uploaded kvm-compose.yaml.
const MaxYAML = 1 << 20

type newData struct {
	Name     string
	YAML     string
	Problems []topology.Problem
}

func (g *GUI) newPage(w http.ResponseWriter, r *http.Request) {
	g.render(w, http.StatusOK, "new", g.page("New deployment", "new", newData{}))
}

// create makes a deployment from a pasted or uploaded kvm-compose.yaml: it
// validates the YAML, writes it to <ProjectsDir>/<name>/kvm-compose.yaml and
// creates the deployment through the REST API, then shows its page.
func (g *GUI) create(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 2*MaxYAML)
	d := newData{}
	fail := func(status int, msg string) {
		p := g.page("New deployment", "new", d)
		p.Error = msg
		g.render(w, status, "new", p)
	}
	if err := r.ParseMultipartForm(2 * MaxYAML); err != nil && !errors.Is(err, http.ErrNotMultipart) {
		fail(http.StatusBadRequest, "reading the form: "+err.Error())
		return
	}
	d.Name = strings.TrimSpace(r.FormValue("name"))
	d.YAML = r.FormValue("yaml")
	if f, _, err := r.FormFile("file"); err == nil {
		data, err := io.ReadAll(io.LimitReader(f, MaxYAML+1))
		f.Close()
		if err != nil {
			fail(http.StatusBadRequest, "reading the uploaded file: "+err.Error())
			return
		}
		if len(data) > 0 {
			d.YAML = string(data)
		}
	}
	if !api.ValidName(d.Name) {
		fail(http.StatusBadRequest, fmt.Sprintf("name %q: use 1 to 63 lower-case letters, digits and dashes, starting with a letter", d.Name))
		return
	}
	// A textarea's text comes with CRLF line endings (as HTML forms send
	// it); the file on disk has LF, as every other tool writes it.
	d.YAML = strings.ReplaceAll(d.YAML, "\r\n", "\n")
	if len(d.YAML) > MaxYAML {
		fail(http.StatusRequestEntityTooLarge, "the YAML is larger than 1 MiB")
		return
	}
	cfg, err := topology.Parse(topology.DefaultFile, []byte(d.YAML))
	if err != nil {
		var verr *topology.ValidationError
		if errors.As(err, &verr) {
			d.Problems = verr.Problems
		}
		fail(http.StatusUnprocessableEntity, "kvm-compose.yaml has problems: fix the marked lines")
		return
	}
	if _, err := g.opts.Records.Deployment(r.Context(), d.Name); err == nil {
		fail(http.StatusConflict, "a deployment named "+d.Name+" exists already: choose another name")
		return
	}
	dir, err := topology.NewProjectDir(g.opts.ProjectsDir, d.Name)
	if err != nil {
		fail(http.StatusInternalServerError, "making the project folder: "+err.Error())
		return
	}
	if err := os.WriteFile(filepath.Join(dir, topology.DefaultFile), []byte(d.YAML), 0o644); err != nil {
		os.RemoveAll(dir)
		fail(http.StatusInternalServerError, "writing kvm-compose.yaml: "+err.Error())
		return
	}
	if err := writeUploads(r, dir); err != nil {
		os.RemoveAll(dir)
		fail(http.StatusBadRequest, err.Error())
		return
	}
	// The files the YAML names must have come with it.
	if err := cfg.Validate(dir); err != nil {
		os.RemoveAll(dir)
		var verr *topology.ValidationError
		if errors.As(err, &verr) {
			d.Problems = verr.Problems
			for i := range d.Problems {
				d.Problems[i].Message = strings.ReplaceAll(d.Problems[i].Message, " "+dir, "")
			}
		}
		fail(http.StatusUnprocessableEntity, "kvm-compose.yaml names files that did not come with it: add them under Project files")
		return
	}
	body, _ := json.Marshal(api.NewDeployment{Name: d.Name, ProjectLocation: dir})
	req := httptest.NewRequestWithContext(r.Context(), http.MethodPost, "/api/deployments", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	g.opts.API.ServeHTTP(rec, req)
	if rec.Code != http.StatusCreated {
		var eb api.ErrorBody
		msg := rec.Body.String()
		if json.Unmarshal(rec.Body.Bytes(), &eb) == nil && eb.Error.Message != "" {
			msg = eb.Error.Message
		}
		os.RemoveAll(dir) // made just now, for this deployment only
		fail(rec.Code, "creating the deployment: "+msg)
		return
	}
	http.Redirect(w, r, "/deployments/"+d.Name, http.StatusSeeOther)
}

// writeUploads writes the project files uploaded with the form into dir,
// by their base names; text keeps LF line endings; a script (#!) is made
// executable.
func writeUploads(r *http.Request, dir string) error {
	if r.MultipartForm == nil {
		return nil
	}
	for _, fh := range r.MultipartForm.File["files"] {
		name := filepath.Base(fh.Filename)
		if name == "." || name == "/" || strings.HasPrefix(name, ".") || name == topology.DefaultFile {
			return fmt.Errorf("project file %q: not a name a project file may have", fh.Filename)
		}
		f, err := fh.Open()
		if err != nil {
			return err
		}
		data, err := io.ReadAll(io.LimitReader(f, MaxYAML+1))
		f.Close()
		if err != nil {
			return fmt.Errorf("reading %s: %w", name, err)
		}
		if len(data) > MaxYAML {
			return fmt.Errorf("project file %s is larger than 1 MiB", name)
		}
		mode := os.FileMode(0o644)
		if bytes.HasPrefix(data, []byte("#!")) {
			mode = 0o755
			data = bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, mode); err != nil {
			return err
		}
	}
	return nil
}
