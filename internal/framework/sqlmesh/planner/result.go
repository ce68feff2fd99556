package planner

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/dagctl/dagctl-bot/internal/framework/resultline"
	"github.com/dagctl/dagctl-bot/internal/plan"
)

// ErrNoResult means the output has no result line: the helper did not run to its end (killed, out of memory,
// wrong interpreter, sqlmesh not installed). The job's output says why.
var ErrNoResult = errors.New("sqlmesh plan output has no " + Marker + " result line")

// ToolError is a failure the helper reported: sqlmesh could not make the plan.
type ToolError struct {
	// Kind classifies the failure: "config" (project or model definitions do not load), "sql" (sqlglot could
	// not parse or transpile), "plan" (sqlmesh refused the plan, including failing unit tests), "lint",
	// "uncategorized" (changes sqlmesh could not categorise; with --no-prompts it will not apply them),
	// "state" (the state or default connection does not answer, e.g. a DuckDB file that another process holds),
	// "sqlmesh" (any other sqlmesh error), "setup" (sqlmesh is not installed for the interpreter), "usage" (bad
	// helper arguments) or "internal" (anything else: a bug, a crash, an engine error).
	Kind string `json:"kind"`
	// Type is the Python exception's class name, e.g. ConfigError.
	Type    string `json:"type"`
	Message string `json:"message"`
}

func (e *ToolError) Error() string {
	return fmt.Sprintf("sqlmesh plan failed (%s, %s): %s", e.Kind, e.Type, e.Message)
}

// ParseResult reads a plan job's standard output and returns the plan it found on the last result line.
//
// A failed plan returns a *ToolError (errors.As); when sqlmesh got as far as a plan (uncategorised changes) the
// Summary is filled too. A missing result line is ErrNoResult; an unknown schema version, malformed JSON or
// values this package does not know are errors that say what was wrong. It never returns an empty Summary in
// place of an error.
func ParseResult(r io.Reader) (plan.Summary, error) {
	line, err := resultline.Last(r, Marker, "sqlmesh plan")
	if errors.Is(err, resultline.ErrNone) {
		err = ErrNoResult
	}
	if err != nil {
		return plan.Summary{}, err
	}
	var res result
	if err := json.Unmarshal([]byte(line), &res); err != nil {
		return plan.Summary{}, fmt.Errorf("malformed %s result line: %w", Marker, err)
	}
	if res.Schema == nil {
		return plan.Summary{}, fmt.Errorf("%s result line has no schema version", Marker)
	}
	if *res.Schema != SchemaVersion {
		return plan.Summary{}, fmt.Errorf("%s result has schema version %d; this bot reads version %d (bot and helper out of step)",
			Marker, *res.Schema, SchemaVersion)
	}
	if !res.OK {
		if res.Error == nil {
			return plan.Summary{}, fmt.Errorf("%s result reports a failure without an error", Marker)
		}
		var summary plan.Summary
		if res.Plan != nil {
			if summary, err = res.summary(); err != nil {
				return plan.Summary{}, fmt.Errorf("%w (and its plan is unreadable: %v)", res.Error, err)
			}
		}
		res.Error.Message = stripANSI(res.Error.Message)
		return summary, res.Error
	}
	if res.Plan == nil {
		return plan.Summary{}, fmt.Errorf("%s result reports success without a plan", Marker)
	}
	return res.summary()
}

// result is the helper's JSON, schema version 1.
type result struct {
	Schema         *int        `json:"schema"`
	SQLMeshVersion string      `json:"sqlmesh_version"`
	OK             bool        `json:"ok"`
	Plan           *resultPlan `json:"plan"`
	Error          *ToolError  `json:"error"`
}

type resultPlan struct {
	Environment        string           `json:"environment"`
	IsDev              bool             `json:"is_dev"`
	IsNewEnvironment   bool             `json:"is_new_environment"`
	CreateFrom         string           `json:"create_from"`
	ForwardOnly        bool             `json:"forward_only"`
	HasChanges         bool             `json:"has_changes"`
	RequiresBackfill   bool             `json:"requires_backfill"`
	Added              []resultChange   `json:"added"`
	Removed            []resultChange   `json:"removed"`
	DirectlyModified   []resultChange   `json:"directly_modified"`
	IndirectlyModified []resultChange   `json:"indirectly_modified"`
	MetadataUpdated    []resultChange   `json:"metadata_updated"`
	RestatedModels     []string         `json:"restated_models"`
	Backfills          []resultBackfill `json:"backfills"`
	Uncategorized      []string         `json:"uncategorized"`
	Explain            string           `json:"explain"`
	// NoChangesReason is set instead of everything else when sqlmesh refused to create a development
	// environment identical to its source.
	NoChangesReason string `json:"no_changes_reason"`
}

type resultChange struct {
	Model string `json:"model"`
	Kind  string `json:"kind"`
	// ChangeCategory is sqlmesh's SnapshotChangeCategory name; null when uncategorised.
	ChangeCategory *string  `json:"change_category"`
	ForwardOnly    bool     `json:"forward_only"`
	Diff           string   `json:"diff"`
	Children       []string `json:"children"`
}

type resultBackfill struct {
	Model       string     `json:"model"`
	Kind        string     `json:"kind"`
	Incremental bool       `json:"incremental"`
	View        bool       `json:"view"`
	Preview     bool       `json:"preview"`
	Restatement bool       `json:"restatement"`
	Intervals   [][2]int64 `json:"intervals"` // merged, half-open, epoch milliseconds
}

var categories = map[string]plan.Category{
	"BREAKING":              plan.Breaking,
	"NON_BREAKING":          plan.NonBreaking,
	"FORWARD_ONLY":          plan.ForwardOnly,
	"INDIRECT_BREAKING":     plan.IndirectBreaking,
	"INDIRECT_NON_BREAKING": plan.IndirectNonBreaking,
	"METADATA":              plan.Metadata,
}

// summary maps each part of the helper's result onto the domain summary; it is long because the result has many parts.
func (res result) summary() (plan.Summary, error) {
	p := res.Plan
	if res.SQLMeshVersion == "" {
		return plan.Summary{}, fmt.Errorf("%s result has no sqlmesh version", Marker)
	}
	if p.Environment == "" {
		return plan.Summary{}, fmt.Errorf("%s result has no environment", Marker)
	}
	s := plan.Summary{
		Tool:        "sqlmesh",
		ToolVersion: res.SQLMeshVersion,
		Environment: p.Environment,
		ForwardOnly: p.ForwardOnly,
		Explain:     p.Explain,
	}
	if len(p.RestatedModels) > 0 {
		s.Restated = p.RestatedModels
	}
	if p.NoChangesReason != "" {
		return s, nil
	}
	if p.IsNewEnvironment {
		s.CreatesEnvironment = true
		if p.IsDev {
			s.CreateFrom = p.CreateFrom
		}
	}
	var err error
	if s.Added, err = changes(p.Added, false); err != nil {
		return plan.Summary{}, fmt.Errorf("added: %w", err)
	}
	for _, c := range p.Removed {
		if c.Model == "" {
			return plan.Summary{}, fmt.Errorf("removed: a model without a name")
		}
		s.Removed = append(s.Removed, plan.Change{Model: c.Model, Kind: c.Kind})
	}
	if s.DirectlyModified, err = changes(p.DirectlyModified, true); err != nil {
		return plan.Summary{}, fmt.Errorf("directly modified: %w", err)
	}
	if s.IndirectlyModified, err = changes(p.IndirectlyModified, false); err != nil {
		return plan.Summary{}, fmt.Errorf("indirectly modified: %w", err)
	}
	if s.MetadataUpdated, err = changes(p.MetadataUpdated, false); err != nil {
		return plan.Summary{}, fmt.Errorf("metadata updated: %w", err)
	}
	var start, end int64 // the span of the incremental backfills
	for _, b := range p.Backfills {
		backfill, err := backfillOf(b)
		if err != nil {
			return plan.Summary{}, err
		}
		s.Backfills = append(s.Backfills, backfill)
		for _, iv := range b.Intervals {
			if b.Incremental && (start == 0 || iv[0] < start) {
				start = iv[0]
			}
			if b.Incremental && iv[1] > end {
				end = iv[1]
			}
		}
	}
	// Start and End span the time ranges that are backfilled, half-open like the intervals. Models that are
	// rebuilt whole (their sqlmesh intervals cover all history) would only widen it to the project's start.
	if end > 0 {
		s.Start, s.End = formatTime(start), formatTime(end)
	}
	s.Normalize()
	return s, nil
}

// changes maps the helper's changes. A directly modified model that sqlmesh marked forward-only is ForwardOnly
// (sqlmesh 0.236 keeps the breaking/non-breaking category and sets a flag; its FORWARD_ONLY category is
// deprecated); everything else keeps sqlmesh's category.
func changes(in []resultChange, direct bool) ([]plan.Change, error) {
	var out []plan.Change
	for _, c := range in {
		if c.Model == "" {
			return nil, fmt.Errorf("a model without a name")
		}
		category := plan.Uncategorized
		if c.ChangeCategory != nil {
			var ok bool
			if category, ok = categories[*c.ChangeCategory]; !ok {
				return nil, fmt.Errorf("model %s has unknown change category %q", c.Model, *c.ChangeCategory)
			}
		}
		if direct && c.ForwardOnly && (category == plan.Breaking || category == plan.NonBreaking) {
			category = plan.ForwardOnly
		}
		out = append(out, plan.Change{
			Model:    c.Model,
			Kind:     c.Kind,
			Category: category,
			Diff:     cleanDiff(c.Diff),
			Children: c.Children,
		})
	}
	return out, nil
}

func backfillOf(b resultBackfill) (plan.Backfill, error) {
	if b.Model == "" {
		return plan.Backfill{}, fmt.Errorf("backfill of a model without a name")
	}
	out := plan.Backfill{Model: b.Model, Restatement: b.Restatement}
	switch {
	case b.Preview:
		out.Kind = plan.BackfillPreview
	case b.View:
		out.Kind = plan.BackfillRecreateView
	case b.Incremental:
		out.Kind = plan.BackfillIntervals
	default:
		out.Kind = plan.BackfillFullRefresh
	}
	// Only the time ranges of incremental models say something: the others are rebuilt whole.
	if b.Incremental {
		for _, iv := range b.Intervals {
			if iv[1] <= iv[0] {
				return plan.Backfill{}, fmt.Errorf("backfill of %s has an empty or inverted interval %v", b.Model, iv)
			}
			out.Intervals = append(out.Intervals, plan.Interval{Start: formatTime(iv[0]), End: formatTime(iv[1])})
		}
	}
	return out, nil
}

// formatTime renders epoch milliseconds as a date when it is midnight UTC, else as a UTC timestamp.
func formatTime(ms int64) string {
	t := time.UnixMilli(ms).UTC()
	if t.Equal(t.Truncate(24 * time.Hour)) {
		return t.Format(time.DateOnly)
	}
	return t.Format(time.DateTime)
}

// ansiEscape matches terminal escape sequences, such as the underline sqlglot puts under a parse error.
var ansiEscape = regexp.MustCompile("\x1b\\[[0-9;?]*[A-Za-z]")

func stripANSI(s string) string { return ansiEscape.ReplaceAllString(s, "") }

// cleanDiff drops the empty line sqlmesh's text diff puts after each header line (difflib's line terminator
// joined with another newline), leaving an ordinary unified diff.
func cleanDiff(diff string) string {
	if diff == "" {
		return ""
	}
	lines := strings.Split(diff, "\n")
	out := make([]string, 0, len(lines))
	for i, line := range lines {
		if line == "" && i > 0 {
			prev := lines[i-1]
			if strings.HasPrefix(prev, "---") || strings.HasPrefix(prev, "+++") || strings.HasPrefix(prev, "@@") {
				continue
			}
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}
