// Package vcstest is the contract every vcs.Forge adapter must meet, as tests: Run drives an adapter against
// its forge's stateful fake and checks what the core's rules rely on. The gate's rules are forge-neutral only
// because adapters keep these: a status is written in place (branch protection sees one per name), a result's
// time is the forge's (approvals count only after it), only the bot's own comments are its to adopt, a file list
// the forge cut is said to be cut (a "no changes" waiver needs the whole list), and an adapter claims no review
// fact its forge does not give (an approval is bound to its plan by them).
package vcstest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// World is the forge side of the contract: the adapter under test, and what people and the forge itself do and
// show, done on the fake directly (never through the adapter).
type World interface {
	// Forge is the adapter, configured as the server configures it; Repo the repository it serves.
	Forge() vcs.Forge
	Repo() vcs.Repo
	// OpenPR opens a pull request whose one commit writes files (path → content) on top of the default branch,
	// and returns its number and head commit.
	OpenPR(files map[string]string) (number int, head string)
	// Shown is what the forge shows of the statuses with this name on a commit, oldest first, in the core's
	// words (the fake's states mapped back by the test, not by the adapter).
	Shown(commit, name string) []Shown
	// Now is the forge's clock; Advance moves it.
	Now() time.Time
	Advance(d time.Duration)
	// CommentAs comments on a pull request as a person with this login; CommentAsOtherBot as another app or
	// bot account of the forge.
	CommentAs(number int, login, body string)
	CommentAsOtherBot(number int, body string)
	// BotLookalike is a login a person can hold that looks most like the bot's own account.
	BotLookalike() string
	// Approve records user's approval of the pull request's head on the forge and returns the forge's time of it.
	Approve(number int, user string) time.Time
	// MaxChangedFiles is how many files the forge lists for a pull request at most.
	MaxChangedFiles() int
}

// Shown is one status as the forge shows it.
type Shown struct {
	State vcs.StatusState
	// Description is the one line the forge shows (GitHub: the check run's title).
	Description string
}

// Run runs the contract; setup builds a fresh world for each part.
func Run(t *testing.T, setup func(t *testing.T) World) {
	t.Run("a status written again with its ref is one status with the newest state", func(t *testing.T) {
		statusesAreWrittenInPlace(t, setup(t))
	})
	t.Run("a status is posted when it reaches a final state, on the forge's clock", func(t *testing.T) {
		statusPostedAtIsTheForgesTime(t, setup(t))
	})
	t.Run("only the bot's own comments are ByBot", func(t *testing.T) {
		onlyTheBotsCommentsAreByBot(t, setup(t))
	})
	t.Run("a file list past the forge's cap is Truncated", func(t *testing.T) {
		cutFileListsAreTruncated(t, setup(t))
	})
	t.Run("ReviewFacts are what the reviews carry", func(t *testing.T) {
		reviewFactsAreTrue(t, setup(t))
	})
}

var finalStates = []vcs.StatusState{vcs.StatusSuccess, vcs.StatusFailure, vcs.StatusNeutral, vcs.StatusBlocked,
	vcs.StatusCancelled, vcs.StatusSkipped}

func statusesAreWrittenInPlace(t *testing.T, w World) {
	ctx := context.Background()
	_, head := w.OpenPR(map[string]string{"models/a.sql": "select 1\n"})
	for _, final := range finalStates {
		name := "dagctl/contract: " + string(final)
		st := vcs.Status{Name: name, CommitSHA: head, State: vcs.StatusQueued, Description: "Queued",
			ExternalID: "plan:1", DetailsURL: "https://bot.test/runs/1/sig"}
		ref, err := w.Forge().PutStatus(ctx, w.Repo(), st, "")
		require.NoError(t, err)
		st.State, st.Description = vcs.StatusRunning, "Planning"
		again, err := w.Forge().PutStatus(ctx, w.Repo(), st, ref)
		require.NoError(t, err)
		st.State, st.Description = final, "Ended "+string(final)
		_, err = w.Forge().PutStatus(ctx, w.Repo(), st, again)
		require.NoError(t, err)
		assert.Equal(t, []Shown{{State: final, Description: "Ended " + string(final)}}, w.Shown(head, name))
	}
}

func statusPostedAtIsTheForgesTime(t *testing.T, w World) {
	ctx := context.Background()
	_, head := w.OpenPR(map[string]string{"models/a.sql": "select 1\n"})
	for _, final := range []vcs.StatusState{vcs.StatusSuccess, vcs.StatusFailure} {
		st := vcs.Status{Name: "dagctl/contract: posted " + string(final), CommitSHA: head, State: vcs.StatusQueued,
			Description: "Queued"}
		ref, err := w.Forge().PutStatus(ctx, w.Repo(), st, "")
		require.NoError(t, err)
		posted, err := w.Forge().StatusPostedAt(ctx, w.Repo(), ref)
		require.NoError(t, err)
		assert.True(t, posted.IsZero(), "queued is not posted")
		st.State = vcs.StatusRunning
		ref, err = w.Forge().PutStatus(ctx, w.Repo(), st, ref)
		require.NoError(t, err)
		posted, err = w.Forge().StatusPostedAt(ctx, w.Repo(), ref)
		require.NoError(t, err)
		assert.True(t, posted.IsZero(), "running is not posted")

		// The forge's clock, not the bot's: an hour away from anything the machine's clock could say.
		w.Advance(time.Hour)
		st.State = final
		ref, err = w.Forge().PutStatus(ctx, w.Repo(), st, ref)
		require.NoError(t, err)
		posted, err = w.Forge().StatusPostedAt(ctx, w.Repo(), ref)
		require.NoError(t, err)
		assert.True(t, posted.Equal(w.Now()), "posted at %s, the forge's clock says %s", posted, w.Now())
	}
}

func onlyTheBotsCommentsAreByBot(t *testing.T, w World) {
	ctx := context.Background()
	number, _ := w.OpenPR(map[string]string{"models/a.sql": "select 1\n"})
	const marked = "<!-- dagctl-bot:sticky -->\n"
	w.CommentAs(number, "alice", "/dagctl plan")
	w.CommentAs(number, w.BotLookalike(), marked+"a person's")
	w.CommentAsOtherBot(number, marked+"another app's")
	ours, err := w.Forge().CreateComment(ctx, w.Repo(), number, marked+"ours")
	require.NoError(t, err)

	listed, err := w.Forge().Comments(ctx, w.Repo(), number)
	require.NoError(t, err)
	require.Len(t, listed, 4)
	var byBot []int64
	for _, c := range listed {
		if c.ByBot {
			byBot = append(byBot, c.ID)
		}
	}
	assert.Equal(t, []int64{ours}, byBot)
}

func cutFileListsAreTruncated(t *testing.T, w World) {
	ctx := context.Background()
	small, _ := w.OpenPR(map[string]string{"models/a.sql": "select 1\n", "models/b.sql": "select 2\n"})
	got, err := w.Forge().ChangedFiles(ctx, w.Repo(), small)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"models/a.sql", "models/b.sql"}, got.Paths)
	assert.False(t, got.Truncated)

	files := map[string]string{}
	for i := range w.MaxChangedFiles() + 1 {
		files[fmt.Sprintf("docs/%05d.md", i)] = "x\n"
	}
	large, _ := w.OpenPR(files)
	got, err = w.Forge().ChangedFiles(ctx, w.Repo(), large)
	require.NoError(t, err)
	assert.True(t, got.Truncated, "%d files listed of %d", len(got.Paths), len(files))
	assert.LessOrEqual(t, len(got.Paths), w.MaxChangedFiles())
}

func reviewFactsAreTrue(t *testing.T, w World) {
	ctx := context.Background()
	number, head := w.OpenPR(map[string]string{"models/a.sql": "select 1\n"})
	w.Advance(time.Hour)
	at := w.Approve(number, "bob")
	reviews, err := w.Forge().Reviews(ctx, w.Repo(), number)
	require.NoError(t, err)
	require.Len(t, reviews, 1)
	r, facts := reviews[0], w.Forge().ReviewFacts()
	assert.Equal(t, vcs.ReviewApproved, r.State)
	assert.Equal(t, "bob", r.User)
	if facts.Commit {
		assert.Equal(t, head, r.CommitSHA, "the forge says which commit was approved")
	} else {
		assert.Empty(t, r.CommitSHA, "an adapter without the fact invents no commit")
	}
	if facts.SubmittedAt {
		assert.True(t, r.SubmittedAt.Equal(at), "submitted at %s, the forge recorded %s", r.SubmittedAt, at)
	} else {
		assert.True(t, r.SubmittedAt.IsZero(), "an adapter without the fact invents no time")
	}
}
