package repoconfig

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Stage one: the YAML node tree is decoded into raw structs. Every value keeps where it was written, and the
// structural problems (unknown keys, wrong kinds, duplicates) are reported here; meaning and defaults are stage
// two (validate.go).

// at is where a value was written and the path of its field.
type at struct {
	Line, Column int
	Path         string
}

func (a at) child(key string) at {
	if a.Path == "" {
		return at{Line: a.Line, Column: a.Column, Path: key}
	}
	return at{Line: a.Line, Column: a.Column, Path: a.Path + "." + key}
}

func (a at) index(i int) at {
	return at{Line: a.Line, Column: a.Column, Path: fmt.Sprintf("%s[%d]", a.Path, i)}
}

// value is one decoded field. Set means it was written (and not null); Bad means it was written but could not
// be decoded, which has been reported already, so stage two neither defaults it nor complains again.
type value[T any] struct {
	V   T
	Set bool
	Bad bool
	At  at
}

type rawConfig struct {
	At            at
	Version       value[int]
	Projects      value[[]rawProject]
	Environments  value[[]rawEnvironment]
	Job           value[rawJob]
	PlanDrafts    value[bool]
	PREnvironment value[string]
	DeployBranch  value[[]value[string]]
}

type rawProject struct {
	At                             at
	Name, Path, Framework, Gateway value[string]
	DBT                            rawDBT // the dbt keys; each is refused on a project of another framework
}

type rawEnvironment struct {
	At                at
	Name              value[string]
	Protected         value[bool]
	RequiredApprovals value[int]
	Approvers         value[[]value[string]]
	Appliers          value[[]value[string]]
	PlanOnPR          value[bool]
	ApplyOn           value[[]value[string]]
}

type rawJob struct {
	At             at
	Image, Timeout value[string]
	Env            value[[]rawEnvVar]
	PassEnv        value[[]value[string]]
	Secrets        value[[]value[string]]
	Setup          value[[]rawSetupStep]
}

// rawSetupStep is one job.setup item: a string (a command line) or a list of strings (an argv).
type rawSetupStep struct {
	At   at
	Line value[string]
	Argv value[[]value[string]]
}

type rawEnvVar struct {
	Name, Value value[string]
}

// The keys each mapping accepts, in documentation order (suggestions and "known keys" lists use this order).
var (
	configKeys      = []string{"version", "projects", "environments", "job", "plan_drafts", "pr_environment", "deploy_branches"}
	projectKeys     = append([]string{"name", "path", "framework", "gateway"}, dbtProjectKeys...)
	environmentKeys = []string{"name", "protected", "required_approvals", "approvers", "appliers", "plan_on_pr", "apply_on"}
	jobKeys         = []string{"image", "timeout", "env", "pass_env", "secrets", "setup"}
)

// decoder walks the node tree. Aliases let a small file stand for a huge tree (a list aliased a thousand times),
// so every node visited, alias expansions included, is paid for from a budget proportional to the file.
type decoder struct {
	ps     *problems
	budget *int
}

// spend pays for visiting one node; once the budget is gone it reports that once and decoding stops.
func (d decoder) spend(a at) bool {
	if *d.budget <= 0 {
		return false
	}
	*d.budget--
	if *d.budget == 0 {
		d.ps.add(a, "the file expands to too many values (are aliases repeating a large list?)")
		return false
	}
	return true
}

// countNodes counts the nodes written in the file, not following aliases.
func countNodes(n *yaml.Node) int {
	if n == nil {
		return 0
	}
	c := 1
	for _, k := range n.Content {
		c += countNodes(k)
	}
	return c
}

// decodeRaw parses the YAML text and decodes it into a rawConfig, reporting syntax and structural problems.
func decodeRaw(ps *problems, data []byte) (raw rawConfig, ok bool) {
	root, ok := parseYAML(ps, data)
	if !ok {
		return rawConfig{}, false
	}
	budget := 4*countNodes(root) + 1000
	d := decoder{ps: ps, budget: &budget}
	raw.At = at{Line: 1, Column: 1}
	if root == nil { // an empty file, or only comments
		return raw, true
	}
	raw.At = at{Line: root.Line, Column: root.Column}
	ok = d.fields(root, raw.At, configKeys, func(key string, n *yaml.Node, a at) {
		switch key {
		case "version":
			raw.Version = d.integer(n, a)
		case "projects":
			raw.Projects = list(d, n, a, d.project)
		case "environments":
			raw.Environments = list(d, n, a, d.environment)
		case "job":
			raw.Job = d.job(n, a)
		case "plan_drafts":
			raw.PlanDrafts = d.boolean(n, a)
		case "pr_environment":
			raw.PREnvironment = d.str(n, a)
		case "deploy_branches":
			raw.DeployBranch = d.stringList(n, a)
		}
	})
	return raw, ok
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseYAML returns the root node of the single document in data (nil when it is empty). Syntax errors keep the
// line yaml reports.
func parseYAML(ps *problems, data []byte) (root *yaml.Node, ok bool) {
	defer func() {
		// yaml.v3 has panicked on malformed input before; a config file must never take the bot down.
		if r := recover(); r != nil {
			ps.add(at{}, "invalid YAML: %v", r)
			root, ok = nil, false
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, true
		}
		addYAMLError(ps, err)
		return nil, false
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		addYAMLError(ps, err)
		return nil, false
	default:
		ps.add(at{Line: extra.Line, Column: extra.Column}, "only one YAML document is allowed (remove the second \"---\")")
		return nil, false
	}
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil, true
		}
		return doc.Content[0], true
	}
	if doc.Kind == 0 {
		return nil, true
	}
	return &doc, true
}

func addYAMLError(ps *problems, err error) {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		ps.add(at{Line: line}, "invalid YAML: %s", m[2])
		return
	}
	ps.add(at{}, "invalid YAML: %s", strings.TrimPrefix(msg, "yaml: "))
}

// maxAliasDepth bounds alias chains; yaml.v3 rejects cycles, this only guards against surprises.
const maxAliasDepth = 32

// resolve follows aliases to the node they stand for.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < maxAliasDepth; i++ {
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.AliasNode {
		return nil
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!int":
			return "a number"
		case "!!float":
			return "a decimal number"
		case "!!bool":
			return "a boolean"
		case "!!null":
			return "empty"
		}
		return "a string"
	}
	return "not a value"
}

// fields walks a mapping: it reports unknown and duplicate keys and calls visit for each known key whose value
// is not null. The at passed to visit is the value's position and path.
func (d decoder) fields(n *yaml.Node, a at, known []string, visit func(key string, value *yaml.Node, a at)) bool {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		if n == nil {
			d.ps.add(a, "must be a mapping")
		} else {
			d.ps.add(a, "must be a mapping (key: value), not %s", kindName(n))
		}
		return false
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if !d.spend(a) {
			return false
		}
		k, v := resolve(n.Content[i]), n.Content[i+1]
		keyAt := at{Line: n.Content[i].Line, Column: n.Content[i].Column}
		if k == nil || k.Kind != yaml.ScalarNode {
			keyAt.Path = a.Path
			d.ps.add(keyAt, "keys must be plain words")
			continue
		}
		if k.Tag == "!!merge" {
			keyAt.Path = a.Path
			d.ps.add(keyAt, "merge keys (<<) are not supported; write the keys out")
			continue
		}
		keyAt = a.child(k.Value)
		keyAt.Line, keyAt.Column = n.Content[i].Line, n.Content[i].Column
		if first, dup := seen[k.Value]; dup {
			d.ps.add(keyAt, "duplicate key (first set on line %d)", first)
			continue
		}
		seen[k.Value] = keyAt.Line
		if !contains(known, k.Value) {
			if s := suggest(k.Value, known); s != "" {
				d.ps.add(keyAt, "unknown key (did you mean %q?)", s)
			} else {
				d.ps.add(keyAt, "unknown key (known keys: %s)", strings.Join(known, ", "))
			}
			continue
		}
		rv := resolve(v)
		if rv != nil && isNull(rv) {
			continue
		}
		visit(k.Value, v, at{Line: v.Line, Column: v.Column, Path: keyAt.Path})
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (d decoder) scalar(n *yaml.Node, a at, want string) (*yaml.Node, bool) {
	r := resolve(n)
	if r == nil || r.Kind != yaml.ScalarNode {
		got := "not a value"
		if r != nil {
			got = kindName(r)
		}
		d.ps.add(a, "must be %s, not %s", want, got)
		return nil, false
	}
	return r, true
}

func (d decoder) str(n *yaml.Node, a at) value[string] {
	r, ok := d.scalar(n, a, "a string")
	if !ok {
		return value[string]{Bad: true, At: a}
	}
	if isNull(r) {
		d.ps.add(a, "must not be empty")
		return value[string]{Bad: true, At: a}
	}
	// Numbers and booleans are taken as written: `gateway: 2024` means the string "2024".
	return value[string]{V: r.Value, Set: true, At: a}
}

func (d decoder) integer(n *yaml.Node, a at) value[int] {
	r, ok := d.scalar(n, a, "a whole number")
	if !ok {
		return value[int]{Bad: true, At: a}
	}
	var i int
	if r.Tag != "!!int" || r.Decode(&i) != nil {
		d.ps.add(a, "must be a whole number, not %s", quote(r.Value))
		return value[int]{Bad: true, At: a}
	}
	return value[int]{V: i, Set: true, At: a}
}

func (d decoder) boolean(n *yaml.Node, a at) value[bool] {
	r, ok := d.scalar(n, a, "true or false")
	if !ok {
		return value[bool]{Bad: true, At: a}
	}
	var b bool
	if r.Tag != "!!bool" || r.Decode(&b) != nil {
		d.ps.add(a, "must be true or false, not %s", quote(r.Value))
		return value[bool]{Bad: true, At: a}
	}
	return value[bool]{V: b, Set: true, At: a}
}

// list decodes a sequence with item. Items that fail are reported and left out.
func list[T any](d decoder, n *yaml.Node, a at, item func(*yaml.Node, at) (T, bool)) value[[]T] {
	r := resolve(n)
	if r == nil || r.Kind != yaml.SequenceNode {
		got := "not a value"
		if r != nil {
			got = kindName(r)
		}
		d.ps.add(a, "must be a list, not %s", got)
		return value[[]T]{Bad: true, At: a}
	}
	out := value[[]T]{V: []T{}, Set: true, At: a}
	for i, c := range r.Content {
		if !d.spend(a) {
			out.Bad = true
			break
		}
		ia := a.index(i)
		ia.Line, ia.Column = c.Line, c.Column
		if v, ok := item(c, ia); ok {
			out.V = append(out.V, v)
		}
	}
	return out
}

// stringList decodes a list of strings; a single string is taken as a list of one (`apply_on: merge`).
func (d decoder) stringList(n *yaml.Node, a at) value[[]value[string]] {
	if r := resolve(n); r != nil && r.Kind == yaml.ScalarNode && !isNull(r) {
		return value[[]value[string]]{V: []value[string]{d.str(n, a)}, Set: true, At: a}
	}
	return list(d, n, a, func(n *yaml.Node, a at) (value[string], bool) {
		v := d.str(n, a)
		return v, !v.Bad
	})
}

func (d decoder) project(n *yaml.Node, a at) (rawProject, bool) {
	p := rawProject{At: a}
	ok := d.fields(n, a, projectKeys, func(key string, n *yaml.Node, a at) {
		switch key {
		case "name":
			p.Name = d.str(n, a)
		case "path":
			p.Path = d.str(n, a)
		case "framework":
			p.Framework = d.str(n, a)
		case "gateway":
			p.Gateway = d.str(n, a)
		default:
			d.dbtKey(&p.DBT, key, n, a)
		}
	})
	return p, ok
}

func (d decoder) environment(n *yaml.Node, a at) (rawEnvironment, bool) {
	e := rawEnvironment{At: a}
	ok := d.fields(n, a, environmentKeys, func(key string, n *yaml.Node, a at) {
		switch key {
		case "name":
			e.Name = d.str(n, a)
		case "protected":
			e.Protected = d.boolean(n, a)
		case "required_approvals":
			e.RequiredApprovals = d.integer(n, a)
		case "approvers":
			e.Approvers = d.stringList(n, a)
		case "appliers":
			e.Appliers = d.stringList(n, a)
		case "plan_on_pr":
			e.PlanOnPR = d.boolean(n, a)
		case "apply_on":
			e.ApplyOn = d.stringList(n, a)
		}
	})
	return e, ok
}

func (d decoder) job(n *yaml.Node, a at) value[rawJob] {
	j := rawJob{At: a}
	ok := d.fields(n, a, jobKeys, func(key string, n *yaml.Node, a at) {
		switch key {
		case "image":
			j.Image = d.str(n, a)
		case "timeout":
			j.Timeout = d.str(n, a)
		case "env":
			j.Env = d.envMap(n, a)
		case "pass_env":
			j.PassEnv = d.stringList(n, a)
		case "secrets":
			j.Secrets = d.stringList(n, a)
		case "setup":
			j.Setup = list(d, n, a, d.setupStep)
		}
	})
	return value[rawJob]{V: j, Set: ok, Bad: !ok, At: a}
}

// setupStep decodes one job.setup item: a command line, or an argv list.
func (d decoder) setupStep(n *yaml.Node, a at) (rawSetupStep, bool) {
	step := rawSetupStep{At: a}
	if r := resolve(n); r != nil && r.Kind == yaml.SequenceNode {
		step.Argv = list(d, n, a, func(n *yaml.Node, a at) (value[string], bool) {
			v := d.str(n, a)
			return v, !v.Bad
		})
		return step, !step.Argv.Bad
	}
	step.Line = d.str(n, a)
	return step, !step.Line.Bad
}

// envMap decodes job.env, keeping the order and position of every variable.
func (d decoder) envMap(n *yaml.Node, a at) value[[]rawEnvVar] {
	r := resolve(n)
	if r == nil || r.Kind != yaml.MappingNode {
		got := "not a value"
		if r != nil {
			got = kindName(r)
		}
		d.ps.add(a, "must be a mapping of NAME: value, not %s", got)
		return value[[]rawEnvVar]{Bad: true, At: a}
	}
	out := value[[]rawEnvVar]{V: []rawEnvVar{}, Set: true, At: a}
	seen := map[string]int{}
	for i := 0; i+1 < len(r.Content); i += 2 {
		if !d.spend(a) {
			out.Bad = true
			break
		}
		kn, vn := r.Content[i], r.Content[i+1]
		k := resolve(kn)
		ka := at{Line: kn.Line, Column: kn.Column, Path: a.Path}
		if k == nil || k.Kind != yaml.ScalarNode || isNull(k) || k.Tag == "!!merge" {
			d.ps.add(ka, "variable names must be plain words")
			continue
		}
		ka = a.child(k.Value)
		ka.Line, ka.Column = kn.Line, kn.Column
		if first, dup := seen[k.Value]; dup {
			d.ps.add(ka, "duplicate variable (first set on line %d)", first)
			continue
		}
		seen[k.Value] = ka.Line
		va := at{Line: vn.Line, Column: vn.Column, Path: ka.Path}
		v := value[string]{Set: true, At: va}
		switch rv := resolve(vn); {
		case rv == nil || rv.Kind != yaml.ScalarNode:
			got := "not a value"
			if rv != nil {
				got = kindName(rv)
			}
			d.ps.add(va, "must be a string, not %s", got)
			continue
		case isNull(rv):
			// `NAME:` sets the variable to the empty string.
		default:
			v.V = rv.Value
		}
		out.V = append(out.V, rawEnvVar{Name: value[string]{V: k.Value, Set: true, At: ka}, Value: v})
	}
	return out
}
