package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/forgetest/githubfake"
	"github.com/dagctl/dagctl-bot/internal/jobs"
)

func approvalCheck(t *testing.T, w *world, env, sha string) (conclusion, title string) {
	t.Helper()
	c, ok := w.Repo.CheckRun("dagctl/approval: "+env, sha)
	require.True(t, ok, "no approval check for %s on %s", env, sha[:7])
	return c.Conclusion, c.Title
}

func TestApprovalNeedsASecondUserOnThePlannedCommit(t *testing.T) {
	w := newWorld(t, worldOptions{seedProd: true})
	head := w.PR(1, "x", "alice", nonBreaking)
	w.send(w.PREvent("opened", 1, head, "alice"))
	conclusion, _ := approvalCheck(t, w, "prod", head)
	assert.Equal(t, "action_required", conclusion, "a protected environment blocks until approved")
	_, ok := w.Repo.CheckRun("dagctl/approval: dev", head)
	assert.False(t, ok, "dev is not protected")

	w.review(1, head, "alice", "APPROVED")
	conclusion, _ = approvalCheck(t, w, "prod", head)
	assert.Equal(t, "action_required", conclusion, "the author's own approval does not count")

	w.review(1, head, "dave", "APPROVED")
	conclusion, _ = approvalCheck(t, w, "prod", head)
	assert.Equal(t, "action_required", conclusion, "a read-only user's approval does not count")

	bob := w.review(1, head, "bob", "APPROVED")
	conclusion, title := approvalCheck(t, w, "prod", head)
	assert.Equal(t, "success", conclusion)
	assert.Contains(t, title, "@bob")
	assert.Contains(t, w.Sticky(1), "approved by bob")

	w.review(1, head, "bob", "CHANGES_REQUESTED")
	conclusion, title = approvalCheck(t, w, "prod", head)
	assert.Equal(t, "action_required", conclusion, "changes requested after approving withdraws it")
	assert.Contains(t, title, "Changes requested by @bob")

	again := w.review(1, head, "bob", "APPROVED")
	conclusion, _ = approvalCheck(t, w, "prod", head)
	require.Equal(t, "success", conclusion)
	assert.NotEqual(t, bob, again)

	// A dismissed approval no longer counts.
	w.dismiss(1, head, again)
	conclusion, _ = approvalCheck(t, w, "prod", head)
	assert.Equal(t, "action_required", conclusion)

	// A new push voids the plan and its approvals: the approval check of the new commit blocks again.
	second := w.Git.Commit("x", map[string]string{"models/another.sql": "MODEL (name dagctl_example.another, kind VIEW);\nSELECT 2 AS two\n"}, "push")
	w.Repo.SetPR(githubfake.PR{Number: 1, Author: "alice", HeadRef: "x", HeadSHA: second, BaseSHA: w.Base})
	w.review(1, second, "carol", "APPROVED") // before the new commit's plan was posted: it approved no plan
	w.review(1, head, "bob", "APPROVED")     // an approval of the old commit
	w.send(w.PREvent("synchronize", 1, second, "alice"))
	conclusion, _ = approvalCheck(t, w, "prod", second)
	assert.Equal(t, "action_required", conclusion, "approvals given before the plan's result do not count")
	w.review(1, second, "carol", "APPROVED")
	conclusion, title = approvalCheck(t, w, "prod", second)
	assert.Equal(t, "success", conclusion, "carol approved the new commit's plan")
	assert.Contains(t, title, "@carol")
	assert.NotContains(t, title, "@bob", "bob approved the old commit only")
}

func TestApplyByCommentIsGatedAndLocked(t *testing.T) {
	w := newWorld(t, worldOptions{seedProd: true, baseFiles: map[string]string{".dagctl/config.yaml": prodByComment}})
	head := w.PR(1, "x", "alice", nonBreaking)
	w.send(w.PREvent("opened", 1, head, "alice"))

	w.comment(1, head, "dave", "/dagctl apply prod")
	assert.Contains(t, lastComment(w, 1), "only users with write permission")

	w.comment(1, head, "bob", "/dagctl apply prod")
	assert.Contains(t, lastComment(w, 1), "is not approved")
	applyCheck, ok := w.Repo.CheckRun("dagctl/apply: prod", head)
	require.True(t, ok)
	assert.Equal(t, "action_required", applyCheck.Conclusion, "the apply check blocks until applied")

	w.review(1, head, "bob", "APPROVED")
	w.comment(1, head, "bob", "/dagctl apply prod")
	applyCheck, _ = w.Repo.CheckRun("dagctl/apply: prod", head)
	assert.Equal(t, "completed", applyCheck.Status)
	assert.Equal(t, "success", applyCheck.Conclusion, applyCheck.Summary)
	assert.Contains(t, applyCheck.Statuses(), "in_progress")
	assert.Contains(t, w.Sticky(1), "Applied")
	assert.Contains(t, lastComment(w, 1), "Applied in")
	_, held, err := w.srv.Store().Holder(context.Background(), "github", "acme/warehouse", "prod")
	require.NoError(t, err)
	assert.False(t, held, "the lock is released after the apply")

	// prod now has the change: planning the same PR again shows nothing left to do.
	w.comment(1, head, "bob", "/dagctl plan prod")
	plan, _ := w.Repo.CheckRun("dagctl/plan: prod", head)
	assert.Equal(t, "neutral", plan.Conclusion, plan.Summary)
}

func TestPlanChangedSinceApprovalIsRefused(t *testing.T) {
	w := newWorld(t, worldOptions{seedProd: true, baseFiles: map[string]string{".dagctl/config.yaml": prodByComment}})
	head := w.PR(1, "x", "alice", nonBreaking)
	w.send(w.PREvent("opened", 1, head, "alice"))
	w.review(1, head, "bob", "APPROVED")

	// Someone deploys another change to prod outside this PR: the PR's plan is no longer what prod would get.
	w.DeployToProd(map[string]string{"models/top_customers.sql": "MODEL (name dagctl_example.top_customers, kind VIEW);\nSELECT customer_id, total_amount FROM dagctl_example.customer_totals WHERE total_amount > 0\n"})

	w.comment(1, head, "bob", "/dagctl apply prod")
	applyCheck := latestCheck(t, w, "dagctl/apply: prod", head, "apply:")
	assert.Equal(t, "failure", applyCheck.Conclusion)
	assert.Contains(t, applyCheck.Title, "plan changed since it was approved")
	assert.Contains(t, applyCheck.Summary, "dagctl_example.top_customers", "the difference is shown")
	assert.Contains(t, lastComment(w, 1), "needs a fresh approval")
	conclusion, _ := approvalCheck(t, w, "prod", head)
	assert.Equal(t, "action_required", conclusion, "the new plan needs a fresh approval")

	// A fresh approval of the new plan lets it apply.
	w.review(1, head, "carol", "APPROVED")
	w.comment(1, head, "carol", "/dagctl apply prod")
	applyCheck = latestCheck(t, w, "dagctl/apply: prod", head, "apply:")
	assert.Equal(t, "success", applyCheck.Conclusion, applyCheck.Summary)
}

func TestApplyOnMerge(t *testing.T) {
	w := newWorld(t, worldOptions{seedProd: true})
	head := w.PR(1, "x", "alice", nonBreaking)
	w.send(w.PREvent("opened", 1, head, "alice"))
	w.review(1, head, "bob", "APPROVED")
	mergeSHA := w.merge(1, "x", head, "alice")
	w.send(w.PREvent("closed", 1, head, "alice").Merged(mergeSHA))

	applyCheck, ok := w.Repo.CheckRun("dagctl/apply: prod", mergeSHA)
	require.True(t, ok, "the apply is reported on the merge commit; checks: %v", w.Repo.CheckRuns())
	assert.Equal(t, "success", applyCheck.Conclusion, applyCheck.Summary)
	assert.Contains(t, w.Sticky(1), "Applied")
	_, ok = w.Repo.CheckRun("dagctl/apply: dev", mergeSHA)
	assert.False(t, ok, "dev is applied by comment, not on merge")
}

func TestMergeWithoutApprovalAppliesNothing(t *testing.T) {
	w := newWorld(t, worldOptions{seedProd: true})
	head := w.PR(1, "x", "alice", nonBreaking)
	w.send(w.PREvent("opened", 1, head, "alice"))
	w.review(1, head, "alice", "APPROVED") // self-approval
	mergeSHA := w.merge(1, "x", head, "alice")
	w.send(w.PREvent("closed", 1, head, "alice").Merged(mergeSHA))

	applyCheck, ok := w.Repo.CheckRun("dagctl/apply: prod", mergeSHA)
	require.True(t, ok)
	assert.Equal(t, "failure", applyCheck.Conclusion)
	assert.Contains(t, applyCheck.Title, "merged without approval")
	assert.Contains(t, lastComment(w, 1), "was NOT applied")
	runs := applyRuns(t, w)
	assert.Empty(t, runs, "no apply job ran")
}

func TestTwoPRsApplyingProdAreSerialised(t *testing.T) {
	w := newWorld(t, worldOptions{seedProd: true, baseFiles: map[string]string{".dagctl/config.yaml": prodByComment}})
	head1 := w.PR(1, "one", "alice", nonBreaking)
	w.send(w.PREvent("opened", 1, head1, "alice"))
	head2 := w.PR(2, "two", "carol", map[string]string{"models/extra.sql": "MODEL (name dagctl_example.extra, kind VIEW);\nSELECT 1 AS one\n"})
	w.send(w.PREvent("opened", 2, head2, "carol"))
	w.review(1, head1, "bob", "APPROVED")
	w.review(2, head2, "bob", "APPROVED")

	// Both commands are handled before either apply finishes.
	w.CommentEvent(1, head1, "bob", "/dagctl apply prod").SendT(t, w.http.URL+"/webhooks/github", webhookSecret)
	w.CommentEvent(2, head2, "bob", "/dagctl apply prod").SendT(t, w.http.URL+"/webhooks/github", webhookSecret)
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
	w := newWorld(t, worldOptions{seedProd: true})
	head := w.PR(1, "slow", "alice", map[string]string{"models/slow_events.py": slowModel})
	w.send(w.PREvent("opened", 1, head, "alice"))

	w.CommentEvent(1, head, "bob", "/dagctl apply dev").SendT(t, w.http.URL+"/webhooks/github", webhookSecret)
	w.srv.Drain(context.Background())
	run := waitForProgress(t, w, 3)
	_, held, err := w.srv.Store().Holder(context.Background(), "github", "acme/warehouse", "dev")
	require.NoError(t, err)
	require.True(t, held, "the running apply holds dev's lock")

	w.comment(1, head, "bob", "/dagctl cancel")
	check := latestCheck(t, w, "dagctl/apply: dev", head, "apply:")
	assert.Equal(t, "cancelled", check.Conclusion)
	_, held, err = w.srv.Store().Holder(context.Background(), "github", "acme/warehouse", "dev")
	require.NoError(t, err)
	assert.False(t, held, "a cancelled apply releases its lock")
	done := progressLines(t, w, run.ID)
	require.Less(t, done, 14, "interrupted halfway")

	// Applying again resumes: sqlmesh computes only the intervals that are left.
	w.comment(1, head, "bob", "/dagctl apply dev")
	check = latestCheck(t, w, "dagctl/apply: dev", head, "apply:")
	assert.Equal(t, "success", check.Conclusion, check.Summary)
	runs := applyRuns(t, w)
	resumed := progressLines(t, w, runs[len(runs)-1].ID)
	assert.Less(t, resumed, 14, "the resumed apply did not start over")
	assert.GreaterOrEqual(t, done+resumed, 14)

	// Closing the PR while an apply runs stops it and releases the lock.
	second := w.Git.Commit("slow", map[string]string{"models/slow_events.py": strings.Replace(slowModel, `"n": [1]`, `"n": [2]`, 1)}, "change")
	w.Repo.SetPR(githubfake.PR{Number: 1, Author: "alice", HeadRef: "slow", HeadSHA: second, BaseSHA: w.Base})
	w.send(w.PREvent("synchronize", 1, second, "alice"))
	w.CommentEvent(1, second, "bob", "/dagctl apply dev").SendT(t, w.http.URL+"/webhooks/github", webhookSecret)
	w.srv.Drain(context.Background())
	waitForProgressOf(t, w, second, 1)
	w.send(w.PREvent("closed", 1, second, "alice").Set("pull_request.state", "closed"))
	_, held, err = w.srv.Store().Holder(context.Background(), "github", "acme/warehouse", "dev")
	require.NoError(t, err)
	assert.False(t, held, "closing the PR released the lock")
	check = latestCheck(t, w, "dagctl/apply: dev", second, "apply:")
	assert.Equal(t, "cancelled", check.Conclusion)
}

func TestUnlockIsForAdmins(t *testing.T) {
	w := newWorld(t, worldOptions{})
	head := w.PR(1, "x", "alice", nonBreaking)
	other, err := w.srv.Store().CreatePlan(context.Background(), db.Plan{Forge: "github", Repo: "acme/warehouse", PR: 7, Environment: "prod", HeadSHA: "abc"})
	require.NoError(t, err)
	_, ok, err := w.srv.Store().TryLock(context.Background(), "github", "acme/warehouse", "prod", db.LockOwner{PlanID: other.ID, PR: 7, User: "zed"})
	require.NoError(t, err)
	require.True(t, ok)
	w.comment(1, head, "bob", "/dagctl unlock prod")
	assert.Contains(t, lastComment(w, 1), "only admins")
	w.comment(1, head, "carol", "/dagctl unlock prod")
	assert.Contains(t, lastComment(w, 1), "Unlocked `prod` (held by #7, zed)")
	_, held, err := w.srv.Store().Holder(context.Background(), "github", "acme/warehouse", "prod")
	require.NoError(t, err)
	assert.False(t, held)
}

// applyRuns are the apply runs the bot stored, oldest first.
func applyRuns(t *testing.T, w *world) []db.Run {
	t.Helper()
	ctx := context.Background()
	var out []db.Run
	for pr := 0; pr <= 3; pr++ { // 0: pushed commits
		plans, err := w.srv.Store().ListPlansByPR(ctx, "github", "acme/warehouse", pr)
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

// latestCheck is the newest check run with that name on the commit whose external id has the prefix.
func latestCheck(t *testing.T, w *world, name, sha, prefix string) githubfake.CheckRun {
	t.Helper()
	var found *githubfake.CheckRun
	for _, c := range w.Repo.CheckRuns() {
		if c.Name == name && c.HeadSHA == sha && strings.HasPrefix(c.ExternalID, prefix) {
			c := c
			found = &c
		}
	}
	require.NotNil(t, found, "no %s check on %s", name, sha[:7])
	return *found
}

func lastCommentContaining(w *world, number int, s string) string {
	for _, c := range w.Repo.Comments(number) {
		if strings.Contains(c.Body, s) {
			return c.Body
		}
	}
	return ""
}

func TestPushToTheDefaultBranchIsPlannedNeverApplied(t *testing.T) {
	w := newWorld(t, worldOptions{seedProd: true})
	w.Git.Git("checkout", "--quiet", "main")
	pushed := w.Git.Commit("main", nonBreaking, "a direct push")
	w.send(githubfake.LoadPayload(t, "push.branch.json").Installation(installationID).Repo(w.Repo).
		Set("ref", "refs/heads/main").Set("before", w.Base).Set("after", pushed).Set("deleted", false).
		Set("pusher.name", "alice"))

	check, ok := w.Repo.CheckRun("dagctl/plan: prod", pushed)
	require.True(t, ok, "the pushed commit is planned; checks: %v", w.Repo.CheckRuns())
	assert.Equal(t, "success", check.Conclusion)
	assert.Contains(t, check.Summary, "dagctl_example.customer_totals")
	for _, c := range w.Repo.CheckRuns() {
		assert.NotContains(t, c.Name, "dagctl/apply", "a push never applies")
		assert.NotContains(t, c.Name, "dev", "only environments applied on merge are planned")
	}
	assert.Empty(t, applyRuns(t, w))
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
	w := newWorld(t, worldOptions{seedProd: true, baseFiles: map[string]string{".dagctl/config.yaml": prEnvironments}})
	head := w.PR(3, "x", "alice", nonBreaking)
	w.send(w.PREvent("opened", 3, head, "alice"))
	check, ok := w.Repo.CheckRun("dagctl/plan: pr_3", head)
	require.True(t, ok, "the PR's own environment is planned; checks: %v", w.Repo.CheckRuns())
	assert.Equal(t, "success", check.Conclusion)

	w.comment(3, head, "alice", "/dagctl apply pr_3")
	applied := latestCheck(t, w, "dagctl/apply: pr_3", head, "apply:")
	assert.Equal(t, "success", applied.Conclusion, applied.Summary)

	w.send(w.PREvent("closed", 3, head, "alice").Set("pull_request.state", "closed"))
	w.srv.WaitJobs()
	assert.Contains(t, w.logLines.String(), `msg="removed a closed PR's environment" env=pr_3`)
}

func TestApplyKilledByACrashIsReportedAndResumed(t *testing.T) {
	w := newWorld(t, worldOptions{seedProd: true})
	head := w.PR(1, "slow", "alice", map[string]string{"models/slow_events.py": slowModel})
	w.send(w.PREvent("opened", 1, head, "alice"))
	w.CommentEvent(1, head, "bob", "/dagctl apply dev").SendT(t, w.http.URL+"/webhooks/github", webhookSecret)
	w.srv.Drain(context.Background())
	run := waitForProgress(t, w, 3)
	w.crash() // the bot dies mid-backfill; its job dies with it

	w.start()
	w.settle()
	done := progressLines(t, w, run.ID)
	check := latestCheck(t, w, "dagctl/apply: dev", head, "apply:")
	assert.Equal(t, "completed", check.Status, "the interrupted apply's check reaches a final state")
	assert.Equal(t, "failure", check.Conclusion)
	assert.Contains(t, check.Title, "Interrupted")
	_, held, err := w.srv.Store().Holder(context.Background(), "github", "acme/warehouse", "dev")
	require.NoError(t, err)
	assert.False(t, held, "the dead apply's lock is released")

	w.comment(1, head, "bob", "/dagctl apply dev")
	check = latestCheck(t, w, "dagctl/apply: dev", head, "apply:")
	assert.Equal(t, "success", check.Conclusion, check.Summary)
	runs := applyRuns(t, w)
	resumed := progressLines(t, w, runs[len(runs)-1].ID)
	assert.Less(t, resumed, 14, "the apply resumed where the crash stopped it")
	assert.GreaterOrEqual(t, done+resumed, 14)
}

func TestAnAppliedPlanIsNotAppliedTwice(t *testing.T) {
	w := newWorld(t, worldOptions{seedProd: true})
	head := w.PR(1, "x", "alice", nonBreaking)
	w.send(w.PREvent("opened", 1, head, "alice"))
	w.comment(1, head, "bob", "/dagctl apply dev")
	require.Equal(t, "success", latestCheck(t, w, "dagctl/apply: dev", head, "apply:").Conclusion)
	w.comment(1, head, "bob", "/dagctl apply dev")
	assert.Contains(t, lastComment(w, 1), "`dev` is applied already")
	assert.Len(t, applyRuns(t, w), 1)
}
