package db

import (
	"context"
	"database/sql"
)

// A PR that was closed or merged is remembered in settings (pr_ended/<forge>/<repo>#<number>, a few bytes, kept as
// plans are), so that its plans no longer count as awaiting approval (Gauges.AwaitingApproval): nothing will
// approve them, and the store has no other record that the PR ended (its plans stay ready). Reopening the PR
// deletes the row.
const prEndedKeySQL = `'pr_ended/' || ? || '/' || lower(?) || '#' || ?`

// SetPREnded records that a PR ended (closed or merged: ended true) or was reopened (false).
func (s *Store) SetPREnded(ctx context.Context, forge, repo string, pr int, ended bool) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if !ended {
			_, err := tx.ExecContext(ctx, `DELETE FROM settings WHERE key = `+prEndedKeySQL, forge, repo, pr)
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO settings (key, value, updated_at) VALUES (`+prEndedKeySQL+`, x'', ?)
			ON CONFLICT (key) DO NOTHING`, forge, repo, pr, s.nowMillis())
		return err
	})
}
