package topology

import "sort"

// KnownCloudImage is a known cloud_image name and the image it stands for.
type KnownCloudImage struct {
	Name string
	URL  string
}

// KnownCloudImages lists the known cloud_image names, sorted, with their
// published images (the original's cloud-images verb lists them).
func KnownCloudImages() []KnownCloudImage {
	out := make([]KnownCloudImage, 0, len(knownCloudImages))
	for n, u := range knownCloudImages {
		out = append(out, KnownCloudImage{n, u})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
