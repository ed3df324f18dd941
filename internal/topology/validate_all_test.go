package topology

import (
	"errors"
	"strings"
	"testing"
)

// TestEveryProblemInOnePass: a router mistake does not hide a duplicate MAC
// that only resolution can see (a clone's MAC from its mac_range equal to
// another guest's MAC): generate-artefacts reports both at once.
func TestEveryProblemInOnePass(t *testing.T) {
	dir := writeProject(t, yamlLines(
		"machines:",
		"  - name: web",
		"    network: [{switch: sw0, ip: 10.0.0.5, mac: '02:00:00:00:00:02'}]",
		"    netns: {}",
		"  - name: client",
		"    docker:",
		"      image: busybox:local",
		"      scaling:",
		"        count: 2",
		"        interfaces:",
		"          sw0:",
		"            ip_type: {ip_range: {from: 10.0.0.10, to: 10.0.0.20}}",
		"            mac_range: {from: '02:00:00:00:00:01', to: '02:00:00:00:00:09'}",
		"network:",
		"  switches:",
		"    sw0: {subnet: 10.0.0.0/24}",
		"  routers:",
		"    r1:",
		"      ports:",
		"        - {switch: nowhere, gateway_ip: 10.9.0.1/24}",
	))
	_, err := Generate(Options{Deployment: "lab", ProjectDir: dir})
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("Generate: %v, want a *ValidationError", err)
	}
	var router, mac bool
	for _, p := range verr.Problems {
		router = router || strings.HasPrefix(p.Field, "network.routers.r1")
		mac = mac || (strings.HasSuffix(p.Field, ".mac") && strings.Contains(p.Message, "02:00:00:00:00:02"))
	}
	if !router || !mac {
		t.Fatalf("want the router's problem and the duplicate MAC in one pass (router %v, mac %v):\n%v", router, mac, err)
	}
}

// TestRouterPortMACOfAGuest: a router port given a guest's MAC is a
// problem, reported with the others.
func TestRouterPortMACOfAGuest(t *testing.T) {
	dir := writeProject(t, yamlLines(
		"machines:",
		"  - name: web",
		"    network: [{switch: sw0, ip: 10.0.0.5, mac: '02:00:00:00:00:02'}]",
		"    netns: {}",
		"network:",
		"  switches:",
		"    sw0: {subnet: 10.0.0.0/24}",
		"  routers:",
		"    r1:",
		"      ports:",
		"        - {switch: sw0, gateway_ip: 10.0.0.1/24, mac: '02:00:00:00:00:02'}",
	))
	_, err := Generate(Options{Deployment: "lab", ProjectDir: dir})
	var verr *ValidationError
	if !errors.As(err, &verr) || len(verr.Problems) != 1 || verr.Problems[0].Field != "network.routers.r1.ports[0].mac" ||
		verr.Problems[0].Line != 11 || !strings.Contains(verr.Problems[0].Message, "already used by web") {
		t.Fatalf("Generate: %v, want the router port's MAC reported on line 11", err)
	}
}
