package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// DeliveryStatus is where a webhook delivery is in the intake queue:
// pending → in_flight → done, or back to pending to be retried, or dead once the dispatcher's retry policy gives
// up on it (kept, body and last error, until an operator retries it).
type DeliveryStatus string

const (
	DeliveryPending  DeliveryStatus = "pending"
	DeliveryInFlight DeliveryStatus = "in_flight"
	DeliveryDone     DeliveryStatus = "done"
	// DeliveryDead replaced "failed" (given up after a count of attempts) in migration 0014, which made such
	// rows dead.
	DeliveryDead DeliveryStatus = "dead"
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
	// FirstFailedAt is when it first failed (zero until then): the retry window runs from here.
	FirstFailedAt time.Time
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
	received_at, available_at, claimed_at, finished_at, first_failed_at`

func scanDelivery(r scanner) (Delivery, error) {
	var d Delivery
	var received, available int64
	var claimed, finished, firstFailed sql.NullInt64
	err := r.Scan(&d.ID, &d.Forge, &d.DeliveryID, &d.Event, &d.OrderingKey, &d.Body, &d.Status, &d.Attempts, &d.LastError,
		&d.Worker, &received, &available, &claimed, &finished, &firstFailed)
	d.ReceivedAt, d.AvailableAt = fromMillis(received), fromMillis(available)
	d.ClaimedAt, d.FinishedAt = fromNullMillis(claimed), fromNullMillis(finished)
	d.FirstFailedAt = fromNullMillis(firstFailed)
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

// Fail records that processing a delivery worker holds failed with cause and will be tried again at retryAt
// (the dispatcher's retry policy chose it). It goes back to pending; later deliveries of its ordering key wait
// for it. The first failure's time is kept: the retry window runs from it.
func (s *Store) Fail(ctx context.Context, id int64, worker, cause string, retryAt time.Time) error {
	now := s.nowMillis()
	return s.finishClaim(ctx, id, worker, "fail", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE deliveries SET status = 'pending', worker = '', last_error = ?, available_at = ?,
			first_failed_at = coalesce(first_failed_at, ?) WHERE id = ?`, cause, toMillis(retryAt), now, id)
		return err
	})
}

// GiveUp marks a delivery worker holds dead: the retry policy's window is spent. Its body and last error are
// kept until an operator retries it (RetryDelivery), and the later deliveries of its key go on.
func (s *Store) GiveUp(ctx context.Context, id int64, worker, cause string) error {
	now := s.nowMillis()
	return s.finishClaim(ctx, id, worker, "give up", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE deliveries SET status = 'dead', worker = '', last_error = ?, finished_at = ?,
			first_failed_at = coalesce(first_failed_at, ?) WHERE id = ?`, cause, now, now, id)
		return err
	})
}

// finishClaim runs update on a delivery worker holds in flight, then recomputes its key's head.
func (s *Store) finishClaim(ctx context.Context, id int64, worker, op string, update func(*sql.Tx) error) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		var key string
		err := tx.QueryRowContext(ctx, `SELECT ordering_key FROM deliveries WHERE id = ? AND status = 'in_flight' AND worker = ?`, id, worker).
			Scan(&key)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%s delivery %d by %s: %w", op, id, worker, ErrNotClaimed)
		}
		if err != nil {
			return err
		}
		if err := update(tx); err != nil {
			return err
		}
		return refreshHead(ctx, tx, key)
	})
}

// RequeueInFlight puts every in-flight delivery back to pending (or makes it dead, when the bot has stopped
// while processing it maxInterruptions times: a delivery that keeps crashing the bot must not loop forever).
// Call it once at startup, before any worker claims: a delivery in flight then was left by a process that died.
// It returns how many it touched.
func (s *Store) RequeueInFlight(ctx context.Context) (int, error) {
	var n int64
	now := s.nowMillis()
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE deliveries SET
				interruptions = interruptions + 1,
				status = CASE WHEN interruptions + 1 >= ?1 THEN 'dead' ELSE 'pending' END,
				finished_at = CASE WHEN interruptions + 1 >= ?1 THEN ?2 END,
				last_error = 'interrupted: the bot stopped while processing it',
				worker = '', available_at = ?2
			WHERE status = 'in_flight'`, s.maxInterruptions, now)
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

// RetryDelivery puts a dead delivery back in the queue with fresh attempts and a fresh retry window (an
// operator's retry). It keeps its id, so it goes back in its key's order: before the key's later pending
// deliveries. It fails with ErrNotFound unless the delivery exists and is dead.
func (s *Store) RetryDelivery(ctx context.Context, id int64) error {
	now := s.nowMillis()
	return s.write(ctx, func(tx *sql.Tx) error {
		var key string
		err := tx.QueryRowContext(ctx, `UPDATE deliveries SET status = 'pending', attempts = 0, interruptions = 0, available_at = ?,
				finished_at = NULL, first_failed_at = NULL
			WHERE id = ? AND status = 'dead' RETURNING ordering_key`, now, id).Scan(&key)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("dead delivery %d: %w", id, ErrNotFound)
		}
		if err != nil {
			return err
		}
		return refreshHead(ctx, tx, key)
	})
}

// RetryDeadDeliveries retries every dead delivery (RetryDelivery for each) and returns how many.
func (s *Store) RetryDeadDeliveries(ctx context.Context) (int, error) {
	var n int
	now := s.nowMillis()
	err := s.write(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `UPDATE deliveries SET status = 'pending', attempts = 0, interruptions = 0, available_at = ?,
				finished_at = NULL, first_failed_at = NULL
			WHERE status = 'dead' RETURNING ordering_key`, now)
		if err != nil {
			return err
		}
		keys := map[string]bool{}
		for rows.Next() {
			var key string
			if err := rows.Scan(&key); err != nil {
				rows.Close()
				return err
			}
			keys[key] = true
			n++
		}
		if err := rows.Close(); err != nil {
			return err
		}
		for key := range keys {
			if err := refreshHead(ctx, tx, key); err != nil {
				return err
			}
		}
		return nil
	})
	return n, err
}

// ListDeliveries returns deliveries in queue order, without their bodies: all that are not done, or only the
// dead ones.
func (s *Store) ListDeliveries(ctx context.Context, onlyDead bool) ([]Delivery, error) {
	where := `status != 'done'`
	if onlyDead {
		where = `status = 'dead'`
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, forge, delivery_id, event, ordering_key, x'', status, attempts, last_error,
		worker, received_at, available_at, claimed_at, finished_at, first_failed_at FROM deliveries WHERE `+where+` ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("list deliveries: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// DeadSummary is what /readyz shows of the dead deliveries.
type DeadSummary struct {
	Count  int
	Oldest time.Time // when the oldest of them was received (zero when there is none)
}

const deadSummaryQuery = `SELECT count(*), min(received_at) FROM deliveries WHERE status = 'dead'`

// DeadDeliveries counts the dead deliveries and dates the oldest (on their index: /readyz asks on every probe).
func (s *Store) DeadDeliveries(ctx context.Context) (DeadSummary, error) {
	var sum DeadSummary
	var oldest sql.NullInt64
	err := s.db.QueryRowContext(ctx, deadSummaryQuery).Scan(&sum.Count, &oldest)
	if err != nil {
		return DeadSummary{}, fmt.Errorf("count dead deliveries: %w", err)
	}
	sum.Oldest = fromNullMillis(oldest)
	return sum, nil
}

// PruneDeliveries deletes up to limit done deliveries that finished before the given time, oldest first, in one
// transaction, and returns how many (dead ones are kept until retried). Their ids can then no longer deduplicate
// a redelivery, so keep them longer than the forge lists deliveries for redelivery (GitHub: 3 days).
func (s *Store) PruneDeliveries(ctx context.Context, finishedBefore time.Time, limit int) (int, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM deliveries WHERE id IN (`+prunableDeliveriesQuery+`)`,
			toMillis(finishedBefore), limit)
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
