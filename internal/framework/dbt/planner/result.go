package planner

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/dagctl/dagctl-bot/internal/framework/resultline"
	"github.com/dagctl/dagctl-bot/internal/plan"
)

// ErrNoResult means the output has no result line: the helper did not run to its end (killed, wrong
// interpreter, dbt not installed). The job's output says why.
var ErrNoResult = errors.New("dbt plan output has no " + Marker + " result line")

// ToolError is a failure the helper reported: dbt could not make the plan.
type ToolError struct {
	// Kind: "compile" (Jinja or SQL that does not compile), "parse" (YAML or a node dbt cannot parse),
	// "config" (dbt_project.yml, profiles), "state" (the comparison state cannot be read), "dbt" (any other dbt
	// error), "setup" (dbt is not installed for the interpreter), "usage" (bad helper arguments), "apply" (an
	// apply's command failed), "build" (a PR build ran and a node failed) or "internal".
	Kind string `json:"kind"`
	// Type is the Python exception's class name, e.g. CompilationError.
	Type string `json:"type"`
	// Message is dbt's own, with the file and line where dbt gives them.
	Message string `json:"message"`
	// File is the node's file when dbt names the node.
	File string `json:"file,omitempty"`
}

func (e *ToolError) Error() string {
	return fmt.Sprintf("dbt plan failed (%s, %s): %s", e.Kind, e.Type, e.Message)
}

// Comparisons the helper made (result.plan.compared_with).
const (
	ComparedWithProduction = "production" // the production manifest (StateEnv)
	ComparedWithBase       = "base"       // a parse of the base commit (BaseDirEnv)
	ComparedWithNothing    = "none"       // neither: every node is new
)

type result struct {
	Schema     *int          `json:"schema"`
	DBTVersion string        `json:"dbt_version"`
	OK         bool          `json:"ok"`
	Plan       *resultPlan   `json:"plan"`
	PRBuild    *plan.PRBuild `json:"pr_build"`
	Error      *ToolError    `json:"error"`
}

type resultPlan struct {
	Environment  string       `json:"environment"`
	ComparedWith string       `json:"compared_with"`
	Note         string       `json:"note"`
	Nodes        []resultNode `json:"nodes"`
	Removed      []resultNode `json:"removed"`
	Downstream   []string     `json:"downstream"`
}

type resultNode struct {
	UniqueID     string   `json:"unique_id"`
	ResourceType string   `json:"resource_type"`
	Name         string   `json:"name"`
	Path         string   `json:"path"`
	Reasons      []string `json:"reasons"`
}

var reasons = map[string]plan.NodeReason{
	"new": plan.ReasonNew, "body": plan.ReasonBody, "config": plan.ReasonConfig, "relation": plan.ReasonRelation,
	"description": plan.ReasonDescription, "macro": plan.ReasonMacro, "contract": plan.ReasonContract,
	"other": plan.ReasonOther,
}

// ParseResult reads a plan job's standard output: the last result line. The Summary's DBT holds the manifest's
// side of the plan (Nodes, removed ones included with ReasonRemoved; Downstream; ManifestScope); the rest of
// plan.DBT is the bot's (scope.Fill). A failure dbt reported is a *ToolError; a missing result line is
// ErrNoResult; anything unreadable is an error that says why. It never returns an empty Summary in place of an
// error.
func ParseResult(r io.Reader) (plan.Summary, error) {
	line, err := readResult(r, Marker)
	if err != nil {
		return plan.Summary{}, err
	}
	var res result
	if err := json.Unmarshal([]byte(line), &res); err != nil {
		return plan.Summary{}, fmt.Errorf("malformed %s result line: %w", Marker, err)
	}
	switch {
	case res.Schema == nil:
		return plan.Summary{}, fmt.Errorf("%s result line has no schema version", Marker)
	case *res.Schema != SchemaVersion:
		return plan.Summary{}, fmt.Errorf("%s result has schema version %d; this bot reads version %d (bot and helper out of step)",
			Marker, *res.Schema, SchemaVersion)
	case !res.OK && res.Error == nil:
		return plan.Summary{}, fmt.Errorf("%s result reports a failure without an error", Marker)
	case !res.OK && res.Plan != nil && res.PRBuild != nil && res.DBTVersion != "":
		// A PR build that ran and failed: the plan and the build are shown with dbt's message.
		s, err := res.summary()
		if err != nil {
			return plan.Summary{}, err
		}
		return s, res.Error
	case !res.OK:
		return plan.Summary{}, res.Error
	case res.Plan == nil:
		return plan.Summary{}, fmt.Errorf("%s result reports success without a plan", Marker)
	case res.DBTVersion == "":
		return plan.Summary{}, fmt.Errorf("%s result has no dbt version", Marker)
	}
	return res.summary()
}

func (res result) summary() (plan.Summary, error) {
	p := res.Plan
	if p.Environment == "" {
		return plan.Summary{}, fmt.Errorf("%s result has no environment", Marker)
	}
	d := &plan.DBT{}
	for _, n := range p.Nodes {
		node, err := nodeOf(n, false)
		if err != nil {
			return plan.Summary{}, err
		}
		d.Nodes = append(d.Nodes, node)
	}
	for _, n := range p.Removed {
		node, err := nodeOf(n, true)
		if err != nil {
			return plan.Summary{}, err
		}
		d.Nodes = append(d.Nodes, node)
	}
	sort.Slice(d.Nodes, func(i, j int) bool { return d.Nodes[i].UniqueID < d.Nodes[j].UniqueID })
	for i := 1; i < len(d.Nodes); i++ {
		if d.Nodes[i].UniqueID == d.Nodes[i-1].UniqueID {
			return plan.Summary{}, fmt.Errorf("node %s is listed twice", d.Nodes[i].UniqueID)
		}
	}
	changed := map[string]bool{}
	for _, n := range d.Nodes {
		changed[n.UniqueID] = true
	}
	for _, id := range p.Downstream {
		if id == "" {
			return plan.Summary{}, fmt.Errorf("downstream: a node without a unique_id")
		}
		if !changed[id] {
			d.Downstream = append(d.Downstream, id)
		}
	}
	sort.Strings(d.Downstream)
	var err error
	if d.ManifestScope, err = manifestScope(p.ComparedWith, len(d.Nodes)); err != nil {
		return plan.Summary{}, err
	}
	if res.PRBuild != nil {
		b, err := prBuildOf(*res.PRBuild)
		if err != nil {
			return plan.Summary{}, err
		}
		d.PRBuild = &b
	}
	return plan.Summary{
		Tool:        "dbt",
		ToolVersion: res.DBTVersion,
		Environment: p.Environment,
		Explain:     explain(p),
		DBT:         d,
	}, nil
}

// manifestScope is the scope dbt's state comparison decides: without anything to compare with every node is
// new, so all; otherwise the changed nodes and their downstream (selective), or nothing.
func manifestScope(comparedWith string, changed int) (plan.Scope, error) {
	switch {
	case comparedWith == ComparedWithNothing:
		return plan.ScopeAll, nil
	case comparedWith != ComparedWithProduction && comparedWith != ComparedWithBase:
		return "", fmt.Errorf("%s result compared with %q, which this bot does not know", Marker, comparedWith)
	case changed > 0:
		return plan.ScopeSelective, nil
	}
	return plan.ScopeNone, nil
}

func explain(p *resultPlan) string {
	var s string
	switch p.ComparedWith {
	case ComparedWithProduction:
		s = "dbt's state comparison with the production manifest (" + StateEnv + ")."
	case ComparedWithBase:
		s = "dbt's state comparison with a parse of the base commit (" + BaseDirEnv + "): no production manifest was given."
	default:
		s = "Nothing to compare with: every node is new."
	}
	if p.Note != "" {
		s += "\n" + p.Note
	}
	return s
}

func nodeOf(n resultNode, removed bool) (plan.Node, error) {
	if n.UniqueID == "" {
		return plan.Node{}, fmt.Errorf("%s result has a node without a unique_id", Marker)
	}
	if n.ResourceType == "" || n.Name == "" {
		return plan.Node{}, fmt.Errorf("node %s has no resource type or name", n.UniqueID)
	}
	out := plan.Node{UniqueID: n.UniqueID, Name: n.Name, ResourceType: n.ResourceType, Path: n.Path}
	if removed {
		out.Reasons = []plan.NodeReason{plan.ReasonRemoved}
		return out, nil
	}
	if len(n.Reasons) == 0 {
		return plan.Node{}, fmt.Errorf("node %s changed for no reason", n.UniqueID)
	}
	for _, r := range n.Reasons {
		reason, ok := reasons[r]
		if !ok {
			return plan.Node{}, fmt.Errorf("node %s has unknown reason %q", n.UniqueID, r)
		}
		out.Reasons = append(out.Reasons, reason)
	}
	return out, nil
}

// readResult is the helper's last result marked marker; a plan without one is ErrNoResult.
func readResult(r io.Reader, marker string) (string, error) {
	line, err := resultline.Last(r, marker, "dbt")
	switch {
	case errors.Is(err, resultline.ErrNone) && marker == Marker:
		return "", ErrNoResult
	case errors.Is(err, resultline.ErrNone):
		return "", fmt.Errorf("dbt output has no %s result line", marker)
	}
	return line, err
}

// ApplyResult is what an apply's helper says it ran.
type ApplyResult struct {
	DBTVersion string           `json:"dbt_version"`
	Commands   []AppliedCommand `json:"commands"`
}

// AppliedCommand is one command of an apply that ran, in order; those after a failed one never ran.
type AppliedCommand struct {
	Command string `json:"command"`
	Success bool   `json:"success"`
}

// ParseApplyResult reads an apply job's result line (ApplyMarker). A failed apply is a *ToolError (kind
// "apply" when a command failed) with the commands that ran; no result line is an error.
func ParseApplyResult(r io.Reader) (ApplyResult, error) {
	line, err := readResult(r, ApplyMarker)
	if err != nil {
		return ApplyResult{}, err
	}
	var res struct {
		Schema     *int             `json:"schema"`
		DBTVersion string           `json:"dbt_version"`
		OK         bool             `json:"ok"`
		Commands   []AppliedCommand `json:"commands"`
		Error      *ToolError       `json:"error"`
	}
	if err := json.Unmarshal([]byte(line), &res); err != nil {
		return ApplyResult{}, fmt.Errorf("malformed %s result line: %w", ApplyMarker, err)
	}
	if res.Schema == nil || *res.Schema != SchemaVersion {
		return ApplyResult{}, fmt.Errorf("%s result has no schema version %d (bot and helper out of step)", ApplyMarker, SchemaVersion)
	}
	out := ApplyResult{DBTVersion: res.DBTVersion, Commands: res.Commands}
	switch {
	case !res.OK && res.Error == nil:
		return out, fmt.Errorf("%s result reports a failure without an error", ApplyMarker)
	case !res.OK:
		return out, res.Error
	}
	return out, nil
}

// prBuildOf checks a PR build's nodes: each names its node and, when built, its status; sorted by unique id.
func prBuildOf(b plan.PRBuild) (plan.PRBuild, error) {
	for _, list := range [][]plan.BuiltNode{b.Nodes, b.Outside} {
		for _, n := range list {
			if n.UniqueID == "" || n.Name == "" || n.ResourceType == "" {
				return plan.PRBuild{}, fmt.Errorf("%s result has a PR build node without a unique_id, name or resource type", Marker)
			}
		}
	}
	for _, n := range b.Nodes {
		if n.Status == "" {
			return plan.PRBuild{}, fmt.Errorf("PR build node %s has no status", n.UniqueID)
		}
	}
	sort.Slice(b.Nodes, func(i, j int) bool { return b.Nodes[i].UniqueID < b.Nodes[j].UniqueID })
	sort.Slice(b.Outside, func(i, j int) bool { return b.Outside[i].UniqueID < b.Outside[j].UniqueID })
	return b, nil
}

// CleanupResult is what a cleanup's helper says it dropped.
type CleanupResult struct {
	DBTVersion string   `json:"dbt_version"`
	Dropped    []string `json:"dropped"`
}

// ParseCleanupResult reads a cleanup job's result line (CleanupMarker); a failure is a *ToolError.
func ParseCleanupResult(r io.Reader) (CleanupResult, error) {
	line, err := readResult(r, CleanupMarker)
	if err != nil {
		return CleanupResult{}, err
	}
	var res struct {
		Schema     *int       `json:"schema"`
		DBTVersion string     `json:"dbt_version"`
		OK         bool       `json:"ok"`
		Dropped    []string   `json:"dropped"`
		Error      *ToolError `json:"error"`
	}
	if err := json.Unmarshal([]byte(line), &res); err != nil {
		return CleanupResult{}, fmt.Errorf("malformed %s result line: %w", CleanupMarker, err)
	}
	if res.Schema == nil || *res.Schema != SchemaVersion {
		return CleanupResult{}, fmt.Errorf("%s result has no schema version %d (bot and helper out of step)", CleanupMarker, SchemaVersion)
	}
	out := CleanupResult{DBTVersion: res.DBTVersion, Dropped: res.Dropped}
	switch {
	case !res.OK && res.Error == nil:
		return out, fmt.Errorf("%s result reports a failure without an error", CleanupMarker)
	case !res.OK:
		return out, res.Error
	}
	return out, nil
}
