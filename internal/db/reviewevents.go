package db

import (
	"context"
	"database/sql"
	"time"
)

// ReviewEvent is one approval or withdrawal a forge's verified webhook reported (migration 0016).
type ReviewEvent struct {
	Forge    string
	Repo     string
	PR       int
	User     string
	Approved bool      // false: the approval was withdrawn
	At       time.Time // the forge's time of the event
	// ReceivedAt is when the store recorded it (the store's clock); set by RecordReviewEvent.
	ReceivedAt time.Time
}

// RecordReviewEvent stores a review event once: a redelivery of the same event (same PR, user, kind and time)
// inserts nothing and reports false.
func (s *Store) RecordReviewEvent(ctx context.Context, e ReviewEvent) (bool, error) {
	var inserted bool
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO review_events
			(forge, repo, pr, user, approved, at, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			e.Forge, e.Repo, e.PR, e.User, boolInt(e.Approved), toMillis(e.At), s.nowMillis())
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		inserted = n == 1
		return err
	})
	return inserted, err
}

// ReviewEvents are a PR's stored review events, oldest first (by the forge's time).
func (s *Store) ReviewEvents(ctx context.Context, forge, repo string, pr int) ([]ReviewEvent, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT forge, repo, pr, user, approved, at, received_at FROM review_events
		WHERE forge = ? AND repo = ? AND pr = ? ORDER BY at, approved, user`, forge, repo, pr)
	return collect(rows, err, func(sc scanner) (ReviewEvent, error) {
		var e ReviewEvent
		var approved int
		var at, received int64
		if err := sc.Scan(&e.Forge, &e.Repo, &e.PR, &e.User, &approved, &at, &received); err != nil {
			return e, err
		}
		e.Approved, e.At, e.ReceivedAt = approved == 1, fromMillis(at), fromMillis(received)
		return e, nil
	})
}

// PruneReviewEvents deletes the review events of up to limit PRs whose newest event was received before the given
// time, every event of such a PR at once (a withdrawal is never pruned while an older approval of it stays, which
// would revive the approval), and returns how many rows it deleted. It reads the PRs by the table's key: review
// events are a handful per PR.
func (s *Store) PruneReviewEvents(ctx context.Context, receivedBefore time.Time, limit int) (int, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM review_events WHERE (forge, repo, pr) IN (
			SELECT forge, repo, pr FROM review_events GROUP BY forge, repo, pr
			HAVING max(received_at) < ? LIMIT ?)`, toMillis(receivedBefore), limit)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}
