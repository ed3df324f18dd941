package topology

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestCloudImageKnownNames: the original's cloud_image names resolve to
// their published URLs, expand_gigabytes reaches the state, and an unknown
// name without a url is a problem naming the field and the known names.
func TestCloudImageKnownNames(t *testing.T) {
	tests := []struct {
		image     string
		wantURL   string
		wantCache string
		wantSHA   string
		wantGB    int
		field     string // "" when valid
	}{
		{image: "{name: ubuntu_22_04, expand_gigabytes: 10}", wantURL: "https://cloud-images.ubuntu.com/releases/jammy/release/ubuntu-22.04-server-cloudimg-amd64.img", wantCache: "ubuntu_22_04", wantGB: 10},
		{image: "{name: ubuntu_20_04}", wantURL: "https://cloud-images.ubuntu.com/releases/focal/release/ubuntu-20.04-server-cloudimg-amd64.img", wantCache: "ubuntu_20_04"},
		{image: "{name: ubuntu_18_04}", wantURL: "https://cloud-images.ubuntu.com/releases/bionic/release/ubuntu-18.04-server-cloudimg-amd64.img", wantCache: "ubuntu_18_04"},
		{image: "{name: cirros_0_6_2}", wantURL: "https://download.cirros-cloud.net/0.6.2/cirros-0.6.2-x86_64-disk.img", wantCache: "cirros_0_6_2"},
		{image: "{url: 'https://example.org/y.img', sha256: " + strings.Repeat("AB", 32) + "}", wantURL: "https://example.org/y.img", wantSHA: strings.Repeat("ab", 32)},
		{image: "{url: 'https://example.org/y.img', sha256: abc}", field: "machines[0].libvirt.libvirt_type.cloud_image.sha256"},
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
			if l.Boot != BootCloudImage || l.ImageURL != tt.wantURL || l.ImageName != tt.wantCache || l.ExpandGB != tt.wantGB || l.ImageSHA256 != tt.wantSHA {
				t.Errorf("spec = boot %s url %s cache %q expand %d", l.Boot, l.ImageURL, l.ImageName, l.ExpandGB)
			}
		})
	}
}

func TestReadyTimeout(t *testing.T) {
	for in, want := range map[string]time.Duration{"": 0, "600": 10 * time.Minute, "90s": 90 * time.Second, "10m": 10 * time.Minute} {
		if got, err := ParseReadyTimeout(in); err != nil || got != want {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
	for _, in := range []string{"0", "-5", "soon", "-1m"} {
		if _, err := ParseReadyTimeout(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
	dir := writeProject(t, doc(
		"machines:",
		"  - name: vm1",
		"    libvirt:",
		"      cpus: 1",
		"      memory_mb: 256",
		"      libvirt_type:",
		"        cloud_image: {url: 'https://example.org/y.img'}",
		"testbed_options:",
		"  ready_timeout: 600",
	))
	st, err := Generate(Options{Deployment: "lab", ProjectDir: dir, Hosts: []Host{{Name: "h", Main: true}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Guests[0].Libvirt.ReadyTimeout; got != "10m0s" {
		t.Fatalf("ready timeout %q", got)
	}
}
