package docker

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"

	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/topology"
)

func TestReadEnvFile(t *testing.T) {
	tests := []struct {
		name, body string
		want       map[string]string
		err        string
	}{
		{"plain", "A=1\nB=two words\n", map[string]string{"A": "1", "B": "two words"}, ""},
		{"comments and blanks", "# c\n\n  C=3\n", map[string]string{"C": "3"}, ""},
		{"equals in value", "URL=a=b\n", map[string]string{"URL": "a=b"}, ""},
		{"empty value", "E=\n", map[string]string{"E": ""}, ""},
		{"key alone is skipped", "HOME\n", map[string]string{}, ""},
		{"space in key", "A B=1\n", nil, `:1: "A B=1" is not KEY=value`},
		{"no key", "=1\n", nil, "is not KEY=value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "env")
			if err := os.WriteFile(p, []byte(tt.body), 0o644); err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			err := readEnvFile(context.Background(), guest.ProjectFiles{Project: filepath.Dir(p)}, p, got)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

// remoteFiles is Files without MountFiles, as on a client host.
type remoteFiles struct{ p guest.ProjectFiles }

func (r remoteFiles) Path(ctx context.Context, ref string) (string, error) { return r.p.Path(ctx, ref) }
func (r remoteFiles) WorkDir() string                                      { return r.p.WorkDir() }

// pathOf pins nothing: a volume is mounted at the path it was opened at.
func pathOf(n int, f *os.File) (string, error) { return f.Name(), nil }

func TestContainerConfig(t *testing.T) {
	project, _ := filepath.EvalSymlinks(t.TempDir())
	if err := os.WriteFile(filepath.Join(project, "c.env"), []byte("A=file\nB=file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(project, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	g := &topology.Guest{Name: "c", Kind: topology.KindDocker}
	s := &topology.DockerSpec{
		Container: "tbos.lab.c", Image: "img:1",
		Command: []string{"sleep", "infinity"}, ResetEntrypoint: true,
		Environment: map[string]string{"B": "yaml"}, EnvFile: filepath.Join(project, "c.env"),
		Volumes:    []topology.VolumeSpec{{Source: filepath.Join(project, "data"), Target: "/data", ReadOnly: true}},
		Privileged: true, User: "1000:1000",
		Devices: []topology.DeviceSpec{{Host: "/dev/net/tun", Container: "/dev/net/tun", Permissions: "rwm"}},
	}
	dep := guest.Deployment{Name: "lab", Files: guest.ProjectFiles{Project: project}}
	cfg, host, err := containerConfig(context.Background(), dep, g, s, pathOf)
	if err != nil {
		t.Fatal(err)
	}
	wantCfg := &container.Config{
		Image: "img:1", Hostname: "c", User: "1000:1000",
		Env: []string{"A=file", "B=yaml"}, Cmd: []string{"sleep", "infinity"}, Entrypoint: []string{""},
		Labels: map[string]string{LabelDeployment: "lab", LabelGuest: "c"},
	}
	if !reflect.DeepEqual(cfg, wantCfg) {
		t.Errorf("config:\n%+v\nwant\n%+v", cfg, wantCfg)
	}
	wantHost := &container.HostConfig{NetworkMode: "none", Privileged: true}
	wantHost.Devices = []container.DeviceMapping{{PathOnHost: "/dev/net/tun", PathInContainer: "/dev/net/tun", CgroupPermissions: "rwm"}}
	wantHost.Mounts = []mount.Mount{{Type: mount.TypeBind, Source: filepath.Join(project, "data"), Target: "/data", ReadOnly: true}}
	if !reflect.DeepEqual(host, wantHost) {
		t.Errorf("host config:\n%+v\nwant\n%+v", host, wantHost)
	}

	// A volume source that a symlink now leads out of the project.
	outside := t.TempDir()
	link := filepath.Join(project, "out")
	if err := os.Symlink(outside, link); err != nil {
		t.Fatal(err)
	}
	s2 := *s
	s2.Volumes = []topology.VolumeSpec{{Source: link, Target: "/x"}}
	if _, _, err := containerConfig(context.Background(), dep, g, &s2, pathOf); !errors.Is(err, guest.ErrOutsideProject) {
		t.Errorf("volume through a symlink out of the project: %v", err)
	}
	// Volumes need folders of the project: a client host's files have none.
	remote := guest.Deployment{Name: "lab", Files: remoteFiles{guest.ProjectFiles{Project: project}}}
	if _, _, err := containerConfig(context.Background(), remote, g, s, pathOf); !errors.Is(err, ErrNoMounts) {
		t.Errorf("volumes on a client host: %v", err)
	}
}

func TestNoDaemonIsAClearError(t *testing.T) {
	d, err := New(Options{Host: "unix://" + filepath.Join(t.TempDir(), "no-docker.sock")})
	if err != nil {
		t.Fatalf("New without a daemon: %v", err)
	}
	defer d.Close()
	g := &topology.Guest{Name: "c", Kind: topology.KindDocker, Docker: &topology.DockerSpec{Container: "tbos.lab.c", Image: "img"}}
	_, err = d.Exists(context.Background(), guest.Deployment{Name: "lab"}, g)
	if !errors.Is(err, ErrDaemon) || !strings.Contains(err.Error(), "no-docker.sock") {
		t.Errorf("Exists without a daemon = %v, want ErrDaemon naming the socket", err)
	}
}
