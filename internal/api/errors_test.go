package api

import (
	"errors"
	"fmt"
	"testing"
)

func TestCategorized(t *testing.T) {
	busy := Categorized(ErrConflict, "an action is already running")
	exists := Categorized(ErrConflict, "already exists")
	for _, tc := range []struct {
		name   string
		err    error
		target error
		want   bool
	}{
		{"its category", busy, ErrConflict, true},
		{"itself", busy, busy, true},
		{"wrapped, its category", fmt.Errorf("lab: %w", busy), ErrConflict, true},
		{"wrapped, itself", fmt.Errorf("lab: %w", busy), busy, true},
		{"a sibling of the same category", busy, exists, false},
		{"another category", busy, ErrNotFound, false},
		{"a category is not its sentinels", ErrConflict, busy, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := errors.Is(tc.err, tc.target); got != tc.want {
				t.Fatalf("errors.Is(%v, %v) = %v, want %v", tc.err, tc.target, got, tc.want)
			}
		})
	}
	if busy.Error() != "an action is already running" {
		t.Fatalf("message %q: the sentinel keeps its own text", busy.Error())
	}
}
