package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/forgetest"
	"github.com/dagctl/dagctl-bot/internal/forgetest/e2e"
	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// approvalCheck is the state and title of the environment's approval status on the commit.
func approvalCheck(t *testing.T, w *world, env, sha string) (state vcs.StatusState, title string) {
	t.Helper()
	c, ok := w.Status("dagctl/approval: "+env, sha)
	require.True(t, ok, "no approval status for %s on %s; statuses: %v", env, sha[:7], w.Statuses())
	return c.State, c.Title
}

func TestApprovalNeedsASecondUserOnThePlannedCommit(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{seedProd: true})
		head := w.PR(1, "x", "alice", nonBreaking)
		w.send(w.PREvent(vcs.PROpened, 1))
		conclusion, _ := approvalCheck(t, w, "prod", head)
		w.assertState(vcs.StatusBlocked, conclusion, "a protected environment blocks until approved")
		_, ok := w.Status("dagctl/approval: dev", head)
		assert.False(t, ok, "dev is not protected")

		w.review(1, head, "alice", vcs.ReviewApproved)
		conclusion, _ = approvalCheck(t, w, "prod", head)
		w.assertState(vcs.StatusBlocked, conclusion, "the author's own approval does not count")

		w.review(1, head, "dave", vcs.ReviewApproved)
		conclusion, _ = approvalCheck(t, w, "prod", head)
		w.assertState(vcs.StatusBlocked, conclusion, "a read-only user's approval does not count")

		bob := w.review(1, head, "bob", vcs.ReviewApproved)
		conclusion, title := approvalCheck(t, w, "prod", head)
		assert.Equal(t, vcs.StatusSuccess, conclusion)
		assert.Contains(t, title, "@bob")
		assert.Contains(t, w.Sticky(1), "approved by bob")

		if w.Can(forgetest.RequestChanges) { // GitLab has approvals alone
			w.review(1, head, "bob", vcs.ReviewChangesRequested)
			conclusion, title = approvalCheck(t, w, "prod", head)
			w.assertState(vcs.StatusBlocked, conclusion, "changes requested after approving withdraws it")
			assert.Contains(t, title, "Changes requested by @bob")
		}

		again := w.review(1, head, "bob", vcs.ReviewApproved)
		conclusion, _ = approvalCheck(t, w, "prod", head)
		require.Equal(t, vcs.StatusSuccess, conclusion)
		assert.NotEqual(t, bob, again)

		// A dismissed approval no longer counts.
		w.dismiss(1, again)
		conclusion, _ = approvalCheck(t, w, "prod", head)
		w.assertState(vcs.StatusBlocked, conclusion)

		// A new push voids the plan and its approvals: the approval check of the new commit blocks again.
		second := w.Push(1, map[string]string{"models/another.sql": "MODEL (name dagctl_example.another, kind VIEW);\nSELECT 2 AS two\n"}, "push")
		w.review(1, second, "carol", vcs.ReviewApproved) // before the new commit's plan was posted: it approved no plan
		w.review(1, head, "bob", vcs.ReviewApproved)     // an approval of the old commit
		w.send(w.PREvent(vcs.PRPushed, 1))
		conclusion, _ = approvalCheck(t, w, "prod", second)
		w.assertState(vcs.StatusBlocked, conclusion, "approvals given before the plan's result do not count")
		w.review(1, second, "carol", vcs.ReviewApproved)
		conclusion, title = approvalCheck(t, w, "prod", second)
		assert.Equal(t, vcs.StatusSuccess, conclusion, "carol approved the new commit's plan")
		assert.Contains(t, title, "@carol")
		assert.NotContains(t, title, "@bob", "bob approved the old commit only")
	})
}

func TestApplyByCommentIsGatedAndLocked(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{seedProd: true, baseFiles: map[string]string{".dagctl/config.yaml": prodByComment}})
		head := w.PR(1, "x", "alice", nonBreaking)
		w.send(w.PREvent(vcs.PROpened, 1))

		w.comment(1, "dave", "/dagctl apply prod")
		assert.Contains(t, w.LastComment(1), "only users with write permission")

		w.comment(1, "bob", "/dagctl apply prod")
		assert.Contains(t, w.LastComment(1), "is not approved")
		applyCheck, ok := w.Status("dagctl/apply: prod", head)
		require.True(t, ok)
		w.assertState(vcs.StatusBlocked, applyCheck.State, "the apply check blocks until applied")

		w.review(1, head, "bob", vcs.ReviewApproved)
		w.comment(1, "bob", "/dagctl apply prod")
		applyCheck, _ = w.Status("dagctl/apply: prod", head)
		assert.Equal(t, vcs.StatusSuccess, applyCheck.State, applyCheck.Summary)
		assert.Contains(t, applyCheck.History, vcs.StatusRunning)
		assert.Contains(t, w.Sticky(1), "Applied")
		assert.Contains(t, w.LastComment(1), "Applied in")
		_, held, err := w.srv.Store().Holder(context.Background(), w.forge(), w.repoName(), "prod")
		require.NoError(t, err)
		assert.False(t, held, "the lock is released after the apply")

		// prod now has the change: planning the same PR again shows nothing left to do.
		w.comment(1, "bob", "/dagctl plan prod")
		plan, _ := w.Status("dagctl/plan: prod", head)
		w.assertState(vcs.StatusNeutral, plan.State, plan.Summary)
	})
}

func TestPlanChangedSinceApprovalIsRefused(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{seedProd: true, baseFiles: map[string]string{".dagctl/config.yaml": prodByComment}})
		head := w.PR(1, "x", "alice", nonBreaking)
		w.send(w.PREvent(vcs.PROpened, 1))
		w.review(1, head, "bob", vcs.ReviewApproved)

		// Someone deploys another change to prod outside this PR: the PR's plan is no longer what prod would get.
		w.DeployToProd(map[string]string{"models/top_customers.sql": "MODEL (name dagctl_example.top_customers, kind VIEW);\nSELECT customer_id, total_amount FROM dagctl_example.customer_totals WHERE total_amount > 0\n"})

		w.comment(1, "bob", "/dagctl apply prod")
		applyCheck := latestCheck(t, w, "dagctl/apply: prod", head, "apply:")
		assert.Equal(t, vcs.StatusFailure, applyCheck.State)
		assert.Contains(t, applyCheck.Title, "plan changed since it was approved")
		assert.Contains(t, w.shownText(applyCheck, 1), "dagctl_example.top_customers", "the difference is shown")
		assert.Contains(t, w.LastComment(1), "needs a fresh approval")
		conclusion, _ := approvalCheck(t, w, "prod", head)
		w.assertState(vcs.StatusBlocked, conclusion, "the new plan needs a fresh approval")

		// A fresh approval of the new plan lets it apply.
		w.review(1, head, "carol", vcs.ReviewApproved)
		w.comment(1, "carol", "/dagctl apply prod")
		applyCheck = latestCheck(t, w, "dagctl/apply: prod", head, "apply:")
		assert.Equal(t, vcs.StatusSuccess, applyCheck.State, applyCheck.Summary)
	})
}

func TestApplyOnMerge(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{seedProd: true})
		head := w.PR(1, "x", "alice", nonBreaking)
		w.send(w.PREvent(vcs.PROpened, 1))
		w.review(1, head, "bob", vcs.ReviewApproved)
		mergeSHA := w.merge(1)
		w.send(w.PREvent(vcs.PRMerged, 1))

		applyCheck, ok := w.Status("dagctl/apply: prod", mergeSHA)
		require.True(t, ok, "the apply is reported on the merge commit; checks: %v", w.Statuses())
		assert.Equal(t, vcs.StatusSuccess, applyCheck.State, applyCheck.Summary)
		assert.Contains(t, w.Sticky(1), "Applied")
		_, ok = w.Status("dagctl/apply: dev", mergeSHA)
		assert.False(t, ok, "dev is applied by comment, not on merge")
	})
}

func TestMergeWithoutApprovalAppliesNothing(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{seedProd: true})
		head := w.PR(1, "x", "alice", nonBreaking)
		w.send(w.PREvent(vcs.PROpened, 1))
		w.review(1, head, "alice", vcs.ReviewApproved) // self-approval
		mergeSHA := w.merge(1)
		w.send(w.PREvent(vcs.PRMerged, 1))

		applyCheck, ok := w.Status("dagctl/apply: prod", mergeSHA)
		require.True(t, ok)
		assert.Equal(t, vcs.StatusFailure, applyCheck.State)
		assert.Contains(t, applyCheck.Title, "merged without approval")
		assert.Contains(t, w.LastComment(1), "was NOT applied")
		runs := applyRuns(t, w)
		assert.Empty(t, runs, "no apply job ran")
	})
}

func TestTwoPRsApplyingProdAreSerialised(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{seedProd: true, baseFiles: map[string]string{".dagctl/config.yaml": prodByComment}})
		head1 := w.PR(1, "one", "alice", nonBreaking)
		w.send(w.PREvent(vcs.PROpened, 1))
		head2 := w.PR(2, "two", "carol", map[string]string{"models/extra.sql": "MODEL (name dagctl_example.extra, kind VIEW);\nSELECT 1 AS one\n"})
		w.send(w.PREvent(vcs.PROpened, 2))
		w.review(1, head1, "bob", vcs.ReviewApproved)
		w.review(2, head2, "bob", vcs.ReviewApproved)

		// Both commands are handled before either apply finishes.
		w.commentLater(1, "bob", "/dagctl apply prod")
		w.commentLater(2, "bob", "/dagctl apply prod")
		w.settle()

		runs := applyRuns(t, w)
		require.Len(t, runs, 2)
		first, second := runs[0], runs[1]
		if second.FinishedAt.Before(first.FinishedAt) {
			first, second = second, first
		}
		assert.Equal(t, db.RunSucceeded, first.Status, first.Reason)
		waited := strings.Contains(lastCommentContaining(w, 1, "locked by"), "locked by") || strings.Contains(lastCommentContaining(w, 2, "locked by"), "locked by")
		assert.True(t, waited, "the waiting PR is told who holds the lock")
		// Under the lock the second apply sees prod as the first left it: neither PR contains the other's change, so
		// applying the second would roll the first back, and it is refused.
		assert.Equal(t, db.RunFailed, second.Status)
		assert.Contains(t, second.Reason, "no approved plan covered")
		assert.False(t, second.FinishedAt.Before(first.FinishedAt))
	})
}

// slowModel is an incremental Python model that takes a while per daily batch, so that an apply can be
// interrupted halfway.
const slowModel = `import time
import typing as t
from datetime import datetime

import pandas as pd
from sqlmesh import ExecutionContext, model
from sqlmesh.core.model.kind import ModelKindName


@model(
    "dagctl_example.slow_events",
    kind=dict(name=ModelKindName.INCREMENTAL_BY_TIME_RANGE, time_column="event_date", batch_size=1),
    start="2024-01-01",
    cron="@daily",
    columns={"event_date": "date", "n": "int"},
)
def execute(context: ExecutionContext, start: datetime, end: datetime, execution_time: datetime, **kwargs: t.Any) -> pd.DataFrame:
    time.sleep(0.6)
    return pd.DataFrame({"event_date": [start.date()], "n": [1]})
`

func TestInterruptedApplyResumesAndClosingReleasesTheLock(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{seedProd: true})
		head := w.PR(1, "slow", "alice", map[string]string{"models/slow_events.py": slowModel})
		w.send(w.PREvent(vcs.PROpened, 1))

		w.commentLater(1, "bob", "/dagctl apply dev")
		w.srv.Drain(context.Background())
		run := waitForProgress(t, w, 3)
		_, held, err := w.srv.Store().Holder(context.Background(), w.forge(), w.repoName(), "dev")
		require.NoError(t, err)
		require.True(t, held, "the running apply holds dev's lock")

		w.comment(1, "bob", "/dagctl cancel")
		check := latestCheck(t, w, "dagctl/apply: dev", head, "apply:")
		assert.Equal(t, vcs.StatusCancelled, check.State)
		_, held, err = w.srv.Store().Holder(context.Background(), w.forge(), w.repoName(), "dev")
		require.NoError(t, err)
		assert.False(t, held, "a cancelled apply releases its lock")
		done := progressLines(t, w, run.ID)
		require.Less(t, done, 14, "interrupted halfway")

		// Applying again resumes: sqlmesh computes only the intervals that are left.
		w.comment(1, "bob", "/dagctl apply dev")
		check = latestCheck(t, w, "dagctl/apply: dev", head, "apply:")
		assert.Equal(t, vcs.StatusSuccess, check.State, check.Summary)
		runs := applyRuns(t, w)
		resumed := progressLines(t, w, runs[len(runs)-1].ID)
		assert.Less(t, resumed, 14, "the resumed apply did not start over")
		assert.GreaterOrEqual(t, done+resumed, 14)

		// Closing the PR while an apply runs stops it and releases the lock.
		second := w.Push(1, map[string]string{"models/slow_events.py": strings.Replace(slowModel, `"n": [1]`, `"n": [2]`, 1)}, "change")
		w.send(w.PREvent(vcs.PRPushed, 1))
		w.commentLater(1, "bob", "/dagctl apply dev")
		w.srv.Drain(context.Background())
		waitForProgressOf(t, w, second, 1)
		w.close(1)
		_, held, err = w.srv.Store().Holder(context.Background(), w.forge(), w.repoName(), "dev")
		require.NoError(t, err)
		assert.False(t, held, "closing the PR released the lock")
		check = latestCheck(t, w, "dagctl/apply: dev", second, "apply:")
		assert.Equal(t, vcs.StatusCancelled, check.State)
	})
}

func TestUnlockIsForAdmins(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{})
		w.PR(1, "x", "alice", nonBreaking)
		other, err := w.srv.Store().CreatePlan(context.Background(), db.Plan{Forge: w.forge(), Repo: w.repoName(), PR: 7, Environment: "prod", HeadSHA: "abc"})
		require.NoError(t, err)
		_, ok, err := w.srv.Store().TryLock(context.Background(), w.forge(), w.repoName(), "prod", db.LockOwner{PlanID: other.ID, PR: 7, User: "zed"})
		require.NoError(t, err)
		require.True(t, ok)
		w.comment(1, "bob", "/dagctl unlock prod")
		assert.Contains(t, w.LastComment(1), "only admins")
		w.comment(1, "carol", "/dagctl unlock prod")
		assert.Contains(t, w.LastComment(1), "Unlocked `prod` (held by #7, zed)")
		_, held, err := w.srv.Store().Holder(context.Background(), w.forge(), w.repoName(), "prod")
		require.NoError(t, err)
		assert.False(t, held)
	})
}

// applyRuns are the apply runs the bot stored, oldest first.
func applyRuns(t *testing.T, w *world) []db.Run {
	t.Helper()
	ctx := context.Background()
	var out []db.Run
	for pr := 0; pr <= 3; pr++ { // 0: pushed commits
		plans, err := w.srv.Store().ListPlansByPR(ctx, w.forge(), w.repoName(), pr)
		require.NoError(t, err)
		for _, p := range plans {
			runs, err := w.srv.Store().ListRuns(ctx, p.ID)
			require.NoError(t, err)
			for _, r := range runs {
				if r.Kind == jobs.KindApply {
					out = append(out, r)
				}
			}
		}
	}
	return out
}

// progressLines counts the slow model's progress lines in a run's log.
func progressLines(t *testing.T, w *world, runID int64) int {
	t.Helper()
	lines, err := w.srv.Store().RunLog(context.Background(), runID)
	require.NoError(t, err)
	n := 0
	for _, l := range lines {
		if strings.Contains(l.Text, "dagctl_example") && strings.Contains(l.Text, "slow_events") && strings.HasPrefix(strings.TrimSpace(l.Text), "[") {
			n++
		}
	}
	return n
}

// waitForProgress waits until the newest apply run has logged n batches of the slow model.
func waitForProgress(t *testing.T, w *world, n int) db.Run {
	t.Helper()
	var run db.Run
	require.Eventually(t, func() bool {
		runs := applyRuns(t, w)
		if len(runs) == 0 {
			return false
		}
		run = runs[len(runs)-1]
		return progressLines(t, w, run.ID) >= n
	}, 2*time.Minute, 50*time.Millisecond)
	return run
}

func waitForProgressOf(t *testing.T, w *world, sha string, n int) {
	t.Helper()
	waitForProgress(t, w, n)
}

// latestCheck is the newest status with that name on the commit whose external id has the prefix (a forge
// without external ids, GitLab, tells statuses by name alone).
func latestCheck(t *testing.T, w *world, name, sha, prefix string) forgetest.Status {
	t.Helper()
	var found *forgetest.Status
	for _, c := range w.Statuses() {
		if c.Name == name && c.CommitSHA == sha && (strings.HasPrefix(c.ExternalID, prefix) || !w.Can(forgetest.StatusExternalID)) {
			c := c
			found = &c
		}
	}
	require.NotNil(t, found, "no %s check on %s", name, sha[:7])
	return *found
}

func lastCommentContaining(w *world, number int, s string) string {
	for _, c := range w.Comments(number) {
		if strings.Contains(c.Body, s) {
			return c.Body
		}
	}
	return ""
}

func TestPushToTheDefaultBranchIsPlannedNeverApplied(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{seedProd: true})
		pushed := w.Commit("main", nonBreaking, "a direct push")
		w.send(w.PushEvent("main", w.Base, pushed, "alice"))

		check, ok := w.Status("dagctl/plan: prod", pushed)
		require.True(t, ok, "the pushed commit is planned; checks: %v", w.Statuses())
		assert.Equal(t, vcs.StatusSuccess, check.State)
		if w.Can(forgetest.StatusOutput) {
			assert.Contains(t, check.Summary, "dagctl_example.customer_totals")
		} else { // no PR to comment on: the plan is in the status's log
			assert.Contains(t, runLog(t, w, check), "dagctl_example.customer_totals")
		}
		for _, c := range w.Statuses() {
			assert.NotContains(t, c.Name, "dagctl/apply", "a push never applies")
			assert.NotContains(t, c.Name, "dev", "only environments applied on merge are planned")
		}
		assert.Empty(t, applyRuns(t, w))
	})
}

const prEnvironments = `version: 1
projects:
  - path: .
    framework: sqlmesh
environments:
  - name: prod
    protected: true
    apply_on: [merge]
    plan_on_pr: false
pr_environment: pr_{number}
job:
  timeout: 15m
  pass_env: [EXAMPLE_DUCKDB_PATH]
`

func TestPREnvironmentIsPlannedAppliedAndRemovedOnClose(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{seedProd: true, baseFiles: map[string]string{".dagctl/config.yaml": prEnvironments}})
		head := w.PR(3, "x", "alice", nonBreaking)
		w.send(w.PREvent(vcs.PROpened, 3))
		check, ok := w.Status("dagctl/plan: pr_3", head)
		require.True(t, ok, "the PR's own environment is planned; checks: %v", w.Statuses())
		assert.Equal(t, vcs.StatusSuccess, check.State)

		w.comment(3, "alice", "/dagctl apply pr_3")
		applied := latestCheck(t, w, "dagctl/apply: pr_3", head, "apply:")
		assert.Equal(t, vcs.StatusSuccess, applied.State, applied.Summary)

		w.close(3)
		w.srv.WaitJobs()
		assert.Contains(t, w.logLines.String(), `msg="removed a closed PR's environment" env=pr_3`)
	})
}

func TestApplyKilledByACrashIsReportedAndResumed(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{seedProd: true})
		head := w.PR(1, "slow", "alice", map[string]string{"models/slow_events.py": slowModel})
		w.send(w.PREvent(vcs.PROpened, 1))
		w.commentLater(1, "bob", "/dagctl apply dev")
		w.srv.Drain(context.Background())
		run := waitForProgress(t, w, 3)
		w.crash() // the bot dies mid-backfill; its job dies with it

		w.start()
		w.settle()
		done := progressLines(t, w, run.ID)
		check := latestCheck(t, w, "dagctl/apply: dev", head, "apply:")
		assert.True(t, check.State.Final(), "the interrupted apply's check reaches a final state")
		assert.Equal(t, vcs.StatusFailure, check.State)
		assert.Contains(t, check.Title, "Interrupted")
		_, held, err := w.srv.Store().Holder(context.Background(), w.forge(), w.repoName(), "dev")
		require.NoError(t, err)
		assert.False(t, held, "the dead apply's lock is released")

		w.comment(1, "bob", "/dagctl apply dev")
		check = latestCheck(t, w, "dagctl/apply: dev", head, "apply:")
		assert.Equal(t, vcs.StatusSuccess, check.State, check.Summary)
		runs := applyRuns(t, w)
		resumed := progressLines(t, w, runs[len(runs)-1].ID)
		assert.Less(t, resumed, 14, "the apply resumed where the crash stopped it")
		assert.GreaterOrEqual(t, done+resumed, 14)
	})
}

func TestAnAppliedPlanIsNotAppliedTwice(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{seedProd: true})
		head := w.PR(1, "x", "alice", nonBreaking)
		w.send(w.PREvent(vcs.PROpened, 1))
		w.comment(1, "bob", "/dagctl apply dev")
		require.Equal(t, vcs.StatusSuccess, latestCheck(t, w, "dagctl/apply: dev", head, "apply:").State)
		w.comment(1, "bob", "/dagctl apply dev")
		assert.Contains(t, w.LastComment(1), "`dev` is applied already")
		assert.Len(t, applyRuns(t, w), 1)
	})
}
