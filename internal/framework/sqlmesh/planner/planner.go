// Package planner turns sqlmesh into a typed plan.Summary: it builds the argv of plan and apply jobs, the
// environment every sqlmesh job needs, and parses what those jobs print.
//
// # Why a helper, not the CLI's text
//
// A plan job runs a small Python helper shipped inside the bot (sqlmesh_plan.py, embedded and passed with
// `python -c`, so the same argv works as a local process and in a Kubernetes Job with no files to mount). It
// loads sqlmesh's Context and calls context.plan_builder exactly as `sqlmesh plan ENV --explain --no-prompts`
// does, prints the same human output (console.plan on an explain-only plan applies nothing), and then prints
// one JSON line (in parts when long) read from sqlmesh's own Plan object. Before planning it checks that the
// state connection answers: sqlmesh alone takes a state it cannot read (a DuckDB file another job holds) for a
// new project and plans every model as added. Parsing the CLI's text instead was rejected after reading
// sqlmesh 0.236.4's console.py:
//
//   - without a TTY sqlmesh switches to its MarkdownConsole, whose layout differs from the terminal's and
//     changes between releases without notice;
//   - rich wraps every line at the terminal width (80 columns when unknown), splitting model and table names;
//   - lists longer than 10 are collapsed to ".... N more ...." unless -vv is given;
//   - intervals are printed inclusive and formatted per interval unit, dev plans print environment view names
//     (db__dev.model), and the forward-only flag and preview status of a snapshot are not printed at all;
//   - the --explain tree lists models in a different order on every run (sets of address-hashed objects).
//
// The Plan object has all of this exactly: change categories, the forward-only flag, missing intervals as
// epoch milliseconds, deployability (previews) and restatements. The helper sorts the explain stages, so the
// same plan explains the same way every time.
//
// Unit tests: `sqlmesh plan --explain` skips them, but a plan that is applied runs them and fails on a failing
// test, so the helper runs them too; a plan the bot shows as ready is one that `--auto-apply` accepts.
//
// # What the Summary holds
//
// Models are named as sqlmesh names them in prod (schema.model, without the default catalog) in every
// environment, so that a model has one name across summaries; sqlmesh's own text, Explain included, shows a
// development environment's view names (schema__dev.model). A directly modified model that sqlmesh marked
// forward-only is plan.ForwardOnly. Backfill intervals are half-open and merged ([2024-01-01, 2024-01-22) is
// three weeks; sqlmesh prints the same range as "2024-01-01 - 2024-01-21"), dates when they fall on midnight UTC.
// Only incremental models carry intervals; Start and End span them. A new development environment identical to
// its source, which sqlmesh refuses to create, is a Summary without changes.
//
// Applies run the real CLI (`sqlmesh plan ENV --auto-apply --no-prompts ...`); ParseProgress reads its
// per-batch progress lines.
package planner

import (
	_ "embed"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/dagctl/dagctl-bot/internal/plan"
)

// helperSource is the plan helper, run with `python -c`.
//
//go:embed sqlmesh_plan.py
var helperSource string

// HelperSource returns the embedded plan helper's Python source.
func HelperSource() string { return helperSource }

// Marker starts the helper's machine-readable result: one line `::dagctl-plan:: {json}`, or, when the JSON is
// longer than Options.ResultChunkBytes, consecutive lines `::dagctl-plan:: part I/N <piece>`.
const Marker = "::dagctl-plan::"

// SchemaVersion is the version of the helper's JSON that ParseResult reads.
const SchemaVersion = 1

// Columns is the terminal width sqlmesh is told it has (COLUMNS). Wide enough that progress lines are not
// wrapped; rich otherwise assumes 80.
const Columns = 200

// SQLMesh builds the commands of sqlmesh jobs.
type SQLMesh struct {
	// Python is the interpreter that has sqlmesh installed: an absolute path (a virtualenv's bin/python), or a
	// bare name such as "python3" that the job's PATH resolves (a container image).
	Python string
}

// Options are per-project settings of a command.
type Options struct {
	// Gateway selects a sqlmesh gateway; empty uses the project's default.
	Gateway string
	// ExecutionTime fixes sqlmesh's "now" (--execution-time), which decides the missing intervals. Empty means
	// now; tests set it so that backfill intervals are reproducible.
	ExecutionTime string
	// ResultChunkBytes is the longest piece of the plan result printed on one line; longer results come as
	// several lines. 0 means 32 KiB, well below the line length executors keep whole (jobs.MaxLineBytes).
	ResultChunkBytes int
}

// PlanCommand is the argv of a plan job for an environment: the embedded helper run by Python. It prints
// sqlmesh's human output and then the result line that ParseResult reads; it applies nothing (but, as sqlmesh
// does for any plan, it creates sqlmesh's state tables when the state database is empty).
func (s SQLMesh) PlanCommand(env string, flags plan.Flags, opts Options) []string {
	argv := []string{s.Python, "-c", helperSource, "plan", "--env", env}
	if opts.Gateway != "" {
		argv = append(argv, "--gateway", opts.Gateway)
	}
	if opts.ResultChunkBytes > 0 {
		argv = append(argv, "--result-chunk-bytes", strconv.Itoa(opts.ResultChunkBytes))
	}
	argv = append(argv, planFlags(flags, opts)...)
	return argv
}

// ApplyCommand is the argv of an apply job: the real CLI, `sqlmesh plan ENV --auto-apply --no-prompts` with
// the flags the plan was made with. Its output carries progress lines (see ParseProgress).
func (s SQLMesh) ApplyCommand(env string, flags plan.Flags, opts Options) []string {
	argv := []string{s.Executable()}
	if opts.Gateway != "" {
		argv = append(argv, "--gateway", opts.Gateway)
	}
	argv = append(argv, "plan", env, "--auto-apply", "--no-prompts")
	argv = append(argv, planFlags(flags, opts)...)
	return argv
}

// InvalidateCommand is the argv that marks an environment for deletion by sqlmesh's janitor (a per-PR
// environment whose PR was closed).
func (s SQLMesh) InvalidateCommand(env string, opts Options) []string {
	argv := []string{s.Executable()}
	if opts.Gateway != "" {
		argv = append(argv, "--gateway", opts.Gateway)
	}
	return append(argv, "invalidate", env)
}

// Executable is the sqlmesh CLI installed next to Python (or "sqlmesh" on the job's PATH when Python is a bare
// name).
func (s SQLMesh) Executable() string {
	if !strings.ContainsRune(s.Python, filepath.Separator) {
		return "sqlmesh"
	}
	return filepath.Join(filepath.Dir(s.Python), "sqlmesh")
}

// planFlags are the options shared by the helper and `sqlmesh plan`, spelled the same in both.
func planFlags(flags plan.Flags, opts Options) []string {
	var argv []string
	if flags.ForwardOnly {
		argv = append(argv, "--forward-only")
	}
	for _, model := range flags.RestateModels {
		argv = append(argv, "--restate-model", model)
	}
	if flags.Start != "" {
		argv = append(argv, "--start", flags.Start)
	}
	if flags.End != "" {
		argv = append(argv, "--end", flags.End)
	}
	if opts.ExecutionTime != "" {
		argv = append(argv, "--execution-time", opts.ExecutionTime)
	}
	return argv
}

// Env is the environment every sqlmesh job needs, on top of the project's own variables: no analytics, the
// same (markdown, uncoloured) console whether or not a TTY is attached, a fixed width, and unbuffered UTF-8
// output so that lines stream as they are printed.
func (SQLMesh) Env() map[string]string {
	return map[string]string{
		// Read when sqlmesh is imported, before any config; also maps to the config's disable_anonymized_analytics.
		"SQLMESH__DISABLE_ANONYMIZED_ANALYTICS": "1",
		// "ci" selects the MarkdownConsole, which sqlmesh picks anyway without a TTY; set so that a TTY does not
		// switch to live progress bars.
		"SQLMESH_RUNTIME_ENVIRONMENT": "ci",
		"COLUMNS":                     strconv.Itoa(Columns),
		"NO_COLOR":                    "1",
		"PYTHONUNBUFFERED":            "1",
		"PYTHONIOENCODING":            "utf-8",
	}
}
