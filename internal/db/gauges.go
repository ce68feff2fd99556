package db

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/dagctl/dagctl-bot/internal/plan"
)

// Gauges is what the store holds right now that an operator watches (the metrics read it at each scrape, so a
// gauge is always the store's word and never drifts from it). Every map is keyed by forge.
type Gauges struct {
	// Queued counts the deliveries not handled yet: pending (waiting, or backing off before a retry) or in flight.
	Queued map[string]int
	// OldestQueued is when the oldest of them was received.
	OldestQueued map[string]time.Time
	// Dead counts the deliveries given up on, kept for an operator's retry.
	Dead map[string]int
	// OutboxPending counts the forge writes not sent yet; OldestOutbox is when the oldest was enqueued.
	OutboxPending map[string]int
	OldestOutbox  map[string]time.Time
	// AwaitingApproval counts the plans waiting for an approval (see PlansAwaitingApproval).
	AwaitingApproval map[string]int
}

// Gauges reads every gauge in one read transaction, so that they agree with each other.
func (s *Store) Gauges(ctx context.Context) (Gauges, error) {
	g := Gauges{Queued: map[string]int{}, OldestQueued: map[string]time.Time{}, Dead: map[string]int{},
		OutboxPending: map[string]int{}, OldestOutbox: map[string]time.Time{}, AwaitingApproval: map[string]int{}}
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return Gauges{}, fmt.Errorf("gauges: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	// Each query reads a partial index's rows only (deliveries_pending, deliveries_in_flight_by_key,
	// deliveries_dead; the outbox holds only unsent writes).
	queries := []struct {
		query  string
		count  map[string]int
		oldest map[string]time.Time
	}{
		{`SELECT forge, count(*), min(received_at) FROM deliveries WHERE status IN ('pending', 'in_flight') GROUP BY forge`, g.Queued, g.OldestQueued},
		{`SELECT forge, count(*), min(received_at) FROM deliveries WHERE status = 'dead' GROUP BY forge`, g.Dead, nil},
		{`SELECT forge, count(*), min(enqueued_at) FROM outbox GROUP BY forge`, g.OutboxPending, g.OldestOutbox},
		{awaitingApprovalQuery, g.AwaitingApproval, nil},
	}
	for _, q := range queries {
		if err := countByForge(ctx, tx, q.query, q.count, q.oldest); err != nil {
			return Gauges{}, err
		}
	}
	return g, nil
}

// awaitingApprovalQuery counts the plans waiting for an approval: ready (they have changes), the newest plan of
// their PR's project and environment, whose last approval evaluation was not satisfied, with no apply run that
// succeeded, of a PR that did not end (SetPREnded). A plan of an environment that needs no approval has no
// unsatisfied evaluation (the evaluator records none for it). The third column only fits countByForge's shape.
const awaitingApprovalQuery = `SELECT p.forge, count(*), 0 FROM plans p
	JOIN approvals a ON a.plan_id = p.id AND a.satisfied = 0
	WHERE p.status = '` + string(plan.StatusReady) + `'
	AND NOT EXISTS (SELECT 1 FROM plans n WHERE n.forge = p.forge AND n.repo = p.repo AND n.pr = p.pr
		AND n.project = p.project AND n.environment = p.environment AND n.id > p.id)
	AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.plan_id = p.id AND r.kind = 'apply' AND r.status = 'succeeded')
	AND NOT EXISTS (SELECT 1 FROM settings e WHERE e.key = 'pr_ended/' || p.forge || '/' || lower(p.repo) || '#' || p.pr)
	GROUP BY p.forge`

func countByForge(ctx context.Context, tx *sql.Tx, query string, count map[string]int, oldest map[string]time.Time) error {
	rows, err := tx.QueryContext(ctx, query)
	if err != nil {
		return fmt.Errorf("gauges: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var forge string
		var n int
		var first sql.NullInt64
		if err := rows.Scan(&forge, &n, &first); err != nil {
			return fmt.Errorf("gauges: %w", err)
		}
		count[forge] = n
		if oldest != nil && first.Valid {
			oldest[forge] = fromMillis(first.Int64)
		}
	}
	return rows.Err()
}
