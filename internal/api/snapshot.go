package api

import (
	"strings"
	"time"
)

// Snapshot describes one snapshot of a guest: the answer of GET
// /api/deployments/{name}/guests/{guest}/snapshots/{snapshot}.
type Snapshot struct {
	Name        string    `json:"name"`
	Created     time.Time `json:"created"`
	State       string    `json:"state"` // the guest's state when taken: running, shutoff, …
	Parent      string    `json:"parent,omitempty"`
	Current     bool      `json:"current"`
	Description string    `json:"description,omitempty"`
	// Memory says whether the guest's memory is part of the snapshot
	// (restoring it resumes the running guest where it was).
	Memory bool `json:"memory"`
	// Disks lists the disks the snapshot covers (vda, …).
	Disks []string `json:"disks,omitempty"`
}

// Summary is the snapshot on one line: "taken <time>, guest running,
// memory and disks vda, current".
func (s Snapshot) Summary() string {
	state := s.State
	if state == "" {
		state = "in an unknown state"
	}
	parts := []string{"taken " + s.Created.Format(time.RFC3339), "guest " + state}
	switch {
	case s.Memory && len(s.Disks) > 0:
		parts = append(parts, "memory and disks "+strings.Join(s.Disks, ", "))
	case s.Memory:
		parts = append(parts, "memory")
	case len(s.Disks) > 0:
		parts = append(parts, "disks "+strings.Join(s.Disks, ", "))
	}
	if s.Current {
		parts = append(parts, "current")
	}
	return strings.Join(parts, ", ")
}

// SnapshotList is the answer of GET
// /api/deployments/{name}/guests/{guest}/snapshots, oldest first.
type SnapshotList struct {
	Guest     string     `json:"guest"`
	Snapshots []Snapshot `json:"snapshots"`
}
