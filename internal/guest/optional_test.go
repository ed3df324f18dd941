package guest

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/testbedos/testbedos/internal/actlog"
	"github.com/testbedos/testbedos/internal/topology"
)

// plainDriver has no optional method; it announces what caps says.
type plainDriver struct{ caps Capabilities }

func (plainDriver) Kind() string                 { return "plain" }
func (d plainDriver) Capabilities() Capabilities { return d.caps }
func (plainDriver) Exists(context.Context, Deployment, *topology.Guest) (bool, error) {
	return false, nil
}
func (plainDriver) Create(context.Context, Deployment, *topology.Guest, actlog.Log) (bool, error) {
	return false, nil
}
func (plainDriver) RunScript(context.Context, Deployment, *topology.Guest, string, actlog.Log) error {
	return nil
}
func (plainDriver) Destroy(context.Context, Deployment, *topology.Guest, actlog.Log) error {
	return nil
}

// execDriver runs commands.
type execDriver struct{ plainDriver }

func (execDriver) Exec(context.Context, Deployment, *topology.Guest, Command) (int, error) {
	return 0, nil
}

var (
	_ Driver = plainDriver{}
	_ Execer = execDriver{}
)

// As needs both the method and the announcement: a driver that has the
// method but does not announce it (a proxy whose remote driver lacks it)
// and one that announces what it has not got are both unsupported.
func TestAs(t *testing.T) {
	for _, tt := range []struct {
		name string
		drv  Driver
		ok   bool
	}{
		{"method and announced", execDriver{plainDriver{Capabilities{Exec: true}}}, true},
		{"method, not announced", execDriver{plainDriver{Capabilities{}}}, false},
		{"announced, no method", plainDriver{Capabilities{Exec: true}}, false},
	} {
		x, err := As[Execer](tt.drv)
		if tt.ok && (err != nil || x == nil) {
			t.Errorf("%s: As = %v, %v; want the driver", tt.name, x, err)
		}
		if !tt.ok && (!errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "plain guests cannot run commands")) {
			t.Errorf("%s: As = %v, %v; want ErrUnsupported saying what is missing", tt.name, x, err)
		}
	}
	for _, err := range []error{
		func() error { _, err := As[Snapshotter](plainDriver{}); return err }(),
		func() error { _, err := As[ArtefactWriter](plainDriver{}); return err }(),
		func() error { _, err := As[Consoler](plainDriver{}); return err }(),
		func() error { _, err := As[Statser](plainDriver{}); return err }(),
		func() error { _, err := As[NetnsPather](plainDriver{}); return err }(),
	} {
		if !errors.Is(err, ErrUnsupported) || strings.Contains(err.Error(), "optional") {
			t.Errorf("err = %v, want ErrUnsupported naming the capability", err)
		}
	}
}
