package topology

import (
	"errors"
	"strings"
	"testing"
)

// TestCloudImageKnownNames: the original's cloud_image names resolve to
// their published URLs, expand_gigabytes reaches the state, and an unknown
// name without a url is a problem naming the field and the known names.
func TestCloudImageKnownNames(t *testing.T) {
	tests := []struct {
		image     string
		wantURL   string
		wantCache string
		wantGB    int
		field     string // "" when valid
	}{
		{image: "{name: ubuntu_22_04, expand_gigabytes: 10}", wantURL: "https://cloud-images.ubuntu.com/releases/jammy/release/ubuntu-22.04-server-cloudimg-amd64.img", wantGB: 10},
		{image: "{name: ubuntu_20_04}", wantURL: "https://cloud-images.ubuntu.com/releases/focal/release/ubuntu-20.04-server-cloudimg-amd64.img"},
		{image: "{name: ubuntu_18_04}", wantURL: "https://cloud-images.ubuntu.com/releases/bionic/release/ubuntu-18.04-server-cloudimg-amd64.img"},
		{image: "{name: cirros_0_6_2}", wantURL: "https://download.cirros-cloud.net/0.6.2/cirros-0.6.2-x86_64-disk.img"},
		{image: "{url: 'https://example.org/x.img', name: x.img}", wantURL: "https://example.org/x.img", wantCache: "x.img"},
		{image: "{name: debian_12}", field: "machines[0].libvirt.libvirt_type.cloud_image.name"},
		{image: "{}", field: "machines[0].libvirt.libvirt_type.cloud_image.url"},
		{image: "{name: cirros_0_6_2, expand_gigabytes: -1}", field: "machines[0].libvirt.libvirt_type.cloud_image.expand_gigabytes"},
	}
	for _, tt := range tests {
		t.Run(tt.image, func(t *testing.T) {
			dir := writeProject(t, doc(
				"machines:",
				"  - name: vm",
				"    libvirt:",
				"      cpus: 1",
				"      memory_mb: 256",
				"      libvirt_type:",
				"        cloud_image: "+tt.image,
			))
			st, err := Generate(Options{Deployment: "lab", ProjectDir: dir, Hosts: []Host{{Name: "h", Main: true}}})
			if tt.field != "" {
				var verr *ValidationError
				if !errors.As(err, &verr) || len(verr.Problems) != 1 || verr.Problems[0].Field != tt.field || verr.Problems[0].Line != 7 {
					t.Fatalf("err = %v, want one problem at line 7 on %s", err, tt.field)
				}
				if strings.HasSuffix(tt.field, ".name") && !strings.Contains(verr.Problems[0].Message, "ubuntu_22_04") {
					t.Errorf("message %q does not list the known names", verr.Problems[0].Message)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			l := st.Guests[0].Libvirt
			if l.Boot != BootCloudImage || l.ImageURL != tt.wantURL || l.ImageName != tt.wantCache || l.ExpandGB != tt.wantGB {
				t.Errorf("spec = boot %s url %s cache %q expand %d", l.Boot, l.ImageURL, l.ImageName, l.ExpandGB)
			}
		})
	}
}
