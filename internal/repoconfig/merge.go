package repoconfig

import "maps"

// Merge returns the config that governs a pull request, given the trusted config (the repository's default
// branch's: never the PR's base branch when that is another branch, which any writer can create with any
// config) and the one on its head. A pull request can change .dagctl/config.yaml, but it must not be able to
// loosen the rules that gate its own apply, nor reach credentials it was not given, so:
//
//   - From BASE (trusted): which environments exist, and for each its protection — protected,
//     required_approvals, approvers, appliers, apply_on; deploy_branches; pr_environment (it creates
//     environments too); and the whole job section (image, timeout, env, pass_env, secrets, setup), because it decides
//     what reaches the job that runs the PR's code.
//   - From HEAD (the PR's own): projects (what to plan is part of the change under review), plan_drafts, and
//     plan_on_pr of environments that exist in both (it only turns planning on or off). A dbt project the base
//     has too (by name) keeps the base's image repository and pr_environment: the bot pushes with its own
//     registry credentials and builds PR code into that schema before anyone reviewed it (and drops it when
//     the PR closes). A dbt project the base lacks has no image repository and no pr_environment until it
//     is merged.
//
// Environments the head adds are ignored until they are merged; environments the head removes stay. Pass
// Default() as base when the base branch has no config file, and the parsed base config otherwise: when the
// base config does not parse, callers should refuse to act rather than fall back to the head.
func Merge(base, head Config) Config {
	out := Config{
		Version:       head.Version,
		Projects:      mergeProjects(base.Projects, head.Projects),
		Job:           cloneJob(base.Job),
		PlanDrafts:    head.PlanDrafts,
		PREnvironment: base.PREnvironment,
		// Which branches deploy is protection too.
		DeployBranches: clone(base.DeployBranches),
	}
	for _, e := range base.Environments {
		e = cloneEnvironment(e)
		if h, ok := head.Environment(e.Name); ok {
			e.PlanOnPR = h.PlanOnPR
		}
		out.Environments = append(out.Environments, e)
	}
	return out
}

func cloneEnvironment(e Environment) Environment {
	e.Approvers = clone(e.Approvers)
	e.Appliers = clone(e.Appliers)
	e.ApplyOn = clone(e.ApplyOn)
	return e
}

func cloneJob(j Job) Job {
	j.Env = maps.Clone(j.Env)
	j.PassEnv = clone(j.PassEnv)
	j.Secrets = clone(j.Secrets)
	j.Setup = clone(j.Setup)
	return j
}

// clone copies a slice, keeping nil as nil and empty as empty (an empty apply_on means "never", not "default").
func clone[T any](s []T) []T {
	if s == nil {
		return nil
	}
	return append(make([]T, 0, len(s)), s...)
}

func mergeProjects(base, head []Project) []Project {
	out := make([]Project, 0, len(head))
	for _, p := range head {
		p.DBT = cloneDBT(p.DBT)
		if p.DBT != nil {
			if p.DBT.Image != nil && !hasDBTProject(base, p.Name) {
				// A project the default branch lacks pushes nowhere until merged: where the bot's registry
				// credentials push is never the PR's to say, reviewed or not (an environment applied by comment
				// may need no review).
				p.DBT.Image.Repository = ""
			}
			// Only the default branch names a PR schema: the bot builds PR code into it and drops it on close.
			p.DBT.PREnvironment = nil
			for _, b := range base {
				if b.Name != p.Name || b.DBT == nil {
					continue
				}
				trusted := cloneDBT(b.DBT)
				switch {
				case p.DBT.Image != nil && trusted.Image != nil:
					p.DBT.Image.Repository = trusted.Image.Repository
				case p.DBT.Image != nil:
					p.DBT.Image.Repository = "" // the base pushes nowhere: nor does the PR until merged
				}
				p.DBT.PREnvironment = trusted.PREnvironment
			}
		}
		out = append(out, p)
	}
	return out
}

func hasDBTProject(projects []Project, name string) bool {
	for _, p := range projects {
		if p.Name == name && p.DBT != nil {
			return true
		}
	}
	return false
}

func cloneDBT(d *DBTProject) *DBTProject {
	if d == nil {
		return nil
	}
	c := *d
	c.Commands = clone(d.Commands)
	c.Targets = maps.Clone(d.Targets)
	if d.Image != nil {
		img := *d.Image
		c.Image = &img
	}
	if d.PREnvironment != nil {
		pe := *d.PREnvironment
		c.PREnvironment = &pe
	}
	return &c
}
