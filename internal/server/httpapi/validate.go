package httpapi

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/topology"
)

// ValidateRoute checks a kvm-compose.yaml without a project folder.
const ValidateRoute = "POST /api/validate/yaml"

// Validation is the answer of POST /api/validate/yaml: 200 with no
// problems, or 422 with every problem and the JSON error body.
type Validation struct {
	Error    *api.ErrorDetail   `json:"error,omitempty"`
	Problems []topology.Problem `json:"problems"`
}

// validateYAML runs every check of kvm-compose.yaml that needs no project
// folder (topology.Parse): the GUI's create page calls it as one types.
// With ?check_files=1 it also checks the files the YAML names (setup
// scripts, images, volumes) against the project files that will come with
// it, named by ?file= (relative paths): a script not among them is a
// problem, as generate would find it.
func validateYAML(w http.ResponseWriter, r *http.Request) error {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return err
	}
	q := r.URL.Query()
	cfg, err := topology.Parse(topology.DefaultFile, data)
	if err == nil && q.Get("check_files") == "1" {
		err = validateFiles(cfg, q["file"])
	}
	var verr *topology.ValidationError
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, Validation{Problems: []topology.Problem{}})
		return nil
	case errors.As(err, &verr):
		msg := fmt.Sprintf("kvm-compose.yaml has %d problem(s); the first: %s", len(verr.Problems), verr.Problems[0])
		writeJSON(w, http.StatusUnprocessableEntity, Validation{
			Error:    &api.ErrorDetail{Code: http.StatusUnprocessableEntity, Message: msg},
			Problems: verr.Problems,
		})
		return nil
	}
	return err
}

// validateFiles checks cfg's file references in a scratch project folder
// holding an empty file for each name of files.
func validateFiles(cfg *topology.Config, files []string) error {
	dir, err := os.MkdirTemp("", "validate-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for _, f := range files {
		p, err := filePath(f)
		if err != nil {
			return err
		}
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, nil, 0o644); err != nil {
			return err
		}
	}
	err = cfg.Validate(dir)
	var verr *topology.ValidationError
	if errors.As(err, &verr) {
		// The scratch folder's name means nothing to the user.
		for i := range verr.Problems {
			verr.Problems[i].Message = strings.ReplaceAll(verr.Problems[i].Message, " "+dir, "")
		}
	}
	return err
}
