package config

import (
	"flag"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the table of docs/configuration.md from Knobs")

const (
	docPath    = "../../docs/configuration.md"
	tableStart = "<!-- knobs: generated from internal/config.Knobs by `go test ./internal/config -run TestConfigurationDoc -update` -->\n"
	tableEnd   = "<!-- end of knobs -->"
)

// TestConfigurationDoc: docs/configuration.md shows exactly the registry.
func TestConfigurationDoc(t *testing.T) {
	data, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	i, j := strings.Index(doc, tableStart), strings.Index(doc, tableEnd)
	if i < 0 || j < i {
		t.Fatalf("%s has no block between %q and %q", docPath, tableStart, tableEnd)
	}
	want := doc[:i+len(tableStart)] + Table() + doc[j:]
	if want == doc {
		return
	}
	if *update {
		if err := os.WriteFile(docPath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("the table of %s disagrees with config.Knobs; regenerate it with\n\tgo test ./internal/config -run TestConfigurationDoc -update", docPath)
}

func TestKnobsAreComplete(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range Knobs {
		if k.Env == "" || k.Doc == "" || k.Program == "" {
			t.Errorf("knob %+v lacks a name, doc or program", k)
		}
		if k.Program == ProgramServer {
			if k.Flag == "" || k.set == nil || k.Type == "" {
				t.Errorf("server knob %s lacks a flag, a type or a setter", k.Env)
			}
			if seen[k.Env] {
				t.Errorf("server knob %s listed twice", k.Env)
			}
			seen[k.Env] = true
		}
	}
	// Every default parses and validates.
	cfg, err := bind(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MonitorInterval != DefaultMonitorInterval || cfg.Libvirt.Socket != DefaultLibvirtSocket || cfg.Libvirt.ReadyTimeout != 3*time.Minute ||
		cfg.Libvirt.ImageCache != filepath.Join(DefaultDataDir, "cache", "images") || cfg.Libvirt.DomainType != "auto" {
		t.Fatalf("defaults: %+v", cfg)
	}
}

// TestMovedKnobs: the variables that packages read by themselves before
// (monitor interval, libvirt, the GUI's dev folder) come through Server,
// with a flag twin that wins.
func TestMovedKnobs(t *testing.T) {
	env := map[string]string{"TESTBEDOS_MONITOR_INTERVAL": "0.5", "TESTBEDOS_LIBVIRT_DOMAIN_TYPE": "qemu",
		"TESTBEDOS_LIBVIRT_READY_TIMEOUT": "90s", "TESTBEDOS_LIBVIRT_SOCKET": "/x.sock", "TESTBEDOS_DEV_DIR": "/src/gui",
		"TESTBEDOS_DATA_DIR": "/data"}
	cfg, err := bind(t, env)
	if err != nil || cfg.MonitorInterval != 500*time.Millisecond || cfg.Libvirt.DomainType != "qemu" || cfg.Libvirt.ReadyTimeout != 90*time.Second ||
		cfg.Libvirt.Socket != "/x.sock" || cfg.Libvirt.ImageCache != "/data/cache/images" || cfg.DevDir != "/src/gui" {
		t.Fatalf("environment: %+v, %v", cfg, err)
	}
	cfg, err = bind(t, env, "--monitor-interval", "2s", "--libvirt-domain-type=kvm", "--dev-dir", "/elsewhere")
	if err != nil || cfg.MonitorInterval != 2*time.Second || cfg.Libvirt.DomainType != "kvm" || cfg.DevDir != "/elsewhere" {
		t.Fatalf("flags must win: %+v, %v", cfg, err)
	}
	for _, bad := range []map[string]string{
		{"TESTBEDOS_MONITOR_INTERVAL": "0"}, {"TESTBEDOS_MONITOR_INTERVAL": "often"},
		{"TESTBEDOS_LIBVIRT_DOMAIN_TYPE": "xen"}, {"TESTBEDOS_LIBVIRT_READY_TIMEOUT": "soon"}, {"TESTBEDOS_LIBVIRT_READY_TIMEOUT": "-1s"},
	} {
		if _, err := bind(t, bad); err == nil {
			t.Errorf("%v accepted", bad)
		} else if !strings.Contains(err.Error(), "TESTBEDOS_") {
			t.Errorf("%v: error %q does not name the variable", bad, err)
		}
	}
	if _, err := bind(t, nil, "--monitor-interval", "2h"); err == nil {
		t.Error("a bad flag was accepted")
	}
}

// TestNoEnvironmentOutsideConfig: production code of the daemon and the CLI
// reads no environment variable by itself; Knobs is the one list. Test
// helpers (testenv, test/) read theirs and are listed in Knobs too.
func TestNoEnvironmentOutsideConfig(t *testing.T) {
	allowed := map[string]bool{
		"internal/config":      true,
		"internal/testenv":     true, // TESTBEDOS_REQUIRE_INTEGRATION, test-only
		"internal/cli":         true, // hands os.LookupEnv to the app; names from config
		"cmd/testbedos-server": true, // hands os.LookupEnv to config.Bind
	}
	root := "../.."
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") || rel == "test" || d.Name() == "testdata" || strings.HasSuffix(rel, "nettest") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || allowed[filepath.Dir(rel)] {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); ok && x.Name == "os" && (sel.Sel.Name == "Getenv" || sel.Sel.Name == "LookupEnv" || sel.Sel.Name == "Environ") {
				t.Errorf("%s reads the environment (os.%s): add a knob to internal/config and pass the value in", rel, sel.Sel.Name)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
