package db

import (
	"context"
	"fmt"
	"time"
)

// The home page's reads: what runs now, what failed lately, which deliveries died. Each is bounded and reads an
// index or a range of the primary key, since anyone who can reach the bot can ask for the page.

// RunOfPlan is a run with what its plan says of where it belongs.
type RunOfPlan struct {
	Run
	Forge       string
	Repo        string // "owner/name"
	PR          int    // 0 for a default-branch push's plan
	Project     string
	Environment string
	HeadSHA     string
}

const runOfPlanColumns = `r.id, r.plan_id, r.kind, r.executor, r.executor_job_id, r.status, r.exit_code, r.reason, r.created_at,
	r.started_at, r.finished_at, r.log_pruned_at, p.forge, p.repo, p.pr, p.project, p.environment, p.head_sha`

func scanRunOfPlan(r scanner) (RunOfPlan, error) {
	var out RunOfPlan
	run := runScan{}
	err := r.Scan(append(run.dest(), &out.Forge, &out.Repo, &out.PR, &out.Project, &out.Environment, &out.HeadSHA)...)
	out.Run = run.run()
	return out, err
}

// UnfinishedRunsOfPlans returns the newest limit queued or running runs, newest first, and how many there are.
func (s *Store) UnfinishedRunsOfPlans(ctx context.Context, limit int) ([]RunOfPlan, int, error) {
	var total int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM runs WHERE status IN ('queued', 'running')`).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count unfinished runs: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+runOfPlanColumns+` FROM runs r JOIN plans p ON p.id = r.plan_id
		WHERE r.status IN ('queued', 'running') ORDER BY r.id DESC LIMIT ?`, limit)
	runs, err := collect(rows, err, scanRunOfPlan)
	if err != nil {
		return nil, 0, fmt.Errorf("list unfinished runs: %w", err)
	}
	return runs, total, nil
}

// RecentFailures says which runs failed lately.
type RecentFailures struct {
	// Among is how many of the newest runs are looked at: the runs table is never pruned, so the query reads
	// a range of its primary key rather than every row.
	Among int
	// Since leaves out runs that finished before it.
	Since time.Time
	// Limit is how many runs to return (the count covers all of them).
	Limit int
}

const recentFailuresWhere = ` WHERE r.id > (SELECT coalesce(max(id), 0) FROM runs) - ? AND r.status = 'failed' AND r.finished_at >= ?`

// FailedRunsOfPlans returns the newest failed runs of q's window, newest first, and how many failed in it.
func (s *Store) FailedRunsOfPlans(ctx context.Context, q RecentFailures) ([]RunOfPlan, int, error) {
	var total int
	args := []any{q.Among, toMillis(q.Since)}
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM runs r`+recentFailuresWhere, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count failed runs: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+runOfPlanColumns+` FROM runs r JOIN plans p ON p.id = r.plan_id`+
		recentFailuresWhere+` ORDER BY r.id DESC LIMIT ?`, append(args, q.Limit)...)
	runs, err := collect(rows, err, scanRunOfPlan)
	if err != nil {
		return nil, 0, fmt.Errorf("list failed runs: %w", err)
	}
	return runs, total, nil
}

// NewestDeadDeliveries returns the newest limit dead deliveries, newest first, without their bodies
// (DeadDeliveries counts them all).
func (s *Store) NewestDeadDeliveries(ctx context.Context, limit int) ([]Delivery, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, forge, delivery_id, event, ordering_key, x'', status, attempts, last_error,
		worker, received_at, available_at, claimed_at, finished_at, first_failed_at FROM deliveries
		WHERE status = 'dead' ORDER BY id DESC LIMIT ?`, limit)
	out, err := collect(rows, err, scanDelivery)
	if err != nil {
		return nil, fmt.Errorf("list dead deliveries: %w", err)
	}
	return out, nil
}
