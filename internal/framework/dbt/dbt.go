// Package dbt is the dbt Framework: the commands and parsers of its planner (./planner) behind the framework
// port, with dbt's meanings (no change categories, no plan flags). The deploy rules over files and versions
// are ./scope; this package only maps the planner onto the port's types, and completes the job's summary from
// both commits with scope's rules (framework.Comparer).
package dbt

import (
	"errors"
	"io"
	"path"

	"github.com/dagctl/dagctl-bot/internal/framework"
	"github.com/dagctl/dagctl-bot/internal/framework/dbt/planner"
	"github.com/dagctl/dagctl-bot/internal/framework/dbt/scope"
	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
)

// Framework runs dbt with the interpreter that has it installed.
type Framework struct {
	DBT planner.DBT
}

var _ framework.Framework = Framework{}

// New returns the dbt framework for python: an absolute path (a virtualenv's bin/python) or a bare name the
// job's PATH resolves (a container image).
func New(python string) framework.Framework { return Framework{DBT: planner.DBT{Python: python}} }

func (Framework) Name() repoconfig.Framework { return repoconfig.DBT }

func options(req framework.CommandRequest) planner.Options {
	if req.Project.DBT == nil {
		return planner.Options{Target: req.Env}
	}
	return planner.Options{Target: req.Project.DBT.TargetFor(req.Env), ProfilesDir: req.Project.DBT.ProfilesDir}
}

// prBuild is the project's PR build when req is the PR's own environment (req.PRNumber) and the project sets
// pr_environment (the governing config's: repoconfig.Merge keeps the default branch's): its settings and the
// PR's schema. The schema may still be invalid (a config from before validation): callers refuse it.
func prBuild(req framework.CommandRequest) (*repoconfig.DBTPREnvironment, string, bool) {
	if req.PRNumber == 0 || req.Project.DBT == nil || req.Project.DBT.PREnvironment == nil {
		return nil, "", false
	}
	pe := req.Project.DBT.PREnvironment
	return pe, pe.SchemaFor(req.PRNumber), true
}

func prOptions(req framework.CommandRequest, pe *repoconfig.DBTPREnvironment) planner.Options {
	return planner.Options{Target: pe.Target, ProfilesDir: req.Project.DBT.ProfilesDir}
}

// PlanCommand runs the helper in plan mode with the environment's target (see planner.DBT.PlanCommand); in the
// PR's own environment of a project with pr_environment, in prbuild mode: the plan, then the PR's build into
// its schema (planner.DBT.PRBuildCommand; the helper refuses a schema that is no plain name).
func (f Framework) PlanCommand(req framework.CommandRequest) []string {
	if pe, schema, ok := prBuild(req); ok {
		return f.DBT.PRBuildCommand(req.Env, schema, prOptions(req, pe))
	}
	return f.DBT.PlanCommand(req.Env, options(req))
}

// ApplyCommand runs the approved plan's exact commands (req.DBT.Commands) in order, through the helper.
func (f Framework) ApplyCommand(req framework.CommandRequest) []string {
	return f.DBT.ApplyCommand(req.Env, req.DBT, options(req))
}

// CleanupCommand drops a closed PR's schema (and those dbt derives from it) when the project builds PR schemas
// (pr_environment) and the environment is the PR's own; false otherwise, and for a schema that is no plain
// name.
func (f Framework) CleanupCommand(req framework.CommandRequest) ([]string, bool) {
	pe, schema, ok := prBuild(req)
	if !ok || !repoconfig.ValidSchema(schema) {
		return nil, false
	}
	return f.DBT.CleanupCommand(req.Env, schema, prOptions(req, pe)), true
}

func (f Framework) Env() map[string]string { return f.DBT.Env() }

// ParseResult reads the helper's result line; dbt's failures become *framework.ToolError with the helper's
// kinds ("compile", "parse", "config", "state", ...) and dbt's message.
func (Framework) ParseResult(stdout io.Reader) (plan.Summary, error) {
	s, err := planner.ParseResult(stdout)
	var toolErr *planner.ToolError
	if errors.As(err, &toolErr) {
		return s, &framework.ToolError{Tool: "dbt", Kind: toolErr.Kind, Type: toolErr.Type, Message: toolErr.Message}
	}
	return s, err
}

// ParseProgress reads one of dbt's JSON result events: the node, what became of it, n of N of its command.
func (Framework) ParseProgress(line string) (framework.Progress, bool) {
	p, ok := planner.ParseProgress(line)
	if !ok {
		return framework.Progress{}, false
	}
	return framework.Progress{Model: p.UniqueID, Action: p.Status, Batch: p.Index, Batches: p.Total}, true
}

// Categorizes: dbt has no change categories.
func (Framework) Categorizes() bool { return false }

// Flags: dbt takes no plan flag (no restatement, no forward-only plans, no time range).
func (Framework) Flags() []plan.Flag { return nil }

var _ framework.Comparer = Framework{}

var _ framework.StateKeeper = Framework{}

// StateArtifact: the manifest.json the apply helper leaves of its last command (planner.ArtifactsDir).
func (Framework) StateArtifact() string { return path.Join(planner.ArtifactsDir, "manifest.json") }

// StateInput: the stored manifest is the job's input manifest.json; DAGCTL_DBT_STATE names the directory the
// executor puts the inputs in (the helper expands the variable, which only the executor sets).
func (Framework) StateInput() (string, map[string]string) {
	return "manifest.json", map[string]string{planner.StateEnv: "$" + jobs.EnvInputDir}
}

// StateDir is where a selective apply's commands find the production manifest (`--state`): the directory the
// executor gives the job's inputs in (jobs.EnvInputDir), named as the word the apply helper replaces with it, so
// the command shown and approved is the command run, and no file of the PR's checkout can pose as the state.
const StateDir = "$" + jobs.EnvInputDir

// CommitFiles: what scope.Fill reads of each commit besides its tree, .dagctl/config.yaml (the version, the
// project's entry) and the project's dbt_project.yml (its paths, its vars).
func (Framework) CommitFiles(p repoconfig.Project) []string {
	return []string{repoconfig.Path, projectFile(p)}
}

func projectFile(p repoconfig.Project) string {
	dir := p.Path
	if dir == "" {
		dir = "."
	}
	return path.Join(dir, scope.ProjectFile)
}

// Complete fills the files' side of the plan's dbt view (scope.Fill) from both commits as the forge shows them:
// the version and whether this is a deploy, the changed files, the scope that decides and the commands. The
// job's own output never says which files changed.
func (Framework) Complete(s *plan.Summary, c framework.Comparison) error {
	if s.DBT == nil {
		return errors.New("the dbt plan job printed no dbt view")
	}
	pe, schema, isPRBuild := prBuild(framework.CommandRequest{Project: c.Project, PRNumber: c.PRNumber})
	if isPRBuild != (s.DBT.PRBuild != nil) {
		return errors.New("the dbt plan job's PR build does not match the environment (a PR build only in the PR's own environment)")
	}
	in := scope.Input{Project: c.Project, Environment: c.Environment, Head: commit(c.Head, c.Project),
		HasProdManifest: c.HasProductionState, StateDir: StateDir}
	s.DBT.BaseCommit, s.DBT.BaseIsDeployed = "", false
	if c.Base != nil {
		base := commit(*c.Base, c.Project)
		in.Base = &base
		s.DBT.BaseCommit, s.DBT.BaseIsDeployed = c.Base.SHA, c.BaseIsDeployed
	}
	if err := scope.Fill(s.DBT, in); err != nil {
		return err
	}
	s.DBT.ImageRepository = ""
	if d := c.Project.DBT; d != nil && d.Image != nil {
		s.DBT.ImageRepository = d.Image.Repository
	}
	if isPRBuild {
		// The PR's build ran in the job: nothing is deployed from this plan, whatever the version says. The
		// schema shown is the config's, not the job's word.
		s.DBT.Deploy, s.DBT.Scope, s.DBT.Commands = false, plan.ScopeNone, nil
		s.DBT.PRBuild.Schema = schema
		if pe.Target != "" {
			s.DBT.PRBuild.Target = pe.Target
		}
	}
	return nil
}

// commit is one side of the rules: a config that does not parse counts as none (scope.Commit.Config), so that
// a broken config at the base reads as changed.
func commit(c framework.Commit, p repoconfig.Project) scope.Commit {
	out := scope.Commit{Files: c.Tree, ProjectYML: c.Files[projectFile(p)]}
	if data, ok := c.Files[repoconfig.Path]; ok {
		if cfg, err := repoconfig.Parse(repoconfig.Path, data); err == nil {
			out.Config = &cfg
		}
	}
	return out
}

var _ framework.ImagePackager = Framework{}

// PackageCommand: the helper's package mode, `dbt deps` when the project has packages, then the project as a tar
// (planner.PackageArtifact).
func (f Framework) PackageCommand(req framework.CommandRequest, maxBytes int) []string {
	return f.DBT.PackageCommand(maxBytes, options(req))
}

// PackageArtifact: where the package job leaves the tar.
func (Framework) PackageArtifact() string { return planner.PackageArtifact }

// ImageEnv: the apply helper runs the commands in the image's project (planner.ImageProjectEnv).
func (Framework) ImageEnv(imagePath string) map[string]string {
	return map[string]string{planner.ImageProjectEnv: imagePath}
}
