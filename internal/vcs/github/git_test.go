package github_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/vcs"
	"github.com/dagctl/dagctl-bot/internal/vcs/github"
)

func TestCompareSaysWhetherHeadContainsBase(t *testing.T) {
	e := newEnv(t)
	pr := e.openPR()

	c, err := e.inst.Compare(e.ctx, e.repo, "main", pr.HeadSHA)
	require.NoError(t, err)
	assert.Equal(t, vcs.Comparison{MergeBase: pr.BaseSHA, Ahead: 1, Behind: 0}, c)

	// main moves on: the PR's head is behind it.
	e.git.Commit("main", map[string]string{"models/other.sql": "select 3\n"}, "other change")
	c, err = e.inst.Compare(e.ctx, e.repo, "main", pr.HeadSHA)
	require.NoError(t, err)
	assert.Equal(t, vcs.Comparison{MergeBase: pr.BaseSHA, Ahead: 1, Behind: 1}, c)

	_, err = e.inst.Compare(e.ctx, e.repo, "main", "0000000000000000000000000000000000000000")
	assert.ErrorIs(t, err, vcs.ErrNotFound)
}

func TestChangedFilesAreListedAndTruncationIsSaid(t *testing.T) {
	e := newEnv(t)
	files := map[string]string{}
	for _, name := range []string{"a.sql", "b.sql", "c.sql", "d.sql", "e.sql"} {
		files["models/"+name] = "select 1\n"
	}
	e.git.Commit("feature", files, "five models")
	e.openPR() // one more commit on feature, changing orders.sql

	got, err := e.inst.ChangedFiles(e.ctx, e.repo, 1)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"models/a.sql", "models/b.sql", "models/c.sql", "models/d.sql", "models/e.sql", "models/orders.sql"}, got.Paths)
	assert.False(t, got.Truncated)

	// Past GitHub's 3,000 files the list stops: the adapter says it may be incomplete.
	for i := range github.MaxPRFiles {
		path := filepath.Join(e.git.Dir, "docs", fmt.Sprintf("%04d.md", i))
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte("x\n"), 0o644))
	}
	e.git.Git("add", "docs")
	e.git.Git("commit", "--quiet", "-m", "many files")
	pr := e.openPR()
	pr.HeadSHA = e.git.SHA("feature")
	e.fr.SetPR(pr)
	got, err = e.inst.ChangedFiles(e.ctx, e.repo, 1)
	require.NoError(t, err)
	assert.Len(t, got.Paths, github.MaxPRFiles)
	assert.True(t, got.Truncated)
}

func TestTreeListsBlobsWithTheirIDs(t *testing.T) {
	e := newEnv(t)
	main := e.git.SHA("main")
	tree, err := e.inst.Tree(e.ctx, e.repo, main)
	require.NoError(t, err)
	assert.False(t, tree.Truncated)
	assert.Len(t, tree.Files, 2)
	assert.Contains(t, tree.Files, "models/orders.sql")
	assert.NotContains(t, tree.Files, "models", "directories are not files")

	pr := e.openPR()
	next, err := e.inst.Tree(e.ctx, e.repo, pr.HeadSHA)
	require.NoError(t, err)
	assert.Equal(t, tree.Files[".dagctl/config.yaml"], next.Files[".dagctl/config.yaml"], "same content, same id")
	assert.NotEqual(t, tree.Files["models/orders.sql"], next.Files["models/orders.sql"])
}

func TestCheckCompletedAtIsTheForgesClock(t *testing.T) {
	e := newEnv(t)
	pr := e.openPR()
	id, err := e.inst.CreateCheck(e.ctx, e.repo, github.Check{Name: "dagctl/plan: prod", HeadSHA: pr.HeadSHA, Status: github.CheckInProgress})
	require.NoError(t, err)
	at, err := e.inst.CheckCompletedAt(e.ctx, e.repo, id)
	require.NoError(t, err)
	assert.True(t, at.IsZero(), "not completed yet")

	e.fake.Advance(time.Hour)
	require.NoError(t, e.inst.UpdateCheck(e.ctx, e.repo, github.Check{ID: id, Name: "dagctl/plan: prod", Status: github.CheckCompleted, Conclusion: github.ConclusionSuccess}))
	at, err = e.inst.CheckCompletedAt(e.ctx, e.repo, id)
	require.NoError(t, err)
	assert.Equal(t, e.fake.Now(), at.UTC())
}

func TestBranchHead(t *testing.T) {
	e := newEnv(t)
	sha, err := e.inst.BranchHead(e.ctx, e.repo, "main")
	require.NoError(t, err)
	assert.Equal(t, e.git.SHA("main"), sha)
	_, err = e.inst.BranchHead(e.ctx, e.repo, "nope")
	assert.ErrorIs(t, err, vcs.ErrNotFound)
}
