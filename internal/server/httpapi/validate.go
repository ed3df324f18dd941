package httpapi

import (
	"errors"
	"fmt"
	"io"
	"net/http"

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
func validateYAML(w http.ResponseWriter, r *http.Request) error {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return err
	}
	_, err = topology.Parse(topology.DefaultFile, data)
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
