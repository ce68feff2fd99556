package db

import (
	"context"
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// queryPlan is SQLite's plan for a query, one "SCAN"/"SEARCH" detail a line.
func queryPlan(t *testing.T, s *Store, query string, args ...any) string {
	t.Helper()
	rows, err := s.db.Query(`EXPLAIN QUERY PLAN `+query, args...)
	require.NoError(t, err)
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var id, parent, notUsed int
		var detail string
		require.NoError(t, rows.Scan(&id, &parent, &notUsed, &detail))
		lines = append(lines, detail)
	}
	require.NoError(t, rows.Err())
	return strings.Join(lines, "\n")
}

// A claim must not read a key's backlog: 3,000 deliveries on one PR made every claim scan them all while holding
// the writer. The claim reads only delivery_heads (one row per runnable key); keeping it up to date seeks.
func TestClaimingDoesNotScanTheBacklog(t *testing.T) {
	s, _ := openTemp(t)
	claim := queryPlan(t, s, claimHeadQuery, 0)
	assert.NotRegexp(t, `\bdeliveries\b`, claim, "the claim's choice reads only delivery_heads:\n%s", claim)
	refresh := queryPlan(t, s, refreshHeadQuery, "acme/w#1", "acme/w#1")
	for _, line := range strings.Split(refresh, "\n") {
		if strings.Contains(line, "deliveries") {
			assert.Regexp(t, `^SEARCH .*USING (COVERING )?INDEX deliveries_(pending|in_flight)_by_key`, line,
				"refreshing a key's head seeks on its partial index:\n%s", refresh)
		}
	}
}

// oldClaimable is the claim rule as the queue first wrote it, scanning the backlog: the oracle of the heads.
const oldClaimable = `SELECT d.id FROM deliveries d
	WHERE d.status = 'pending' AND d.available_at <= ?
		AND NOT EXISTS (
			SELECT 1 FROM deliveries e
			WHERE e.ordering_key = d.ordering_key AND e.id <> d.id
				AND (e.status = 'in_flight' OR (e.status = 'pending' AND e.id < d.id)))
	ORDER BY d.id LIMIT 1`

// Random enqueues, claims, completions, failures with backoff, operator retries and restarts: every claim takes
// exactly the delivery the backlog-scanning rule would have.
func TestClaimTakesWhatTheBacklogRuleWould(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	opts := []Option{WithClock(clk.Now), WithMaxInterruptions(3)}
	s, path := openTemp(t, opts...)
	rng := rand.New(rand.NewSource(10))
	held := map[int64]string{} // in flight: id → worker
	var failed []int64         // dead
	next := 0
	for step := 0; step < 2000; step++ {
		switch op := rng.Intn(20); {
		case op < 8:
			next++
			mustEnqueue(t, s, fmt.Sprintf("d%d", next), fmt.Sprintf("acme/w#%d", rng.Intn(4)))
		case op < 13:
			var want int64
			err := s.db.QueryRowContext(ctx, oldClaimable, toMillis(clk.Now())).Scan(&want)
			worker := fmt.Sprintf("w%d", step)
			d, ok, cerr := s.Claim(ctx, worker)
			require.NoError(t, cerr)
			if err != nil {
				require.False(t, ok, "step %d: claimed %d where the rule has none", step, d.ID)
				continue
			}
			require.True(t, ok, "step %d: the rule claims %d", step, want)
			require.Equal(t, want, d.ID, "step %d", step)
			held[d.ID] = worker
		case op < 17:
			for id, worker := range held {
				delete(held, id)
				if op == 16 {
					if rng.Intn(3) == 0 {
						require.NoError(t, s.GiveUp(ctx, id, worker, "boom"))
						failed = append(failed, id)
					} else {
						require.NoError(t, s.Fail(ctx, id, worker, "boom", clk.Now().Add(time.Duration(rng.Intn(5))*time.Second)))
					}
				} else {
					require.NoError(t, s.Complete(ctx, id, worker))
				}
				break
			}
		case op == 17 && len(failed) > 0:
			require.NoError(t, s.RetryDelivery(ctx, failed[0]))
			failed = failed[1:]
		case op == 18:
			clk.Advance(time.Duration(rng.Intn(3000)) * time.Millisecond)
		case op == 19 && rng.Intn(10) == 0:
			s = reopen(t, s, path, opts...)
			_, err := s.RequeueInFlight(ctx)
			require.NoError(t, err)
			held = map[int64]string{}
			failed = nil // some may have died in the requeue; RetryDelivery is exercised enough before
		}
	}
}
