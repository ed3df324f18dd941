package api

// ProjectFile is one entry of a project folder's listing
// (GET /api/deployments/{name}/files), and the answer of a PUT of one file.
type ProjectFile struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
	// Executable: a user may run it (a script).
	Executable bool `json:"executable"`
}

// ProjectFiles is the answer of GET /api/deployments/{name}/files.
type ProjectFiles struct {
	Files []ProjectFile `json:"files"`
	// Truncated: the folder holds more than the listing shows.
	Truncated bool `json:"truncated"`
}
