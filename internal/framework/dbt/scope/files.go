package scope

import (
	"path"
	"strings"

	"github.com/dagctl/dagctl-bot/internal/plan"
)

// Change kinds of a file between the base commit and the head.
const (
	Added    = "added"
	Modified = "modified"
	Removed  = "removed"
)

// root-level files of a dbt project (core/dbt/constants.py).
var rootFiles = map[string]plan.FileType{
	ProjectFile:         plan.FileProject,
	"vars.yml":          plan.FileProject,
	"selectors.yml":     plan.FileProject,
	"catalogs.yml":      plan.FileProject,
	"profiles.yml":      plan.FileProject, // targets and connections: dbt's state comparison cannot see them
	"packages.yml":      plan.FilePackages,
	"dependencies.yml":  plan.FilePackages,
	"package-lock.yml":  plan.FilePackages,
	"user_settings.yml": plan.FileOther,
}

// isInfra is what goes into the image but not into dbt: the Dockerfile, the Python requirements.
func isInfra(rel, dockerfile string) bool {
	base := path.Base(rel)
	switch {
	case dockerfile != "" && rel == dockerfile,
		base == "Dockerfile", strings.HasPrefix(base, "Dockerfile."), strings.HasSuffix(base, ".Dockerfile"),
		base == ".dockerignore", base == "pyproject.toml", base == "uv.lock", base == "poetry.lock",
		strings.HasPrefix(base, "requirements") && strings.HasSuffix(base, ".txt"):
		return true
	}
	return false
}

// Categorize says what a file of the project is to dbt. rel is relative to the project's directory;
// profilesDir and dockerfile are the project's config ("" for the defaults). ok is false for files dbt
// generates (target/, dbt_packages/, logs/), which are never part of a change.
func Categorize(rel string, l Layout, profilesDir, dockerfile string) (t plan.FileType, ok bool) {
	rel = cleanRel(rel)
	for _, generated := range []string{l.Target, l.Packages, "logs"} {
		if generated != "" && under(rel, generated) {
			return "", false
		}
	}
	if t, ok := rootFiles[rel]; ok {
		return t, true
	}
	if profilesDir != "" && rel == path.Join(profilesDir, "profiles.yml") {
		return plan.FileProject, true
	}
	if isInfra(rel, dockerfile) {
		return plan.FileInfra, true
	}
	if l.Jinja != "" {
		return plan.FileProject, true // only dbt can tell where things are
	}
	kind, dir := resourceOf(rel, l)
	ext := strings.ToLower(path.Ext(rel))
	switch {
	case kind == "":
		return plan.FileOther, true
	case ext == ".yml" || ext == ".yaml":
		return plan.FileProperties, true // models, sources, tests, exposures...: only the manifest knows which
	case ext == ".md":
		return plan.FileDocs, true // docs blocks: any node's description may use them
	}
	switch kind {
	case "models":
		if ext == ".sql" || ext == ".py" {
			return plan.FileModel, true
		}
	case "seeds":
		if ext == ".csv" {
			return plan.FileSeed, true
		}
	case "snapshots":
		if ext == ".sql" {
			return plan.FileSnapshot, true
		}
	case "tests":
		if ext == ".sql" {
			// Generic tests are macros in all but name: every test that uses one changes.
			if under(rel, path.Join(dir, "generic")) {
				return plan.FileMacro, true
			}
			return plan.FileTest, true
		}
	case "analyses":
		if ext == ".sql" {
			return plan.FileAnalysis, true
		}
	case "macros":
		if ext == ".sql" {
			return plan.FileMacro, true
		}
	}
	return plan.FileOther, true
}

// resourceOf finds the resource path a file is under, the longest first.
func resourceOf(rel string, l Layout) (kind, dir string) {
	for _, r := range []struct {
		kind  string
		paths []string
	}{
		{"models", l.Models}, {"seeds", l.Seeds}, {"tests", l.Tests}, {"analyses", l.Analyses},
		{"macros", l.Macros}, {"snapshots", l.Snapshots}, {"docs", l.Docs},
	} {
		for _, p := range r.paths {
			if under(rel, p) && (kind == "" || len(p) > len(dir)) {
				kind, dir = r.kind, p
			}
		}
	}
	return kind, dir
}

// under reports whether rel is dir or inside it ("" and "." are the project's root).
func under(rel, dir string) bool {
	if dir == "" || dir == "." {
		return true
	}
	return rel == dir || strings.HasPrefix(rel, dir+"/")
}

// FileRule is what the changed files say: the scope, and why dbt's state comparison cannot be trusted with
// this change ("" when it can).
type FileRule struct {
	Scope  plan.Scope
	Unseen string
}

// FileScope is dagctl's rule over the changed files: a first deploy, or a change to macros, properties,
// docs, project config or packages, builds all; a change to models (or seeds, snapshots, tests, analyses)
// alone builds them and their downstream; a change to infra alone rebuilds the image; nothing, none.
func FileScope(files []plan.FileChange, firstDeploy bool) plan.Scope {
	if firstDeploy {
		return plan.ScopeAll
	}
	scope := plan.ScopeNone
	for _, f := range files {
		switch f.Type {
		case plan.FileMacro, plan.FileProperties, plan.FileDocs, plan.FileProject, plan.FilePackages:
			return plan.ScopeAll
		case plan.FileModel, plan.FileSeed, plan.FileSnapshot, plan.FileTest, plan.FileAnalysis:
			scope = plan.ScopeSelective
		case plan.FileInfra:
			if scope == plan.ScopeNone {
				scope = plan.ScopeBuildOnly
			}
		}
	}
	return scope
}
