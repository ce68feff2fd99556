package handlertest_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/testutil"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// An apply waiting in line for its environment's lock stops as soon as its run is cancelled, and its check
// says why: who cancelled it. (The lock is held by PR 2's plan, taken in the store as an apply of it would.)
func TestAnApplyWaitingForTheLockIsCancelledWithItsCause(t *testing.T) {
	w := newWorld(t)
	other := w.openPR(2, "other", "carol", testutil.NonBreakingChange)
	plans, err := w.store.ListPlansByPR(context.Background(), w.repo.Forge, w.repo.FullName(), other.Number)
	require.NoError(t, err)
	_, ok, err := w.store.TryLock(context.Background(), w.repo.Forge, w.repo.FullName(), "dev", db.LockOwner{PlanID: plans[0].ID, PR: 2, User: "carol"})
	require.NoError(t, err)
	require.True(t, ok)
	pr := w.openPR(1, "more-columns", "alice", testutil.NonBreakingChange)

	// Handled without waiting for the bot's background work: the apply waits for the lock until cancelled.
	c := w.forge.AddComment(w.repo, pr.Number, "bob", "/dagctl apply dev")
	require.NoError(t, w.bot.Handle(context.Background(), vcs.Event{Repo: w.repo, Comment: &vcs.CommentEvent{Number: pr.Number, Comment: c}}))
	require.Eventually(t, func() bool {
		w.drainWrites()
		st, _ := w.forge.StatusNamed(w.repo, "dagctl/apply: dev", pr.HeadSHA)
		return st.Description == "Waiting for the lock"
	}, time.Minute, 10*time.Millisecond)

	w.comment(pr, "bob", "/dagctl cancel")

	st, _ := w.forge.StatusNamed(w.repo, "dagctl/apply: dev", pr.HeadSHA)
	assert.Equal(t, vcs.StatusCancelled, st.State)
	assert.Equal(t, "Cancelled while waiting for the lock: cancelled by bob", st.Description)
	_, ok, err = w.store.Holder(context.Background(), w.repo.Forge, w.repo.FullName(), "dev")
	require.NoError(t, err)
	assert.True(t, ok, "PR 2 still holds the lock")
}
