// Package scope holds dbt's pure deploy rules: what each changed file is to dbt (by the project's own
// dbt_project.yml paths), the scope the files decide (selective, all, build_only), whether the version was
// bumped, which rule decides when dbt's manifest diff says otherwise, and the exact commands an apply runs.
// Plain data in, plain data out: the planner gathers the trees and the manifest diff, this package decides.
package scope

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// ProjectFile is dbt's project file, at the root of a dbt project.
const ProjectFile = "dbt_project.yml"

// Layout is where a dbt project keeps each kind of file, as its dbt_project.yml says (dbt's defaults for what
// it leaves out). Paths are relative to the project's directory, cleaned.
type Layout struct {
	Models, Seeds, Tests, Analyses, Macros, Snapshots, Docs []string
	Target, Packages                                        string // generated: never part of a change
	// Jinja names the path key written with Jinja ("model-paths"), whose value only dbt can resolve: every
	// file is then project config (scope all).
	Jinja string
}

// DefaultLayout is dbt's own (core/dbt/config/project.py): docs default to every resource path.
func DefaultLayout() Layout {
	l := Layout{Models: []string{"models"}, Seeds: []string{"seeds"}, Tests: []string{"tests"},
		Analyses: []string{"analyses"}, Macros: []string{"macros"}, Snapshots: []string{"snapshots"},
		Target: "target", Packages: "dbt_packages"}
	return l
}

// pathKeys are dbt_project.yml's path lists, with their legacy names.
var pathKeys = []struct {
	key, legacy string
	field       func(*Layout) *[]string
}{
	{"model-paths", "source-paths", func(l *Layout) *[]string { return &l.Models }},
	{"seed-paths", "data-paths", func(l *Layout) *[]string { return &l.Seeds }},
	{"test-paths", "", func(l *Layout) *[]string { return &l.Tests }},
	{"analysis-paths", "", func(l *Layout) *[]string { return &l.Analyses }},
	{"macro-paths", "", func(l *Layout) *[]string { return &l.Macros }},
	{"snapshot-paths", "", func(l *Layout) *[]string { return &l.Snapshots }},
	{"docs-paths", "", func(l *Layout) *[]string { return &l.Docs }},
}

// FileError is a dbt_project.yml that cannot be read, at its line.
type FileError struct {
	File string
	Line int
	Msg  string
}

func (e *FileError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return e.File + ": " + e.Msg
}

// ReadLayout reads the paths of a dbt_project.yml (file names it in errors; data nil: the defaults).
func ReadLayout(file string, data []byte) (Layout, error) {
	l := DefaultLayout()
	root, err := projectRoot(file, data)
	if err != nil || root == nil {
		return l, err
	}
	values := map[string]*yaml.Node{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		values[root.Content[i].Value] = root.Content[i+1]
	}
	for _, pk := range pathKeys {
		n, key := values[pk.key], pk.key
		if n == nil && pk.legacy != "" {
			n, key = values[pk.legacy], pk.legacy
		}
		if n == nil || n.Tag == "!!null" {
			continue
		}
		paths, jinja, err := pathList(file, key, n)
		if err != nil {
			return l, err
		}
		if jinja && l.Jinja == "" {
			l.Jinja = key
		}
		*pk.field(&l) = paths
	}
	for _, s := range []struct {
		key   string
		field *string
	}{{"target-path", &l.Target}, {"packages-install-path", &l.Packages}} {
		n := values[s.key]
		if n == nil || n.Tag == "!!null" {
			continue
		}
		if n.Kind != yaml.ScalarNode {
			return l, &FileError{File: file, Line: n.Line, Msg: s.key + " must be a path"}
		}
		if isJinja(n.Value) {
			if l.Jinja == "" {
				l.Jinja = s.key
			}
			continue
		}
		*s.field = cleanRel(n.Value)
	}
	return l, nil
}

// MaxProjectFileSize bounds the dbt_project.yml the rules read: the PR writes it, and the bot parses it.
const MaxProjectFileSize = 1 << 20

// projectRoot parses dbt_project.yml to its top mapping (nil for an empty file).
func projectRoot(file string, data []byte) (root *yaml.Node, err error) {
	if data == nil {
		return nil, nil
	}
	if len(data) > MaxProjectFileSize {
		return nil, &FileError{File: file, Msg: fmt.Sprintf("the file is %d bytes; the limit is %d", len(data), MaxProjectFileSize)}
	}
	defer func() {
		if r := recover(); r != nil { // a project file must never take the bot down
			root, err = nil, &FileError{File: file, Msg: fmt.Sprintf("invalid YAML: %v", r)}
		}
	}()
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, &FileError{File: file, Msg: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	root = doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, &FileError{File: file, Line: root.Line, Msg: "must be a mapping (key: value)"}
	}
	return root, nil
}

func pathList(file, key string, n *yaml.Node) (paths []string, jinja bool, err error) {
	if n.Kind == yaml.ScalarNode && isJinja(n.Value) {
		return nil, true, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, false, &FileError{File: file, Line: n.Line, Msg: key + " must be a list of paths"}
	}
	for _, item := range n.Content {
		if item.Kind != yaml.ScalarNode || item.Tag == "!!null" {
			return nil, false, &FileError{File: file, Line: item.Line, Msg: key + " must be a list of paths"}
		}
		if isJinja(item.Value) {
			jinja = true
			continue
		}
		paths = append(paths, cleanRel(item.Value))
	}
	return paths, jinja, nil
}

func isJinja(s string) bool { return strings.Contains(s, "{{") || strings.Contains(s, "{%") }

func cleanRel(p string) string { return strings.TrimPrefix(path.Clean("/"+p), "/") }

// vars returns the `vars` of a dbt_project.yml as canonical text, to tell whether they changed: dbt's state
// comparison does not see vars (state_modified_compare_vars is off by default).
func vars(data []byte) string {
	root, err := projectRoot(ProjectFile, data)
	if err != nil || root == nil {
		return ""
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "vars" {
			var v any
			if root.Content[i+1].Decode(&v) != nil {
				return "\x00undecodable"
			}
			return canonical(v)
		}
	}
	return ""
}

func canonical(v any) string {
	switch t := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		b.WriteString("{")
		for _, k := range keys {
			fmt.Fprintf(&b, "%q:%s,", k, canonical(t[k]))
		}
		return b.String() + "}"
	case []any:
		var b strings.Builder
		b.WriteString("[")
		for _, x := range t {
			b.WriteString(canonical(x) + ",")
		}
		return b.String() + "]"
	}
	return fmt.Sprintf("%T:%v", v, v)
}
