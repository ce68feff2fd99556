package handlertest_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/bot"
	"github.com/dagctl/dagctl-bot/internal/bot/prstate"
	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/testutil"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// An apply a restart ends as interrupted is told on the PR, as every other end of an apply is: the person who
// asked for it reads the PR, not the check (the chaos run's author waited for an answer that never came). A
// second start says nothing more. (The apply waits for a lock PR 2's plan holds, so it is unfinished when the
// bot stops.)
func TestAnApplyEndedAsInterruptedByARestartIsToldOnThePROnce(t *testing.T) {
	w := newWorld(t)
	other := w.openPR(2, "other", "carol", testutil.NonBreakingChange)
	plans, err := w.store.ListPlansByPR(context.Background(), w.repo.Forge, w.repo.FullName(), other.Number)
	require.NoError(t, err)
	_, ok, err := w.store.TryLock(context.Background(), w.repo.Forge, w.repo.FullName(), "dev", db.LockOwner{PlanID: plans[0].ID, PR: 2, User: "carol"})
	require.NoError(t, err)
	require.True(t, ok)
	pr := w.openPR(1, "more-columns", "alice", testutil.NonBreakingChange)
	c := w.forge.AddComment(w.repo, pr.Number, "bob", "/dagctl apply dev")
	require.NoError(t, w.bot.Handle(context.Background(), vcs.Event{Repo: w.repo, Comment: &vcs.CommentEvent{Number: pr.Number, Comment: c}}))
	require.Eventually(t, func() bool {
		w.drainWrites()
		st, _ := w.forge.StatusNamed(w.repo, "dagctl/apply: dev", pr.HeadSHA)
		return st.Description == "Waiting for the lock"
	}, time.Minute, 10*time.Millisecond)

	stopping, stop := context.WithCancel(context.Background())
	stop()
	_ = w.bot.Shutdown(stopping)
	w.bot.Wait()
	for range 2 { // two starts
		w.bot = bot.New(w.opts)
		t.Cleanup(w.bot.Wait)
		require.NoError(t, w.bot.Recover(context.Background()))
		w.bot.Wait()
		w.drainWrites()
	}

	assert.Equal(t, vcs.StatusFailure, w.state("dagctl/apply: dev", pr.HeadSHA))
	var told int
	for _, r := range w.replies(pr.Number) {
		if strings.HasPrefix(r, "❌ `dev`") && strings.Contains(r, "Interrupted") {
			told++
		}
	}
	assert.Equal(t, 1, told, "the PR is told once; replies: %q", w.replies(pr.Number))
}

// A bot killed between storing a plan and storing its run left a queued plan with no run: nothing re-ran it,
// and the head's later event found the plan and planned nothing, so the head never got that check (the chaos
// run: "no dagctl/plan: prod on its head"). The next start runs it.
func TestAPlanStoredWithoutItsRunByAKilledBotIsRunAtTheNextStart(t *testing.T) {
	w, pushed, _ := newWorldWithPushedProdPlan(t)
	ctx := context.Background()

	w.bot = bot.New(w.opts)
	t.Cleanup(w.bot.Wait)
	require.NoError(t, w.bot.Recover(ctx))
	w.bot.Wait()
	w.drainWrites()

	assert.Equal(t, vcs.StatusSuccess, w.state("dagctl/plan: prod", pushed.HeadSHA), "the plan ran")
}

// A bot killed after it recorded a plan job's end and before it stored the plan's outcome leaves the plan
// running with no unfinished run: nothing re-attaches to it or runs it again, so the next start plans it again.
func TestAPlanWhoseRunEndedBeforeItsOutcomeWasStoredIsPlannedAgainAtTheNextStart(t *testing.T) {
	w, pushed, p := newWorldWithPushedProdPlan(t)
	ctx := context.Background()
	// ... then its run, the run's end recorded, the plan's outcome not.
	run, _, err := w.store.CreateRun(ctx, p.ID, jobs.KindPlan, "replay")
	require.NoError(t, err)
	_, err = w.store.SetPlanStatus(ctx, p.ID, plan.StatusRunning)
	require.NoError(t, err)
	_, err = w.store.FinishRun(ctx, run.ID, db.RunResult{Status: db.RunSucceeded})
	require.NoError(t, err)

	w.bot = bot.New(w.opts)
	t.Cleanup(w.bot.Wait)
	require.NoError(t, w.bot.Recover(ctx))
	w.bot.Wait()
	w.drainWrites()
	assert.Equal(t, vcs.StatusSuccess, w.state("dagctl/plan: prod", pushed.HeadSHA), "the plan was planned again and reported")
	got, err := w.store.GetPlan(ctx, p.ID)
	require.NoError(t, err)
	assert.True(t, got.Status.Final(), "the plan's outcome is stored: %s", got.Status)
}

// newWorldWithPushedProdPlan is a PR opened and pushed to, as a bot killed while it handled the push left it:
// the old head's plans stale, the new head's prod plan stored as queued, without a run.
func newWorldWithPushedProdPlan(t *testing.T) (*world, vcs.PullRequest, db.Plan) {
	t.Helper()
	w := newWorld(t)
	ctx := context.Background()
	opened := w.openPR(1, "more-columns", "alice", testutil.NonBreakingChange)
	pushed := w.pushEmptyCommit(opened)
	_, err := w.store.MarkStale(ctx, w.repo.Forge, w.repo.FullName(), 1, pushed.HeadSHA)
	require.NoError(t, err)
	plans, err := w.store.ListPlansByPR(ctx, w.repo.Forge, w.repo.FullName(), 1)
	require.NoError(t, err)
	var prod db.Plan
	for _, p := range plans {
		if p.Environment == "prod" {
			prod = p
		}
	}
	pc, err := prstate.DecodeContext(prod)
	require.NoError(t, err)
	pc.PR = pushed
	raw, err := json.Marshal(pc)
	require.NoError(t, err)
	p, err := w.store.CreatePlan(ctx, db.Plan{Forge: prod.Forge, Repo: prod.Repo, PR: 1, Project: prod.Project,
		Environment: "prod", HeadSHA: pushed.HeadSHA, BaseSHA: pushed.BaseSHA, TriggerUser: "alice", Context: raw})
	require.NoError(t, err)
	return w, pushed, p
}
