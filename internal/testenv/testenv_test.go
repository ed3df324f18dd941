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
	failed, skipped string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (f *fakeTB) Skip(args ...any) {
	f.skipped = fmt.Sprint(args...)
	runtime.Goexit()
}

func run(required bool, reason string) *fakeTB {
	f := &fakeTB{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		skip(f, required, reason)
	}()
	<-done
	return f
}

func TestSkipOrFail(t *testing.T) {
	for _, tc := range []struct {
		name     string
		required bool
	}{{"skips by default", false}, {"fails when required", true}} {
		t.Run(tc.name, func(t *testing.T) {
			f := run(tc.required, "libvirtd does not answer")
			got, other := f.skipped, f.failed
			if tc.required {
				got, other = f.failed, f.skipped
			}
			if !strings.Contains(got, "libvirtd does not answer") || other != "" {
				t.Fatalf("required=%v: skipped %q, failed %q", tc.required, f.skipped, f.failed)
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
