// Package framework is the port between the bot and a project's data tool (sqlmesh today, dbt next): the
// commands a job runs, the variables they need, the parsers of what they print and what their summaries mean.
// The bot knows no tool; it asks the Registry for the project's Framework. Pure: commands are argv, parsers
// read text.
package framework

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
)

// Framework is one data tool.
type Framework interface {
	// Name is the framework as .dagctl/config.yaml names it (projects[].framework).
	Name() repoconfig.Framework
	// PlanCommand is the argv of a plan job: it applies nothing and prints a result ParseResult reads.
	PlanCommand(req CommandRequest) []string
	// ApplyCommand is the argv of an apply job, with the flags the plan was made with.
	ApplyCommand(req CommandRequest) []string
	// CleanupCommand is the argv that removes a per-PR environment after its PR closed (sqlmesh: invalidate);
	// false when the framework has nothing to clean up.
	CleanupCommand(req CommandRequest) ([]string, bool)
	// Env is what every job of the framework needs set, on top of the project's own variables; it wins over
	// them (see jobs.EnvRequest.Required).
	Env() map[string]string
	// ParseResult reads a plan job's standard output. A failure the tool reported is a *ToolError; when the
	// tool got as far as a plan, the Summary is filled too. Anything unreadable is an error that says why.
	ParseResult(stdout io.Reader) (plan.Summary, error)
	// ParseProgress reads one line of an apply job's output; false for lines that report no progress.
	ParseProgress(line string) (Progress, bool)
	// Categorizes says whether the framework classifies changes (breaking, non-breaking, ...). When it does not,
	// every change of its summaries is plan.NoCategory and nothing is refused as uncategorised.
	Categorizes() bool
	// Flags are the plan flags the framework accepts; CheckFlags refuses the others.
	Flags() []plan.Flag
}

// CommandRequest is what a command is built from.
type CommandRequest struct {
	Project repoconfig.Project
	Env     string
	Flags   plan.Flags
	// ExecutionTime fixes the tool's "now"; only tests set it, so that backfill intervals are reproducible.
	ExecutionTime string
	// DBT is the approved plan's dbt view, whose exact commands a dbt apply runs (nil for other frameworks; a
	// dbt apply without it runs nothing and fails).
	DBT *plan.DBT
	// PRNumber is the PR whose own environment Env is (pr_environment), 0 for any other environment: dbt builds
	// and drops that PR's schema.
	PRNumber int
}

// Progress is one step of an apply: Batch of Batches is sqlmesh's per-model batch count, a whole run's node count
// for tools that count nodes (dbt).
type Progress struct {
	Model   string
	Action  string // what the step did, in the tool's words ("insert", "full refresh", ...); may be empty
	Batch   int    // 1-based
	Batches int
}

// Kinds of ToolError the bot acts on; frameworks may report others, which all mean "the plan failed".
const (
	// KindUncategorized: the tool made a plan but could not categorise some changes. The plan is shown and the
	// check asks for action; the apply is refused until someone categorises them.
	KindUncategorized = "uncategorized"
)

// ToolError is a failure the tool reported: it could not make the plan.
type ToolError struct {
	Tool    string // the framework's name, for messages
	Kind    string // see the Kind constants; the framework's own words otherwise ("config", "sql", "state", ...)
	Type    string // the tool's own error class, e.g. ConfigError
	Message string // in words a PR author can act on
}

func (e *ToolError) Error() string {
	return fmt.Sprintf("%s plan failed (%s, %s): %s", e.Tool, e.Kind, e.Type, e.Message)
}

// Registry holds the frameworks this bot runs, by name.
type Registry struct {
	byName map[repoconfig.Framework]Framework
}

// NewRegistry registers frameworks; a name given twice is a programming error.
func NewRegistry(frameworks ...Framework) (Registry, error) {
	r := Registry{byName: map[repoconfig.Framework]Framework{}}
	for _, f := range frameworks {
		if _, dup := r.byName[f.Name()]; dup {
			return Registry{}, fmt.Errorf("framework %s is registered twice", f.Name())
		}
		r.byName[f.Name()] = f
	}
	return r, nil
}

// For returns the project's framework, or an error a PR author can read when this bot does not run it.
func (r Registry) For(p repoconfig.Project) (Framework, error) {
	if f, ok := r.byName[p.Framework]; ok {
		return f, nil
	}
	return nil, fmt.Errorf("project %s: framework %s is not supported by this dagctl-bot (it runs %s)", p.Name, p.Framework, r.names())
}

// All returns the registered frameworks, by name.
func (r Registry) All() []Framework {
	out := make([]Framework, 0, len(r.byName))
	for _, f := range r.byName {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out
}

func (r Registry) names() string {
	var names []string
	for _, f := range r.All() {
		names = append(names, string(f.Name()))
	}
	if len(names) == 0 {
		return "no framework"
	}
	return strings.Join(names, ", ")
}

// FlagError is a plan flag the project's framework does not take: a usage error at command time, answered
// like a malformed command, never a failed job.
type FlagError struct {
	Project   string
	Framework repoconfig.Framework
	Refused   []plan.Flag
	Accepted  []plan.Flag
}

func (e *FlagError) Error() string {
	words := make([]string, len(e.Refused))
	for i, f := range e.Refused {
		words[i] = "`" + string(f) + "`"
	}
	accepted := "no plan flags"
	if len(e.Accepted) > 0 {
		accepted = "only"
		for i, f := range e.Accepted {
			if i > 0 {
				accepted += ","
			}
			accepted += " `" + string(f) + "`"
		}
	}
	return fmt.Sprintf("project `%s` is a %s project: %s %s not for %s (it takes %s)",
		e.Project, e.Framework, strings.Join(words, ", "), plural(len(words), "is", "are"), e.Framework, accepted)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// CheckFlags refuses the flags the project's framework does not accept.
func CheckFlags(f Framework, project string, flags plan.Flags) error {
	return checkFlags(f.Name(), f.Flags(), project, flags)
}

// CheckPlanFlags is the command-time check of `/dagctl plan` flags: every project the command plans must take
// them, or the command is refused as a usage error naming the first project that does not. A project whose
// framework this bot does not run is left to its plan, which fails saying so.
func (r Registry) CheckPlanFlags(projects []repoconfig.Project, flags plan.Flags) error {
	for _, p := range projects {
		if f, ok := r.byName[p.Framework]; ok {
			if err := CheckFlags(f, p.Name, flags); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkFlags(name repoconfig.Framework, accepted []plan.Flag, project string, flags plan.Flags) error {
	ok := map[plan.Flag]bool{}
	for _, a := range accepted {
		ok[a] = true
	}
	var refused []plan.Flag
	for _, f := range flags.Set() {
		if !ok[f] {
			refused = append(refused, f)
		}
	}
	if len(refused) == 0 {
		return nil
	}
	return &FlagError{Project: project, Framework: name, Refused: refused, Accepted: accepted}
}

// Meaning makes a summary say what its framework means (categorizes: Framework.Categorizes): a framework
// without categories has NoCategory on every change; one with categories never has NoCategory (a change left
// with it is Uncategorized, so the gate fails closed). The result line is job output, which PR code can print,
// so this keeps meanings straight; it is not a boundary.
func Meaning(categorizes bool, s *plan.Summary) {
	for _, l := range [][]plan.Change{s.Added, s.Removed, s.DirectlyModified, s.IndirectlyModified, s.MetadataUpdated} {
		for i := range l {
			switch {
			case !categorizes:
				l[i].Category = plan.NoCategory
			case l[i].Category == plan.NoCategory:
				l[i].Category = plan.Uncategorized
			}
		}
	}
}
