// Package deploy holds the pure rules of whether something may be applied to an environment: what content a
// protected environment may receive. Callers gather the data from the forge and the store; nothing here does I/O.
package deploy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"sort"
	"strings"
)

// Files are a commit's files: path → content id (equal ids, equal content), as vcs.Tree has them.
type Files map[string]string

// InProject reports whether a repository path belongs to the project at projectPath ("." is the whole repository).
func InProject(projectPath, file string) bool {
	p := path.Clean(projectPath)
	return p == "." || file == p || strings.HasPrefix(file, p+"/")
}

// TouchesProject reports whether a PR's changed files (as the forge lists them) may include a file of the
// project. A truncated list says nothing about the files it leaves out, so it may.
func TouchesProject(projectPath string, changed []string, truncated bool) bool {
	if truncated {
		return true
	}
	for _, f := range changed {
		if InProject(projectPath, f) {
			return true
		}
	}
	return false
}

// ContentHash is a hash of the project's files (their paths and content ids), the same for the same content
// whatever commit holds it: a squash or rebase merge of reviewed content hashes like the reviewed commit.
func ContentHash(projectPath string, files Files) string {
	var names []string
	for f := range files {
		if InProject(projectPath, f) {
			names = append(names, f)
		}
	}
	sort.Strings(names)
	h := sha256.New()
	for _, f := range names {
		fmt.Fprintf(h, "%s\x00%s\n", f, files[f])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Content is what UnreviewedFiles compares: the project's files where the environment was last applied from,
// where the apply would now take them from, and the reviewed change (the approved plan's commit and the commit
// it forked from).
type Content struct {
	ProjectPath string
	LastApplied Files // the commit the environment was last applied from
	Target      Files // the commit about to be applied
	Planned     Files // the approved plan's commit
	ForkPoint   Files // where the approved plan's branch left its base (their merge base)
}

// UnreviewedFiles are the project's files whose content at Target differs from what the environment was last
// applied from and that the approved change does not account for. A file is accounted for when the PR changed
// it (Planned differs from ForkPoint) and Target holds exactly the planned content. Everything else that differs
// came from elsewhere — another PR merged without approval, a direct push, a merge resolution — and nobody
// approved it for this environment. Sorted.
func UnreviewedFiles(c Content) []string {
	var out []string
	seen := map[string]bool{}
	check := func(f string) {
		if seen[f] || !InProject(c.ProjectPath, f) {
			return
		}
		seen[f] = true
		now, was := c.Target[f], c.LastApplied[f]
		if now == was {
			return
		}
		planned, forked := c.Planned[f], c.ForkPoint[f]
		if planned != forked && now == planned {
			return // the reviewed change, as reviewed (a deletion is "" on both sides)
		}
		out = append(out, f)
	}
	for f := range c.Target {
		check(f)
	}
	for f := range c.LastApplied {
		check(f)
	}
	sort.Strings(out)
	return out
}
