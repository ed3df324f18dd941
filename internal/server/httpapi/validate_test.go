package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/testbedos/testbedos/internal/server/httpapi"
)

var yamlHeader = http.Header{"Content-Type": {"application/yaml"}}

// validateCalls drives POST /api/validate/yaml through d for the contract
// test: a good topology, a bad one (every problem with its line), a body
// too large.
func validateCalls(t *testing.T, c *contract, d door) {
	t.Helper()
	var ok httpapi.Validation
	c.doJSON(t, d, call{method: "POST", path: "/api/validate/yaml", body: goodTopology, header: yamlHeader, want: 200}, &ok)
	if ok.Problems == nil || len(ok.Problems) != 0 || ok.Error != nil {
		t.Errorf("good topology: %+v", ok)
	}
	var bad httpapi.Validation
	c.doJSON(t, d, call{method: "POST", path: "/api/validate/yaml", body: badTopology, header: yamlHeader, want: 422}, &bad)
	if len(bad.Problems) != 1 || bad.Problems[0].Line != 3 || bad.Error == nil || bad.Error.Code != 422 {
		t.Errorf("bad topology: %+v", bad)
	}
	c.do(t, d, call{method: "POST", path: "/api/validate/yaml", body: strings.Repeat("#", 2<<20), header: yamlHeader, want: 413, doc: docEither})
	// With the files checked, a setup script that does not come with the
	// YAML is a problem on its line; once named, none.
	var missing httpapi.Validation
	c.doJSON(t, d, call{method: "POST", path: "/api/validate/yaml?check_files=1&file=other.sh", body: scriptTopology, header: yamlHeader, want: 422}, &missing)
	if len(missing.Problems) != 1 || missing.Problems[0].Line != 4 || !strings.Contains(missing.Problems[0].Message, "setup.sh does not exist in the project folder") {
		t.Errorf("missing script: %+v", missing)
	}
	var named httpapi.Validation
	c.doJSON(t, d, call{method: "POST", path: "/api/validate/yaml?check_files=1&file=other.sh&file=setup.sh", body: scriptTopology, header: yamlHeader, want: 200}, &named)
	if len(named.Problems) != 0 {
		t.Errorf("script named: %+v", named)
	}
}

const scriptTopology = "machines:\n  - name: web\n    network: [{switch: sw0, ip: 10.0.0.10}]\n    netns: {setup_script: setup.sh}\nnetwork:\n  switches:\n    sw0: {subnet: 10.0.0.0/24}\n"

func TestValidateFindsEveryProblem(t *testing.T) {
	tb := startServer(t)
	src := "machines:\n  - name: Web\n    network: [{switch: sw9, ip: 10.0.0.10}]\n  - name: db\n    bogus: 1\nnetwork:\n  switches:\n    sw0: {subnet: 10.0.0.0/24}\n"
	req := tb.sock.request(t, "POST", "/api/validate/yaml", src, yamlHeader)
	resp, err := tb.sock.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v httpapi.Validation
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || resp.StatusCode != 422 {
		t.Fatalf("status %d, %v", resp.StatusCode, err)
	}
	lines := map[int]bool{}
	for _, p := range v.Problems {
		lines[p.Line] = true
		if p.Message == "" {
			t.Errorf("problem without message: %+v", p)
		}
	}
	for _, want := range []int{2, 3, 5} {
		if !lines[want] {
			t.Errorf("no problem on line %d: %+v", want, v.Problems)
		}
	}
}
