package topology

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// knownCloudImages are the original's cloud_image names and the published
// images they stand for. They are downloaded at up, never at
// generate-artefacts.
var knownCloudImages = map[string]string{
	"ubuntu_18_04": "https://cloud-images.ubuntu.com/releases/bionic/release/ubuntu-18.04-server-cloudimg-amd64.img",
	"ubuntu_20_04": "https://cloud-images.ubuntu.com/releases/focal/release/ubuntu-20.04-server-cloudimg-amd64.img",
	"ubuntu_22_04": "https://cloud-images.ubuntu.com/releases/jammy/release/ubuntu-22.04-server-cloudimg-amd64.img",
	"cirros_0_6_2": "https://download.cirros-cloud.net/0.6.2/cirros-0.6.2-x86_64-disk.img",
}

// CloudImageURL is the published image a known cloud_image name stands for.
func CloudImageURL(name string) (string, bool) {
	u, ok := knownCloudImages[name]
	return u, ok
}

// CloudImageNames lists the known names, sorted.
func CloudImageNames() []string {
	names := make([]string, 0, len(knownCloudImages))
	for n := range knownCloudImages {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// knownCloudImageNames lists the known names, sorted, for messages.
func knownCloudImageNames() string { return strings.Join(CloudImageNames(), ", ") }

// cloudImageSource is the URL and image name a cloud_image resolves to: its
// url when given, else the published image of a known name; the name, when
// given, is what the image is kept under in the server's image cache (and
// what `kvm-compose image import NAME FILE` supplies offline).
func cloudImageSource(ci *CloudImage) (url, cacheName string) {
	if ci.URL != "" {
		return ci.URL, ci.Name
	}
	u, _ := CloudImageURL(ci.Name)
	return u, ci.Name
}

// ParseReadyTimeout reads testbed_options.ready_timeout: whole seconds or a
// Go duration; "" is zero (the server's default).
func ParseReadyTimeout(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	if n, err := strconv.Atoi(s); err == nil && n > 0 {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not a positive number of seconds or a duration such as 10m", s)
	}
	return d, nil
}
