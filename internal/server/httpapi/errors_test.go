package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/testbedos/testbedos/internal/actions"
	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/engine"
	"github.com/testbedos/testbedos/internal/store"
	"github.com/testbedos/testbedos/internal/topology"
)

// TestStatusByCategory: the domain sentinels reach their status through
// their api category, wrapped or not.
func TestStatusByCategory(t *testing.T) {
	_, invalid := topology.Parse("", []byte("machines: [\n"))
	for _, tc := range []struct {
		err  error
		want int
	}{
		{store.ErrInvalidName, http.StatusBadRequest},
		{actions.ErrBadCommand, http.StatusBadRequest},
		{store.ErrNotFound, http.StatusNotFound},
		{store.ErrExists, http.StatusConflict},
		{actions.ErrBusy, http.StatusConflict},
		{actions.ErrNotRunning, http.StatusConflict},
		{engine.ErrConflict, http.StatusConflict},
		{topology.ErrInvalid, http.StatusUnprocessableEntity},
		{invalid, http.StatusUnprocessableEntity},
		{actions.ErrShuttingDown, http.StatusServiceUnavailable},
		{actions.ErrNotTheRunningAction, http.StatusConflict},
		{engine.ErrNotFound, http.StatusNotFound},
		{engine.ErrUnsupported, http.StatusUnprocessableEntity},
		{api.ErrUnavailable, http.StatusServiceUnavailable},
		{&http.MaxBytesError{Limit: 1}, http.StatusRequestEntityTooLarge},
		{errorf(http.StatusTeapot, store.ErrNotFound, "tea"), http.StatusTeapot},
		{errors.New("disk on fire"), http.StatusInternalServerError},
	} {
		if tc.err == nil {
			t.Fatalf("no error to map for %d", tc.want)
		}
		for _, err := range []error{tc.err, fmt.Errorf("lab: %w", tc.err)} {
			if got := status(err); got != tc.want {
				t.Errorf("status(%v) = %d, want %d", err, got, tc.want)
			}
		}
	}
}
