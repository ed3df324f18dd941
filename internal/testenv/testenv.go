// Package testenv decides what a test does when the machine lacks what it
// needs (root, libvirtd, a package): skip on a developer's laptop, fail in
// CI. With TESTBEDOS_REQUIRE_INTEGRATION=1 (.ci/run sets it) every such
// skip is a failure with the same reason, so a CI run cannot pass without
// the integration tests.
package testenv

import (
	"fmt"
	"os"
	"testing"
)

// RequireVar is the environment variable that turns skips into failures.
const RequireVar = "TESTBEDOS_REQUIRE_INTEGRATION"

// Required reports whether missing requirements fail tests instead of
// skipping them.
func Required() bool { return os.Getenv(RequireVar) == "1" }

// Skip skips t because the machine lacks something (reason says what and how
// to get it), or fails t with the same reason when Required.
func Skip(t testing.TB, reason string) {
	t.Helper()
	skip(t, Required(), reason)
}

// Skipf is Skip with a formatted reason.
func Skipf(t testing.TB, format string, args ...any) {
	t.Helper()
	skip(t, Required(), fmt.Sprintf(format, args...))
}

func skip(t testing.TB, required bool, reason string) {
	t.Helper()
	if required {
		t.Fatalf("%s (%s=1: a missing requirement fails the test instead of skipping it)", reason, RequireVar)
	}
	t.Skip(reason)
}

// Missing notes that an optional part of a test does not run because the
// machine lacks something: it logs reason, or fails t when Required.
func Missing(t testing.TB, reason string) {
	t.Helper()
	missing(t, Required(), reason)
}

func missing(t testing.TB, required bool, reason string) {
	t.Helper()
	if required {
		t.Fatalf("%s (%s=1: a missing requirement fails the test)", reason, RequireVar)
	}
	t.Log(reason)
}

// RequireRoot skips t (or fails it, when Required) unless it runs as root;
// why says what the test does that needs root.
func RequireRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Skip(t, "needs root: "+why)
	}
}
