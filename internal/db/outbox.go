package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// OutboxWrite is one write to a forge waiting in the outbox (internal/outbox gives the kinds and payloads
// their meaning; the store only keeps them in order).
type OutboxWrite struct {
	ID      int64
	Forge   string
	Account string
	Kind    string
	// Key is the coalescing key: a newer write of the same (forge, account, key) replaces an unsent older one.
	// Empty: the write never coalesces.
	Key      string
	Priority int
	Repo     []byte // JSON
	Payload  []byte // JSON
	// Token is a marker unique to the write, to recognise what it created after a crash: random, or, for a
	// write with OnceRef, derived from the effect it makes.
	Token string
	// OnceRef, when set, makes the write happen at most once: it is not enqueued while a write with its Token
	// is in the outbox or after the ref OnceRef was recorded (the sender records it with the write's result).
	OnceRef string
	// Attempts is how many sends of the write began before the current one (a claim returns the count before
	// it): above 0, the forge may already have received it.
	Attempts int
	// Sending: a send of the write began and has not ended (it is in flight, or the process stopped meanwhile).
	Sending    bool
	NotBefore  time.Time
	EnqueuedAt time.Time
	LastError  string
	// FirstFailedAt is when a send of it first failed (zero until then): its retry window runs from here.
	FirstFailedAt time.Time
}

// OutboxAccount is an account with writes in the outbox, and when the earliest of them may be sent.
type OutboxAccount struct {
	Forge, Account string
	NextDue        time.Time
}

const outboxColumns = `id, forge, account, kind, coalesce_key, priority, repo, payload, token, attempts,
	state = 'sending', not_before, enqueued_at, last_error, first_failed_at`

func scanOutbox(sc scanner) (OutboxWrite, error) {
	var w OutboxWrite
	var key, lastErr sql.NullString
	var repo, payload string
	var notBefore, enqueued int64
	var firstFailed sql.NullInt64
	err := sc.Scan(&w.ID, &w.Forge, &w.Account, &w.Kind, &key, &w.Priority, &repo, &payload, &w.Token,
		&w.Attempts, &w.Sending, &notBefore, &enqueued, &lastErr, &firstFailed)
	w.FirstFailedAt = fromNullMillis(firstFailed)
	w.Key, w.LastError = key.String, lastErr.String
	w.Repo, w.Payload = []byte(repo), []byte(payload)
	w.NotBefore, w.EnqueuedAt = fromMillis(notBefore), fromMillis(enqueued)
	return w, err
}

// EnqueueOutbox adds a write, or, when an unsent write of the same key waits, replaces that one's payload and
// priority in place (it keeps its place in the queue and its token). It returns the row's id and whether it
// replaced one. A write of the key that is being sent is not touched: the new one waits behind it. A write
// with OnceRef whose effect is in the outbox or was sent is not added (id 0).
func (s *Store) EnqueueOutbox(ctx context.Context, w OutboxWrite) (id int64, replaced bool, err error) {
	// The account may be "": a forge with one configured token has no identity to tell accounts apart.
	if w.Forge == "" || w.Kind == "" || w.Token == "" {
		return 0, false, errors.New("db: an outbox write needs a forge, a kind and a token")
	}
	key := sql.NullString{String: w.Key, Valid: w.Key != ""}
	err = s.write(ctx, func(tx *sql.Tx) error {
		if w.OnceRef != "" {
			var done int
			if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM outbox WHERE forge = ? AND account = ?
					AND token = ?) OR EXISTS (SELECT 1 FROM outbox_refs WHERE forge = ? AND account = ? AND ref_key = ?)`,
				w.Forge, w.Account, w.Token, w.Forge, w.Account, w.OnceRef).Scan(&done); err != nil || done == 1 {
				return err
			}
		}
		now := s.nowMillis()
		if !w.NotBefore.IsZero() {
			now = toMillis(w.NotBefore) // the sender's clock decides what is due (ClaimOutbox's now)
		}
		if key.Valid {
			err := tx.QueryRowContext(ctx, `UPDATE outbox SET payload = ?, priority = ?, repo = ?, kind = ?
				WHERE forge = ? AND account = ? AND coalesce_key = ? AND state = 'pending' RETURNING id`,
				string(w.Payload), w.Priority, string(w.Repo), w.Kind, w.Forge, w.Account, key).Scan(&id)
			if err == nil {
				replaced = true
				return nil
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		return tx.QueryRowContext(ctx, `INSERT INTO outbox (forge, account, kind, coalesce_key, priority, repo,
				payload, token, state, not_before, enqueued_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?) RETURNING id`,
			w.Forge, w.Account, w.Kind, key, w.Priority, string(w.Repo), string(w.Payload), w.Token, now, now).Scan(&id)
	})
	return id, replaced, err
}

// ClaimOutbox marks the account's next write as being sent and returns it: first a write whose send was
// under way when the process stopped, then the due pending writes by priority, oldest first. ok is false when
// none is due at now (the sender's clock, which also set NotBefore). One sender drains an account at a time.
func (s *Store) ClaimOutbox(ctx context.Context, forge, account string, now time.Time) (w OutboxWrite, ok bool, err error) {
	err = s.write(ctx, func(tx *sql.Tx) error {
		row := tx.QueryRowContext(ctx, `SELECT `+outboxColumns+` FROM outbox
			WHERE forge = ? AND account = ? AND (state = 'sending' OR not_before <= ?)
			ORDER BY state = 'sending' DESC, priority, id LIMIT 1`, forge, account, toMillis(now))
		var err error
		if w, err = scanOutbox(row); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return nil
			}
			return err
		}
		ok = true
		_, err = tx.ExecContext(ctx, `UPDATE outbox SET state = 'sending', attempts = attempts + 1 WHERE id = ?`, w.ID)
		return err
	})
	return w, ok, err
}

// OutboxRefValue is a ref to record under its key.
type OutboxRefValue struct{ Key, Ref string }

// FinishOutbox removes a sent write; when refKey is not empty it records ref for later writes of that key in
// the same transaction (ref "" forgets it), and so each of more.
func (s *Store) FinishOutbox(ctx context.Context, w OutboxWrite, refKey, ref string, more ...OutboxRefValue) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		for _, r := range append([]OutboxRefValue{{Key: refKey, Ref: ref}}, more...) {
			if r.Key == "" {
				continue
			}
			if err := setOutboxRef(ctx, tx, w.Forge, w.Account, r.Key, r.Ref, s.nowMillis()); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE id = ? AND state = 'sending'`, w.ID)
		if err != nil {
			return err
		}
		return mustAffectOne(res, fmt.Errorf("outbox write %d is not being sent: %w", w.ID, ErrNotClaimed))
	})
}

// RetryOutbox puts a write whose send failed at failedAt back in the queue, due at notBefore; the first
// failure's time is kept (the retry window runs from it). When a newer write of its key arrived meanwhile, that
// one has the newest state: the failed one is dropped instead, its attempts added to the newer one's.
func (s *Store) RetryOutbox(ctx context.Context, w OutboxWrite, notBefore, failedAt time.Time, cause string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if w.Key != "" {
			var newer int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM outbox WHERE forge = ? AND account = ?
				AND coalesce_key = ? AND state = 'pending'`, w.Forge, w.Account, w.Key).Scan(&newer); err != nil {
				return err
			}
			if newer > 0 {
				// The failed send may have reached the forge (its answer lost): the newer write inherits its
				// attempts, so that its send first looks for what this one may have created.
				if _, err := tx.ExecContext(ctx, `UPDATE outbox SET attempts = attempts +
					(SELECT attempts FROM outbox WHERE id = ?)
					WHERE forge = ? AND account = ? AND coalesce_key = ? AND state = 'pending'`,
					w.ID, w.Forge, w.Account, w.Key); err != nil {
					return err
				}
				_, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE id = ?`, w.ID)
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `UPDATE outbox SET state = 'pending', not_before = ?, last_error = ?,
			first_failed_at = coalesce(first_failed_at, ?) WHERE id = ?`, toMillis(notBefore), cause, toMillis(failedAt), w.ID)
		return err
	})
}

// DropOutbox removes a write that will never be sent (the forge refused it for good).
func (s *Store) DropOutbox(ctx context.Context, id int64) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE id = ?`, id)
		return err
	})
}

// OutboxAccounts lists the accounts with writes in the outbox and when each may send next.
func (s *Store) OutboxAccounts(ctx context.Context) ([]OutboxAccount, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT forge, account,
			min(CASE WHEN state = 'sending' THEN 0 ELSE not_before END)
		FROM outbox GROUP BY forge, account ORDER BY forge, account`)
	return collect(rows, err, func(sc scanner) (OutboxAccount, error) {
		var a OutboxAccount
		var due int64
		err := sc.Scan(&a.Forge, &a.Account, &due)
		a.NextDue = fromMillis(due)
		return a, err
	})
}

// ListOutbox returns every write in the outbox of an account, in the order they would be sent if all were due.
func (s *Store) ListOutbox(ctx context.Context, forge, account string) ([]OutboxWrite, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+outboxColumns+` FROM outbox WHERE forge = ? AND account = ?
		ORDER BY state = 'sending' DESC, priority, id`, forge, account)
	return collect(rows, err, scanOutbox)
}

// OutboxRef is what the forge returned for a key (a status's ref, a comment id), or "" when nothing is known.
func (s *Store) OutboxRef(ctx context.Context, forge, account, refKey string) (string, error) {
	var ref string
	err := s.db.QueryRowContext(ctx, `SELECT ref FROM outbox_refs WHERE forge = ? AND account = ? AND ref_key = ?`,
		forge, account, refKey).Scan(&ref)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return ref, err
}

// SetOutboxRef records (or, with ref "", forgets) what the forge returned for a key.
func (s *Store) SetOutboxRef(ctx context.Context, forge, account, refKey, ref string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		return setOutboxRef(ctx, tx, forge, account, refKey, ref, s.nowMillis())
	})
}

func setOutboxRef(ctx context.Context, tx *sql.Tx, forge, account, refKey, ref string, now int64) error {
	if ref == "" {
		_, err := tx.ExecContext(ctx, `DELETE FROM outbox_refs WHERE forge = ? AND account = ? AND ref_key = ?`,
			forge, account, refKey)
		return err
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO outbox_refs (forge, account, ref_key, ref, updated_at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (forge, account, ref_key) DO UPDATE SET ref = excluded.ref,
		updated_at = excluded.updated_at`, forge, account, refKey, ref, now)
	return err
}

// OutboxRefKeys lists the keys with a recorded ref that start with prefix.
func (s *Store) OutboxRefKeys(ctx context.Context, forge, account, prefix string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT ref_key FROM outbox_refs WHERE forge = ? AND account = ?
		AND substr(ref_key, 1, ?) = ? ORDER BY ref_key`, forge, account, len(prefix), prefix)
	return collect(rows, err, func(sc scanner) (string, error) {
		var k string
		return k, sc.Scan(&k)
	})
}

// PruneOutboxRefs forgets the refs not written since before: statuses of old commits and stickies of long
// closed PRs. A later write of a forgotten key starts afresh (a sticky part is found again by its marker).
func (s *Store) PruneOutboxRefs(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM outbox_refs WHERE updated_at < ?`, toMillis(before))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}
