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
// is given (what systemd runs). On disk it is the JSON string "main" or
// {"client": {"main_url": …, "fingerprint": …}}.
type SavedMode struct {
	Mode    string
	MainURL string
	// Fingerprint pins the main's certificate (client mode).
	Fingerprint string
}

type clientMode struct {
	MainURL     string `json:"main_url"`
	Fingerprint string `json:"fingerprint,omitempty"`
}

// MarshalJSON writes "main" or {"client": {…}}.
func (m SavedMode) MarshalJSON() ([]byte, error) {
	if m.Mode == ModeClient {
		return json.Marshal(map[string]clientMode{ModeClient: {MainURL: m.MainURL, Fingerprint: m.Fingerprint}})
	}
	return json.Marshal(m.Mode)
}

// UnmarshalJSON reads "main" or {"client": {…}}, and the {"mode": …, "main_url": …}
// of earlier versions.
func (m *SavedMode) UnmarshalJSON(data []byte) error {
	if len(data) > 0 && data[0] == '"' {
		*m = SavedMode{}
		return json.Unmarshal(data, &m.Mode)
	}
	var obj struct {
		Client  *clientMode `json:"client"`
		Mode    string      `json:"mode"`
		MainURL string      `json:"main_url"`
	}
	if err := json.Unmarshal(data, &obj); err != nil {
		return err
	}
	if obj.Client != nil {
		*m = SavedMode{Mode: ModeClient, MainURL: obj.Client.MainURL, Fingerprint: obj.Client.Fingerprint}
		return nil
	}
	*m = SavedMode{Mode: obj.Mode, MainURL: obj.MainURL}
	return nil
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
