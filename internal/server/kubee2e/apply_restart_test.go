package kubee2e_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dagctl/dagctl-bot/internal/forgetest"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// slowModel is an incremental Python model that takes a while per daily batch (14 of them), so that a restart
// falls in the middle of its apply.
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

// The bot restarts (a chart upgrade: Recreate) while an apply's Job runs: the new process follows the same Job
// to its end. Nothing runs twice (one apply Job), the apply keeps its lock while the Job runs and releases it
// after, and the same check run goes from its progress to the applied result; the PR is told, as without a
// restart.
func TestBotRestartMidApplyFollowsTheApplyJob(t *testing.T) {
	w := newWorld(t, nil)
	head := w.PR(1, "slow", "alice", map[string]string{"models/slow_events.py": slowModel})
	require.Equal(t, 202, w.send(w.PREvent(vcs.PROpened, 1)).Status)
	w.waitForCheck("dagctl/plan: dev", head, completed)
	w.waitJobs()

	id := w.AddComment(1, "bob", "/dagctl apply dev")
	require.Equal(t, 202, w.send(w.CommentEvent(1, id)).Status)
	w.waitForCheck("dagctl/apply: dev", head, func(c forgetest.Status) bool { return strings.HasPrefix(c.Title, "Applying") })

	w.close(50 * time.Millisecond) // a deploy: the Job goes on without the bot
	w.start()

	// Read the lock first, then the Job: a Job still running now was running when the lock was read.
	_, held, err := w.srv.Store().Holder(context.Background(), "github", w.Repo().FullName(), "dev")
	require.NoError(t, err)
	job := applyJob(t, w)
	require.Zero(t, job.Status.Succeeded+job.Status.Failed, "the apply's Job ended before the restart was done: lengthen slowModel")
	assert.True(t, held, "the restart left the running apply's lock held")

	w.waitForCheck("dagctl/apply: dev", head, completed)
	w.waitJobs()
	checks := w.StatusesNamed("dagctl/apply: dev", head)
	require.Len(t, checks, 1, "the same check run is finished, not a new one")
	assert.Equal(t, vcs.StatusSuccess, checks[0].State, checks[0].Summary)
	assert.Contains(t, checks[0].Title, "Applied in")
	assert.Contains(t, checks[0].Summary, "Applied the approved plan to `dev`")
	assert.EqualValues(t, 1, applyJob(t, w).Status.Succeeded, "the Job was followed to its end, not run again")
	_, held, err = w.srv.Store().Holder(context.Background(), "github", w.Repo().FullName(), "dev")
	require.NoError(t, err)
	assert.False(t, held, "the lock is released once the apply ends")
	assert.Contains(t, w.LastComment(1), "✅ `dev`: Applied in")
	assert.Contains(t, w.log.String(), "following an apply a previous process started")
}

// applyJob is the one apply Job of the world's namespace.
func applyJob(t *testing.T, w *world) batchv1.Job {
	t.Helper()
	list, err := cluster.Client.BatchV1().Jobs(w.ns).List(context.Background(), metav1.ListOptions{LabelSelector: "dagctl.dev/kind=apply"})
	require.NoError(t, err)
	require.Len(t, list.Items, 1, "one apply Job")
	return list.Items[0]
}

// The restart falls on the apply's first step, its plan made again at the commit to apply: the new process
// follows that Job too, compares its plan with the approved one and applies, as the sequence would have. The
// decision under the lock was taken and the lock never left the apply, so nothing is decided twice and
// nothing runs twice: one verifying Job, one apply Job, one check run.
func TestBotRestartDuringTheApplysReplanFollowsItAndApplies(t *testing.T) {
	w := newWorld(t, nil)
	head := w.PR(1, "slow", "alice", map[string]string{"models/slow_events.py": slowModel})
	require.Equal(t, 202, w.send(w.PREvent(vcs.PROpened, 1)).Status)
	w.waitForCheck("dagctl/plan: dev", head, completed)
	w.waitJobs()

	id := w.AddComment(1, "bob", "/dagctl apply dev")
	require.Equal(t, 202, w.send(w.CommentEvent(1, id)).Status)
	w.waitForCheck("dagctl/apply: dev", head, func(c forgetest.Status) bool { return c.Title == "Checking the plan" })
	w.close(50 * time.Millisecond)
	w.start()

	w.waitForCheck("dagctl/apply: dev", head, completed)
	w.waitJobs()
	assert.Contains(t, w.log.String(), `msg="following an apply a previous process started" run=3 step=verify`)
	checks := w.StatusesNamed("dagctl/apply: dev", head)
	require.Len(t, checks, 1, "the same check run is finished, not a new one")
	assert.Equal(t, vcs.StatusSuccess, checks[0].State, checks[0].Summary)
	assert.Contains(t, checks[0].Summary, "Applied the approved plan to `dev`")
	assert.EqualValues(t, 1, applyJob(t, w).Status.Succeeded)
	list, err := cluster.Client.BatchV1().Jobs(w.ns).List(context.Background(), metav1.ListOptions{LabelSelector: "dagctl.dev/run-id=3-verify"})
	require.NoError(t, err)
	assert.Len(t, list.Items, 1, "the verifying plan was followed, not run again")
	_, held, err := w.srv.Store().Holder(context.Background(), "github", w.Repo().FullName(), "dev")
	require.NoError(t, err)
	assert.False(t, held)
}

// A protected environment applied on merge, the bot restarting mid-apply: the followed apply records the
// content prod now holds (so the next apply's content rule compares with it), on the merge commit's check.
func TestBotRestartMidApplyOnMergeRecordsTheAppliedContent(t *testing.T) {
	w := newWorld(t, nil)
	head := w.PR(1, "slow", "alice", map[string]string{"models/slow_events.py": slowModel})
	require.Equal(t, 202, w.send(w.PREvent(vcs.PROpened, 1)).Status)
	w.waitForCheck("dagctl/plan: prod", head, completed)
	w.waitForCheck("dagctl/plan: dev", head, completed)
	w.waitJobs()
	w.send(w.ReviewEvent(1, w.AddReview(1, "bob", vcs.ReviewApproved, head)))
	w.waitJobs()
	merge := w.MergePR(1)
	require.Equal(t, 202, w.send(w.PREvent(vcs.PRMerged, 1)).Status)
	w.waitForCheck("dagctl/apply: prod", merge, func(c forgetest.Status) bool { return strings.HasPrefix(c.Title, "Applying") })

	w.close(50 * time.Millisecond)
	w.start()

	w.waitForCheck("dagctl/apply: prod", merge, completed)
	w.waitJobs()
	checks := w.StatusesNamed("dagctl/apply: prod", merge)
	require.Len(t, checks, 1, "the same check run is finished, not a new one")
	assert.Equal(t, vcs.StatusSuccess, checks[0].State, checks[0].Summary)
	assert.EqualValues(t, 1, applyJob(t, w).Status.Succeeded)
	ctx := context.Background()
	plans, err := w.srv.Store().ListPlansByPR(ctx, "github", w.Repo().FullName(), 1)
	require.NoError(t, err)
	applied, err := w.srv.Store().LastApplied(ctx, "github", w.Repo().FullName(), plans[0].Project, "prod")
	require.NoError(t, err, "the followed apply recorded what prod holds")
	assert.Equal(t, merge, applied.CommitSHA)
	assert.NotEmpty(t, applied.ContentHash)
}

// An apply a version before resume states started (nothing says what it was asked to do) cannot be followed:
// its Job is stopped, and only once it is gone does the apply end as interrupted and its lock go.
func TestBotRestartMidApplyItCannotResumeStopsTheJobBeforeReleasingTheLock(t *testing.T) {
	w := newWorld(t, nil)
	head := w.PR(1, "slow", "alice", map[string]string{"models/slow_events.py": slowModel})
	require.Equal(t, 202, w.send(w.PREvent(vcs.PROpened, 1)).Status)
	w.waitForCheck("dagctl/plan: dev", head, completed)
	w.waitJobs()
	id := w.AddComment(1, "bob", "/dagctl apply dev")
	require.Equal(t, 202, w.send(w.CommentEvent(1, id)).Status)
	w.waitForCheck("dagctl/apply: dev", head, func(c forgetest.Status) bool { return strings.HasPrefix(c.Title, "Applying") })

	w.close(50 * time.Millisecond)
	raw, err := sql.Open("sqlite", w.dbPath)
	require.NoError(t, err)
	_, err = raw.Exec(`DELETE FROM settings WHERE key LIKE 'run_resume/%'`)
	require.NoError(t, err)
	require.NoError(t, raw.Close())
	w.start()

	_, held, err := w.srv.Store().Holder(context.Background(), "github", w.Repo().FullName(), "dev")
	require.NoError(t, err)
	assert.False(t, held, "the interrupted apply's lock is released")
	list, err := cluster.Client.BatchV1().Jobs(w.ns).List(context.Background(), metav1.ListOptions{LabelSelector: "dagctl.dev/kind=apply"})
	require.NoError(t, err)
	assert.Empty(t, list.Items, "its Job was gone before the lock was released")
	w.waitForCheck("dagctl/apply: dev", head, completed)
	w.waitJobs()
	c, _ := w.Status("dagctl/apply: dev", head)
	assert.Equal(t, vcs.StatusFailure, c.State)
	assert.Contains(t, c.Title, "Interrupted")
}
