package agent_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/testbedos/testbedos/internal/actlog"
	"github.com/testbedos/testbedos/internal/agent"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/guesttest"
	"github.com/testbedos/testbedos/internal/topology"
)

// mountDriver is fakeDriver whose Create opens the guest's volume sources
// as the docker driver does and lists what it finds in them.
type mountDriver struct {
	*fakeDriver
	seen []string
	dirs []string
}

func (m *mountDriver) Kind() string { return topology.KindDocker }

func (m *mountDriver) Create(ctx context.Context, dep guest.Deployment, g *topology.Guest, log actlog.Log) (bool, error) {
	mf, ok := dep.Files.(guest.MountFiles)
	if !ok {
		return false, fmt.Errorf("no mounts here")
	}
	for _, v := range g.Docker.Volumes {
		f, err := mf.OpenMount(ctx, v.Source)
		if err != nil {
			return false, err
		}
		dir := fmt.Sprintf("/proc/self/fd/%d", f.Fd())
		real, _ := os.Readlink(dir)
		m.dirs = append(m.dirs, real)
		err = filepath.WalkDir(dir+"/", func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel := strings.TrimPrefix(path, dir)
			switch fi, _ := d.Info(); {
			case fi.Mode()&os.ModeSymlink != 0:
				to, _ := os.Readlink(path)
				m.seen = append(m.seen, v.Target+rel+" -> "+to)
			case fi.Mode().IsRegular():
				data, _ := os.ReadFile(path)
				m.seen = append(m.seen, fmt.Sprintf("%s%s %v %q", v.Target, rel, fi.Mode().Perm(), data))
			}
			return nil
		})
		if err != nil {
			data, _ := os.ReadFile(dir)
			m.seen = append(m.seen, fmt.Sprintf("%s %q", v.Target, data))
		}
		f.Close()
	}
	return m.fakeDriver.Create(ctx, dep, g, log)
}

// A docker guest's volume sources on a client host: the main pushes their
// files, the client makes a copy (files with their modes, folders, links)
// that its driver opens as on the main, and destroying the guest removes
// the copy.
func TestVolumesOnClientHost(t *testing.T) {
	data := t.TempDir()
	drv := &mountDriver{fakeDriver: &fakeDriver{guests: map[string]bool{}}}
	srv := httptest.NewServer(agent.RequireSecret("sec")(agent.Handler(agent.Options{
		Name: "c1", DataDir: data, Drivers: guest.NewRegistry(drv),
	})))
	t.Cleanup(srv.Close)
	remote, err := agent.NewRemoteHost(agent.RemoteOptions{Name: "c1", BaseURL: srv.URL, Secret: "sec", Client: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	dir := project(t, map[string]string{"one.conf": "x=1"})
	os.MkdirAll(filepath.Join(dir, "data", "sub"), 0o755)
	write(t, filepath.Join(dir, "data", "run.sh"), "#!/bin/sh\n", 0o755)
	write(t, filepath.Join(dir, "data", "sub", "a.txt"), "a", 0o640)
	os.Symlink("sub/a.txt", filepath.Join(dir, "data", "link"))
	proxy, err := remote.Driver(topology.KindDocker)
	if err != nil {
		t.Fatal(err)
	}
	dep := guest.Deployment{Name: "d1", Files: remote.Files(dir)}
	g := &topology.Guest{Name: "box", Kind: topology.KindDocker, Docker: &topology.DockerSpec{Volumes: []topology.VolumeSpec{
		{Source: "data", Target: "/data"}, {Source: "one.conf", Target: "/etc/one.conf"},
	}}}
	if _, err := proxy.Create(context.Background(), dep, g, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	want := `/data/link -> sub/a.txt|/data/run.sh -rwxr-xr-x "#!/bin/sh\n"|/data/sub/a.txt -rw-r----- "a"|/etc/one.conf "x=1"`
	if got := strings.Join(drv.seen, "|"); got != want {
		t.Errorf("the client's driver sees\n%s\nwant\n%s", got, want)
	}
	for _, d := range drv.dirs {
		if !strings.HasPrefix(d, data) {
			t.Errorf("a volume copy at %s, outside the client's data folder", d)
		}
	}
	if err := proxy.Destroy(context.Background(), dep, g, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	for _, d := range drv.dirs {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("the copy %s is left after destroy", d)
		}
	}
}
