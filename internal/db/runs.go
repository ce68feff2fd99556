package db

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/dagctl/dagctl-bot/internal/jobs"
)

// RunStatus is where a run is: queued → running → succeeded | failed | cancelled. A queued run may also end
// directly (cancelled before it started, or failed to start). Final statuses never change.
type RunStatus string

const (
	RunQueued    RunStatus = "queued"
	RunRunning   RunStatus = "running"
	RunSucceeded RunStatus = "succeeded"
	RunFailed    RunStatus = "failed"
	RunCancelled RunStatus = "cancelled"
)

// Final reports whether a run in this status has ended.
func (s RunStatus) Final() bool { return s == RunSucceeded || s == RunFailed || s == RunCancelled }

// Run is one execution of a plan or an apply.
type Run struct {
	ID            int64
	PlanID        int64
	Kind          jobs.Kind
	Executor      string // the executor's name, e.g. "local" or "kubernetes"
	ExecutorJobID string // jobs.Handle.ID, to Attach to after a restart; "" until started
	Status        RunStatus
	ExitCode      *int // nil until the job exited
	Reason        string
	CreatedAt     time.Time
	StartedAt     time.Time // zero until started
	FinishedAt    time.Time // zero until finished
	LogPrunedAt   time.Time // when retention deleted its log (PruneRunLogs); zero while the log is kept
}

// RunResult is how a run ended.
type RunResult struct {
	Status   RunStatus // succeeded, failed or cancelled
	ExitCode *int
	Reason   string
}

// RunResultFrom maps an executor's result to a run result: cancelled when the job was cancelled, succeeded
// when it exited 0 by itself, else failed.
func RunResultFrom(r jobs.Result) RunResult {
	code := r.ExitCode
	out := RunResult{Status: RunFailed, ExitCode: &code, Reason: r.Reason}
	switch {
	case r.Reason == "cancelled":
		out.Status = RunCancelled
	case r.Succeeded():
		out.Status = RunSucceeded
	}
	return out
}

// CreateRun stores a queued run of a plan and returns it with a fresh secret token. Only the token's hash is
// stored: hand the token to the executor (for posting results back) and check it with VerifyRunToken.
func (s *Store) CreateRun(ctx context.Context, planID int64, kind jobs.Kind, executor string) (Run, string, error) {
	if kind != jobs.KindPlan && kind != jobs.KindApply {
		return Run{}, "", fmt.Errorf("create run: unknown kind %q", kind)
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return Run{}, "", err
	}
	token := hex.EncodeToString(secret)
	hash := sha256.Sum256([]byte(token))
	now := fromMillis(s.nowMillis())
	r := Run{PlanID: planID, Kind: kind, Executor: executor, Status: RunQueued, CreatedAt: now}
	err := s.write(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO runs (plan_id, kind, executor, status, token_hash, created_at)
			VALUES (?, ?, ?, ?, ?, ?) RETURNING id`, planID, string(kind), executor, string(RunQueued), hash[:], toMillis(now)).Scan(&r.ID)
	})
	if err != nil {
		return Run{}, "", fmt.Errorf("create run of plan %d: %w", planID, err)
	}
	return r, token, nil
}

// VerifyRunToken reports whether token is the run's secret token, in constant time.
func (s *Store) VerifyRunToken(ctx context.Context, runID int64, token string) (bool, error) {
	var stored []byte
	err := s.db.QueryRowContext(ctx, `SELECT token_hash FROM runs WHERE id = ?`, runID).Scan(&stored)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	hash := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(stored, hash[:]) == 1, nil
}

const runColumns = `id, plan_id, kind, executor, executor_job_id, status, exit_code, reason, created_at, started_at, finished_at,
	log_pruned_at`

func scanRun(r scanner) (Run, error) {
	var run runScan
	err := r.Scan(run.dest()...)
	return run.run(), err
}

// runScan holds runColumns as scanned, for queries that read more columns beside them.
type runScan struct {
	r                         Run
	exit                      sql.NullInt64
	created                   int64
	started, finished, pruned sql.NullInt64
}

func (s *runScan) dest() []any {
	return []any{&s.r.ID, &s.r.PlanID, &s.r.Kind, &s.r.Executor, &s.r.ExecutorJobID, &s.r.Status, &s.exit, &s.r.Reason,
		&s.created, &s.started, &s.finished, &s.pruned}
}

func (s *runScan) run() Run {
	run := s.r
	if s.exit.Valid {
		code := int(s.exit.Int64)
		run.ExitCode = &code
	}
	run.CreatedAt, run.StartedAt, run.FinishedAt = fromMillis(s.created), fromNullMillis(s.started), fromNullMillis(s.finished)
	run.LogPrunedAt = fromNullMillis(s.pruned)
	return run
}

func getRun(ctx context.Context, q queryRower, id int64) (Run, error) {
	r, err := scanRun(q.QueryRowContext(ctx, `SELECT `+runColumns+` FROM runs WHERE id = ?`, id))
	return one(r, err, fmt.Sprintf("run %d", id))
}

// GetRun returns one run, or ErrNotFound.
func (s *Store) GetRun(ctx context.Context, id int64) (Run, error) { return getRun(ctx, s.db, id) }

// ListRuns returns the runs of a plan, oldest first.
func (s *Store) ListRuns(ctx context.Context, planID int64) ([]Run, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+runColumns+` FROM runs WHERE plan_id = ? ORDER BY id`, planID)
	return collect(rows, err, scanRun)
}

// ListUnfinishedRuns returns every queued or running run, oldest first: after a restart, each is attached to
// again (jobs.Executor.Attach) or finished.
func (s *Store) ListUnfinishedRuns(ctx context.Context) ([]Run, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+runColumns+` FROM runs WHERE status IN ('queued', 'running') ORDER BY id`)
	return collect(rows, err, scanRun)
}

// StartRun records that a queued run's job started on the executor with the given id.
func (s *Store) StartRun(ctx context.Context, id int64, executorJobID string) (Run, error) {
	var r Run
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		if r, err = getRun(ctx, tx, id); err != nil {
			return err
		}
		switch r.Status {
		case RunRunning:
			// A run of several jobs (an apply plans again, then applies) records each job it starts.
			_, err := tx.ExecContext(ctx, `UPDATE runs SET executor_job_id = ? WHERE id = ?`, executorJobID, id)
			r.ExecutorJobID = executorJobID
			return err
		case RunQueued:
		default:
			return fmt.Errorf("run %d: %w: %s to %s", id, ErrTransition, r.Status, RunRunning)
		}
		now := s.nowMillis()
		if _, err := tx.ExecContext(ctx, `UPDATE runs SET status = ?, executor_job_id = ?, started_at = ? WHERE id = ?`,
			string(RunRunning), executorJobID, now, id); err != nil {
			return err
		}
		r.Status, r.ExecutorJobID, r.StartedAt = RunRunning, executorJobID, fromMillis(now)
		return nil
	})
	return r, err
}

// FinishRun records how a run ended. A run that has already ended fails with ErrTransition, so that a late
// second result (a replayed event, a racing cancellation) changes nothing.
func (s *Store) FinishRun(ctx context.Context, id int64, res RunResult) (Run, error) {
	if !res.Status.Final() {
		return Run{}, fmt.Errorf("finish run %d: %q is not a final status", id, res.Status)
	}
	var r Run
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		if r, err = getRun(ctx, tx, id); err != nil {
			return err
		}
		if r.Status.Final() {
			return fmt.Errorf("run %d: %w: %s to %s", id, ErrTransition, r.Status, res.Status)
		}
		var exit sql.NullInt64
		if res.ExitCode != nil {
			exit = sql.NullInt64{Int64: int64(*res.ExitCode), Valid: true}
		}
		now := s.nowMillis()
		if _, err := tx.ExecContext(ctx, `UPDATE runs SET status = ?, exit_code = ?, reason = ?, finished_at = ? WHERE id = ?`,
			string(res.Status), exit, res.Reason, now, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM settings WHERE key = ?`, runResumeKey(id)); err != nil {
			return err
		}
		if err := deleteKeptArtifacts(ctx, tx, id); err != nil {
			return err
		}
		r.Status, r.ExitCode, r.Reason, r.FinishedAt = res.Status, res.ExitCode, res.Reason, fromMillis(now)
		return nil
	})
	return r, err
}

// LogLine is one line of a run's output.
type LogLine struct {
	Seq    int64 // assigned by the store: 1, 2, … in arrival order
	Stream string
	Text   string
	At     time.Time // stamped with the store's clock when zero
}

// AppendRunLog appends lines to a run's log, in order, in one transaction, uncapped (RunLogWriter caps).
func (s *Store) AppendRunLog(ctx context.Context, runID int64, lines []LogLine) error {
	if len(lines) == 0 {
		return nil
	}
	now := s.now()
	return s.write(ctx, func(tx *sql.Tx) error { return appendLines(ctx, tx, runID, lines, now) })
}

func appendLines(ctx context.Context, tx *sql.Tx, runID int64, lines []LogLine, now time.Time) error {
	if len(lines) == 0 {
		return nil
	}
	var last int64
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM run_logs WHERE run_id = ?`, runID).Scan(&last); err != nil {
		return err
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO run_logs (run_id, seq, stream, text, at) VALUES (?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for i, l := range lines {
		at := l.At
		if at.IsZero() {
			at = now
		}
		if _, err := stmt.ExecContext(ctx, runID, last+int64(i)+1, l.Stream, l.Text, toMillis(at)); err != nil {
			return fmt.Errorf("append log of run %d: %w", runID, err)
		}
	}
	return nil
}

func scanLogLine(r scanner) (LogLine, error) {
	var l LogLine
	var at int64
	err := r.Scan(&l.Seq, &l.Stream, &l.Text, &at)
	l.At = fromMillis(at)
	return l, err
}

// RunLog returns a run's whole log in order.
func (s *Store) RunLog(ctx context.Context, runID int64) ([]LogLine, error) {
	return s.RunLogSince(ctx, runID, 0, -1)
}

// RunLogSince returns up to limit lines (all when limit < 0) after sequence number afterSeq, in order: for
// following a log while it grows, or paging through it.
func (s *Store) RunLogSince(ctx context.Context, runID int64, afterSeq int64, limit int) ([]LogLine, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT seq, stream, text, at FROM run_logs WHERE run_id = ? AND seq > ?
		ORDER BY seq LIMIT ?`, runID, afterSeq, limit)
	return collect(rows, err, scanLogLine)
}

// RunLogTail returns the last n lines of a run's log, in order.
func (s *Store) RunLogTail(ctx context.Context, runID int64, n int) ([]LogLine, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT seq, stream, text, at FROM (
			SELECT seq, stream, text, at FROM run_logs WHERE run_id = ? ORDER BY seq DESC LIMIT ?)
		ORDER BY seq`, runID, n)
	return collect(rows, err, scanLogLine)
}

// runResumeKey is where a run's resume state lives (in settings, which holds what the bot writes for itself).
func runResumeKey(id int64) string { return "run_resume/" + strconv.FormatInt(id, 10) }

// SetRunResume stores what a restarted bot needs to finish an unfinished run whose job outlives it (an
// apply's request and what was decided under its lock), replacing what was stored before. FinishRun deletes
// it.
func (s *Store) SetRunResume(ctx context.Context, id int64, state []byte) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		r, err := getRun(ctx, tx, id)
		if err != nil {
			return err
		}
		if r.Status.Final() {
			return fmt.Errorf("run %d is %s: nothing to resume", id, r.Status)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
			runResumeKey(id), state, s.nowMillis())
		return err
	})
}

// RunResume returns a run's resume state, or ErrNotFound.
func (s *Store) RunResume(ctx context.Context, id int64) ([]byte, error) {
	var state []byte
	err := s.db.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, runResumeKey(id)).Scan(&state)
	return one(state, err, fmt.Sprintf("resume state of run %d", id))
}
