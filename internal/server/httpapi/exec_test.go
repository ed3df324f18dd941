package httpapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/store"
)

type oneDeployment struct{ store.Store }

func (oneDeployment) Deployment(ctx context.Context, name string) (api.Deployment, error) {
	return api.Deployment{Name: name}, nil
}

// startingLive starts the command as the netns driver does (os/exec).
type startingLive struct {
	Live
	calls int
}

func (l *startingLive) Exec(ctx context.Context, d api.Deployment, g string, cmd guest.Command) (int, error) {
	l.calls++
	c := exec.CommandContext(ctx, cmd.Argv[0], cmd.Argv[1:]...)
	if err := c.Run(); err != nil {
		return 0, err
	}
	return 0, nil
}

// An argument no program can be given (a NUL byte) is bad input, 400, not
// a fault of the server.
func TestExecRefusesNULInArguments(t *testing.T) {
	live := &startingLive{}
	h := execGuest(Deps{Store: oneDeployment{}, Live: live})
	for _, body := range []string{`{"command": ["true", "a\u0000b"]}`, `{"command": ["tr\u0000ue"]}`} {
		r := httptest.NewRequest(http.MethodPost, "/api/deployments/lab/guests/vm1/exec", strings.NewReader(body))
		r.SetPathValue("name", "lab")
		r.SetPathValue("guest", "vm1")
		err := h(httptest.NewRecorder(), r)
		if got := status(err); got != http.StatusBadRequest {
			t.Errorf("%s: %d (%v), want 400", body, got, err)
		}
	}
	if live.calls != 0 {
		t.Errorf("the guest was asked to run %d such commands", live.calls)
	}
}
