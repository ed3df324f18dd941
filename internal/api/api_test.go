package api

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestStateJSONShapes(t *testing.T) {
	cases := []struct {
		state DeploymentState
		json  string
	}{
		{DeploymentState{}, `"down"`},
		{StateIsUp, `"up"`},
		{StateIsRunning, `"running"`},
		{FailedState(Command{Name: CmdUp}), `{"failed":{"up":{"up_cmd":{"provision":false,"rerun_scripts":false}}}}`},
		{FailedState(Command{Name: CmdGenerateArtefacts}), `{"failed":"generate_artefacts"}`},
		{FailedState(Command{Name: CmdDown}), `{"failed":"down"}`},
	}
	for _, tc := range cases {
		got, err := json.Marshal(tc.state)
		if err != nil || string(got) != tc.json {
			t.Errorf("marshal %v = %s, %v; want %s", tc.state, got, err, tc.json)
		}
		var back DeploymentState
		if err := json.Unmarshal([]byte(tc.json), &back); err != nil || back.String() != tc.state.String() {
			t.Errorf("unmarshal %s = %v, %v", tc.json, back, err)
		}
	}
	for _, bad := range []string{`"sideways"`, `{"broken":"up"}`, `{"failed":"explode"}`, `3`, `{"failed":"up","x":1}`} {
		var s DeploymentState
		if err := json.Unmarshal([]byte(bad), &s); err == nil {
			t.Errorf("unmarshal %s: no error", bad)
		}
	}
}

func TestActionRequestForms(t *testing.T) {
	cases := []struct {
		body string
		want Command
		bad  bool
	}{
		{body: `{"command":"up","provision":true}`, want: Command{Name: CmdUp, Up: UpOptions{Provision: true}}},
		{body: `{"command":{"up":{"up_cmd":{"provision":false,"rerun_scripts":true}}}}`, want: Command{Name: CmdUp, Up: UpOptions{RerunScripts: true}}},
		{body: `{"command":"generate-artefacts"}`, want: Command{Name: CmdGenerateArtefacts}},
		{body: `{"command":"clear_artefacts"}`, want: Command{Name: CmdClearArtefacts}},
		{body: `{"command":"down","rerun_scripts":true}`, bad: true},
		{body: `{"command":"snapshot","snapshot":{"sub_command":"restore","guest":"vm1"}}`, bad: true},
		{body: `{"command":"snapshot","snapshot":{"sub_command":"restore","guest":"vm1","name":"s1"}}`,
			want: Command{Name: CmdSnapshot, Snapshot: SnapshotOptions{SubCommand: "restore", Guest: "vm1", Name: "s1"}}},
		// Reads are GETs, never actions (issue 7 defect 4).
		{body: `{"command":"snapshot","snapshot":{"sub_command":"list","guest":"vm1"}}`, bad: true},
		{body: `{"command":{"snapshot":{"snapshot_cmd":{"sub_command":"info","guest":"vm1","name":"s1"}}}}`, bad: true},
		{body: `{"command":{"up":{"up_cmd":{"force":true}}}}`, bad: true},
		{body: `{"command":{"down":{"x":1}}}`, bad: true},
		{body: `{}`, bad: true},
	}
	for _, tc := range cases {
		var req ActionRequest
		err := json.Unmarshal([]byte(tc.body), &req)
		var got Command
		if err == nil {
			got, err = req.Resolve()
		}
		if tc.bad {
			if err == nil {
				t.Errorf("%s: accepted as %+v", tc.body, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s = %+v, %v; want %+v", tc.body, got, err, tc.want)
		}
	}
}

func TestSnapshotReadsAreNotActions(t *testing.T) {
	for _, sub := range []string{"list", "info"} {
		err := SnapshotOptions{SubCommand: sub, Guest: "vm1", Name: "s1"}.Validate()
		if err == nil || !strings.Contains(err.Error(), "GET /api/deployments/{name}/guests/{guest}/snapshots") {
			t.Errorf("snapshot %s as an action: %v, want a refusal naming the GET route", sub, err)
		}
	}
}
