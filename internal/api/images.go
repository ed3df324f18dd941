package api

import "time"

// Image is a VM image of the server's cache (GET /api/images).
type Image struct {
	Name string `json:"name"`
	// URL is where it was downloaded from; empty for an imported image.
	URL    string    `json:"url"`
	SHA256 string    `json:"sha256"`
	Size   int64     `json:"size"`
	Stored time.Time `json:"stored"`
	// UsedBy lists the deployments whose VM disks are made from it.
	UsedBy []string `json:"used_by"`
}
