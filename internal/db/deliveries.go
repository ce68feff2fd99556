package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// DeliveryStatus is where a webhook delivery is in the intake queue:
// pending → in_flight → done, or back to pending to be retried, or failed once its attempts are used up.
type DeliveryStatus string

const (
	DeliveryPending  DeliveryStatus = "pending"
	DeliveryInFlight DeliveryStatus = "in_flight"
	DeliveryDone     DeliveryStatus = "done"
	DeliveryFailed   DeliveryStatus = "failed"
)

// Delivery is one webhook delivery in the intake queue.
type Delivery struct {
	ID          int64 // position in the queue
	Forge       string
	DeliveryID  string
	Event       string
	OrderingKey string
	Body        []byte
	Status      DeliveryStatus
	Attempts    int // how many times it has been claimed
	LastError   string
	Worker      string // who holds it while in flight
	ReceivedAt  time.Time
	AvailableAt time.Time // when it may be claimed (later than ReceivedAt while a retry backs off)
	ClaimedAt   time.Time
	FinishedAt  time.Time
}

// Enqueue stores a delivery as pending, unless one with the same (forge, delivery id) is already stored: a
// forge's redelivery is then ignored, atomically, and inserted is false. Deliveries with the same ordering
// key are processed one at a time, in the order they were enqueued; an empty key orders the delivery with
// nothing else.
func (s *Store) Enqueue(ctx context.Context, forge, deliveryID, event, orderingKey string, body []byte) (inserted bool, err error) {
	if forge == "" || deliveryID == "" {
		return false, fmt.Errorf("enqueue: forge and delivery id are required")
	}
	if orderingKey == "" {
		orderingKey = "delivery:" + forge + "/" + deliveryID
	}
	if body == nil {
		body = []byte{}
	}
	now := s.nowMillis()
	err = s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO deliveries (forge, delivery_id, event, ordering_key, body, status, received_at, available_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (forge, delivery_id) DO NOTHING`,
			forge, deliveryID, event, orderingKey, body, string(DeliveryPending), now, now)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil || n != 1 {
			return err
		}
		inserted = true
		return refreshHead(ctx, tx, orderingKey)
	})
	if err != nil {
		return false, fmt.Errorf("enqueue delivery %s/%s: %w", forge, deliveryID, err)
	}
	return inserted, nil
}

const deliveryColumns = `id, forge, delivery_id, event, ordering_key, body, status, attempts, last_error, worker,
	received_at, available_at, claimed_at, finished_at`

func scanDelivery(r scanner) (Delivery, error) {
	var d Delivery
	var received, available int64
	var claimed, finished sql.NullInt64
	err := r.Scan(&d.ID, &d.Forge, &d.DeliveryID, &d.Event, &d.OrderingKey, &d.Body, &d.Status, &d.Attempts, &d.LastError,
		&d.Worker, &received, &available, &claimed, &finished)
	d.ReceivedAt, d.AvailableAt = fromMillis(received), fromMillis(available)
	d.ClaimedAt, d.FinishedAt = fromNullMillis(claimed), fromNullMillis(finished)
	return d, err
}

// Claim hands worker the oldest pending delivery that is due and is first in line for its ordering key, with
// no delivery of that key in flight. ok is false when there is none. The worker must Complete or Fail it.
// It reads delivery_heads (one row per runnable key), so its cost grows with the number of keys waiting,
// never with a key's backlog.
func (s *Store) Claim(ctx context.Context, worker string) (d Delivery, ok bool, err error) {
	now := s.nowMillis()
	// Idle workers look often (every claim wakes one): without a due head they must not take the writer the
	// intake needs. A head stored after this read is followed by the intake's wake-up, so none is missed.
	var due int
	switch err := s.db.QueryRowContext(ctx, `SELECT 1 FROM delivery_heads WHERE available_at <= ? LIMIT 1`, now).Scan(&due); {
	case errors.Is(err, sql.ErrNoRows):
		return Delivery{}, false, nil
	case err != nil:
		return Delivery{}, false, fmt.Errorf("claim delivery: %w", err)
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		var id int64
		var key string
		err := tx.QueryRowContext(ctx, claimHeadQuery, now).Scan(&id, &key)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		d, err = scanDelivery(tx.QueryRowContext(ctx, `UPDATE deliveries
			SET status = 'in_flight', worker = ?, attempts = attempts + 1, claimed_at = ?
			WHERE id = ? AND status = 'pending'
			RETURNING `+deliveryColumns, worker, now, id))
		if err != nil {
			return fmt.Errorf("head %d of %q: %w", id, key, err)
		}
		ok = true
		// The key now has one in flight: it is not runnable until that one is done, failed or back off.
		_, err = tx.ExecContext(ctx, `DELETE FROM delivery_heads WHERE ordering_key = ?`, key)
		return err
	})
	if err != nil {
		return Delivery{}, false, fmt.Errorf("claim delivery: %w", err)
	}
	return d, ok, nil
}

// claimHeadQuery picks the runnable key whose head came first and is due; it walks delivery_heads in id order.
const claimHeadQuery = `SELECT delivery_id, ordering_key FROM delivery_heads WHERE available_at <= ? ORDER BY delivery_id LIMIT 1`

// refreshHead recomputes key's row of delivery_heads after any change of one of its deliveries' status: its
// first pending delivery, unless one of the key is in flight. Both lookups seek on a partial index.
func refreshHead(ctx context.Context, tx *sql.Tx, key string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM delivery_heads WHERE ordering_key = ?`, key); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, refreshHeadQuery, key, key)
	return err
}

const refreshHeadQuery = `INSERT INTO delivery_heads (ordering_key, delivery_id, available_at)
	SELECT ordering_key, id, available_at FROM deliveries
	WHERE ordering_key = ?1 AND status = 'pending'
		AND NOT EXISTS (SELECT 1 FROM deliveries f WHERE f.ordering_key = ?2 AND f.status = 'in_flight')
	ORDER BY id LIMIT 1`

// rebuildHeads recomputes every key's row (after a restart's requeue, which touches many keys at once).
func rebuildHeads(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM delivery_heads`); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO delivery_heads (ordering_key, delivery_id, available_at)
		SELECT d.ordering_key, d.id, d.available_at FROM deliveries d
		WHERE d.status = 'pending'
			AND d.id = (SELECT min(p.id) FROM deliveries p WHERE p.ordering_key = d.ordering_key AND p.status = 'pending')
			AND NOT EXISTS (SELECT 1 FROM deliveries f WHERE f.ordering_key = d.ordering_key AND f.status = 'in_flight')`)
	return err
}

// Complete marks a delivery that worker holds as done. It fails with ErrNotClaimed when worker does not hold
// it (any more), so that a delivery completes once.
func (s *Store) Complete(ctx context.Context, id int64, worker string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		var key string
		err := tx.QueryRowContext(ctx, `UPDATE deliveries SET status = 'done', worker = '', finished_at = ?
			WHERE id = ? AND status = 'in_flight' AND worker = ? RETURNING ordering_key`, s.nowMillis(), id, worker).Scan(&key)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("complete delivery %d by %s: %w", id, worker, ErrNotClaimed)
		}
		if err != nil {
			return err
		}
		return refreshHead(ctx, tx, key)
	})
}

// Fail records that processing a delivery worker holds failed with cause. While it has attempts left it goes
// back to pending and becomes due after a backoff that doubles per attempt (retry is true); otherwise it is
// failed for good. Later deliveries of its ordering key wait for it either way.
func (s *Store) Fail(ctx context.Context, id int64, worker string, cause string) (retry bool, err error) {
	now := s.now()
	err = s.write(ctx, func(tx *sql.Tx) error {
		var attempts int
		var key string
		err := tx.QueryRowContext(ctx, `SELECT attempts, ordering_key FROM deliveries WHERE id = ? AND status = 'in_flight' AND worker = ?`, id, worker).
			Scan(&attempts, &key)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("fail delivery %d by %s: %w", id, worker, ErrNotClaimed)
		}
		if err != nil {
			return err
		}
		retry = attempts < s.maxDeliveryAttempts
		if retry {
			_, err = tx.ExecContext(ctx, `UPDATE deliveries SET status = 'pending', worker = '', last_error = ?, available_at = ? WHERE id = ?`,
				cause, toMillis(now.Add(s.backoff(attempts))), id)
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE deliveries SET status = 'failed', worker = '', last_error = ?, finished_at = ? WHERE id = ?`,
				cause, toMillis(now), id)
		}
		if err != nil {
			return err
		}
		return refreshHead(ctx, tx, key)
	})
	return retry, err
}

// backoff is the wait before the retry that follows the given number of attempts.
func (s *Store) backoff(attempts int) time.Duration {
	d := s.retryBackoff
	for i := 1; i < attempts && d < s.maxRetryBackoff; i++ {
		d *= 2
	}
	return min(d, s.maxRetryBackoff)
}

// RequeueInFlight puts every in-flight delivery back to pending (or fails it, when its attempts are used
// up: a delivery that keeps crashing the bot must not loop forever). Call it once at startup, before any
// worker claims: a delivery in flight then was left by a process that died. It returns how many it touched.
func (s *Store) RequeueInFlight(ctx context.Context) (int, error) {
	var n int64
	now := s.nowMillis()
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE deliveries SET
				status = CASE WHEN attempts >= ? THEN 'failed' ELSE 'pending' END,
				finished_at = CASE WHEN attempts >= ? THEN ? END,
				last_error = 'interrupted: the bot stopped while processing it',
				worker = '', available_at = ?
			WHERE status = 'in_flight'`, s.maxDeliveryAttempts, s.maxDeliveryAttempts, now, now)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		return rebuildHeads(ctx, tx)
	})
	return int(n), err
}

// GetDelivery returns a delivery by its forge's id, or ErrNotFound.
func (s *Store) GetDelivery(ctx context.Context, forge, deliveryID string) (Delivery, error) {
	d, err := scanDelivery(s.db.QueryRowContext(ctx, `SELECT `+deliveryColumns+` FROM deliveries WHERE forge = ? AND delivery_id = ?`,
		forge, deliveryID))
	return one(d, err, fmt.Sprintf("delivery %s/%s", forge, deliveryID))
}

// RetryDelivery puts a failed delivery back in the queue with fresh attempts (an operator's redelivery). It
// fails with ErrNotFound unless the delivery exists and has failed.
func (s *Store) RetryDelivery(ctx context.Context, forge, deliveryID string) error {
	now := s.nowMillis()
	return s.write(ctx, func(tx *sql.Tx) error {
		var key string
		err := tx.QueryRowContext(ctx, `UPDATE deliveries SET status = 'pending', attempts = 0, available_at = ?, finished_at = NULL
			WHERE forge = ? AND delivery_id = ? AND status = 'failed' RETURNING ordering_key`, now, forge, deliveryID).Scan(&key)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("failed delivery %s/%s: %w", forge, deliveryID, ErrNotFound)
		}
		if err != nil {
			return err
		}
		return refreshHead(ctx, tx, key)
	})
}

// PruneDeliveries deletes done and failed deliveries that finished before the given time, and returns how
// many. Their ids can then no longer deduplicate a redelivery, so keep them longer than the forge redelivers.
func (s *Store) PruneDeliveries(ctx context.Context, finishedBefore time.Time) (int, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM deliveries WHERE status IN ('done', 'failed') AND finished_at < ?`, toMillis(finishedBefore))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

func mustAffectOne(res sql.Result, otherwise error) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n != 1 {
		return otherwise
	}
	return nil
}
