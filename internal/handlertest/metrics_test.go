package handlertest_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/bot"
	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/metrics"
	"github.com/dagctl/dagctl-bot/internal/metrics/metricstest"
	"github.com/dagctl/dagctl-bot/internal/testutil"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// The apply sequence tells the metrics each wait for the environment's lock: one given up (cancelled while PR 2
// held the lock), then one that took it and applied.
func TestMetricsObserveEachApplysWaitForTheLock(t *testing.T) {
	w := newWorld(t)
	m := metrics.New()
	w.opts.LockWaits = m
	w.bot = bot.New(w.opts)
	t.Cleanup(w.bot.Wait)
	scrape := func() metricstest.Families {
		srv := httptest.NewServer(m.Handler())
		defer srv.Close()
		f, err := metricstest.Scrape(srv.Client(), srv.URL, "")
		require.NoError(t, err)
		return f
	}
	ctx := context.Background()

	other := w.openPR(2, "other", "carol", testutil.NonBreakingChange)
	plans, err := w.store.ListPlansByPR(ctx, w.repo.Forge, w.repo.FullName(), other.Number)
	require.NoError(t, err)
	holder := db.LockOwner{PlanID: plans[0].ID, PR: 2, User: "carol"}
	_, ok, err := w.store.TryLock(ctx, w.repo.Forge, w.repo.FullName(), "dev", holder)
	require.NoError(t, err)
	require.True(t, ok)
	pr := w.openPR(1, "more-columns", "alice", testutil.NonBreakingChange)
	c := w.forge.AddComment(w.repo, pr.Number, "bob", "/dagctl apply dev")
	require.NoError(t, w.bot.Handle(ctx, vcs.Event{Repo: w.repo, Comment: &vcs.CommentEvent{Number: pr.Number, Comment: c}}))
	require.Eventually(t, func() bool {
		w.drainWrites()
		st, _ := w.forge.StatusNamed(w.repo, "dagctl/apply: dev", pr.HeadSHA)
		return st.Description == "Waiting for the lock"
	}, time.Minute, 10*time.Millisecond)
	assert.Zero(t, scrape().Get("dagctl_lock_wait_seconds", "outcome", "gave_up"), "still waiting: nothing observed yet")
	w.comment(pr, "bob", "/dagctl cancel")
	f := scrape()
	assert.Equal(t, 1.0, f.Get("dagctl_lock_wait_seconds", "outcome", "gave_up"))
	assert.Zero(t, f.Get("dagctl_lock_wait_seconds", "outcome", "acquired"))

	require.NoError(t, w.store.Unlock(ctx, w.repo.Forge, w.repo.FullName(), "dev", holder))
	w.comment(pr, "bob", "/dagctl apply dev")
	st, ok := w.forge.StatusNamed(w.repo, "dagctl/apply: dev", pr.HeadSHA)
	require.True(t, ok)
	require.Equal(t, vcs.StatusSuccess, st.State, "%s", describe(st.Status))
	f = scrape()
	assert.Equal(t, 1.0, f.Get("dagctl_lock_wait_seconds", "outcome", "acquired"))
	assert.Equal(t, 1.0, f.Get("dagctl_lock_wait_seconds", "outcome", "gave_up"))
}

// A PR closed or merged without its approval leaves no plan awaiting one (the store remembers the PR's end, as
// its plans stay ready); reopened, its plan waits again.
func TestAnEndedPRsPlanAwaitsNoApproval(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	awaiting := func() int {
		g, err := w.store.Gauges(ctx)
		require.NoError(t, err)
		return g.AwaitingApproval[w.repo.Forge]
	}
	pr := w.openPR(1, "more-columns", "alice", testutil.NonBreakingChange)
	require.Equal(t, 1, awaiting(), "prod's plan needs an approval")

	closed := w.forge.UpdatePR(w.repo, pr.Number, func(p *vcs.PullRequest) { p.State = "closed" })
	w.handle(vcs.Event{PullRequest: &vcs.PullRequestEvent{Action: vcs.PRClosed, PR: closed, Sender: "alice"}})
	assert.Zero(t, awaiting(), "closed: nothing will approve it")

	reopened := w.forge.UpdatePR(w.repo, pr.Number, func(p *vcs.PullRequest) { p.State = "open" })
	w.handle(vcs.Event{PullRequest: &vcs.PullRequestEvent{Action: vcs.PRReopened, PR: reopened, Sender: "alice"}})
	assert.Equal(t, 1, awaiting(), "reopened: it waits again")

	w.mergePR(reopened, "alice")
	w.bot.Wait()
	w.drainWrites()
	assert.Zero(t, awaiting(), "merged without the approval (prod was not applied): nothing waits")
}
