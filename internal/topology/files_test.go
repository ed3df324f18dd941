package topology

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateFiles(t *testing.T) {
	outside := t.TempDir()
	outsideScript := filepath.Join(outside, "evil.sh")
	if err := os.WriteFile(outsideScript, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		path  string
		setup func(t *testing.T, project string)
		field string // "" when the path is fine
		msg   string
	}{
		{name: "relative inside", path: "setup.sh"},
		{name: "nested inside", path: "scripts/../setup.sh"},
		{name: "absolute inside", path: "ABS/setup.sh"},
		{name: "${PWD} is the project folder", path: "${PWD}/setup.sh"},
		{name: "$PWD is the project folder", path: "$PWD/scripts/../setup.sh"},
		{name: "${PWD} escape", path: "${PWD}/../x.sh", field: "machines[0].netns.setup_script", msg: "${PWD}/../x.sh is outside the project folder"},
		{name: "symlink inside to inside", path: "link.sh", setup: func(t *testing.T, p string) {
			symlink(t, "setup.sh", filepath.Join(p, "link.sh"))
		}},
		{name: "dot-dot escape", path: "../x.sh", field: "machines[0].netns.setup_script", msg: "../x.sh is outside the project folder"},
		{name: "absolute outside", path: outsideScript, field: "machines[0].netns.setup_script", msg: "is outside the project folder"},
		{name: "symlink to outside", path: "evil.sh", setup: func(t *testing.T, p string) {
			symlink(t, outsideScript, filepath.Join(p, "evil.sh"))
		}, field: "machines[0].netns.setup_script", msg: "evil.sh leads through a symlink to " + realPath(t, outsideScript) + ", outside the project folder"},
		{name: "symlinked folder to outside", path: "out/evil.sh", setup: func(t *testing.T, p string) {
			symlink(t, outside, filepath.Join(p, "out"))
		}, field: "machines[0].netns.setup_script", msg: "leads through a symlink"},
		{name: "missing", path: "nope.sh", field: "machines[0].netns.setup_script", msg: "nope.sh does not exist in the project folder"},
		{name: "a folder", path: "scripts", setup: func(t *testing.T, p string) {
			if err := os.Mkdir(filepath.Join(p, "scripts"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, field: "machines[0].netns.setup_script", msg: "scripts is not a regular file"},
		{name: "the project itself", path: ".", field: "machines[0].netns.setup_script", msg: "is not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			project := filepath.Join(t.TempDir(), "project")
			if err := os.Mkdir(project, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(project, "setup.sh"), []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			if tt.setup != nil {
				tt.setup(t, project)
			}
			path := strings.Replace(tt.path, "ABS", project, 1)
			c, err := Parse("kvm-compose.yaml", []byte(doc(
				"machines:",
				"  - name: a",
				"    netns:",
				"      setup_script: '"+path+"'",
			)))
			if err != nil {
				t.Fatal(err)
			}
			err = c.Validate(project)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				files, _, _ := c.resolveFiles(project, nil)
				if got, want := files["machines[0].netns.setup_script"], filepath.Join(realPath(t, project), "setup.sh"); got != want {
					t.Errorf("resolved to %s, want %s", got, want)
				}
				return
			}
			var verr *ValidationError
			if !errors.As(err, &verr) || len(verr.Problems) != 1 {
				t.Fatalf("Validate = %v, want one problem", err)
			}
			if p := verr.Problems[0]; p.Line != 4 || p.Field != tt.field || !strings.Contains(p.Message, tt.msg) {
				t.Errorf("problem = %s, want line 4, %s ...%s...", p, tt.field, tt.msg)
			}
		})
	}
}

func TestValidateProjectBehindSymlink(t *testing.T) {
	real := filepath.Join(t.TempDir(), "real")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(real, "s.sh"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "link")
	symlink(t, real, link)
	for _, path := range []string{"s.sh", filepath.Join(link, "s.sh"), filepath.Join(realPath(t, real), "s.sh")} {
		c, err := Parse("", []byte(doc("machines: [{name: a, netns: {setup_script: '"+path+"'}}]")))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(link); err != nil {
			t.Errorf("%s: %v", path, err)
		}
	}
}

func TestValidateEveryFileField(t *testing.T) {
	project := t.TempDir()
	c, err := Parse("kvm-compose.yaml", []byte(doc(
		"machines:",
		"  - name: a",
		"    libvirt:",
		"      cpus: 1",
		"      memory_mb: 64",
		"      setup_script: a.sh",
		"      libvirt_type: {existing_disk: {path: a.qcow2, driver_type: qcow2}}",
		"  - name: b",
		"    libvirt:",
		"      cpus: 1",
		"      memory_mb: 64",
		"      libvirt_type: {iso_guest: {path: b.iso}}",
		"  - name: c",
		"    libvirt:",
		"      cpus: 1",
		"      memory_mb: 64",
		"      libvirt_type:",
		"        kernel:",
		"          kernel: vmlinuz",
		"          initrd: initrd.img",
		"  - name: d",
		"    docker: {image: alpine, setup_script: d.sh}",
	)))
	if err != nil {
		t.Fatal(err)
	}
	var verr *ValidationError
	if err := c.Validate(project); !errors.As(err, &verr) {
		t.Fatalf("Validate = %v", err)
	}
	var got []string
	for _, p := range verr.Problems {
		got = append(got, p.Field)
	}
	want := []string{
		"machines[0].libvirt.setup_script",
		"machines[0].libvirt.libvirt_type.existing_disk.path",
		"machines[1].libvirt.libvirt_type.iso_guest.path",
		"machines[2].libvirt.libvirt_type.kernel.kernel",
		"machines[2].libvirt.libvirt_type.kernel.initrd",
		"machines[3].docker.setup_script",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("fields:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestValidateMissingProject(t *testing.T) {
	c, err := Parse("", []byte(doc("machines: [{name: a}]")))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(filepath.Join(t.TempDir(), "gone")); err == nil || errors.Is(err, ErrInvalid) {
		t.Errorf("Validate = %v, want a plain error", err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}
