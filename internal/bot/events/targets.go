package events

import (
	"fmt"
	"strings"

	"github.com/dagctl/dagctl-bot/internal/bot/prstate"
	"github.com/dagctl/dagctl-bot/internal/command"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// Target is one (project, environment) of a pull request.
type Target struct {
	Project repoconfig.Project
	Env     repoconfig.Environment
}

// NoteDraft is why a draft PR is not planned automatically, shown on the PR.
const NoteDraft = "Draft PRs are not planned (set `plan_drafts: true` in .dagctl/config.yaml to change that). Mark it ready for review, or comment `/dagctl plan`."

// ForkNote is why a fork PR is not planned automatically, with the exact command that plans its head. The command
// names the full SHA: a fork is planned only at a commit a maintainer named, so a push after they looked never
// runs in its place (and a short prefix could be matched by a new commit in seconds).
func ForkNote(head string) string {
	return fmt.Sprintf("This PR comes from a fork, so it is not planned automatically: its code would run with the team's warehouse credentials. A user with write permission who has reviewed commit %s can comment `%s` to plan exactly that commit.",
		prstate.Short(head), PinnedPlan(command.Command{Verb: command.Plan}, head))
}

// PinnedPlan is cmd as a plan command pinned to sha, as the user is asked to comment it.
func PinnedPlan(cmd command.Command, sha string) string {
	cmd.Verb, cmd.SHA = command.Plan, sha
	return cmd.String()
}

// PinRefusal says why a plan command (or a re-run check, pinned to the check's commit) must not plan the PR's
// head, or "" when it may. A fork's head is planned only when the command names it; a named commit is planned
// only while it is the head. The refusal shows the command for the current head.
func PinRefusal(pr vcs.PullRequest, cmd command.Command) string {
	switch {
	case cmd.SHA != "" && cmd.SHA != pr.HeadSHA:
		return fmt.Sprintf("The PR's head moved: it is %s now, not %s. Nothing was planned. Review the new commit, then comment `%s` to plan it.",
			prstate.Short(pr.HeadSHA), prstate.Short(cmd.SHA), PinnedPlan(cmd, pr.HeadSHA))
	case cmd.SHA == "" && pr.Fork:
		return fmt.Sprintf("This PR comes from a fork: it is planned only at a commit you name, so that a push after you looked cannot run instead. Nothing was planned. To plan the head %s, comment `%s`.",
			prstate.Short(pr.HeadSHA), PinnedPlan(cmd, pr.HeadSHA))
	}
	return ""
}

// AutoTargets are the targets planned when a PR is opened or pushed to, or a note saying why there are none.
func AutoTargets(cfg repoconfig.Config, pr vcs.PullRequest) (targets []Target, note string) {
	if pr.Fork {
		return nil, ForkNote(pr.HeadSHA)
	}
	if pr.Draft && !cfg.PlanDrafts {
		return nil, NoteDraft
	}
	var envs []repoconfig.Environment
	for _, e := range Environments(cfg, pr.Number) {
		if e.PlanOnPR {
			envs = append(envs, e)
		}
	}
	return cross(cfg, envs, pr.Number), ""
}

// CommandTargets are the targets of `/dagctl plan [env]` (or a rerequested check): the named environment, or
// every environment planned on PRs.
func CommandTargets(cfg repoconfig.Config, pr vcs.PullRequest, env string) ([]Target, error) {
	all := Environments(cfg, pr.Number)
	if env == "" {
		var envs []repoconfig.Environment
		for _, e := range all {
			if e.PlanOnPR {
				envs = append(envs, e)
			}
		}
		return cross(cfg, envs, pr.Number), nil
	}
	for _, e := range all {
		if e.Name == env {
			return cross(cfg, []repoconfig.Environment{e}, pr.Number), nil
		}
	}
	names := make([]string, len(all))
	for i, e := range all {
		names[i] = "`" + e.Name + "`"
	}
	return nil, fmt.Errorf("environment `%s` is not configured; this PR has %s", env, strings.Join(names, ", "))
}

// Environments are the configured environments plus, when pr_environment is set, the PR's own environment:
// unprotected, planned on the PR and applied by comment.
func Environments(cfg repoconfig.Config, prNumber int) []repoconfig.Environment {
	envs := append([]repoconfig.Environment(nil), cfg.Environments...)
	if name := cfg.PREnvironmentFor(prNumber); name != "" {
		if _, exists := cfg.Environment(name); !exists {
			envs = append(envs, repoconfig.Environment{
				Name: name, PlanOnPR: true, ApplyOn: []repoconfig.ApplyTrigger{repoconfig.ApplyOnComment},
			})
		}
	}
	return envs
}

// Environment finds an environment of the PR (including its per-PR environment).
func Environment(cfg repoconfig.Config, prNumber int, name string) (repoconfig.Environment, bool) {
	for _, e := range Environments(cfg, prNumber) {
		if e.Name == name {
			return e, true
		}
	}
	return repoconfig.Environment{}, false
}

// cross is every project in every environment, except the PR's own environment, which has only the projects
// that build it (repoconfig.Config.BuildsPREnvironment). A dbt project's PR environment is its PR build, which
// the plan job runs: nothing is applied to it.
func cross(cfg repoconfig.Config, envs []repoconfig.Environment, prNumber int) []Target {
	prEnv := ""
	if prNumber != 0 {
		prEnv = cfg.PREnvironmentFor(prNumber)
	}
	var out []Target
	for _, e := range envs {
		for _, p := range cfg.Projects {
			t := Target{Project: p, Env: e}
			if _, configured := cfg.Environment(e.Name); prEnv != "" && e.Name == prEnv && !configured {
				if !cfg.BuildsPREnvironment(p) {
					continue
				}
				if p.Framework == repoconfig.DBT {
					t.Env.ApplyOn = nil
				}
			}
			out = append(out, t)
		}
	}
	return out
}
