package server

import (
	"fmt"
	"strings"
	"testing"
)

func TestRestoreReason(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want string
	}{
		{1, "restore: after a restart, missing: namespace ns0"},
		{2, "restore: after a restart, missing: namespace ns0, namespace ns1"},
		{restoreShown + 3, "namespace ns11 and 3 more"},
	} {
		var missing []string
		for i := range tc.n {
			missing = append(missing, fmt.Sprintf("namespace ns%d", i))
		}
		got := restoreReason(missing)
		if !strings.HasPrefix(got, "restore: after a restart, missing: ") || !strings.HasSuffix(got, tc.want) {
			t.Errorf("%d missing: %q, want it to end %q", tc.n, got, tc.want)
		}
	}
}
