package handlertest_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/testutil"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// An event that names an older head than the forge's (the chaos run: after a restart the reconcile planned the
// pushed head before the queued "opened" delivery of the first head was handled) must not make the newer
// head's plans stale: the PR's head is the forge's, not the payload's.
func TestAnOpenedEventHandledAfterThePushedHeadWasPlannedLeavesItsPlansStanding(t *testing.T) {
	w := newWorld(t)
	w.forge.Commit(w.repo, "more-columns", "alice", testutil.NonBreakingChange)
	opened := w.forge.OpenPR(w.repo, 1, "more-columns", "main", "alice")
	pushed := w.pushEmptyCommit(opened)

	require.NoError(t, w.bot.PlanMissed(context.Background(), pushed)) // the reconcile, as the forge lists the PR
	w.bot.Wait()
	w.drainWrites()
	w.handle(vcs.Event{PullRequest: &vcs.PullRequestEvent{Action: vcs.PROpened, PR: opened, Sender: "alice"}})

	w.assertHeadPlannedAndReady(pushed.HeadSHA)
	assert.Equal(t, vcs.StatusState(""), w.state("dagctl/plan: prod", opened.HeadSHA), "the outdated head is not planned")
}

// The same when the reconcile listed the PR before a push and planned it after the push was handled: the head
// it names is outdated by then.
func TestAReconcileOfAnOutdatedHeadLeavesThePushedHeadsPlansStanding(t *testing.T) {
	w := newWorld(t)
	opened := w.openPR(1, "more-columns", "alice", testutil.NonBreakingChange)
	pushed := w.pushEmptyCommit(opened)
	w.handle(vcs.Event{PullRequest: &vcs.PullRequestEvent{Action: vcs.PRPushed, PR: pushed, Sender: "alice"}})

	require.NoError(t, w.bot.PlanMissed(context.Background(), opened))
	w.bot.Wait()
	w.drainWrites()

	w.assertHeadPlannedAndReady(pushed.HeadSHA)
}

// pushEmptyCommit adds a commit of the same files to the PR's branch and moves the PR's head to it on the
// forge; it returns the PR as the forge now reports it.
func (w *world) pushEmptyCommit(pr vcs.PullRequest) vcs.PullRequest {
	w.t.Helper()
	sha := w.forge.Commit(w.repo, pr.HeadRef, pr.Author, nil)
	return w.forge.UpdatePR(w.repo, pr.Number, func(p *vcs.PullRequest) { p.HeadSHA = sha })
}

// assertHeadPlannedAndReady: every plan of the head is ready, and its checks ended in success.
func (w *world) assertHeadPlannedAndReady(head string) {
	w.t.Helper()
	plans, err := w.store.ListPlansByPR(context.Background(), w.repo.Forge, w.repo.FullName(), 1)
	require.NoError(w.t, err)
	envs := map[string]plan.Status{}
	for _, p := range plans {
		if p.HeadSHA == head {
			envs[p.Environment] = p.Status
		}
	}
	assert.Equal(w.t, map[string]plan.Status{"dev": plan.StatusReady, "prod": plan.StatusReady}, envs, "the head's plans")
	for _, env := range []string{"dev", "prod"} {
		assert.Equal(w.t, vcs.StatusSuccess, w.state("dagctl/plan: "+env, head), env)
	}
}
