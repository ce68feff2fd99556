// Package repoconfig reads a repository's .dagctl/config.yaml in two stages, as Atlantis does: the raw YAML
// (with line numbers) is decoded first, then validated into Config, whose values are complete and safe to use.
// Every error names the file, line and field.
package repoconfig

import (
	"strconv"
	"strings"
	"time"
)

// Path is where the config lives in a repository.
const Path = ".dagctl/config.yaml"

// Framework is the data tool a project uses.
type Framework string

const (
	SQLMesh Framework = "sqlmesh"
	DBT     Framework = "dbt"
)

// ApplyTrigger says what applies a protected environment's plan.
type ApplyTrigger string

const (
	ApplyOnComment ApplyTrigger = "comment" // `/dagctl apply` before merge
	ApplyOnMerge   ApplyTrigger = "merge"   // merging the PR into the default branch
)

// Config is a validated .dagctl/config.yaml.
type Config struct {
	Version      int
	Projects     []Project
	Environments []Environment
	Job          Job
	// PlanDrafts plans draft PRs too (default false: drafts are skipped).
	PlanDrafts bool
	// PREnvironment, when set, names the per-PR environment pattern, e.g. "pr_{number}".
	PREnvironment string
	// DeployBranches are the branches whose PRs may apply protected environments, besides the default branch
	// (git-flow teams deploy from e.g. release). Read from the default branch's config only.
	DeployBranches []string
}

// IsDeployBranch reports whether a PR into branch may apply protected environments: the default branch, or a
// branch the default branch's config names in deploy_branches.
func (c Config) IsDeployBranch(branch, defaultBranch string) bool {
	if branch == "" {
		return false
	}
	if branch == defaultBranch {
		return true
	}
	for _, b := range c.DeployBranches {
		if b == branch {
			return true
		}
	}
	return false
}

// Project is one data project in the repository.
type Project struct {
	Name      string // defaults to the path's base name, or "default" for "."
	Path      string // relative to the repository root, cleaned; "." for the root
	Framework Framework
	Gateway   string // sqlmesh gateway; empty = the project's default
	// DBT is a dbt project's deploy settings (version, commands, targets, image, ...); nil for other frameworks.
	DBT *DBTProject
}

// Environment is one target the bot plans (and may apply).
type Environment struct {
	Name              string
	Protected         bool
	RequiredApprovals int
	Approvers         []string // users or org/team slugs; empty = anyone with write
	Appliers          []string // empty = anyone with write
	PlanOnPR          bool
	ApplyOn           []ApplyTrigger
}

// NeedsApproval reports whether applying the environment needs someone else's approval: the gate's rules
// (approvals, deploy branches, no rollback, reviewed content) apply to it.
func (e Environment) NeedsApproval() bool { return e.Protected || e.RequiredApprovals > 0 }

// AppliesOn reports whether the trigger applies this environment.
func (e Environment) AppliesOn(t ApplyTrigger) bool {
	for _, a := range e.ApplyOn {
		if a == t {
			return true
		}
	}
	return false
}

// Job is how jobs run.
type Job struct {
	Image   string // container image for the Kubernetes executor; empty = the server's default
	Timeout time.Duration
	// Env are literal variables set in the job.
	Env map[string]string
	// PassEnv names variables copied from the bot's job environment (DAGCTL_JOB_ENV) into the job.
	PassEnv []string
	// Secrets are Kubernetes secret references (envFrom) for the Kubernetes executor.
	Secrets []string
	// Setup are commands run before the framework's command, in order (job.setup); see SetupStep.
	Setup []SetupStep
}

// Environment returns the environment with that name.
func (c Config) Environment(name string) (Environment, bool) {
	for _, e := range c.Environments {
		if e.Name == name {
			return e, true
		}
	}
	return Environment{}, false
}

// DefaultPREnvironment is the PR's own environment when the config sets no pr_environment but a dbt project
// builds PR schemas (its pr_environment).
const DefaultPREnvironment = "pr_" + PRNumberPlaceholder

// PREnvironmentFor returns the per-PR environment's name for a pull request: pr_environment's, else
// DefaultPREnvironment's when a dbt project builds PR schemas, else "" (none).
func (c Config) PREnvironmentFor(number int) string {
	pattern := c.PREnvironment
	if pattern == "" {
		for _, p := range c.Projects {
			if p.DBT != nil && p.DBT.PREnvironment != nil {
				pattern = DefaultPREnvironment
				break
			}
		}
	}
	if pattern == "" {
		return ""
	}
	return strings.ReplaceAll(pattern, PRNumberPlaceholder, strconv.Itoa(number))
}

// BuildsPREnvironment reports whether the project is planned in the PR's own environment: a dbt project when it
// sets its pr_environment (the PR's schema), any other when the config sets pr_environment.
func (c Config) BuildsPREnvironment(p Project) bool {
	if p.Framework == DBT {
		return p.DBT != nil && p.DBT.PREnvironment != nil
	}
	return c.PREnvironment != ""
}
