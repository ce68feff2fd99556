package db

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/plan"
)

func newPlan(pr int, env, sha string) Plan {
	return Plan{Forge: "github", Repo: "acme/warehouse", PR: pr, Project: "sqlmesh", Environment: env,
		HeadSHA: sha, BaseSHA: "base0", TriggerUser: "alice"}
}

func mustCreatePlan(t *testing.T, s *Store, p Plan) Plan {
	t.Helper()
	p, err := s.CreatePlan(context.Background(), p)
	require.NoError(t, err)
	return p
}

func sampleSummary() plan.Summary {
	return plan.Summary{
		Tool: "sqlmesh", ToolVersion: "0.236.4", Environment: "pr_12",
		DirectlyModified: []plan.Change{{Model: "db.orders", Kind: "FULL", Category: plan.Breaking, Diff: "-a\n+b",
			Children: []string{"db.revenue"}}},
		IndirectlyModified: []plan.Change{{Model: "db.revenue", Kind: "INCREMENTAL_BY_TIME_RANGE", Category: plan.IndirectBreaking}},
		Added:              []plan.Change{{Model: "db.customers", Kind: "VIEW"}},
		Removed:            []plan.Change{{Model: "db.legacy"}},
		MetadataUpdated:    []plan.Change{{Model: "db.docs", Category: plan.Metadata}},
		Restated:           []string{"db.events"},
		Backfills: []plan.Backfill{
			{Model: "db.orders", Kind: plan.BackfillFullRefresh},
			{Model: "db.revenue", Kind: plan.BackfillIntervals, Intervals: []plan.Interval{{Start: "2025-01-01", End: "2025-02-01"}}},
			{Model: "db.customers", Kind: plan.BackfillRecreateView},
			{Model: "db.events", Kind: plan.BackfillIntervals, Restatement: true},
		},
	}
}

func TestPlanLifecycle(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s, path := openTemp(t, WithClock(clk.Now))

	in := newPlan(12, "prod", "sha1")
	in.Flags = plan.Flags{ForwardOnly: true, RestateModels: []string{"db.events"}, Start: "2025-01-01"}
	in.Status = plan.StatusReady // ignored: plans start queued
	in.Context = json.RawMessage(`{"job":{"timeout":"30m"},"pr":{"title":"Add orders"}}`)
	p := mustCreatePlan(t, s, in)
	assert.NotZero(t, p.ID)
	assert.Equal(t, plan.StatusQueued, p.Status)

	got, err := s.GetPlan(ctx, p.ID)
	require.NoError(t, err)
	assert.Equal(t, p, got)
	assert.Equal(t, in.Flags, got.Flags)
	assert.JSONEq(t, string(in.Context), string(got.Context))
	assert.Nil(t, got.Summary)

	without, err := s.GetPlan(ctx, mustCreatePlan(t, s, newPlan(12, "dev", "sha1")).ID)
	require.NoError(t, err)
	assert.Nil(t, without.Context)
	bad := newPlan(12, "dev", "sha1")
	bad.Context = json.RawMessage(`{"unterminated`)
	_, err = s.CreatePlan(ctx, bad)
	assert.Error(t, err)

	clk.Advance(time.Second)
	running, err := s.SetPlanStatus(ctx, p.ID, plan.StatusRunning)
	require.NoError(t, err)
	assert.Equal(t, plan.StatusRunning, running.Status)
	assert.Equal(t, clk.Now(), running.UpdatedAt)

	sum := sampleSummary()
	ready, err := s.SetPlanResult(ctx, p.ID, PlanResult{Status: plan.Outcome(sum), Summary: &sum})
	require.NoError(t, err)
	assert.Equal(t, plan.StatusReady, ready.Status)

	s = reopen(t, s, path, WithClock(clk.Now))
	got, err = s.GetPlan(ctx, p.ID)
	require.NoError(t, err)
	assert.Equal(t, ready, got)
	require.NotNil(t, got.Summary)
	assert.Equal(t, sum, *got.Summary)

	models, err := s.PlanModels(ctx, p.ID)
	require.NoError(t, err)
	assert.Equal(t, []PlanModel{
		{PlanID: p.ID, Model: "db.customers", Change: ChangeAdded, Kind: "VIEW", Backfill: plan.BackfillRecreateView},
		{PlanID: p.ID, Model: "db.docs", Change: ChangeMetadata, Category: plan.Metadata},
		{PlanID: p.ID, Model: "db.events", Change: ChangeBackfill, Backfill: plan.BackfillIntervals, Restatement: true},
		{PlanID: p.ID, Model: "db.legacy", Change: ChangeRemoved},
		{PlanID: p.ID, Model: "db.orders", Change: ChangeDirect, Category: plan.Breaking, Kind: "FULL", Backfill: plan.BackfillFullRefresh},
		{PlanID: p.ID, Model: "db.revenue", Change: ChangeIndirect, Category: plan.IndirectBreaking, Kind: "INCREMENTAL_BY_TIME_RANGE",
			Backfill: plan.BackfillIntervals},
	}, models)

	_, err = s.GetPlan(ctx, 9999)
	assert.ErrorIs(t, err, ErrNotFound)
}

func TestIllegalPlanTransitionsAreRejected(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	p := mustCreatePlan(t, s, newPlan(1, "prod", "a"))

	for _, to := range []plan.Status{plan.StatusReady, plan.StatusNoChanges, plan.StatusQueued} {
		_, err := s.SetPlanStatus(ctx, p.ID, to)
		assert.ErrorIs(t, err, ErrTransition, "queued → %s", to)
	}
	_, err := s.SetPlanResult(ctx, p.ID, PlanResult{Status: plan.StatusReady, Summary: &plan.Summary{Tool: "sqlmesh"}})
	assert.ErrorIs(t, err, ErrTransition)
	models, err := s.PlanModels(ctx, p.ID)
	require.NoError(t, err)
	assert.Empty(t, models, "a rejected result writes nothing")

	_, err = s.SetPlanResult(ctx, p.ID, PlanResult{Status: plan.StatusFailed, Error: "git clone failed"})
	require.NoError(t, err)
	for _, to := range []plan.Status{plan.StatusRunning, plan.StatusReady, plan.StatusStale, plan.StatusQueued} {
		_, err := s.SetPlanStatus(ctx, p.ID, to)
		assert.ErrorIs(t, err, ErrTransition, "failed → %s", to)
	}
	got, err := s.GetPlan(ctx, p.ID)
	require.NoError(t, err)
	assert.Equal(t, plan.StatusFailed, got.Status)
	assert.Equal(t, "git clone failed", got.Error)

	_, err = s.SetPlanStatus(ctx, 424242, plan.StatusRunning)
	assert.ErrorIs(t, err, ErrNotFound)
}

// Two workers finishing the same plan at once (a job result and a cancellation): exactly one wins.
func TestConcurrentTransitionsHaveOneWinner(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	p := mustCreatePlan(t, s, newPlan(1, "prod", "a"))
	_, err := s.SetPlanStatus(ctx, p.ID, plan.StatusRunning)
	require.NoError(t, err)

	targets := []plan.Status{plan.StatusReady, plan.StatusNoChanges, plan.StatusFailed, plan.StatusCancelled}
	var wg sync.WaitGroup
	results := make([]error, 16)
	for i := range results {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, results[i] = s.SetPlanStatus(ctx, p.ID, targets[i%len(targets)])
		}(i)
	}
	wg.Wait()
	wins := 0
	for _, err := range results {
		if err == nil {
			wins++
		} else {
			assert.ErrorIs(t, err, ErrTransition)
		}
	}
	assert.Equal(t, 1, wins)
}

func TestListAndLatestPlans(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	a := mustCreatePlan(t, s, newPlan(12, "prod", "sha1"))
	b := mustCreatePlan(t, s, newPlan(12, "dev", "sha1"))
	c := mustCreatePlan(t, s, newPlan(12, "prod", "sha2"))
	other := newPlan(12, "prod", "sha2")
	other.Repo = "acme/other"
	mustCreatePlan(t, s, other)
	mustCreatePlan(t, s, newPlan(13, "prod", "sha9"))

	all, err := s.ListPlansByPR(ctx, "github", "Acme/Warehouse", 12)
	require.NoError(t, err)
	assert.Equal(t, []int64{a.ID, b.ID, c.ID}, planIDs(all))

	latest, err := s.LatestPlan(ctx, "github", "acme/warehouse", 12, "sqlmesh", "prod")
	require.NoError(t, err)
	assert.Equal(t, c.ID, latest.ID)
	_, err = s.LatestPlan(ctx, "github", "acme/warehouse", 12, "sqlmesh", "staging")
	assert.ErrorIs(t, err, ErrNotFound)

	perEnv, err := s.LatestPlansByPR(ctx, "github", "acme/warehouse", 12)
	require.NoError(t, err)
	assert.Equal(t, []int64{b.ID, c.ID}, planIDs(perEnv), "dev then prod, newest of each")
}

func TestMarkStale(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	queued := mustCreatePlan(t, s, newPlan(12, "q", "old"))
	running := mustCreatePlan(t, s, newPlan(12, "r", "old"))
	ready := mustCreatePlan(t, s, newPlan(12, "ok", "old"))
	failed := mustCreatePlan(t, s, newPlan(12, "f", "old"))
	current := mustCreatePlan(t, s, newPlan(12, "q", "new"))
	otherPR := mustCreatePlan(t, s, newPlan(99, "q", "old"))

	_, err := s.SetPlanStatus(ctx, running.ID, plan.StatusRunning)
	require.NoError(t, err)
	_, err = s.SetPlanStatus(ctx, ready.ID, plan.StatusRunning)
	require.NoError(t, err)
	_, err = s.SetPlanResult(ctx, ready.ID, PlanResult{Status: plan.StatusReady, Summary: &plan.Summary{}})
	require.NoError(t, err)
	_, err = s.SetPlanStatus(ctx, failed.ID, plan.StatusFailed)
	require.NoError(t, err)

	changed, err := s.MarkStale(ctx, "github", "acme/warehouse", 12, "new")
	require.NoError(t, err)
	require.Len(t, changed, 3)
	assert.Equal(t, queued.ID, changed[0].Plan.ID)
	assert.Equal(t, plan.StatusQueued, changed[0].From)
	assert.Equal(t, running.ID, changed[1].Plan.ID)
	assert.Equal(t, plan.StatusRunning, changed[1].From)
	assert.Equal(t, ready.ID, changed[2].Plan.ID)
	assert.Equal(t, plan.StatusReady, changed[2].From)
	for _, c := range changed {
		assert.Equal(t, plan.StatusStale, c.Plan.Status)
	}

	for id, want := range map[int64]plan.Status{
		failed.ID: plan.StatusFailed, current.ID: plan.StatusQueued, otherPR.ID: plan.StatusQueued, ready.ID: plan.StatusStale,
	} {
		p, err := s.GetPlan(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, want, p.Status, "plan %d", id)
	}

	again, err := s.MarkStale(ctx, "github", "acme/warehouse", 12, "new")
	require.NoError(t, err)
	assert.Empty(t, again, "marking twice changes nothing more")
}

func TestApprovalSnapshots(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s, path := openTemp(t, WithClock(clk.Now))
	p := mustCreatePlan(t, s, newPlan(12, "prod", "sha1"))

	_, err := s.Approval(ctx, p.ID)
	assert.ErrorIs(t, err, ErrNotFound)

	require.NoError(t, s.RecordApproval(ctx, ApprovalSnapshot{PlanID: p.ID, SHA: "sha1", Missing: []string{"1 approval from @acme/data"}}))
	first, err := s.Approval(ctx, p.ID)
	require.NoError(t, err)
	assert.False(t, first.Satisfied)
	assert.Equal(t, []Approver{}, first.Approvers)
	assert.Equal(t, clk.Now(), first.EvaluatedAt)

	clk.Advance(time.Hour)
	snap := ApprovalSnapshot{PlanID: p.ID, SHA: "sha1", Satisfied: true,
		Approvers: []Approver{{User: "bob", SHA: "sha1", At: clk.Now().Add(-time.Minute)}}, Missing: []string{}, EvaluatedAt: clk.Now()}
	require.NoError(t, s.RecordApproval(ctx, snap))
	s = reopen(t, s, path)
	got, err := s.Approval(ctx, p.ID)
	require.NoError(t, err)
	assert.Equal(t, snap, got, "the last evaluation replaces the previous one")

	assert.Error(t, s.RecordApproval(ctx, ApprovalSnapshot{PlanID: 4242, SHA: "x"}), "the plan must exist")
}

func TestCheckRunsArePerPlanAndName(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	p := mustCreatePlan(t, s, newPlan(12, "prod", "sha1"))
	q := mustCreatePlan(t, s, newPlan(12, "dev", "sha1"))

	_, ok, err := s.CheckRun(ctx, p.ID, "dagctl/plan: prod")
	require.NoError(t, err)
	assert.False(t, ok)

	require.NoError(t, s.SetCheckRun(ctx, p.ID, "dagctl/plan: prod", 100))
	require.NoError(t, s.SetCheckRun(ctx, p.ID, "dagctl/approval: prod", 101))
	require.NoError(t, s.SetCheckRun(ctx, q.ID, "dagctl/plan: dev", 200))
	require.NoError(t, s.SetCheckRun(ctx, p.ID, "dagctl/plan: prod", 102))

	s = reopen(t, s, path)
	id, ok, err := s.CheckRun(ctx, p.ID, "dagctl/plan: prod")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, int64(102), id)
	all, err := s.CheckRuns(ctx, p.ID)
	require.NoError(t, err)
	assert.Equal(t, map[string]int64{"dagctl/plan: prod": 102, "dagctl/approval: prod": 101}, all)
}

func planIDs(ps []Plan) []int64 {
	var out []int64
	for _, p := range ps {
		out = append(out, p.ID)
	}
	return out
}
