package config

import "testing"

func TestRestore(t *testing.T) {
	for _, tc := range []struct {
		env, flag, want string
	}{
		{"", "", RestoreOn},
		{"off", "", RestoreOff},
		{"OFF", "", RestoreOff},
		{"0", "", RestoreOff},
		{"off", "on", RestoreOn},
	} {
		env := map[string]string{}
		if tc.env != "" {
			env["TESTBEDOS_RESTORE"] = tc.env
		}
		var args []string
		if tc.flag != "" {
			args = []string{"--restore", tc.flag}
		}
		cfg, err := bind(t, env, args...)
		if err != nil || cfg.Restore != tc.want {
			t.Errorf("env %q flag %q: restore %q, %v; want %q", tc.env, tc.flag, cfg.Restore, err, tc.want)
		}
	}
	if _, err := bind(t, map[string]string{"TESTBEDOS_RESTORE": "later"}); err == nil {
		t.Error("TESTBEDOS_RESTORE=later accepted")
	}
	// A Server built in code restores by default.
	c := Server{DataDir: "/tmp/x", Socket: "/tmp/x.sock", DB: "file", HeartbeatInterval: 1, HeartbeatMisses: 1, LogRetention: 1, LogMaxCount: 1}
	if err := c.Validate(); err != nil || c.Restore != RestoreOn {
		t.Errorf("zero Restore: %q, %v", c.Restore, err)
	}
}
