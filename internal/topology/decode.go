package topology

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// DefaultFile is the topology file's name inside a project folder.
const DefaultFile = "kvm-compose.yaml"

// nodeBudget bounds the YAML nodes of a document once aliases and merge keys
// are expanded (checkExpansion measures that before decoding): anchors that
// refer to anchors must not make parsing exponential, nor a few anchors
// referenced from many places make it quadratic.
const nodeBudget = 200_000

// Parse decodes a kvm-compose.yaml and runs every check that needs no file
// system. filename is only used in problems (default DefaultFile). On failure
// the error is a *ValidationError.
func Parse(filename string, data []byte) (*Config, error) {
	c, ps := parse(filename, data)
	if err := newValidationError(ps); err != nil {
		return nil, err
	}
	return c, nil
}

// parse returns the Config (nil only when the YAML could not be read at all)
// together with every problem found, unsorted.
func parse(filename string, data []byte) (*Config, []Problem) {
	if filename == "" {
		filename = DefaultFile
	}
	p := sizeProblem(data)
	var root *yaml.Node
	if p == nil {
		root, p = parseYAML(data)
	}
	if p == nil && root != nil {
		p = checkExpansion(root)
	}
	if p != nil {
		p.File = filename
		return nil, []Problem{*p}
	}
	c := &Config{file: filename, lines: map[string]int{}, bad: map[string]bool{}}
	d := &decoder{c: c}
	if root == nil {
		d.problem(0, "machines", "must list at least one machine (the file is empty)")
		return c, d.problems
	}
	if root.Kind != yaml.MappingNode {
		d.problem(root.Line, "", "the file must be a mapping with machines, network and testbed_options, not %s", describe(root))
		return c, d.problems
	}
	d.decode(root, reflect.ValueOf(c).Elem(), "", root.Line)
	ps := problems{c: c, list: d.problems}
	c.check(&ps)
	return c, ps.list
}

var yamlLineError = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseYAML reads exactly one YAML document. root is nil for an empty file.
func parseYAML(data []byte) (root *yaml.Node, p *Problem) {
	// The parser is not ours: a panic in it must become a problem, not take
	// the server down with it.
	defer func() {
		if r := recover(); r != nil {
			root, p = nil, &Problem{Message: fmt.Sprintf("YAML parser failed: %v", r)}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, syntaxProblem(err, data)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, syntaxProblem(err, data)
	default:
		return nil, &Problem{Line: next.Line, Message: "starts a second YAML document; the file must hold exactly one"}
	}
	root = &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil, nil
		}
		root = root.Content[0]
	}
	if isNull(root) {
		return nil, nil
	}
	return root, nil
}

func syntaxProblem(err error, data []byte) *Problem {
	msg := err.Error()
	if m := yamlLineError.FindStringSubmatch(msg); m != nil {
		// The parser may count one past the end of the file.
		line, _ := strconv.Atoi(m[1])
		return &Problem{Line: min(line, lineCount(data)), Message: "YAML syntax error: " + m[2]}
	}
	return &Problem{Message: "YAML syntax error: " + strings.TrimPrefix(msg, "yaml: ")}
}

// decoder walks a yaml.Node tree into the model types by their yaml tags. It
// records the line of every field it meets and a Problem for every field it
// cannot take, and keeps going, so that one run reports everything. It runs
// only on trees checkExpansion passed: without alias loops, and small once
// expanded, so following every alias and merge key is safe.
type decoder struct {
	c        *Config
	problems []Problem
}

func (d *decoder) problem(line int, field, format string, args ...any) {
	d.c.bad[field] = true
	d.problems = append(d.problems, Problem{
		File:    d.c.file,
		Line:    line,
		Field:   field,
		Message: fmt.Sprintf(format, args...),
	})
}

// decode stores node n into v. path is the field path of v and line the line
// to report it on (the key's line for fields, the item's for list items).
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string, line int) {
	n = deref(n)
	if n == nil {
		d.problem(line, path, "refers to an anchor that cannot be resolved")
		return
	}
	if path != "" {
		d.c.lines[path] = line
	}
	if isNull(n) {
		// "netns:" alone still says which kind the machine is.
		if v.Kind() == reflect.Pointer {
			v.Set(reflect.New(v.Type().Elem()))
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		d.decodeValue(n, p.Elem(), path, line)
		v.Set(p)
	default:
		d.decodeValue(n, v, path, line)
	}
}

func (d *decoder) decodeValue(n *yaml.Node, v reflect.Value, path string, line int) {
	switch v.Kind() {
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.problem(line, path, "is %s, not a string", describe(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Int:
		var i int64
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&i) != nil {
			d.problem(line, path, "%s", notA(n, "an integer"))
			return
		}
		if v.OverflowInt(i) {
			d.problem(line, path, "%s is too large", n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Float64:
		var f float64
		tag := n.ShortTag()
		if n.Kind != yaml.ScalarNode || (tag != "!!int" && tag != "!!float") || n.Decode(&f) != nil {
			d.problem(line, path, "%s", notA(n, "a number"))
			return
		}
		v.SetFloat(f)
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
			d.problem(line, path, "%s", notA(n, "a boolean (true or false)"))
			return
		}
		v.SetBool(b)
	case reflect.Struct:
		n = timelineAsList(n, v)
		if ok, msg := scalarStruct(n, v); ok {
			if msg != "" {
				d.problem(line, path, "%s", msg)
			}
			return
		}
		d.decodeStruct(n, v, path, line)
	case reflect.Slice:
		if ok, msg := scalarList(n, v); ok {
			if msg != "" {
				d.problem(line, path, "%s", msg)
			}
			return
		}
		if n.Kind == yaml.MappingNode && oneForMany(v.Type()) {
			// The original's spelling: one mapping for a list of one.
			n = &yaml.Node{Kind: yaml.SequenceNode, Line: n.Line, Content: []*yaml.Node{n}}
		}
		if n.Kind != yaml.SequenceNode {
			d.problem(line, path, "%s", notA(n, "a list"))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i), item.Line)
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.problem(line, path, "%s", notA(n, "a mapping"))
			return
		}
		m := reflect.MakeMap(v.Type())
		for _, kv := range d.pairs(n, path) {
			e := reflect.New(v.Type().Elem()).Elem()
			key := kv.key.Value
			d.decode(kv.value, e, joinPath(path, key), kv.key.Line)
			m.SetMapIndex(reflect.ValueOf(key), e)
		}
		v.Set(m)
	default:
		// Only reachable if a model type gains a field of a kind not handled
		// above: a programming error, caught by the tests.
		panic(fmt.Sprintf("topology: cannot decode into %s", v.Type()))
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string, line int) {
	if n.Kind != yaml.MappingNode {
		d.problem(line, path, "%s", notA(n, "a mapping of fields"))
		return
	}
	fields, names := yamlFields(v.Type())
	for _, kv := range d.pairs(n, path) {
		key := kv.key.Value
		i, ok := fields[key]
		if msg, unsupported := unsupportedField(v.Type(), key); !ok && unsupported {
			d.problem(kv.key.Line, joinPath(path, key), "%s", msg)
			continue
		}
		if !ok {
			d.problem(kv.key.Line, joinPath(path, key), "is not a known field (known: %s)", strings.Join(names, ", "))
			continue
		}
		d.decode(kv.value, v.Field(i), joinPath(path, key), kv.key.Line)
	}
}

type pair struct{ key, value *yaml.Node }

// pairs lists the entries of a mapping with merge keys (<<) expanded: keys
// written in the mapping win over merged ones, earlier merged maps over later
// ones. A key written twice, or one that is not a plain scalar, is a problem.
func (d *decoder) pairs(n *yaml.Node, path string) []pair {
	var out, merged []pair
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := deref(n.Content[i]), n.Content[i+1]
		switch {
		case k == nil || k.Kind != yaml.ScalarNode:
			d.problem(n.Content[i].Line, path, "has a key that is not a plain name")
			continue
		case k.ShortTag() == "!!merge":
			merged = append(merged, d.mergeSources(val, path)...)
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.problem(k.Line, joinPath(path, k.Value), "is given twice (first on line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		out = append(out, pair{k, val})
	}
	for _, p := range merged {
		if _, ok := seen[p.key.Value]; !ok {
			seen[p.key.Value] = p.key.Line
			out = append(out, p)
		}
	}
	return out
}

func (d *decoder) mergeSources(val *yaml.Node, path string) []pair {
	src := deref(val)
	var maps []*yaml.Node
	switch {
	case src != nil && src.Kind == yaml.MappingNode:
		maps = []*yaml.Node{src}
	case src != nil && src.Kind == yaml.SequenceNode:
		for _, item := range src.Content {
			maps = append(maps, deref(item))
		}
	}
	var out []pair
	for _, m := range maps {
		if m == nil || m.Kind != yaml.MappingNode {
			d.problem(val.Line, path, "merges (<<) something that is not a mapping")
			continue
		}
		out = append(out, d.pairs(m, path)...)
	}
	if len(maps) == 0 {
		d.problem(val.Line, path, "merges (<<) something that is not a mapping")
	}
	return out
}

// deref follows aliases to the node they name; nil when that fails.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode; i++ {
		if i == 100 {
			return nil
		}
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// notA phrases a type mismatch: `"abc" is not an integer`, `is a list, not a
// string`.
func notA(n *yaml.Node, want string) string {
	if n.Kind == yaml.ScalarNode {
		return fmt.Sprintf("%s is not %s", strconv.Quote(n.Value), want)
	}
	return fmt.Sprintf("is %s, not %s", describe(n), want)
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	}
	return "empty"
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// yamlFields maps the yaml names of t's exported fields to their index and
// lists the names sorted, for "known:" hints.
func yamlFields(t reflect.Type) (map[string]int, []string) {
	fields := map[string]int{}
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		fields[name] = i
		names = append(names, name)
	}
	sort.Strings(names)
	return fields, names
}

// lineCount counts lines as the YAML parser does for UTF-8 input: \n, \r\n,
// a lone \r, NEL, LS and PS each end one.
func lineCount(data []byte) int {
	n := 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch r {
		case '\n', '\u0085', '\u2028', '\u2029':
			n++
		case '\r':
			if i+1 == len(data) || data[i+1] != '\n' {
				n++
			}
		}
		i += size
	}
	return n
}
