package api

import "time"

// BundleFormat names the layout of a deployment bundle's manifest.json.
const BundleFormat = "testbedos-bundle/1"

// BundleManifest is manifest.json, the first entry of a bundle (GET
// /api/deployments/{name}/export): what the bundle holds and where.
//
// Layout of the .tar.gz: manifest.json; project/… (the project files, as
// regular files and folders only); state.json (the resolved state, when
// generated); deployed.json (the daemon's record of what was deployed,
// when any); impairments.json (the run-time impairments in force, guest →
// interface → setting); logs/index.json and logs/<uuid>.log (every action's
// log).
type BundleManifest struct {
	Format          string          `json:"format"`
	Deployment      string          `json:"deployment"`
	ProjectLocation string          `json:"project_location"`
	State           DeploymentState `json:"state"`
	ExportedAt      time.Time       `json:"exported_at"`
	ServerVersion   string          `json:"server_version,omitempty"`
	Files           []BundleFile    `json:"files"`
	// Skipped are project paths left out: symlinks and anything that is
	// not a regular file or folder (never followed, never copied).
	Skipped []string      `json:"skipped,omitempty"`
	Logs    []BundleLog   `json:"logs"`
	Images  []ImageDigest `json:"images"`
	// Captures are the saved packet captures in the bundle; the server
	// keeps none (captures stream to the client), so it is empty unless a
	// later server saves some.
	Captures []string `json:"captures"`
}

// BundleFile is one project file of a bundle, at project/<path>.
type BundleFile struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// BundleLog is one action's log, at logs/<uuid>.log.
type BundleLog struct {
	UUID  string   `json:"uuid"`
	Entry LogEntry `json:"entry"`
	// Missing is set when the log file was gone (pruned) at export.
	Missing bool `json:"missing,omitempty"`
}

// ImageDigest is an image a guest of the bundle uses and its sha256:
// a docker image's id, or a disk, ISO, kernel or initrd file's digest.
type ImageDigest struct {
	Guest string `json:"guest"`
	Kind  string `json:"kind"`
	// Ref is the docker image name, the file's path or the image URL.
	Ref string `json:"ref"`
	// SHA256 is "sha256:<hex>"; empty when the image was not there at
	// export (a cloud image not yet downloaded, a missing docker image).
	SHA256 string `json:"sha256,omitempty"`
	Size   int64  `json:"size,omitempty"`
	// InProject: the file is one of the bundle's project files.
	InProject bool `json:"in_project,omitempty"`
}

// ImportResult is the answer of POST /api/deployments/import.
type ImportResult struct {
	Deployment Deployment `json:"deployment"`
	// From is the bundle's deployment name.
	From  string `json:"from"`
	Files int    `json:"files"`
	// Images are the bundle's images as this server has them; Missing
	// names, with its digest, each one that is not here (or differs).
	Images  []ImageDigest `json:"images"`
	Missing []string      `json:"missing"`
	// Impairments are the run-time impairments that were in force at
	// export (guest → interface → setting): the new deployment starts
	// with kvm-compose.yaml's, and these can be set again once it is up.
	Impairments map[string]map[string]Impairment `json:"impairments,omitempty"`
}
