package topology

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/testbedos/testbedos/internal/atomicfile"
)

// StateFile is the name of the state in a folder of generated artefacts.
const StateFile = "state.json"

// StatePath is where generate-artefacts writes the copy of the state for
// the user to read, in the project folder. The server never reads it back
// to decide anything: it reads its own copy in the data folder.
func StatePath(projectDir string) string {
	return filepath.Join(projectDir, "artefacts", StateFile)
}

// EncodeState is the content of a state.json.
func EncodeState(st *State) ([]byte, error) {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("topology: encode state: %w", err)
	}
	return append(data, '\n'), nil
}

// WriteState writes st as indented JSON, crash-safely, creating the folder.
func WriteState(path string, st *State) error {
	data, err := EncodeState(st)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("topology: %w", err)
	}
	if err := atomicfile.Write(path, data, 0o644); err != nil {
		return fmt.Errorf("topology: %w", err)
	}
	return nil
}

// ReadProjectState reads the copy of the state in a project folder, for
// display only, as ReadProjectFile reads a project file: never through a
// symlink out of the project, a FIFO or more than MaxStateFile bytes.
func ReadProjectState(project string) (*State, error) {
	data, err := ReadProjectFile(project, StatePath(project), MaxStateFile)
	if err != nil {
		return nil, fmt.Errorf("topology: %w", err)
	}
	return decodeState(StatePath(project), data)
}

// ReadState reads a state written by WriteState: a regular file, not a
// symlink, of at most MaxStateFile bytes. A missing file is an error
// wrapping fs.ErrNotExist (generate-artefacts has not run).
func ReadState(path string) (*State, error) {
	data, err := ReadRegularFile(path, MaxStateFile)
	if err != nil {
		return nil, fmt.Errorf("topology: %w", err)
	}
	return decodeState(path, data)
}

func decodeState(path string, data []byte) (*State, error) {
	var st State
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("topology: read state %s: %w", path, err)
	}
	if st.Version != StateVersion {
		return nil, fmt.Errorf("topology: state %s has version %d, this build reads %d: run generate-artefacts again", path, st.Version, StateVersion)
	}
	return &st, nil
}
