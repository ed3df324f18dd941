package topology

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestGenerateDocker(t *testing.T) {
	dir := writeProject(t, yamlLines(
		"machines:",
		"  - name: c",
		"    network: [{switch: sw0, ip: 10.0.0.10}]",
		"    docker:",
		"      image: busybox:local",
		"      command: [sleep, infinity]",
		"      entrypoint: []",
		"      environment: {MODE: test, N: 3}",
		"      env_file: c.env",
		"      volumes: [{source: data, target: /data}, {source: c.env, target: /etc/c.env, read_only: true}]",
		"      privileged: true",
		"      user: 0",
		"      device: [/dev/net/tun, '/dev/null:/dev/nothing:r']",
		"      setup_script: c.sh",
		"      pull: true",
		"    scaling: {count: 2}",
		"network:",
		"  switches:",
		"    sw0: {subnet: 10.0.0.0/24}",
	), "c.env", "c.sh", "data/keep")
	st, err := Generate(Options{Deployment: "lab", ProjectDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	real, _ := filepath.EvalSymlinks(dir)
	if len(st.Guests) != 2 {
		t.Fatalf("guests = %d, want 2 clones", len(st.Guests))
	}
	for i, g := range st.Guests {
		want := &DockerSpec{
			Container:       ContainerName("lab", g.Name),
			Image:           "busybox:local",
			Pull:            true,
			Command:         []string{"sleep", "infinity"},
			Entrypoint:      []string{},
			ResetEntrypoint: true,
			Environment:     map[string]string{"MODE": "test", "N": "3"},
			EnvFile:         filepath.Join(real, "c.env"),
			Volumes: []VolumeSpec{
				{Source: filepath.Join(real, "data"), Target: "/data"},
				{Source: filepath.Join(real, "c.env"), Target: "/etc/c.env", ReadOnly: true},
			},
			Privileged: true,
			User:       "0",
			Devices: []DeviceSpec{
				{Host: "/dev/net/tun", Container: "/dev/net/tun", Permissions: "rwm"},
				{Host: "/dev/null", Container: "/dev/nothing", Permissions: "r"},
			},
		}
		if !reflect.DeepEqual(g.Docker, want) {
			t.Errorf("guest %d docker:\n%+v\nwant\n%+v", i, g.Docker, want)
		}
		if g.Docker.Container != "tbos.lab.c-"+string(rune('1'+i)) {
			t.Errorf("container %q", g.Docker.Container)
		}
		if g.SetupScript != filepath.Join(real, "c.sh") {
			t.Errorf("setup script %q", g.SetupScript)
		}
	}
	if err := CheckState(st, "lab", st.Project); err != nil {
		t.Errorf("CheckState of a fresh state: %v", err)
	}
	// A state edited to mount a folder outside the project is refused.
	st.Guests[0].Docker.Volumes[0].Source = "/etc"
	if err := CheckState(st, "lab", st.Project); !errors.Is(err, ErrStateMismatch) || !strings.Contains(err.Error(), "/etc is outside") {
		t.Errorf("CheckState with /etc volume = %v", err)
	}
	st.Guests[0].Docker.Volumes[0].Source = filepath.Join(real, "data")
	st.Guests[1].Docker.EnvFile = "/etc/passwd"
	if err := CheckState(st, "lab", st.Project); !errors.Is(err, ErrStateMismatch) {
		t.Errorf("CheckState with /etc/passwd env file = %v", err)
	}
}

func TestDockerProblems(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		line  int
		field string
		msg   string
	}{
		{"relative target", []string{"      volumes: [{source: d, target: data}]"}, 5, "machines[0].docker.volumes[0].target", "must be an absolute path"},
		{"missing source", []string{"      volumes:", "        - {target: /d}"}, 6, "machines[0].docker.volumes[0].source", "is required"},
		{"bad device", []string{"      device: [tun]"}, 5, "machines[0].docker.device[0]", "must be absolute"},
		{"bad permissions", []string{"      device: ['/dev/a:/dev/b:x']"}, 5, "machines[0].docker.device[0]", "letters of rwm"},
		{"unknown field", []string{"      ports: [80]"}, 5, "machines[0].docker.ports", "is not a known field"},
		{"command with a shell operator", []string{"      command: 'sleep 1; reboot'"}, 5, "machines[0].docker.command", `holds the shell operator ";"`},
		{"command with an open quote", []string{"      command: \"echo 'hi\""}, 5, "machines[0].docker.command", "is not a command line"},
		{"privileged not bool", []string{"      privileged: yes please"}, 5, "machines[0].docker.privileged", "is not a boolean"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := doc(append([]string{"machines:", "  - name: c", "    docker:", "      image: busybox"}, tt.lines...)...)
			ps := parseProblems(t, src)
			if len(ps) != 1 {
				t.Fatalf("problems = %v, want one", ps)
			}
			p := ps[0]
			if p.Line != tt.line || p.Field != tt.field || !strings.Contains(p.Message, tt.msg) {
				t.Errorf("problem = %d %s %q, want %d %s %q", p.Line, p.Field, p.Message, tt.line, tt.field, tt.msg)
			}
		})
	}
}

func TestDockerFiles(t *testing.T) {
	outside := t.TempDir()
	tests := []struct {
		name  string
		src   string
		setup func(t *testing.T, project string)
		field string // "" when fine
		msg   string
	}{
		{name: "folder source", src: "data"},
		{name: "file source", src: "c.env"},
		{name: "the project itself", src: "."},
		{name: "dot-dot", src: "..", field: "machines[0].docker.volumes[0].source", msg: "is outside the project folder"},
		{name: "absolute outside", src: outside, field: "machines[0].docker.volumes[0].source", msg: "is outside the project folder"},
		{name: "symlink to outside", src: "out", setup: func(t *testing.T, p string) {
			symlink(t, outside, filepath.Join(p, "out"))
		}, field: "machines[0].docker.volumes[0].source", msg: "leads through a symlink"},
		{name: "missing", src: "gone", field: "machines[0].docker.volumes[0].source", msg: "does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			project := writeProject(t, "", "c.env", "data/keep")
			if tt.setup != nil {
				tt.setup(t, project)
			}
			c, err := Parse("kvm-compose.yaml", []byte(doc(
				"machines:",
				"  - name: c",
				"    docker:",
				"      image: busybox",
				"      volumes: [{source: '"+tt.src+"', target: /d}]",
			)))
			if err != nil {
				t.Fatal(err)
			}
			err = c.Validate(project)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			var verr *ValidationError
			if !errors.As(err, &verr) || len(verr.Problems) != 1 {
				t.Fatalf("Validate = %v", err)
			}
			if p := verr.Problems[0]; p.Field != tt.field || p.Line != 5 || !strings.Contains(p.Message, tt.msg) {
				t.Errorf("problem = %+v", p)
			}
		})
	}
	// env_file must be a regular file.
	project := writeProject(t, "", "data/keep")
	if err := os.Mkdir(filepath.Join(project, "envdir"), 0o755); err != nil {
		t.Fatal(err)
	}
	c, err := Parse("kvm-compose.yaml", []byte(doc("machines:", "  - name: c", "    docker: {image: busybox, env_file: envdir}")))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(project); err == nil || !strings.Contains(err.Error(), "machines[0].docker.env_file envdir is not a regular file") {
		t.Errorf("Validate env_file folder = %v", err)
	}
}
