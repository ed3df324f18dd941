package api

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzActionRequest feeds arbitrary bodies to the action request decoder:
// it must never panic, and whatever it accepts must survive a round trip.
func FuzzActionRequest(f *testing.F) {
	for _, s := range []string{
		`{"command":"up"}`,
		`{"command":"up","provision":true,"rerun_scripts":true}`,
		`{"command":{"up":{"up_cmd":{"provision":true,"rerun_scripts":false}}}}`,
		`{"command":"generate_artefacts"}`,
		`{"command":"snapshot","snapshot":{"sub_command":"create","guest":"vm1","name":"s1"}}`,
		`{"command":{"snapshot":{"snapshot_cmd":{"sub_command":"list","guest":"vm1"}}}}`,
		`{"command":"down","generate_artefacts":true}`,
		`{"command":{"down":null}}`,
		`{"command":{}}`,
		`{"command":7}`,
		`null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var req ActionRequest
		if json.Unmarshal(data, &req) != nil {
			return
		}
		cmd, err := req.Resolve()
		if err != nil {
			return
		}
		out, err := json.Marshal(cmd)
		if err != nil {
			t.Fatalf("marshal %+v: %v", cmd, err)
		}
		var back Command
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("%s does not read back: %v", out, err)
		}
		if !reflect.DeepEqual(back, cmd) {
			t.Fatalf("round trip %s: %+v != %+v", out, back, cmd)
		}
		st := FailedState(cmd)
		out, _ = json.Marshal(st)
		var stBack DeploymentState
		if err := json.Unmarshal(out, &stBack); err != nil || stBack.String() != st.String() {
			t.Fatalf("state %s round trip: %v %v", out, stBack, err)
		}
	})
}
