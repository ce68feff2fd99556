// Package db is the bot's durable state in one SQLite file: installations and repos, plans and their models,
// approval snapshots, runs and their logs, the webhook intake queue, environment locks and app credentials.
//
// Everything goes through *Store with plain structs in and out. SQLite has a single writer, so the Store
// serialises its own writes (one write transaction at a time) and begins every read-write transaction with
// BEGIN IMMEDIATE: a writer waits for the lock up front instead of failing half-way with SQLITE_BUSY when
// it upgrades a read lock. The busy timeout covers other processes writing to the same file. Readers use
// the WAL and never wait for writers.
package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// busyTimeout is how long a write waits for another process's write lock before SQLITE_BUSY.
const busyTimeout = 10 * time.Second

var (
	// ErrNotFound means the row asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrTransition means a status change the lifecycle does not allow; nothing was written.
	ErrTransition = errors.New("illegal status transition")
	// ErrNotLockOwner means a lock is held by someone other than the caller.
	ErrNotLockOwner = errors.New("lock is held by another owner")
	// ErrNotClaimed means a delivery is not in flight for the worker that tried to finish it.
	ErrNotClaimed = errors.New("delivery is not claimed by this worker")
)

// Store is the bot's database. It is safe for concurrent use.
type Store struct {
	db *sql.DB
	// writeSlot admits one write transaction at a time: in-process writers queue here (fairly, and
	// cancellably) instead of spinning in SQLite's busy handler.
	writeSlot chan struct{}
	now       func() time.Time

	maxInterruptions int
	runLogMaxBytes   int64
}

// Option configures a Store.
type Option func(*Store)

// WithClock sets the clock the store stamps rows with and schedules delivery retries by (tests).
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// DefaultMaxInterruptions is how often the bot may stop while processing a delivery before RequeueInFlight
// makes it dead instead of trying it again.
const DefaultMaxInterruptions = 5

// WithMaxInterruptions sets how often the bot may stop while processing a delivery before it is made dead
// (when and how often a failing delivery is retried is the dispatcher's retry policy).
func WithMaxInterruptions(n int) Option { return func(s *Store) { s.maxInterruptions = n } }

// Open opens or creates the database file at path and brings its schema up to date. The file is created
// readable by its owner only: it holds the app's credentials.
func Open(path string, opts ...Option) (*Store, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") || strings.Contains(path, "?") {
		// Every pooled connection to ":memory:" would be a different database.
		return nil, fmt.Errorf("db: %q is not a plain file path", path)
	}
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600); err != nil {
		return nil, fmt.Errorf("db: %w", err)
	} else {
		f.Close()
	}
	dsn := path + "?_txlock=immediate" +
		fmt.Sprintf("&_pragma=busy_timeout(%d)", busyTimeout.Milliseconds()) +
		"&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(NORMAL)" +
		"&_pragma=foreign_keys(1)"
	sqlDB, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("db: open %s: %w", path, err)
	}
	sqlDB.SetMaxIdleConns(4)
	s := &Store{
		db:               sqlDB,
		writeSlot:        make(chan struct{}, 1),
		now:              time.Now,
		maxInterruptions: DefaultMaxInterruptions,
	}
	for _, o := range opts {
		o(s)
	}
	if s.runLogMaxBytes <= 0 {
		s.runLogMaxBytes = DefaultRunLogMaxBytes
	}
	if s.maxInterruptions < 1 {
		s.maxInterruptions = 1
	}
	ctx := context.Background()
	if err := sqlDB.PingContext(ctx); err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("db: open %s: %w", path, err)
	}
	if err := s.migrate(ctx, migrationsFS); err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("db: migrate %s: %w", path, err)
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// write runs fn in a read-write transaction (BEGIN IMMEDIATE), one at a time per Store, and commits it when
// fn returns nil.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	select {
	case s.writeSlot <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.writeSlot }()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// Times are stored as Unix milliseconds (UTC): they sort, compare and index as integers.
func toMillis(t time.Time) int64 { return t.UnixMilli() }

func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

func nullMillis(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMilli(), Valid: true}
}

func fromNullMillis(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return fromMillis(n.Int64)
}

func (s *Store) nowMillis() int64 { return toMillis(s.now()) }

// Now is the store's clock: what decides when a retried delivery is due, so the dispatcher dates failures by it.
func (s *Store) Now() time.Time { return s.now() }

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// collect reads every row with scan and closes rows; results are never streamed, so that no caller holds a
// connection while it writes.
func collect[T any](rows *sql.Rows, err error, scan func(scanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// one maps sql.ErrNoRows to ErrNotFound, naming what was looked for.
func one[T any](v T, err error, what string) (T, error) {
	if errors.Is(err, sql.ErrNoRows) {
		return v, fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return v, err
}

// Ping checks that the database answers (for /readyz).
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }
