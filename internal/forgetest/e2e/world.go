package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/dagctl/dagctl-bot/internal/forgetest"
	"github.com/dagctl/dagctl-bot/internal/forgetest/githubworld"
	"github.com/dagctl/dagctl-bot/internal/forgetest/gitlabworld"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// Kind is one fake forge the end-to-end scenarios run against.
type Kind struct {
	Name string
	New  func(t testing.TB, mainFiles map[string]string) forgetest.World
}

// GitHub is githubfake with the app installed on acme/warehouse.
var GitHub = Kind{Name: "github", New: func(t testing.TB, mainFiles map[string]string) forgetest.World {
	return githubworld.New(t, mainFiles)
}}

// GitLab is gitlabfake holding acme/warehouse, the bot a user with an api token and a clone token.
var GitLab = Kind{Name: "gitlab", New: func(t testing.TB, mainFiles map[string]string) forgetest.World {
	return gitlabworld.New(t, mainFiles)
}}

// AllForges are every fake forge.
var AllForges = []Kind{GitHub, GitLab}

// ForgesEnv names the forges the scenarios run against: a comma list of names; empty, all of them.
const ForgesEnv = "DAGCTL_E2E_FORGES"

// Forges are the fake forges the scenarios run against, as ForgesEnv chooses; each scenario runs once per forge.
// An unknown name panics: a typo must not pass by running nothing.
var Forges = mustSelectForges(os.Getenv(ForgesEnv))

func mustSelectForges(names string) []Kind {
	forges, err := SelectForges(names, AllForges)
	if err != nil {
		panic(err)
	}
	return forges
}

// SelectForges are the forges of a comma list of names, in the list's order (empty: all).
func SelectForges(names string, all []Kind) ([]Kind, error) {
	if strings.TrimSpace(names) == "" {
		return all, nil
	}
	var out []Kind
	seen := map[string]bool{}
	for _, name := range strings.Split(names, ",") {
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "" || seen[name] {
			continue
		}
		found := false
		for _, k := range all {
			if k.Name == name {
				out, found, seen[name] = append(out, k), true, true
			}
		}
		if !found {
			var known []string
			for _, k := range all {
				known = append(known, k.Name)
			}
			return nil, fmt.Errorf("%s=%q: no forge %q (known: %s)", ForgesEnv, names, name, strings.Join(known, ", "))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s=%q names no forge", ForgesEnv, names)
	}
	return out, nil
}

// World is a forge-neutral end-to-end world: a fake forge holding acme/warehouse with the example project on
// main, and the team's sqlmesh state.
type World struct {
	forgetest.World
	*Warehouse
	T    testing.TB
	Base string // the commit new PRs start from (main's, until the test moves it)
}

// NewWorld sets the world up on a forge; baseFiles are added to (or replace) the example's files on main.
// Users: alice and bob have write permission, carol is an admin, dave can only read.
func NewWorld(t testing.TB, kind Kind, baseFiles map[string]string) *World {
	t.Helper()
	wh := newWarehouse(t, baseFiles)
	w := &World{World: kind.New(t, wh.MainFiles()), Warehouse: wh, T: t}
	w.Base = w.Head(w.Repo().DefaultBranch)
	for user, p := range map[string]vcs.Permission{"alice": vcs.PermissionWrite, "bob": vcs.PermissionWrite,
		"carol": vcs.PermissionAdmin, "dave": vcs.PermissionRead} {
		w.SetPermission(user, p)
	}
	return w
}

// PR makes a PR from a new branch with the given changes on top of main, and returns its head SHA.
func (w *World) PR(number int, branch, author string, files map[string]string) string {
	w.T.Helper()
	head := w.Commit(branch, files, "change on "+branch)
	w.SetPR(forgetest.PR{Number: number, Title: "Change " + branch, Author: author, HeadRef: branch, HeadSHA: head,
		BaseRef: w.Repo().DefaultBranch, BaseSHA: w.Base})
	return head
}

// Push commits files on the PR's branch and moves the PR's head there, as a push does before its webhook
// arrives; it returns the new head.
func (w *World) Push(number int, files map[string]string, message string) string {
	w.T.Helper()
	pr := w.mustPR(number)
	pr.HeadSHA = w.Commit(pr.HeadRef, files, message)
	w.SetPR(pr)
	return pr.HeadSHA
}

// UpdatePR changes the PR as the forge holds it.
func (w *World) UpdatePR(number int, change func(*forgetest.PR)) {
	w.T.Helper()
	pr := w.mustPR(number)
	change(&pr)
	w.SetPR(pr)
}

// MergePR merges the PR's branch into main with a merge commit, marks the PR merged and returns the commit.
func (w *World) MergePR(number int) string {
	w.T.Helper()
	pr := w.mustPR(number)
	sha := w.Merge(w.Repo().DefaultBranch, pr.HeadRef, "Merge "+pr.HeadRef)
	pr.Closed, pr.Merged, pr.MergeCommitSHA = true, true, sha
	w.SetPR(pr)
	return sha
}

func (w *World) mustPR(number int) forgetest.PR {
	w.T.Helper()
	pr, ok := w.PullRequest(number)
	if !ok {
		w.T.Fatalf("no PR #%d", number)
	}
	return pr
}

// Sticky is the PR's sticky comment, all parts joined.
func (w *World) Sticky(number int) string { return forgetest.Sticky(w.World, number) }

// LastComment is the PR's newest comment.
func (w *World) LastComment(number int) string { return forgetest.LastComment(w.World, number) }

// Status is the newest status with that name on the commit.
func (w *World) Status(name, sha string) (forgetest.Status, bool) {
	return forgetest.StatusNamed(w.World, name, sha)
}

// StatusesNamed are the statuses with that name on the commit, oldest first.
func (w *World) StatusesNamed(name, sha string) []forgetest.Status {
	return forgetest.StatusesNamed(w.World, name, sha)
}

// GitHub is the world's GitHub, for the scenarios that are GitHub's alone; it fails the test on another forge.
func (w *World) GitHub() *githubworld.World {
	w.T.Helper()
	gh, ok := w.World.(*githubworld.World)
	if !ok {
		w.T.Fatalf("a GitHub-only scenario on %s", w.Name())
	}
	return gh
}
