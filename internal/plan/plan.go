// Package plan is the domain of a dagctl plan: what a data tool says would change in an environment
// (the Summary), the flags a plan was made with, and the lifecycle of a stored plan. Plain data only:
// no I/O, so the lifecycle, approval rules and rendering can be tested without a forge or a database.
package plan

import "sort"

// Category is how a change is classified. Direct categories come from sqlmesh's change categorisation of the
// model that was edited; indirect ones describe its downstream models. Three cases must never be confused: a
// category (breaking, non-breaking, ...), Uncategorized (the framework categorises but could not: the apply is
// refused), and NoCategory (the framework has no categories at all, as dbt: nothing to refuse).
type Category string

const (
	Breaking            Category = "breaking"
	NonBreaking         Category = "non-breaking"
	ForwardOnly         Category = "forward-only"
	Metadata            Category = "metadata"
	IndirectBreaking    Category = "indirect-breaking"
	IndirectNonBreaking Category = "indirect-non-breaking"
	// Uncategorized means the tool could not decide; a human has to (sqlmesh prompts, and fails with --no-prompts).
	Uncategorized Category = "uncategorized"
	// NoCategory means the framework has no change categories (dbt). It is not a failure to categorise, so it
	// never counts as Uncategorized and is rendered without a category.
	NoCategory Category = "none"
)

// Label is the wording users see, matching sqlmesh's own ("Breaking", "Indirect Non-breaking", …).
func (c Category) Label() string {
	switch c {
	case Breaking:
		return "Breaking"
	case NonBreaking:
		return "Non-breaking"
	case ForwardOnly:
		return "Forward-only"
	case Metadata:
		return "Metadata"
	case IndirectBreaking:
		return "Indirect Breaking"
	case IndirectNonBreaking:
		return "Indirect Non-breaking"
	case Uncategorized:
		return "Uncategorized"
	case NoCategory:
		return ""
	}
	return string(c)
}

// Change is one model in a plan.
type Change struct {
	Model    string   `json:"model"`
	Kind     string   `json:"kind,omitempty"` // the model kind, e.g. FULL, VIEW, INCREMENTAL_BY_TIME_RANGE, SEED
	Category Category `json:"category,omitempty"`
	// Diff is a unified text diff of the model definition (directly modified models only).
	Diff string `json:"diff,omitempty"`
	// Children are the downstream models this direct change modifies indirectly.
	Children []string `json:"children,omitempty"`
}

// BackfillKind says what applying the plan does to a model's data.
type BackfillKind string

const (
	// BackfillIntervals: missing time intervals are computed (incremental models).
	BackfillIntervals BackfillKind = "intervals"
	// BackfillFullRefresh: the whole table is rebuilt (FULL, SEED, or a non-incremental kind).
	BackfillFullRefresh BackfillKind = "full-refresh"
	// BackfillRecreateView: only the view definition is recreated; no data moves.
	BackfillRecreateView BackfillKind = "recreate-view"
	// BackfillPreview: a forward-only change computed in a dev environment as a preview only.
	BackfillPreview BackfillKind = "preview"
)

// Interval is a half-open time range as the tool reports it (dates or timestamps, kept as text so that the
// summary shows exactly what sqlmesh computed).
type Interval struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// Backfill is the work applying the plan does for one model.
type Backfill struct {
	Model     string       `json:"model"`
	Kind      BackfillKind `json:"kind"`
	Intervals []Interval   `json:"intervals,omitempty"`
	// Restatement is true when the model's data is recomputed because of --restate-model.
	Restatement bool `json:"restatement,omitempty"`
}

// Summary is what a plan would do to one environment.
type Summary struct {
	Tool        string `json:"tool"`         // "sqlmesh" or "dbt"
	ToolVersion string `json:"tool_version"` // the version that produced the summary
	Environment string `json:"environment"`
	// CreatesEnvironment: the environment does not exist yet and the plan creates it.
	CreatesEnvironment bool `json:"creates_environment,omitempty"`
	// CreateFrom is the environment a new one is created from (sqlmesh: prod by default).
	CreateFrom  string `json:"create_from,omitempty"`
	ForwardOnly bool   `json:"forward_only,omitempty"`
	Start       string `json:"start,omitempty"`
	End         string `json:"end,omitempty"`

	Added              []Change   `json:"added,omitempty"`
	Removed            []Change   `json:"removed,omitempty"`
	DirectlyModified   []Change   `json:"directly_modified,omitempty"`
	IndirectlyModified []Change   `json:"indirectly_modified,omitempty"`
	MetadataUpdated    []Change   `json:"metadata_updated,omitempty"`
	Restated           []string   `json:"restated,omitempty"`
	Backfills          []Backfill `json:"backfills,omitempty"`
	// Explain is the tool's own human-readable explanation of what apply would do (sqlmesh --explain).
	Explain string `json:"explain,omitempty"`
	// DBT is a dbt plan's own view (nil for other tools).
	DBT *DBT `json:"dbt,omitempty"`
}

// HasChanges reports whether applying the plan would change anything: models or data. A dbt plan has changes
// only when it is a deploy with something to do (a build, or the image alone): a PR that does not bump the
// version is informational, and merging it applies nothing, whatever its nodes.
func (s Summary) HasChanges() bool {
	if s.DBT != nil {
		return s.DBT.Deploy && s.DBT.Scope != ScopeNone && s.DBT.Scope != ""
	}
	return len(s.Added)+len(s.Removed)+len(s.DirectlyModified)+len(s.IndirectlyModified)+
		len(s.MetadataUpdated)+len(s.Backfills)+len(s.Restated) > 0 || s.CreatesEnvironment
}

// Uncategorized lists directly modified models the tool could not categorise. An empty category counts too:
// a framework that categorises must say so for every direct change, and the gate fails closed when it does
// not. NoCategory never counts (see Categorized).
func (s Summary) Uncategorized() []string {
	var out []string
	for _, c := range s.DirectlyModified {
		if c.Category == Uncategorized || c.Category == "" {
			out = append(out, c.Model)
		}
	}
	return out
}

// Categorized reports whether the summary's changes carry categories: false when every change says NoCategory
// (a framework without categories), so that "no breaking changes" is not claimed for it.
func (s Summary) Categorized() bool {
	for _, l := range [][]Change{s.Added, s.Removed, s.DirectlyModified, s.IndirectlyModified, s.MetadataUpdated} {
		for _, c := range l {
			if c.Category != NoCategory {
				return true
			}
		}
	}
	return false
}

// Normalize sorts every list by model name so that equal plans compare and render identically.
func (s *Summary) Normalize() {
	for _, l := range [][]Change{s.Added, s.Removed, s.DirectlyModified, s.IndirectlyModified, s.MetadataUpdated} {
		sort.Slice(l, func(i, j int) bool { return l[i].Model < l[j].Model })
		for i := range l {
			sort.Strings(l[i].Children)
		}
	}
	sort.Strings(s.Restated)
	sort.Slice(s.Backfills, func(i, j int) bool { return s.Backfills[i].Model < s.Backfills[j].Model })
}

// Flags are the options a plan was made with. An apply reuses them, so that what runs is what was planned.
type Flags struct {
	ForwardOnly   bool     `json:"forward_only,omitempty"`
	RestateModels []string `json:"restate_models,omitempty"`
	Start         string   `json:"start,omitempty"`
	End           string   `json:"end,omitempty"`
}

// Flag is one plan flag, spelled as `/dagctl plan` takes it. Which flags a project accepts is its framework's
// to say (sqlmesh takes them all; dbt none): see framework.CheckFlags.
type Flag string

const (
	FlagForwardOnly  Flag = "--forward-only"
	FlagRestateModel Flag = "--restate-model"
	FlagStart        Flag = "--start"
	FlagEnd          Flag = "--end"
)

// Set lists the flags f sets, in the order `/dagctl plan` prints them.
func (f Flags) Set() []Flag {
	var out []Flag
	if f.ForwardOnly {
		out = append(out, FlagForwardOnly)
	}
	if len(f.RestateModels) > 0 {
		out = append(out, FlagRestateModel)
	}
	if f.Start != "" {
		out = append(out, FlagStart)
	}
	if f.End != "" {
		out = append(out, FlagEnd)
	}
	return out
}
