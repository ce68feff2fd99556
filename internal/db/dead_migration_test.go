package db

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A queue left by a bot at 0013 (a delivery failed for good, a key backing off, a pruned delivery of a higher
// id) moves to 0014: the failed one is dead with its body, the key keeps its order and ids are not reused.
func TestADatabaseAt0013KeepsItsQueueAndMakesFailedDeliveriesDead(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "dagctl.db")
	old := openAtVersion(t, path, 13)
	for _, stmt := range []string{
		`INSERT INTO deliveries (id, forge, delivery_id, event, ordering_key, body, status, attempts, last_error, received_at, available_at, finished_at) VALUES
			(1, 'github', 'f1', 'pull_request', 'acme/w#1', CAST('{"n":1}' AS BLOB), 'failed', 5, 'github: 502', 1000, 1000, 2000),
			(2, 'github', 'p2', 'pull_request', 'acme/w#1', CAST('{"n":2}' AS BLOB), 'pending', 1, 'github: 502', 1000, 3000, NULL),
			(3, 'github', 'p3', 'pull_request', 'acme/w#1', CAST('{"n":3}' AS BLOB), 'pending', 0, '', 1000, 1000, NULL),
			(9, 'github', 'gone', 'pull_request', 'acme/w#2', x'', 'done', 1, '', 1000, 1000, 1500)`,
		`INSERT INTO delivery_heads (ordering_key, delivery_id, available_at) VALUES ('acme/w#1', 2, 3000)`,
		`DELETE FROM deliveries WHERE id = 9`,
	} {
		_, err := old.ExecContext(ctx, stmt)
		require.NoError(t, err, stmt)
	}
	require.NoError(t, old.Close())

	s, err := Open(path)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	dead, err := s.GetDelivery(ctx, "github", "f1")
	require.NoError(t, err)
	assert.Equal(t, DeliveryDead, dead.Status)
	assert.JSONEq(t, `{"n":1}`, string(dead.Body))
	sum, err := s.DeadDeliveries(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, sum.Count)

	d := mustClaim(t, s, "w")
	assert.Equal(t, "p2", d.DeliveryID, "the key's head is recomputed")
	assert.False(t, d.FirstFailedAt.IsZero(), "a delivery already retrying has a window")
	mustEnqueue(t, s, "new", "acme/w#3")
	fresh, err := s.GetDelivery(ctx, "github", "new")
	require.NoError(t, err)
	assert.Equal(t, int64(10), fresh.ID, "ids go on after the highest ever given")
}

// Pruning seeks the done deliveries by when they finished; it never reads the dead ones (or any body).
func TestPruningDeliveriesUsesItsIndex(t *testing.T) {
	s, _ := openTemp(t)
	rows, err := s.db.QueryContext(context.Background(), `EXPLAIN QUERY PLAN DELETE FROM deliveries WHERE status = 'done' AND finished_at < 5`)
	require.NoError(t, err)
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		require.NoError(t, rows.Scan(&id, &parent, &unused, &detail))
		plan = append(plan, detail)
	}
	require.NotEmpty(t, plan)
	assert.Contains(t, plan[0], "INDEX deliveries_finished", "plan: %v", plan)
}

// /readyz counts the dead deliveries on every probe: it seeks their index, never scans the queue.
func TestCountingDeadDeliveriesUsesItsIndex(t *testing.T) {
	s, _ := openTemp(t)
	var id, parent, unused int
	var detail string
	require.NoError(t, s.db.QueryRowContext(context.Background(), `EXPLAIN QUERY PLAN `+deadSummaryQuery).Scan(&id, &parent, &unused, &detail))
	assert.Contains(t, detail, "INDEX deliveries_dead")
}
