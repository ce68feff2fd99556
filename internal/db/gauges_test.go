package db

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/plan"
)

func TestGaugesCountTheQueueTheDeadAndTheOutboxByForge(t *testing.T) {
	c := newClock()
	s, _ := openTemp(t, WithClock(c.Now))
	ctx := context.Background()
	start := c.Now()

	empty, err := s.Gauges(ctx)
	require.NoError(t, err)
	assert.Empty(t, empty.Queued)
	assert.Empty(t, empty.Dead)

	for i, id := range []string{"d1", "d2", "d3"} {
		_, err := s.Enqueue(ctx, "github", id, "pull_request", "github:acme/w#"+string(rune('1'+i)), []byte(`{}`))
		require.NoError(t, err)
		c.Advance(time.Minute)
	}
	_, err = s.Enqueue(ctx, "gitlab", "g1", "Merge Request Hook", "gitlab:acme/w!1", []byte(`{}`))
	require.NoError(t, err)
	// d1 is handled, d2 is in flight and then given up: dead; d3 waits.
	done, ok, err := s.Claim(ctx, "w")
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, s.Complete(ctx, done.ID, "w"))
	dying, ok, err := s.Claim(ctx, "w")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "d2", dying.DeliveryID)
	inFlight, err := s.Gauges(ctx)
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"github": 2, "gitlab": 1}, inFlight.Queued, "in flight counts as queued")
	assert.Equal(t, start.Add(time.Minute), inFlight.OldestQueued["github"], "d1 is done: d2 is the oldest")
	require.NoError(t, s.GiveUp(ctx, dying.ID, "w", "502 for a day"))

	_, _, err = s.EnqueueOutbox(ctx, outboxWrite("k1", `"a"`, 1))
	require.NoError(t, err)
	c.Advance(time.Minute)
	_, _, err = s.EnqueueOutbox(ctx, outboxWrite("k2", `"b"`, 1))
	require.NoError(t, err)
	outboxStart := start.Add(3 * time.Minute)

	g, err := s.Gauges(ctx)
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"github": 1, "gitlab": 1}, g.Queued)
	assert.Equal(t, start.Add(2*time.Minute), g.OldestQueued["github"])
	assert.Equal(t, start.Add(3*time.Minute), g.OldestQueued["gitlab"])
	assert.Equal(t, map[string]int{"github": 1}, g.Dead)
	assert.Equal(t, map[string]int{"github": 2}, g.OutboxPending)
	assert.Equal(t, outboxStart, g.OldestOutbox["github"])

	// A sent write leaves the outbox; the gauge follows the table.
	w, ok, err := s.ClaimOutbox(ctx, "github", "7", c.Now())
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, s.FinishOutbox(ctx, w, "", ""))
	g, err = s.Gauges(ctx)
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"github": 1}, g.OutboxPending)
}

func TestGaugesCountOnlyTheNewestUnappliedReadyPlansWithoutTheirApproval(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	ready := func(p Plan) Plan {
		p = mustCreatePlan(t, s, p)
		_, err := s.SetPlanStatus(ctx, p.ID, plan.StatusRunning)
		require.NoError(t, err)
		sum := sampleSummary()
		p, err = s.SetPlanResult(ctx, p.ID, PlanResult{Status: plan.StatusReady, Summary: &sum})
		require.NoError(t, err)
		return p
	}
	approval := func(p Plan, satisfied bool) {
		require.NoError(t, s.RecordApproval(ctx, ApprovalSnapshot{PlanID: p.ID, SHA: p.HeadSHA, Satisfied: satisfied}))
	}
	count := func() int {
		g, err := s.Gauges(ctx)
		require.NoError(t, err)
		return g.AwaitingApproval["github"]
	}

	waiting := ready(newPlan(1, "prod", "a1"))
	approval(waiting, false)
	assert.Equal(t, 1, count())

	ready(newPlan(2, "dev", "b1")) // an environment without approval: no evaluation is recorded
	approved := ready(newPlan(3, "prod", "c1"))
	approval(approved, true)
	assert.Equal(t, 1, count(), "neither a plan that needs no approval nor an approved one waits")

	// The approval given later: the evaluation is recorded again, satisfied.
	approval(waiting, true)
	assert.Equal(t, 0, count())
	approval(waiting, false) // withdrawn
	assert.Equal(t, 1, count())

	// A newer head's plan of the same slot replaces the older one (which would be stale anyway).
	newer := ready(newPlan(1, "prod", "a2"))
	assert.Equal(t, 0, count(), "the newest plan has no evaluation yet")
	approval(newer, false)
	assert.Equal(t, 1, count())

	// Applied (an admin's --accept, or the approval came and the apply succeeded): no longer waiting.
	run, _, err := s.CreateRun(ctx, newer.ID, jobs.KindApply, "local")
	require.NoError(t, err)
	_, err = s.FinishRun(ctx, run.ID, RunResultFrom(jobs.Result{ExitCode: 1}))
	require.NoError(t, err)
	assert.Equal(t, 1, count(), "a failed apply applied nothing")
	run, _, err = s.CreateRun(ctx, newer.ID, jobs.KindApply, "local")
	require.NoError(t, err)
	_, err = s.FinishRun(ctx, run.ID, RunResultFrom(jobs.Result{ExitCode: 0}))
	require.NoError(t, err)
	assert.Equal(t, 0, count())
}

func TestAPlanOfAPRThatEndedAwaitsNoApproval(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	p := mustCreatePlan(t, s, newPlan(7, "prod", "a1"))
	_, err := s.SetPlanStatus(ctx, p.ID, plan.StatusRunning)
	require.NoError(t, err)
	sum := sampleSummary()
	_, err = s.SetPlanResult(ctx, p.ID, PlanResult{Status: plan.StatusReady, Summary: &sum})
	require.NoError(t, err)
	count := func() int {
		g, err := s.Gauges(ctx)
		require.NoError(t, err)
		return g.AwaitingApproval["github"]
	}

	require.NoError(t, s.SetPREnded(ctx, "github", "acme/warehouse", 8, true)) // another PR's end
	require.NoError(t, s.RecordApproval(ctx, ApprovalSnapshot{PlanID: p.ID, SHA: p.HeadSHA}))
	assert.Equal(t, 1, count())
	require.NoError(t, s.SetPREnded(ctx, "github", "Acme/Warehouse", 7, true)) // the forge's spelling may differ
	assert.Zero(t, count(), "closed without the approval: nothing waits any more")
	require.NoError(t, s.SetPREnded(ctx, "github", "acme/warehouse", 7, true)) // a replayed close
	require.NoError(t, s.SetPREnded(ctx, "github", "acme/warehouse", 7, false))
	assert.Equal(t, 1, count(), "reopened: it waits again")
}
