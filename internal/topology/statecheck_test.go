package topology

import (
	"errors"
	"strings"
	"testing"
)

// A state whose cloud image name or URL was edited cannot make up download
// into, or back a disk with, a file outside the image cache.
func TestCheckStateRefusesImageSourcesThatLeave(t *testing.T) {
	dir := writeProject(t, doc(
		"machines:",
		"  - name: vm",
		"    libvirt:",
		"      cpus: 1",
		"      memory_mb: 256",
		"      libvirt_type:",
		"        cloud_image: {name: mine, url: 'https://example.org/x.img'}",
	))
	orig, err := Generate(Options{Deployment: "lab", ProjectDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckState(orig, "lab", orig.Project); err != nil {
		t.Fatalf("CheckState of a generated state: %v", err)
	}
	for _, tt := range []struct {
		name string
		edit func(l *LibvirtSpec)
		msg  string
	}{
		{"image name up and out", func(l *LibvirtSpec) { l.ImageName = "../../etc/x" }, "not a plain file name"},
		{"absolute image name", func(l *LibvirtSpec) { l.ImageName = "/etc/shadow" }, "not a plain file name"},
		{"dot-dot", func(l *LibvirtSpec) { l.ImageName = ".." }, "not a plain file name"},
		{"file URL", func(l *LibvirtSpec) { l.ImageURL = "file:///etc/shadow" }, "not an http or https URL"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := *orig
			st.Guests = append([]Guest(nil), orig.Guests...)
			spec := *orig.Guests[0].Libvirt
			tt.edit(&spec)
			st.Guests[0].Libvirt = &spec
			err := CheckState(&st, "lab", st.Project)
			if !errors.Is(err, ErrStateMismatch) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("CheckState = %v, want a mismatch saying %q", err, tt.msg)
			}
		})
	}
}
