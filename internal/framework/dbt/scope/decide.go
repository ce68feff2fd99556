package scope

import (
	"strings"

	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
)

// NoStateFullBuild is the reason a deploy the files call selective is all: there is no production manifest
// (no successful deploy stored for the environment) for its state selection.
const NoStateFullBuild = "no production manifest yet: a full build"

// Which rule decided a scope (plan.DBT.DecidedBy).
const (
	ByManifest = "manifest"
	ByFiles    = "files"
)

// Decision is the scope a deploy runs, the rule that decided it and why, in words the comment shows.
type Decision struct {
	Scope     plan.Scope
	DecidedBy string
	Reason    string
}

// Decide picks the scope when the changed files and dbt's manifest diff (manifest "" when none was made) may
// disagree. By default the manifest decides when a production manifest exists to compare with; the files
// decide when the project says `decide: files`, when there is nothing to compare with, and when the change
// is one dbt's state comparison cannot see (vars, profiles). A deploy whose files changed always rebuilds
// the image, even when no node changed. Without a production manifest a selective deploy cannot select
// (`--state` has nothing to read), so it is a full build.
func Decide(files FileRule, manifest plan.Scope, rule repoconfig.DecideRule, hasProdManifest bool) Decision {
	d := decide(files, manifest, rule, hasProdManifest)
	if d.Scope == plan.ScopeSelective && !hasProdManifest {
		d.Scope, d.Reason = plan.ScopeAll, NoStateFullBuild
	}
	if d.Scope == plan.ScopeNone && files.Scope != plan.ScopeNone {
		d.Scope = plan.ScopeBuildOnly
		d.Reason += "; no node changed, so only the image is rebuilt"
	}
	return d
}

func decide(files FileRule, manifest plan.Scope, rule repoconfig.DecideRule, hasProdManifest bool) Decision {
	byFiles := func(why string) Decision { return Decision{Scope: files.Scope, DecidedBy: ByFiles, Reason: why} }
	switch {
	case rule == repoconfig.DecideFiles:
		return byFiles("the project says `decide: files`")
	case manifest == "":
		return byFiles("no manifest diff was made")
	case !hasProdManifest:
		return byFiles("no production manifest yet: dbt's state comparison has nothing to compare with")
	case files.Unseen != "":
		return byFiles(files.Unseen + ", which dbt's state comparison cannot see")
	}
	why := "dbt's state comparison with the production manifest"
	if rule == repoconfig.DecideDefault {
		why += " (the default when one exists)"
	}
	return Decision{Scope: manifest, DecidedBy: ByManifest, Reason: why}
}

// State selection of a selective deploy: what changed since the production manifest, and its downstream.
const selectModified = "state:modified+"

// Commands are the exact commands an apply of scope runs in env: the project's commands with the target and
// profiles directory, and for a selective deploy the state selection against stateDir (the production
// artifacts) on the commands that select nodes. build_only and none run no dbt command.
func Commands(scope plan.Scope, p repoconfig.DBTProject, env, stateDir string) []string {
	if scope != plan.ScopeSelective && scope != plan.ScopeAll {
		return nil
	}
	commands := p.Commands
	if len(commands) == 0 {
		commands = repoconfig.DefaultDBTCommands
	}
	out := make([]string, 0, len(commands))
	for _, c := range commands {
		words := strings.Fields(c)
		if t := p.TargetFor(env); t != "" {
			words = append(words, "--target", t)
		}
		if p.ProfilesDir != "" {
			words = append(words, "--profiles-dir", p.ProfilesDir)
		}
		if scope == plan.ScopeSelective && repoconfig.SelectsNodes(c) {
			words = append(words, "--select", selectModified, "--state", stateDir)
		}
		out = append(out, strings.Join(words, " "))
	}
	return out
}
