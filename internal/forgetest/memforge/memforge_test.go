package memforge_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/forgetest/memforge"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

func newRepo(t *testing.T) (*memforge.Forge, vcs.Repo) {
	t.Helper()
	f := memforge.New()
	return f, f.AddRepo("acme", "warehouse", "main", "carol", map[string]string{"a.sql": "SELECT 1", "b.sql": "SELECT 2"})
}

func TestOnlyTheBotsOwnCommentsAreByBotAndItsToEdit(t *testing.T) {
	ctx := context.Background()
	f, repo := newRepo(t)
	f.Commit(repo, "x", "alice", map[string]string{"a.sql": "SELECT 10"})
	f.OpenPR(repo, 1, "x", "main", "alice")
	theirs := f.AddComment(repo, 1, "dave", "<!-- dagctl:sticky -->")
	ours, err := f.CreateComment(ctx, repo, 1, "the bot's")
	require.NoError(t, err)

	got, err := f.Comments(ctx, repo, 1)
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.False(t, got[0].ByBot)
	assert.True(t, got[1].ByBot)
	assert.ErrorIs(t, f.UpdateComment(ctx, repo, theirs.ID, "edited"), vcs.ErrPermission)
	assert.ErrorIs(t, f.DeleteComment(ctx, repo, theirs.ID), vcs.ErrPermission)
	require.NoError(t, f.UpdateComment(ctx, repo, ours, "edited"))
	history, _ := f.CommentHistory(repo, ours)
	assert.Equal(t, []string{"the bot's"}, history)
}

func TestReviewsAndStatusPostingAreOrderedByTheForgesClock(t *testing.T) {
	ctx := context.Background()
	f, repo := newRepo(t)
	head := f.Commit(repo, "x", "alice", map[string]string{"a.sql": "SELECT 10"})
	f.OpenPR(repo, 1, "x", "main", "alice")
	early := f.Review(repo, 1, "bob", vcs.ReviewApproved, head)
	st := vcs.Status{Name: "dagctl/plan: prod", CommitSHA: head, State: vcs.StatusRunning, Description: "Planning"}
	ref, err := f.PutStatus(ctx, repo, st, "")
	require.NoError(t, err)
	open, err := f.StatusPostedAt(ctx, repo, ref)
	require.NoError(t, err)
	assert.True(t, open.IsZero(), "not final yet")
	st.State, st.Description = vcs.StatusBlocked, "t"
	_, err = f.PutStatus(ctx, repo, st, ref)
	require.NoError(t, err)
	late := f.Review(repo, 1, "bob", vcs.ReviewApproved, head)

	done, err := f.StatusPostedAt(ctx, repo, ref)
	require.NoError(t, err)
	assert.True(t, early.SubmittedAt.Before(done))
	assert.True(t, late.SubmittedAt.After(done))
	got, ok := f.StatusNamed(repo, "dagctl/plan: prod", head)
	require.True(t, ok)
	assert.Equal(t, vcs.StatusBlocked, got.State)
	assert.Equal(t, "t", got.Description)
	assert.Equal(t, []vcs.StatusState{vcs.StatusRunning, vcs.StatusBlocked}, got.States())
}

func TestAStatusIsOnePerCommitAndNameWhateverTheRef(t *testing.T) {
	ctx := context.Background()
	f, repo := newRepo(t)
	head := f.Commit(repo, "x", "alice", map[string]string{"a.sql": "SELECT 10"})
	st := vcs.Status{Name: "dagctl/plan: prod", CommitSHA: head, State: vcs.StatusQueued}
	ref, err := f.PutStatus(ctx, repo, st, "")
	require.NoError(t, err)
	st.State = vcs.StatusSuccess
	again, err := f.PutStatus(ctx, repo, st, "")
	require.NoError(t, err)
	assert.Equal(t, ref, again, "upserted by commit and name, as a status-only forge does")
	assert.Len(t, f.Statuses(repo), 1)
	_, err = f.PutStatus(ctx, repo, vcs.Status{Name: "other", CommitSHA: head, State: vcs.StatusQueued}, ref)
	assert.ErrorContains(t, err, "is not the ref")
	_, err = f.PutStatus(ctx, repo, vcs.Status{Name: "x", CommitSHA: head, State: "waiting"}, "")
	assert.ErrorContains(t, err, "known state")
}

func TestChangedFilesAreCutAtTheCapAndCompareSeesABranchBehind(t *testing.T) {
	ctx := context.Background()
	f, repo := newRepo(t)
	files := map[string]string{"a.sql": memforge.Delete}
	for i := 0; i < 5; i++ {
		files[fmt.Sprintf("m%d.sql", i)] = "SELECT 1"
	}
	head := f.Commit(repo, "x", "alice", files)
	f.OpenPR(repo, 1, "x", "main", "alice")
	f.Commit(repo, "main", "carol", map[string]string{"c.sql": "SELECT 3"})

	list, err := f.ChangedFiles(ctx, repo, 1)
	require.NoError(t, err)
	assert.Equal(t, []string{"a.sql", "m0.sql", "m1.sql", "m2.sql", "m3.sql", "m4.sql"}, list.Paths)
	assert.False(t, list.Truncated)
	f.FileListCap = 3
	list, err = f.ChangedFiles(ctx, repo, 1)
	require.NoError(t, err)
	assert.Len(t, list.Paths, 3)
	assert.True(t, list.Truncated)

	cmp, err := f.Compare(ctx, repo, "main", head)
	require.NoError(t, err)
	assert.Equal(t, 1, cmp.Ahead)
	assert.Equal(t, 1, cmp.Behind, "main moved on")
	authors, err := f.CommitAuthors(ctx, repo, 1)
	require.NoError(t, err)
	assert.Equal(t, []string{"alice"}, authors)

	merge := f.Merge(repo, "main", "x", "alice")
	tree, err := f.Tree(ctx, repo, merge)
	require.NoError(t, err)
	assert.Contains(t, tree.Files, "c.sql", "the merge keeps main's change")
	assert.Contains(t, tree.Files, "m4.sql", "and brings the branch's")
	assert.NotContains(t, tree.Files, "a.sql", "deleted on the branch")
	_, err = f.ReadFile(ctx, repo, "main", "a.sql")
	assert.ErrorIs(t, err, vcs.ErrNotFound)
}
