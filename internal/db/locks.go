package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// LockOwner is who holds an environment lock: the plan being applied, its PR and the user who asked. The
// plan id alone identifies the owner.
type LockOwner struct {
	PlanID int64
	PR     int
	User   string
}

// Lock is an environment lock and its holder.
type Lock struct {
	Forge       string
	Repo        string
	Environment string
	Owner       LockOwner
	AcquiredAt  time.Time
}

const lockColumns = `forge, repo, environment, plan_id, pr, user, acquired_at`

func scanLock(r scanner) (Lock, error) {
	var l Lock
	var at int64
	err := r.Scan(&l.Forge, &l.Repo, &l.Environment, &l.Owner.PlanID, &l.Owner.PR, &l.Owner.User, &at)
	l.AcquiredAt = fromMillis(at)
	return l, err
}

func holder(ctx context.Context, q queryRower, forge, repo, env string) (Lock, bool, error) {
	l, err := scanLock(q.QueryRowContext(ctx, `SELECT `+lockColumns+` FROM env_locks WHERE forge = ? AND repo = ? AND environment = ?`,
		forge, repo, env))
	if errors.Is(err, sql.ErrNoRows) {
		return Lock{}, false, nil
	}
	return l, err == nil, err
}

// TryLock takes the lock on a repo's environment for owner, unless someone else holds it. It returns the
// lock's holder either way, and whether that is owner. Taking a lock owner already holds succeeds again.
func (s *Store) TryLock(ctx context.Context, forge, repo, env string, owner LockOwner) (held Lock, acquired bool, err error) {
	err = s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO env_locks (`+lockColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (forge, repo, environment) DO NOTHING`,
			forge, repo, env, owner.PlanID, owner.PR, owner.User, s.nowMillis()); err != nil {
			return err
		}
		held, _, err = holder(ctx, tx, forge, repo, env)
		return err
	})
	if err != nil {
		return Lock{}, false, fmt.Errorf("lock %s %s: %w", repo, env, err)
	}
	return held, held.Owner.PlanID == owner.PlanID, nil
}

// Unlock releases owner's lock on a repo's environment. Releasing a lock nobody holds is not an error (locks
// are released on every exit path, some of them twice); releasing someone else's fails with ErrNotLockOwner.
func (s *Store) Unlock(ctx context.Context, forge, repo, env string, owner LockOwner) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		l, ok, err := holder(ctx, tx, forge, repo, env)
		if err != nil || !ok {
			return err
		}
		if l.Owner.PlanID != owner.PlanID {
			return fmt.Errorf("unlock %s %s: %w (plan %d of #%d by %s)", repo, env, ErrNotLockOwner, l.Owner.PlanID, l.Owner.PR, l.Owner.User)
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM env_locks WHERE forge = ? AND repo = ? AND environment = ?`, forge, repo, env)
		return err
	})
}

// ForceUnlock releases a repo's environment lock whoever holds it (an admin's /dagctl unlock) and returns
// the holder it removed, if any.
func (s *Store) ForceUnlock(ctx context.Context, forge, repo, env string) (Lock, bool, error) {
	var l Lock
	var ok bool
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		if l, ok, err = holder(ctx, tx, forge, repo, env); err != nil || !ok {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM env_locks WHERE forge = ? AND repo = ? AND environment = ?`, forge, repo, env)
		return err
	})
	return l, ok, err
}

// Holder returns who holds a repo's environment lock, and whether anyone does.
func (s *Store) Holder(ctx context.Context, forge, repo, env string) (Lock, bool, error) {
	return holder(ctx, s.db, forge, repo, env)
}

// LocksHeldByPR returns the locks a pull request's plans hold, by environment: to release them when the PR
// closes.
func (s *Store) LocksHeldByPR(ctx context.Context, forge, repo string, pr int) ([]Lock, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+lockColumns+` FROM env_locks WHERE forge = ? AND repo = ? AND pr = ? ORDER BY environment`,
		forge, repo, pr)
	return collect(rows, err, scanLock)
}

// ListLocks returns every lock held in a repo, by environment.
func (s *Store) ListLocks(ctx context.Context, forge, repo string) ([]Lock, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+lockColumns+` FROM env_locks WHERE forge = ? AND repo = ? ORDER BY environment`,
		forge, repo)
	return collect(rows, err, scanLock)
}
