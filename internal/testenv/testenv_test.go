package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

// fakeTB records how a test ended; Fatalf and Skip stop the calling
// goroutine as the real ones do.
type fakeTB struct {
	testing.TB
	failed, skipped, logged string
}

func (f *fakeTB) Helper()          {}
func (f *fakeTB) Log(args ...any)  { f.logged = fmt.Sprint(args...) }
func (f *fakeTB) Skip(args ...any) { f.skipped = fmt.Sprint(args...); runtime.Goexit() }

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// runOn calls fn on a fake in a goroutine of its own, as a test runs.
func runOn(fn func(testing.TB)) *fakeTB {
	f := &fakeTB{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	return f
}

func TestSkipOrFail(t *testing.T) {
	const reason = "libvirtd does not answer"
	for _, tc := range []struct {
		name     string
		call     func(testing.TB, bool, string)
		required bool
		outcome  func(*fakeTB) (got string, others []string)
	}{
		{"skip skips by default", skip, false, func(f *fakeTB) (string, []string) { return f.skipped, []string{f.failed, f.logged} }},
		{"skip fails when required", skip, true, func(f *fakeTB) (string, []string) { return f.failed, []string{f.skipped, f.logged} }},
		{"missing logs by default", missing, false, func(f *fakeTB) (string, []string) { return f.logged, []string{f.failed, f.skipped} }},
		{"missing fails when required", missing, true, func(f *fakeTB) (string, []string) { return f.failed, []string{f.skipped, f.logged} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := runOn(func(tb testing.TB) { tc.call(tb, tc.required, reason) })
			got, others := tc.outcome(f)
			if !strings.Contains(got, reason) || strings.Join(others, "") != "" {
				t.Fatalf("skipped %q, failed %q, logged %q", f.skipped, f.failed, f.logged)
			}
			if tc.required && !strings.Contains(got, RequireVar) {
				t.Fatalf("the failure does not name %s: %q", RequireVar, got)
			}
		})
	}
}

// TestSkipInAChild runs TestChildSkips in a child process with and without
// the variable: the real testing package reports a skip, then a failure.
func TestSkipInAChild(t *testing.T) {
	for _, tc := range []struct {
		value string
		fails bool
		want  string
	}{{"", false, "--- SKIP: TestChildSkips"}, {"0", false, "--- SKIP: TestChildSkips"}, {"1", true, "--- FAIL: TestChildSkips"}} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestChildSkips$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "TESTENV_CHILD=1", RequireVar+"="+tc.value)
		out, err := cmd.CombinedOutput()
		if (err != nil) != tc.fails || !strings.Contains(string(out), tc.want) || !strings.Contains(string(out), "the machine lacks a thing") {
			t.Errorf("%s=%q: err %v, output:\n%s\nwant %q", RequireVar, tc.value, err, out, tc.want)
		}
	}
}

// TestChildSkips is the child of TestSkipInAChild.
func TestChildSkips(t *testing.T) {
	if os.Getenv("TESTENV_CHILD") != "1" {
		t.Skip("runs only as the child of TestSkipInAChild")
	}
	Skip(t, "the machine lacks a thing")
}
