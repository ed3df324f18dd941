package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/testbedos/testbedos/internal/atomicfile"
)

// SavedMode is config/mode.json: the mode the server starts in when no mode
// is given (what systemd runs).
type SavedMode struct {
	Mode    string `json:"mode"`
	MainURL string `json:"main_url,omitempty"`
}

// ModePath is config/mode.json of the data folder.
func (c Server) ModePath() string { return filepath.Join(c.ConfigDir(), "mode.json") }

// LoadMode reads config/mode.json; a missing file means main mode.
func (c Server) LoadMode() (SavedMode, error) {
	data, err := os.ReadFile(c.ModePath())
	if errors.Is(err, fs.ErrNotExist) {
		return SavedMode{Mode: ModeMain}, nil
	}
	if err != nil {
		return SavedMode{}, err
	}
	var m SavedMode
	if err := json.Unmarshal(data, &m); err != nil {
		return SavedMode{}, fmt.Errorf("%s: %w", c.ModePath(), err)
	}
	if m.Mode != ModeMain && m.Mode != ModeClient {
		return SavedMode{}, fmt.Errorf("%s: unknown mode %q", c.ModePath(), m.Mode)
	}
	return m, nil
}

// SaveMode writes config/mode.json. Only the holder of the data folder's
// lock writes it, so a server refused at start never changes the mode of
// the one that runs.
func (l *DataLock) SaveMode(m SavedMode) error {
	c := l.cfg
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.ConfigDir(), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(c.ModePath(), append(data, '\n'), 0o644)
}
