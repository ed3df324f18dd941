package archdoc

import (
	"bufio"
	"bytes"
	"flag"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the import graph in docs/architecture.md")

const (
	module     = "github.com/testbedos/testbedos/"
	docPath    = "../../docs/architecture.md"
	graphStart = "<!-- imports: generated from `go list` by `go test ./test/archdoc -update` -->\n"
	graphEnd   = "<!-- end of imports -->"
)

// goList runs go list in the module's root with a template per package.
func goList(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = "../.."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v\n%s", args, err, stderr.String())
	}
	return string(out)
}

// graph is one line per package of the module (test/ left out): the
// package, an arrow, and the module's packages it imports directly.
func graph(t *testing.T) string {
	out := goList(t, "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "./...")
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		pkg := strings.TrimPrefix(f[0], module)
		if strings.HasPrefix(pkg, "test/") {
			continue
		}
		var deps []string
		for _, imp := range f[1:] {
			if strings.HasPrefix(imp, module) {
				deps = append(deps, strings.TrimPrefix(imp, module))
			}
		}
		sort.Strings(deps)
		line := pkg
		if len(deps) > 0 {
			line += " ─► " + strings.Join(deps, ", ")
		}
		lines = append(lines, line)
	}
	sort.Strings(lines)
	return "```\n" + strings.Join(lines, "\n") + "\n```\n"
}

// TestArchitectureDoc: the import graph in docs/architecture.md is the
// module's, package by package.
func TestArchitectureDoc(t *testing.T) {
	data, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	i, j := strings.Index(doc, graphStart), strings.Index(doc, graphEnd)
	if i < 0 || j < i {
		t.Fatalf("%s has no block between %q and %q", docPath, graphStart, graphEnd)
	}
	want := doc[:i+len(graphStart)] + graph(t) + doc[j:]
	if want == doc {
		return
	}
	if *update {
		if err := os.WriteFile(docPath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("the import graph in %s is not the module's; regenerate it with\n\tgo test ./test/archdoc -update\nand check that the prose around it still holds", docPath)
}

// TestCLIImportsNoServer: kvm-compose is a client of the REST API; the wire
// constants it shares with the server live in internal/api, so it links
// none of the server's packages.
func TestCLIImportsNoServer(t *testing.T) {
	for _, dep := range strings.Fields(goList(t, "-deps", "./cmd/kvm-compose")) {
		for _, banned := range []string{"internal/server", "internal/engine", "internal/guest", "internal/netplumb", "internal/store"} {
			if strings.HasPrefix(dep, module+banned) {
				t.Errorf("cmd/kvm-compose depends on %s", dep)
			}
		}
	}
}
