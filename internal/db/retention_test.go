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

const day = 24 * time.Hour

// A done delivery older than the retention loses its body and keeps its row; pending, in-flight, given-up and
// recent ones keep everything. The pruned one's id still deduplicates a redelivery.
func TestPruningDeliveryBodiesKeepsTheRowAndSparesWhatIsNotDone(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s, _ := openTemp(t, WithClock(clk.Now))
	for _, id := range []string{"old-done", "old-failed", "in-flight", "pending"} {
		mustEnqueue(t, s, id, id)
	}
	require.NoError(t, s.Complete(ctx, mustClaim(t, s, "w").ID, "w"))
	require.NoError(t, s.GiveUp(ctx, mustClaim(t, s, "w").ID, "w", "boom"))
	mustClaim(t, s, "w") // in-flight stays claimed
	clk.Advance(8 * day)
	mustEnqueue(t, s, "new-done", "new-done")
	require.NoError(t, s.Complete(ctx, mustClaim(t, s, "w").ID, "w"))

	n, err := s.PruneDeliveryBodies(ctx, clk.Now().Add(-7*day), DefaultPruneBatch)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	for id, pruned := range map[string]bool{"old-done": true, "old-failed": false, "in-flight": false, "pending": false, "new-done": false} {
		d, err := s.GetDelivery(ctx, "github", id)
		require.NoError(t, err, id)
		assert.Equal(t, "pull_request", d.Event, id)
		if pruned {
			assert.Empty(t, d.Body, id)
			assert.Equal(t, DeliveryDone, d.Status)
		} else {
			assert.Equal(t, `{"id":"`+id+`"}`, string(d.Body), id)
		}
	}
	inserted, err := s.Enqueue(ctx, "github", "old-done", "pull_request", "old-done", []byte(`{}`))
	require.NoError(t, err)
	assert.False(t, inserted, "a redelivery of a pruned delivery is still a duplicate")
	n, err = s.PruneDeliveryBodies(ctx, clk.Now().Add(-7*day), DefaultPruneBatch)
	require.NoError(t, err)
	assert.Zero(t, n, "nothing is pruned twice")
}

// A prune touches at most its batch of rows per transaction, and the next batch goes on where it stopped.
func TestPruningDeliveryBodiesIsBatched(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s, _ := openTemp(t, WithClock(clk.Now))
	for i := 0; i < 45; i++ {
		mustEnqueue(t, s, fmt.Sprint("d", i), fmt.Sprint("k", i))
		require.NoError(t, s.Complete(ctx, mustClaim(t, s, "w").ID, "w"))
	}
	clk.Advance(8 * day)
	var batches []int
	for {
		n, err := s.PruneDeliveryBodies(ctx, clk.Now().Add(-7*day), 20)
		require.NoError(t, err)
		if n == 0 {
			break
		}
		batches = append(batches, n)
	}
	assert.Equal(t, []int{20, 20, 5}, batches)
}

// Done deliveries' rows go after their own, longer retention, a batch at a time, oldest first; the rest stay.
func TestPruningDeliveryRowsIsBatchedAndSparesWhatIsNotDone(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s, _ := openTemp(t, WithClock(clk.Now))
	for i := 0; i < 45; i++ {
		mustEnqueue(t, s, fmt.Sprint("d", i), fmt.Sprint("k", i))
		require.NoError(t, s.Complete(ctx, mustClaim(t, s, "w").ID, "w"))
	}
	mustEnqueue(t, s, "dead", "kd")
	require.NoError(t, s.GiveUp(ctx, mustClaim(t, s, "w").ID, "w", "boom"))
	mustEnqueue(t, s, "pending", "kp")
	clk.Advance(31 * day)
	mustEnqueue(t, s, "recent", "kr")
	require.NoError(t, s.Complete(ctx, mustClaim(t, s, "w").ID, "w"))

	p, err := s.Prune(ctx, Retention{Deliveries: 30 * day, Batch: 20}, clk.Now(), func(context.Context) error { return nil })
	require.NoError(t, err)
	assert.Equal(t, Pruned{Deliveries: 45, Batches: 3}, p)
	for id, kept := range map[string]bool{"d0": false, "d44": false, "dead": true, "pending": true, "recent": true} {
		_, err := s.GetDelivery(ctx, "github", id)
		if kept {
			assert.NoError(t, err, id)
		} else {
			assert.ErrorIs(t, err, ErrNotFound, id)
		}
	}
}

// finishedRun stores a plan's run with log lines and result lines, finished on the store's clock.
func finishedRun(t *testing.T, s *Store, pr, logLines int) Run {
	t.Helper()
	ctx := context.Background()
	p := mustCreatePlan(t, s, newPlan(pr, "prod", fmt.Sprint("sha", pr)))
	r, _, err := s.CreateRun(ctx, p.ID, jobs.KindPlan, "local")
	require.NoError(t, err)
	w := s.NewRunLogWriter(r.ID, time.Hour)
	for i := 0; i < logLines; i++ {
		w.Sink(jobs.Line{Stream: "stdout", Text: fmt.Sprint("line ", i)})
	}
	w.Sink(jobs.Line{Stream: "stdout", Text: jobs.ResultPrefix + "plan:: {}"})
	require.NoError(t, w.Close(ctx))
	_, err = s.StartRun(ctx, r.ID, "job")
	require.NoError(t, err)
	r, err = s.FinishRun(ctx, r.ID, RunResult{Status: RunSucceeded})
	require.NoError(t, err)
	return r
}

// Runs finished before the retention lose their log and result lines; the run, its plan and its approval stay,
// the run says when its log was pruned, and reading its log is an empty log, not an error. Recent and
// unfinished runs keep theirs.
func TestPruningRunLogsKeepsRunsPlansAndRecentLogs(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s, _ := openTemp(t, WithClock(clk.Now))
	old := finishedRun(t, s, 1, 30)
	require.NoError(t, s.RecordApproval(ctx, ApprovalSnapshot{PlanID: old.PlanID, SHA: "sha1", Satisfied: true}))
	p := mustCreatePlan(t, s, newPlan(2, "prod", "sha2"))
	unfinished, _, err := s.CreateRun(ctx, p.ID, jobs.KindPlan, "local")
	require.NoError(t, err)
	require.NoError(t, s.AppendRunLog(ctx, unfinished.ID, []LogLine{{Stream: "stdout", Text: "still going"}}))
	clk.Advance(91 * day)
	recent := finishedRun(t, s, 3, 30)
	clk.Advance(day)

	n, err := s.PruneRunLogs(ctx, clk.Now().Add(-90*day), DefaultPruneBatch)
	require.NoError(t, err)
	assert.Equal(t, 32, n, "30 log lines, the result line in the log and kept aside")

	pruned, err := s.GetRun(ctx, old.ID)
	require.NoError(t, err)
	assert.Equal(t, clk.Now(), pruned.LogPrunedAt)
	assert.Equal(t, RunSucceeded, pruned.Status)
	lines, err := s.RunLog(ctx, old.ID)
	require.NoError(t, err)
	assert.Empty(t, lines)
	results, err := s.RunResultLines(ctx, old.ID)
	require.NoError(t, err)
	assert.Empty(t, results)
	_, err = s.GetPlan(ctx, old.PlanID)
	assert.NoError(t, err, "the plan is kept")
	a, err := s.Approval(ctx, old.PlanID)
	require.NoError(t, err, "the approval is kept")
	assert.True(t, a.Satisfied)

	for _, id := range []int64{recent.ID, unfinished.ID} {
		r, err := s.GetRun(ctx, id)
		require.NoError(t, err)
		assert.True(t, r.LogPrunedAt.IsZero(), "run %d", id)
		lines, err := s.RunLog(ctx, id)
		require.NoError(t, err)
		assert.NotEmpty(t, lines, "run %d keeps its log", id)
	}
	n, err = s.PruneRunLogs(ctx, clk.Now().Add(-90*day), DefaultPruneBatch)
	require.NoError(t, err)
	assert.Zero(t, n)
}

// A run's log longer than a batch is pruned over several transactions of at most a batch each, and the run is
// marked pruned only once its last row is gone; small runs share a batch.
func TestPruningRunLogsIsBatched(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s, _ := openTemp(t, WithClock(clk.Now))
	big := finishedRun(t, s, 1, 49)  // 51 rows: 49 lines, its result line in the log and aside
	small := finishedRun(t, s, 2, 4) // 6 rows
	clk.Advance(91 * day)
	var batches []int
	for {
		n, err := s.PruneRunLogs(ctx, clk.Now().Add(-90*day), 20)
		require.NoError(t, err)
		if n == 0 {
			break
		}
		batches = append(batches, n)
		r, err := s.GetRun(ctx, big.ID)
		require.NoError(t, err)
		left, err := s.RunLog(ctx, big.ID)
		require.NoError(t, err)
		assert.Equal(t, len(left) == 0, !r.LogPrunedAt.IsZero(), "marked pruned exactly when its log is gone")
	}
	assert.Equal(t, []int{20, 20, 17}, batches, "the big run's 51 rows, then the small run's 6 in the same batch")
	r, err := s.GetRun(ctx, small.ID)
	require.NoError(t, err)
	assert.False(t, r.LogPrunedAt.IsZero())
}

// Each batch chooses its rows by a seek on an index, never by scanning the history of deliveries or runs.
func TestPruningSeeks(t *testing.T) {
	s, _ := openTemp(t)
	for _, c := range []struct {
		query, index string
		args         []any
	}{
		{prunableBodiesQuery, "deliveries_done_with_body", []any{0, 10}},
		{prunableRunQuery, "runs_log_kept", []any{0}},
		{prunableDeliveriesQuery, "deliveries_finished", []any{0, 10}},
	} {
		plan := queryPlan(t, s, c.query, c.args...)
		assert.Regexp(t, `SEARCH \w+ USING (COVERING )?INDEX `+c.index, plan, c.query)
		assert.NotContains(t, plan, "SCAN", c.query)
		assert.NotContains(t, plan, "TEMP B-TREE", "ordered by the index itself: %s", c.query)
	}
}

// Prune empties what the retention allows, a batch at a time, pausing between batches (the writer is free then),
// and keeps forever what has no retention.
func TestPruneRunsBatchesWithAPauseBetween(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s, _ := openTemp(t, WithClock(clk.Now))
	for i := 0; i < 25; i++ {
		mustEnqueue(t, s, fmt.Sprint("d", i), fmt.Sprint("k", i))
		require.NoError(t, s.Complete(ctx, mustClaim(t, s, "w").ID, "w"))
	}
	finishedRun(t, s, 1, 9) // 11 rows
	clk.Advance(100 * day)
	pauses := 0
	writerFree := func(ctx context.Context) error {
		pauses++
		// The writer is free between batches: a write of the intake gets it at once.
		_, err := s.Enqueue(ctx, "github", fmt.Sprint("during-", pauses), "ping", "", []byte(`{}`))
		return err
	}
	p, err := s.Prune(ctx, Retention{DeliveryBodies: 7 * day, RunLogs: 90 * day, Batch: 10}, clk.Now(), writerFree)
	require.NoError(t, err)
	assert.Equal(t, Pruned{DeliveryBodies: 25, RunLogRows: 11, Batches: 5}, p)
	assert.Equal(t, 3, pauses, "after each full batch: 10, 10 (bodies), 10 (log rows)")

	kept, err := s.Prune(ctx, Retention{Batch: 10}, clk.Now().Add(1000*day), writerFree)
	require.NoError(t, err)
	assert.Equal(t, Pruned{}, kept, "no retention keeps everything")
}
