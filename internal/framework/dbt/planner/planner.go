// Package planner runs dbt for dagctl-bot: the argv of plan and apply jobs (an embedded Python helper,
// dbt_plan.py, passed with `python -c` so that the same argv works as a local process and in a Kubernetes Job),
// the environment every dbt job needs, and the parsers of what those jobs print.
//
// # The plan
//
// The helper uses dbt's programmatic API (dbtRunner) in the head's project directory: `dbt parse` of the head,
// then the comparison state: the production manifest when the job is given one (StateEnv, the manifest the
// environment's last successful deploy stored), else a `dbt parse` of the base commit's checkout (BaseDirEnv;
// with neither, or a base without the project, every node is new). Then `dbt ls` with state:modified and each
// sub-selector (body, configs, relation, persisted_descriptions, macros, contract, and state:new) names each
// changed node's reasons (with indirect selection off, so a test is listed only when it changed itself);
// state:modified+ (with dbt's eager indirect selection, what `dbt build --select state:modified+` runs) the
// downstream; the removed nodes, which state never selects, are those of the state manifest that the head's
// lacks (a rename is removed + new). dbt's target/ and logs/ go to a scratch directory that is removed;
// nothing is built or run against the warehouse. The helper prints one result line (Marker); ParseResult reads
// it into a plan.Summary whose DBT holds the manifest's side: Nodes, Downstream and ManifestScope. The files,
// the version and the scope that decides are the bot's (scope.Fill), never the job's.
//
// # The apply
//
// The helper's apply mode runs the approved plan's exact commands (plan.DBT.Commands, built by scope.Commands
// from commands .dagctl/config.yaml validated as plain words) in order, in the same process, each with
// `--log-format json`, and stops at the first that fails. ParseProgress reads dbt's JSON result events.
// Each command's artifacts go to ArtifactsDir/<n>; the last command's manifest.json and run_results.json are
// copied to ArtifactsDir, where the executor collects them.
//
// # The PR build
//
// A PR environment's plan (PRBuildCommand) is the plan, then `dbt build --select state:modified+ --defer
// --state <production manifest>` into the PR's schema, given by the bot and set as the only target of a
// profiles.yml the helper derives from the project's; CleanupCommand drops that schema (and those derived from
// it) when the PR closes. ParseResult reads the build into plan.DBT.PRBuild; ParseCleanupResult the drops.
package planner

import (
	_ "embed"
	"strconv"

	"github.com/dagctl/dagctl-bot/internal/plan"
)

//go:embed dbt_plan.py
var helperSource string

// HelperSource returns the embedded helper's Python source.
func HelperSource() string { return helperSource }

// Marker starts the plan's result: one line `::dagctl-dbt-plan:: {json}`, or, when the JSON is longer than
// Options.ResultChunkBytes, consecutive lines `::dagctl-dbt-plan:: part I/N <piece>`.
const Marker = "::dagctl-dbt-plan::"

// ApplyMarker starts the apply's result line: the commands that ran and whether each succeeded.
const ApplyMarker = "::dagctl-dbt-apply::"

// CleanupMarker starts a cleanup's result line: the schemas it dropped.
const CleanupMarker = "::dagctl-dbt-cleanup::"

// SchemaVersion is the version of the helper's JSON that ParseResult reads.
const SchemaVersion = 1

// The variables the plan job reads (set by the executor, never by the PR).
const (
	// StateEnv names a directory holding the production manifest.json (the environment's last successful
	// deploy); relative paths are from the project directory.
	StateEnv = "DAGCTL_DBT_STATE"
	// BaseDirEnv names the project's directory in a checkout of the base commit, parsed when there is no
	// production manifest.
	BaseDirEnv = "DAGCTL_BASE_DIR"
)

// ArtifactsDir is where an apply leaves dbt's artifacts, relative to the project directory: manifest.json and
// run_results.json of the last command that ran (the manifest a later deploy compares with), and each
// command's own target directory as ArtifactsDir/<n>. dbt's target/ is generated, never part of a change.
const ArtifactsDir = "target/dagctl-apply"

// PackageMarker starts the result line of a package job (PackageCommand).
const PackageMarker = "::dagctl-dbt-package::"

// PackageArtifact is where a package job leaves the project as a tar, relative to the project directory (under
// dbt's generated target/, which the tar itself leaves out).
const PackageArtifact = "target/dagctl-image/project.tar"

// ImageProjectEnv names the project's directory in the deploy image: set on an apply job that runs on the image
// the bot built, the helper runs the commands there (with the image's dbt_packages/), its artifacts still in
// the checkout.
const ImageProjectEnv = "DAGCTL_DBT_PROJECT_DIR"

// DBT builds the commands of dbt jobs.
type DBT struct {
	// Python is the interpreter that has dbt installed: an absolute path (a virtualenv's bin/python), or a bare
	// name such as "python3" that the job's PATH resolves (a container image).
	Python string
}

// Options are per-project settings of a command.
type Options struct {
	// Target is the dbt target the plan parses with ("" = the profile's default).
	Target string
	// ProfilesDir is the directory of profiles.yml, relative to the project ("" = dbt's own lookup).
	ProfilesDir string
	// ResultChunkBytes is the longest piece of the result printed on one line; 0 means 32 KiB.
	ResultChunkBytes int
}

// PlanCommand is the argv of a plan job for an environment: the helper in plan mode. It parses, compares and
// prints the result line; it builds nothing.
func (d DBT) PlanCommand(env string, opts Options) []string {
	argv := []string{d.Python, "-c", helperSource, "plan", "--env", env}
	if opts.Target != "" {
		argv = append(argv, "--target", opts.Target)
	}
	if opts.ProfilesDir != "" {
		argv = append(argv, "--profiles-dir", opts.ProfilesDir)
	}
	return append(argv, chunk(opts)...)
}

// PRBuildCommand is the argv of a PR environment's plan job (pr_environment, Slim CI): the helper in prbuild
// mode makes the plan's comparison, then builds `dbt build --select state:modified+ --defer --state <production
// manifest>` (every node without one) into schema, with the target of opts (the profile's default when "") whose
// schema the helper replaces by schema in a profiles.yml of its own. schema is the bot's, from the default
// branch's config; the helper refuses anything but a plain identifier. It prints the plan's result line with
// the build's nodes.
func (d DBT) PRBuildCommand(env, schema string, opts Options) []string {
	return d.schemaCommand("prbuild", env, schema, opts)
}

// CleanupCommand is the argv that drops a closed PR's schema (and the schemas dbt derives from it,
// <schema>_<custom>) through dbt's adapter, with the same derived profile as the build.
func (d DBT) CleanupCommand(env, schema string, opts Options) []string {
	return d.schemaCommand("cleanup", env, schema, opts)
}

func (d DBT) schemaCommand(mode, env, schema string, opts Options) []string {
	argv := []string{d.Python, "-c", helperSource, mode, "--env", env, "--schema", schema}
	if opts.Target != "" {
		argv = append(argv, "--target", opts.Target)
	}
	if opts.ProfilesDir != "" {
		argv = append(argv, "--profiles-dir", opts.ProfilesDir)
	}
	return append(argv, chunk(opts)...)
}

// ApplyCommand is the argv of an apply job: the helper in apply mode with the plan's scope and its exact
// commands, in order. A nil plan gives an argv the helper refuses (a selective or all apply needs commands),
// so an apply never runs without the plan it was approved with.
func (d DBT) ApplyCommand(env string, p *plan.DBT, opts Options) []string {
	scope := ""
	var commands []string
	if p != nil {
		scope, commands = string(p.Scope), p.Commands
	}
	argv := []string{d.Python, "-c", helperSource, "apply", "--env", env, "--scope", scope, "--artifacts", ArtifactsDir}
	for _, c := range commands {
		argv = append(argv, "--command", c)
	}
	return append(argv, chunk(opts)...)
}

// PackageCommand is the argv of a package job: the helper runs `dbt deps` when the project has packages and
// leaves the project as a tar at PackageArtifact, failing (and leaving none) over maxBytes.
func (d DBT) PackageCommand(maxBytes int, opts Options) []string {
	argv := []string{d.Python, "-c", helperSource, "package", "--out", PackageArtifact, "--max-bytes", strconv.Itoa(maxBytes)}
	return append(argv, chunk(opts)...)
}

func chunk(opts Options) []string {
	if opts.ResultChunkBytes > 0 {
		return []string{"--result-chunk-bytes", strconv.Itoa(opts.ResultChunkBytes)}
	}
	return nil
}

// Env is what every dbt job needs on top of the project's variables: no tracking (no .user.yml cookie is
// written next to profiles.yml in the checkout), no colours, unbuffered UTF-8 output so that lines stream.
func (DBT) Env() map[string]string {
	return map[string]string{
		"DO_NOT_TRACK":                   "1",
		"DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
		"DBT_USE_COLORS":                 "false",
		"NO_COLOR":                       "1",
		"PYTHONUNBUFFERED":               "1",
		"PYTHONIOENCODING":               "utf-8",
	}
}
