package topology

import (
	"fmt"
	"strings"
	"testing"
)

// mergeKeyBomb is a file of a few hundred bytes whose merge keys, each
// level merging the one below twice, stand for 2^levels mappings.
func mergeKeyBomb(levels int) string {
	var b strings.Builder
	b.WriteString("machines:\n  - name: a\n    network: &l0 {x: 1}\n")
	for i := 1; i <= levels; i++ {
		fmt.Fprintf(&b, "    libvirt%d: &l%d {<<: [*l%d, *l%d]}\n", i, i, i-1, i-1)
	}
	fmt.Fprintf(&b, "  - name: b\n    netns: {<<: *l%d}\n", levels)
	return b.String()
}

// aliasBomb is the classic "billion laughs": each list holds the one above
// ten times.
func aliasBomb(levels int) string {
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i <= levels; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [", i, i)
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*a%d", i-1)
		}
		b.WriteString("]\n")
	}
	fmt.Fprintf(&b, "machines: [{name: a, network: *a%d}]\n", levels)
	return b.String()
}

func TestParseRefusesExpansionBombs(t *testing.T) {
	tests := []struct {
		name string
		src  string
		line int
		want string
	}{
		// Level 14, on line 17, is the first past 200,000 nodes.
		{"merge keys doubling", mergeKeyBomb(40), 17, "expand the document past 200000 nodes"},
		{"merge keys doubling, deep", mergeKeyBomb(64), 17, "expand the document past 200000 nodes"},
		{"aliases tenfold", aliasBomb(9), 6, "expand the document past 200000 nodes"},
		{"alias inside its anchor", "machines: &a [*a]\n", 1, "alias *a is inside its own anchor (line 1)"},
		{"mapping merged into itself", "machines:\n  - &m\n    name: a\n    <<: *m\n", 4, "merges (<<) *m into itself"},
		{"merge loop through a list", "machines:\n  - &m\n    name: a\n    <<: [{y: 1}, *m]\n", 4, "merges (<<) *m into itself"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := parseProblems(t, tt.src)
			if len(ps) != 1 || ps[0].Line != tt.line || !strings.Contains(ps[0].Message, tt.want) {
				t.Fatalf("problems %v, want one on line %d saying %q", ps, tt.line, tt.want)
			}
		})
	}
}

func TestParseRefusesOversizedFile(t *testing.T) {
	src := "machines: [{name: a}]\n" + strings.Repeat("# padding\n", MaxFileBytes/10+1)
	ps := parseProblems(t, src)
	if len(ps) != 1 || !strings.Contains(ps[0].Message, "at most 4194304 (4 MiB)") {
		t.Fatalf("problems %v, want the file refused for its size", ps)
	}
}

func TestParseAcceptsSharedAnchors(t *testing.T) {
	// Ordinary reuse, one base merged into many machines through merge keys
	// of merge keys, stays far below the budget and means what it says.
	var b strings.Builder
	b.WriteString("machines:\n")
	b.WriteString("  - {name: vm0, libvirt: &base {cpus: 1, memory_mb: 256, libvirt_type: {cloud_image: {url: 'https://e.org/x.img'}}}}\n")
	b.WriteString("  - {name: vm1, libvirt: &big {<<: *base, memory_mb: 512}}\n")
	b.WriteString("  - {name: vm2, libvirt: &bigger {<<: [*big, *base], cpus: 4}}\n")
	for i := 3; i < 200; i++ {
		fmt.Fprintf(&b, "  - {name: vm%d, libvirt: *bigger}\n", i)
	}
	c, err := Parse("", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	last := c.Machines[len(c.Machines)-1].Libvirt
	if last == nil || last.CPUs != 4 || last.MemoryMB != 512 || last.Type.CloudImage == nil {
		t.Fatalf("last machine's libvirt = %+v, want 4 CPUs, 512 MB and the cloud image", last)
	}
}

// BenchmarkMergeKeyBomb measures refusing the merge-key bomb; it must take
// well under 100 ms (make bench).
func BenchmarkMergeKeyBomb(b *testing.B) {
	src := []byte(mergeKeyBomb(40))
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		if _, err := Parse("", src); err == nil {
			b.Fatal("the bomb was accepted")
		}
	}
}
