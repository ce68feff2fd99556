package db

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
)

// Merge waits are merges whose apply waits for the merged head's plan to end: one settings row per plan
// (merge_wait/<plan id>), holding what the bot needs to carry the merge out then (opaque to the store). They
// live in the database so that a restart between the merge and the plan's end does not lose the apply.
const mergeWaitPrefix = "merge_wait/"

func mergeWaitKey(planID int64) string { return mergeWaitPrefix + strconv.FormatInt(planID, 10) }

// SetMergeWait stores the plan's waiting merge, replacing one stored before (a replayed merge).
func (s *Store) SetMergeWait(ctx context.Context, planID int64, value []byte) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
			mergeWaitKey(planID), value, s.nowMillis())
		return err
	})
}

// MergeWait is the plan's waiting merge, if any.
func (s *Store) MergeWait(ctx context.Context, planID int64) ([]byte, bool, error) {
	var value []byte
	err := s.db.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, mergeWaitKey(planID)).Scan(&value)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	return value, err == nil, err
}

// DeleteMergeWait forgets the plan's waiting merge, once it was carried out.
func (s *Store) DeleteMergeWait(ctx context.Context, planID int64) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM settings WHERE key = ?`, mergeWaitKey(planID))
		return err
	})
}

// MergeWaitPlans are the plans that have a waiting merge, in id order.
func (s *Store) MergeWaitPlans(ctx context.Context) ([]int64, error) {
	// A range on the primary key rather than LIKE, which SQLite does not serve from the index by default.
	rows, err := s.db.QueryContext(ctx, `SELECT key FROM settings WHERE key >= ? AND key < ? ORDER BY key`,
		mergeWaitPrefix, strings.TrimSuffix(mergeWaitPrefix, "/")+"0")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var key string
		if err := rows.Scan(&key); err != nil {
			return nil, err
		}
		if id, err := strconv.ParseInt(strings.TrimPrefix(key, mergeWaitPrefix), 10, 64); err == nil {
			ids = append(ids, id)
		}
	}
	return ids, rows.Err()
}
