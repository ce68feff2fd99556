package db

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// DefaultPruneBatch is how many rows one prune transaction touches at most: small enough that it holds the
// writer for about a millisecond, so the intake's writes queued behind it barely wait (BenchmarkSoak: batches of
// 200 held it 32 ms at p99, of 50 under 12 ms).
const DefaultPruneBatch = 50

// The queries a prune batch chooses its rows by; each is a seek on an index of migration 0015, whose terms it
// repeats exactly (TestPruningSeeks).
const (
	prunableBodiesQuery = `SELECT id FROM deliveries WHERE status = 'done' AND length(body) > 0 AND finished_at < ?
		ORDER BY finished_at LIMIT ?`
	prunableDeliveriesQuery = `SELECT id FROM deliveries WHERE status = 'done' AND finished_at < ?
		ORDER BY finished_at LIMIT ?`
	prunableRunQuery = `SELECT id FROM runs WHERE finished_at IS NOT NULL AND log_pruned_at IS NULL
		AND finished_at < ? ORDER BY finished_at LIMIT 1`
)

// PruneDeliveryBodies empties the bodies of up to limit done deliveries that finished before the given time,
// oldest first, in one transaction, and returns how many. The row stays (its id still deduplicates a
// redelivery; its metadata says what came). Pending, in-flight and given-up deliveries are never touched: only
// status 'done' is.
func (s *Store) PruneDeliveryBodies(ctx context.Context, finishedBefore time.Time, limit int) (int, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE deliveries SET body = x'' WHERE id IN (`+prunableBodiesQuery+`)`,
			toMillis(finishedBefore), limit)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

// PruneRunLogs deletes the stored log lines and result lines of runs that finished before the given time, up to
// limit rows in one transaction, oldest run first, and returns how many rows it deleted. A run whose rows are
// all gone is marked (Run.LogPrunedAt) in the same transaction; the run itself, its plan and approvals stay.
func (s *Store) PruneRunLogs(ctx context.Context, finishedBefore time.Time, limit int) (int, error) {
	deleted := 0
	now := s.nowMillis()
	err := s.write(ctx, func(tx *sql.Tx) error {
		for deleted < limit {
			var runID int64
			err := tx.QueryRowContext(ctx, prunableRunQuery, toMillis(finishedBefore)).Scan(&runID)
			if errors.Is(err, sql.ErrNoRows) {
				return nil
			}
			if err != nil {
				return err
			}
			n, err := pruneRunRows(ctx, tx, runID, limit-deleted)
			if err != nil {
				return err
			}
			deleted += n
			if deleted >= limit {
				return nil // the run may have rows left: the next batch goes on with it
			}
			if _, err := tx.ExecContext(ctx, `UPDATE runs SET log_pruned_at = ? WHERE id = ?`, now, runID); err != nil {
				return err
			}
		}
		return nil
	})
	return deleted, err
}

// pruneRunRows deletes up to limit of a run's log and result rows, first lines first (seeks on their primary
// keys), and returns how many.
func pruneRunRows(ctx context.Context, tx *sql.Tx, runID int64, limit int) (int, error) {
	total := 0
	for _, table := range []string{"run_logs", "run_results"} {
		if total >= limit {
			break
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE run_id = ? AND seq IN (
			SELECT seq FROM `+table+` WHERE run_id = ? ORDER BY seq LIMIT ?)`, runID, runID, limit-total)
		if err != nil {
			return total, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, err
		}
		total += int(n)
	}
	return total, nil
}

// Retention is how long the store keeps what grows with use. Zero keeps it forever.
type Retention struct {
	DeliveryBodies time.Duration // a done delivery's body, after it finished
	Deliveries     time.Duration // a done delivery's row (its id, event and times), after it finished
	RunLogs        time.Duration // a run's log and result lines, after it finished
	// ReviewEvents: a PR's stored review events, after the newest of them was received (all of the PR's at once).
	// An approval whose event is gone has no known time and no longer counts, so keep it at least as long as a PR
	// stays open (the server uses RunLogs').
	ReviewEvents time.Duration
	Batch        int // rows per transaction (DefaultPruneBatch when 0)
}

// Pruned counts what one Prune removed.
type Pruned struct {
	DeliveryBodies int // bodies emptied
	Deliveries     int // done deliveries deleted
	RunLogRows     int // log and result lines deleted
	ReviewEvents   int // review events deleted
	Batches        int // transactions
}

// Prune applies the retention as of now, one batch per transaction until nothing is left, calling pause
// between batches: the writer is free then, so the intake's writes never queue behind more than one batch.
func (s *Store) Prune(ctx context.Context, r Retention, now time.Time, pause func(context.Context) error) (Pruned, error) {
	batch := r.Batch
	if batch <= 0 {
		batch = DefaultPruneBatch
	}
	var p Pruned
	steps := []struct {
		keep  time.Duration
		prune func(context.Context, time.Time, int) (int, error)
		count *int
	}{
		{r.Deliveries, s.PruneDeliveries, &p.Deliveries},
		{r.DeliveryBodies, s.PruneDeliveryBodies, &p.DeliveryBodies},
		{r.RunLogs, s.PruneRunLogs, &p.RunLogRows},
		{r.ReviewEvents, s.PruneReviewEvents, &p.ReviewEvents},
	}
	for _, step := range steps {
		if step.keep <= 0 {
			continue
		}
		for {
			n, err := step.prune(ctx, now.Add(-step.keep), batch)
			if err != nil {
				return p, err
			}
			if n > 0 {
				p.Batches++
				*step.count += n
			}
			if n < batch {
				break
			}
			s.checkpointPassive(ctx)
			if err := pause(ctx); err != nil {
				return p, err
			}
		}
	}
	return p, nil
}

// checkpointPassive copies the WAL's frames into the database without taking the writer (a passive checkpoint
// waits for nobody and gives up where it would), so that the WAL the prune filled does not make the next
// commit, perhaps the intake's, run the automatic checkpoint while it holds the writer. Best effort.
func (s *Store) checkpointPassive(ctx context.Context) {
	_, _ = s.db.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`)
}
