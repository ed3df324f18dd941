package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/benchbase"
	"github.com/testbedos/testbedos/internal/net/nettest"
)

// BenchmarkApply changes one guest's address in a running lab of 200 netns
// guests and brings the lab to it twice in each iteration: with apply
// (only that guest is re-made) and with down, generate-artefacts and up of
// the whole lab. It reports both and their ratio:
//
//	apply-ms, downup-ms, apply-x-of-downup
//
//	go test -run '^$' -bench Apply -benchtime 3x ./internal/engine/
func BenchmarkApply(b *testing.B) {
	nettest.RequireRoot(b)
	ctx := context.Background()
	e, d, _ := engineFor(b, 200, 1)
	must(b, e.Up(ctx, d, api.UpOptions{}, discard{}))
	yamlPath := filepath.Join(d.ProjectLocation, "kvm-compose.yaml")
	original, err := os.ReadFile(yamlPath)
	must(b, err)
	// g0 is 10.124.0.1; the other address is outside the ones in use.
	variants := []string{
		strings.Replace(string(original), "ip: 10.124.0.1}", "ip: 10.124.3.1}", 1),
		string(original),
	}
	if variants[0] == variants[1] {
		b.Fatal("the lab's YAML has no g0 at 10.124.0.1")
	}
	var applyT, downUpT time.Duration
	b.ResetTimer()
	for range b.N {
		// The change applied...
		must(b, os.WriteFile(yamlPath, []byte(variants[0]), 0o644))
		applyT += benchbase.Timed(b, func() error { return e.Apply(ctx, d, discard{}) })
		// ...and the change back, by down and up of the lab.
		must(b, os.WriteFile(yamlPath, []byte(variants[1]), 0o644))
		downUpT += benchbase.Timed(b, func() error {
			if err := e.Down(ctx, d, discard{}); err != nil {
				return err
			}
			if err := e.GenerateArtefacts(ctx, d, discard{}); err != nil {
				return err
			}
			return e.Up(ctx, d, api.UpOptions{}, discard{})
		})
		p, err := e.Plan(ctx, d)
		must(b, err)
		if !p.Empty() {
			b.Fatalf("after down and up the plan is not empty: %+v", p.Changes)
		}
	}
	ms := func(t time.Duration) float64 { return float64(t.Microseconds()) / 1000 / float64(b.N) }
	b.ReportMetric(ms(applyT), "apply-ms")
	b.ReportMetric(ms(downUpT), "downup-ms")
	b.ReportMetric(float64(applyT)/float64(downUpT), "apply-x-of-downup")
	b.ReportMetric(0, "ns/op")
}
