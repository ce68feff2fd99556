package db

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/jobs"
)

// runIn stores a run of p and takes it to status (queued stays queued).
func runIn(t *testing.T, s *Store, p Plan, kind jobs.Kind, status RunStatus, reason string) Run {
	t.Helper()
	ctx := context.Background()
	r, _, err := s.CreateRun(ctx, p.ID, kind, "local")
	require.NoError(t, err)
	if status == RunQueued {
		return r
	}
	r, err = s.StartRun(ctx, r.ID, fmt.Sprintf("job-%d", r.ID))
	require.NoError(t, err)
	if status == RunRunning {
		return r
	}
	code := 1
	r, err = s.FinishRun(ctx, r.ID, RunResult{Status: status, ExitCode: &code, Reason: reason})
	require.NoError(t, err)
	return r
}

func ids(runs []RunOfPlan) []int64 {
	var out []int64
	for _, r := range runs {
		out = append(out, r.ID)
	}
	return out
}

func TestUnfinishedRunsOfPlansAreTheQueuedAndRunningOnesNewestFirst(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t, WithClock(newClock().Now))
	pr12 := mustCreatePlan(t, s, newPlan(12, "prod", "sha12"))
	other := newPlan(3, "dev", "sha3")
	other.Repo, other.Forge, other.Project = "beta/lake", "gitlab", "marts"
	pr3 := mustCreatePlan(t, s, other)

	queued := runIn(t, s, pr12, jobs.KindPlan, RunQueued, "")
	runIn(t, s, pr12, jobs.KindPlan, RunSucceeded, "")
	running := runIn(t, s, pr3, jobs.KindApply, RunRunning, "")
	runIn(t, s, pr3, jobs.KindPlan, RunFailed, "exit 1")
	newest := runIn(t, s, pr12, jobs.KindPlan, RunRunning, "")

	runs, total, err := s.UnfinishedRunsOfPlans(ctx, 10)
	require.NoError(t, err)
	assert.Equal(t, 3, total)
	assert.Equal(t, []int64{newest.ID, running.ID, queued.ID}, ids(runs))
	got := runs[1]
	assert.Equal(t, RunOfPlan{Run: running, Forge: "gitlab", Repo: "beta/lake", PR: 3, Project: "marts",
		Environment: "dev", HeadSHA: "sha3"}, got)

	// The limit cuts the list, not the count.
	runs, total, err = s.UnfinishedRunsOfPlans(ctx, 1)
	require.NoError(t, err)
	assert.Equal(t, 3, total)
	assert.Equal(t, []int64{newest.ID}, ids(runs))
}

func TestFailedRunsOfPlansAreTheFailuresOfTheWindow(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s, _ := openTemp(t, WithClock(clk.Now))
	p := mustCreatePlan(t, s, newPlan(12, "prod", "sha12"))

	old := runIn(t, s, p, jobs.KindPlan, RunFailed, "too old")
	clk.Advance(48 * time.Hour)
	since := clk.Now()
	early := runIn(t, s, p, jobs.KindApply, RunFailed, "exit 1")
	runIn(t, s, p, jobs.KindPlan, RunSucceeded, "")
	runIn(t, s, p, jobs.KindPlan, RunCancelled, "cancelled")
	runIn(t, s, p, jobs.KindPlan, RunRunning, "")
	late := runIn(t, s, p, jobs.KindPlan, RunFailed, "exit 2")

	runs, total, err := s.FailedRunsOfPlans(ctx, RecentFailures{Among: 100, Since: since, Limit: 10})
	require.NoError(t, err)
	assert.Equal(t, 2, total, "the old failure, cancellations and unfinished runs are not failures of the window")
	assert.Equal(t, []int64{late.ID, early.ID}, ids(runs))
	assert.Equal(t, "exit 2", runs[0].Reason)
	assert.Equal(t, "acme/warehouse", runs[0].Repo)

	// Among counts back from the newest run: the last 4 runs hold one failure.
	runs, total, err = s.FailedRunsOfPlans(ctx, RecentFailures{Among: 4, Since: since, Limit: 10})
	require.NoError(t, err)
	assert.Equal(t, 1, total)
	assert.Equal(t, []int64{late.ID}, ids(runs))

	// Since at the zero time and a wide window: the old one too, cut by the limit.
	runs, total, err = s.FailedRunsOfPlans(ctx, RecentFailures{Among: 100, Limit: 2})
	require.NoError(t, err)
	assert.Equal(t, 3, total)
	assert.Equal(t, []int64{late.ID, early.ID}, ids(runs))
	assert.NotContains(t, ids(runs), old.ID)
}

func TestTheHomePagesReadsSeekRatherThanScan(t *testing.T) {
	s, _ := openTemp(t)
	failures := queryPlan(t, s, `SELECT count(*) FROM runs r`+recentFailuresWhere, 5000, 0)
	assert.Contains(t, failures, "SEARCH r USING INTEGER PRIMARY KEY (rowid>?)")
	assert.NotContains(t, failures, "SCAN r")
	unfinished := queryPlan(t, s, `SELECT count(*) FROM runs WHERE status IN ('queued', 'running')`)
	assert.Contains(t, unfinished, "runs_unfinished")
	dead := queryPlan(t, s, `SELECT id FROM deliveries WHERE status = 'dead' ORDER BY id DESC LIMIT 5`)
	assert.Contains(t, dead, "deliveries_dead")
}

func TestNewestDeadDeliveriesAreTheDeadOnesNewestFirst(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t, WithClock(newClock().Now))
	kill := func(id string) {
		_, err := s.Enqueue(ctx, "github", id, "pull_request", "github:acme/warehouse#"+id, []byte(`{}`))
		require.NoError(t, err)
		d, ok, err := s.Claim(ctx, "w")
		require.NoError(t, err)
		require.True(t, ok)
		require.NoError(t, s.GiveUp(ctx, d.ID, "w", "forge said no to "+id))
	}
	kill("1")
	kill("2")
	kill("3")
	_, err := s.Enqueue(ctx, "github", "pending", "push", "github:acme/warehouse", []byte(`{}`))
	require.NoError(t, err)

	dead, err := s.NewestDeadDeliveries(ctx, 2)
	require.NoError(t, err)
	require.Len(t, dead, 2)
	assert.Equal(t, []string{"3", "2"}, []string{dead[0].DeliveryID, dead[1].DeliveryID})
	assert.Equal(t, DeliveryDead, dead[0].Status)
	assert.Equal(t, "forge said no to 3", dead[0].LastError)
	assert.Equal(t, "github:acme/warehouse#3", dead[0].OrderingKey)
	assert.Empty(t, dead[0].Body, "bodies are not read")
}
