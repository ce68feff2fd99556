package scope

import (
	"path"
	"reflect"
	"sort"
	"strings"

	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
)

// Commit is what the rules need of one side of the comparison, as plain data.
type Commit struct {
	// Files maps every repository path of the commit to a content id (a blob hash): what changed is what
	// differs between the two commits.
	Files map[string]string
	// Config is the commit's .dagctl/config.yaml, parsed; nil when it has none (or one that does not parse).
	Config *repoconfig.Config
	// ProjectYML is the project's dbt_project.yml at the commit; nil when there is none.
	ProjectYML []byte
}

// Input is one dbt project's plan in one environment, before the rules.
type Input struct {
	Project     repoconfig.Project // the governing project (repoconfig.Merge), with its DBT settings
	Environment string
	Head        Commit
	// Base is the commit last deployed to the environment, or the merge base; nil when there is none.
	Base *Commit
	// HasProdManifest: the environment has a manifest from its last successful deploy to compare with.
	HasProdManifest bool
	// StateDir is where the apply finds the production artifacts (the --state of a selective deploy).
	StateDir string
}

// Fill completes a dbt plan's view with the rules' part: the version and whether this is a deploy, the
// changed files by type, the scope they decide, the scope that decides (d.ManifestScope, filled by the
// planner, is read) and the commands. A PR that does not change the version is informational: Deploy
// false, scope none, no commands; FileScope still says what a deploy would build. The error names the
// dbt_project.yml that cannot be read, at its line.
func Fill(d *plan.DBT, in Input) error {
	settings := repoconfig.DBTProject{}
	if in.Project.DBT != nil {
		settings = *in.Project.DBT
	}
	dir := in.Project.Path
	if dir == "" {
		dir = "."
	}
	projectFile := path.Join(dir, ProjectFile)
	head, err := ReadLayout(projectFile, in.Head.ProjectYML)
	if err != nil {
		return err
	}
	base := head
	var baseCommit Commit
	if in.Base != nil {
		baseCommit = *in.Base
		if base, err = ReadLayout(projectFile+" (base commit)", in.Base.ProjectYML); err != nil {
			return err
		}
	}

	d.Version = settings.Version
	d.PreviousVersion = previousVersion(in.Project.Name, in.Base)
	d.Deploy = d.Version != "" && d.Version != d.PreviousVersion
	firstDeploy := d.Deploy && d.PreviousVersion == ""

	d.Files = changedFiles(dir, in.Head.Files, baseCommit.Files, head, base, settings)
	if configChanged(in.Project.Name, in.Head, baseCommit) {
		d.Files = append(d.Files, plan.FileChange{Path: repoconfig.Path, Type: plan.FileInfra, Change: Modified})
		sortFiles(d.Files)
	}
	rule := FileRule{Scope: FileScope(d.Files, firstDeploy), Unseen: unseen(d.Files, in.Head.ProjectYML, baseCommit.ProjectYML)}
	d.FileScope = rule.Scope

	decision := Decide(rule, d.ManifestScope, settings.Decide, in.HasProdManifest)
	d.DecidedBy = decision.DecidedBy
	d.ScopeReason = decision.Reason
	if !d.Deploy {
		d.Scope, d.Commands = plan.ScopeNone, nil
		return nil
	}
	if firstDeploy && decision.DecidedBy == ByFiles {
		d.ScopeReason = "first deploy: everything is built"
	}
	d.Scope = decision.Scope
	d.Commands = Commands(d.Scope, settings, in.Environment, in.StateDir)
	return nil
}

func previousVersion(project string, base *Commit) string {
	if base == nil || base.Config == nil {
		return ""
	}
	for _, p := range base.Config.Projects {
		if p.Name == project && p.DBT != nil {
			return p.DBT.Version
		}
	}
	return ""
}

// changedFiles lists the project's files that differ between the commits, each categorised by the layout of
// the commit that has it (a removed file by the base's).
func changedFiles(dir string, head, base map[string]string, headLayout, baseLayout Layout, s repoconfig.DBTProject) []plan.FileChange {
	dockerfile := ""
	if s.Image != nil {
		dockerfile = s.Image.Dockerfile
	}
	rel := func(p string) (string, bool) {
		if dir == "." {
			return p, true
		}
		r, ok := strings.CutPrefix(p, dir+"/")
		return r, ok
	}
	var out []plan.FileChange
	add := func(p, change string, l Layout) {
		r, ok := rel(p)
		if !ok {
			return
		}
		if t, ok := Categorize(r, l, s.ProfilesDir, dockerfile); ok {
			out = append(out, plan.FileChange{Path: p, Type: t, Change: change})
		}
	}
	for p, id := range head {
		if p == repoconfig.Path {
			continue // compared as config below: its version line is no infra change
		}
		switch was, ok := base[p]; {
		case !ok:
			add(p, Added, headLayout)
		case was != id:
			add(p, Modified, headLayout)
		}
	}
	for p := range base {
		if _, ok := head[p]; !ok && p != repoconfig.Path {
			add(p, Removed, baseLayout)
		}
	}
	sortFiles(out)
	return out
}

func sortFiles(files []plan.FileChange) {
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
}

// configChanged reports whether .dagctl/config.yaml changed for this project apart from its version: its own
// entry, or what every job of it runs with (the job section, the environments).
func configChanged(project string, head, base Commit) bool {
	if head.Files[repoconfig.Path] == base.Files[repoconfig.Path] {
		return false
	}
	if head.Config == nil || base.Config == nil {
		return true
	}
	return !reflect.DeepEqual(configOf(project, *head.Config), configOf(project, *base.Config))
}

type projectConfig struct {
	Project      repoconfig.Project
	Found        bool
	Job          repoconfig.Job
	Environments []repoconfig.Environment
}

func configOf(project string, c repoconfig.Config) projectConfig {
	out := projectConfig{Job: c.Job, Environments: c.Environments}
	for _, p := range c.Projects {
		if p.Name == project {
			out.Project, out.Found = p, true
			if p.DBT != nil {
				withoutVersion := *p.DBT
				withoutVersion.Version = ""
				out.Project.DBT = &withoutVersion
			}
		}
	}
	return out
}

// unseen says which change dbt's state comparison cannot see, or "".
func unseen(files []plan.FileChange, headYML, baseYML []byte) string {
	for _, f := range files {
		switch path.Base(f.Path) {
		case "vars.yml":
			return "`vars.yml` changed"
		case "profiles.yml":
			return "`profiles.yml` changed"
		}
	}
	if vars(headYML) != vars(baseYML) {
		return "the vars in `dbt_project.yml` changed"
	}
	return ""
}
