package db

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// jobArtifactsPrefix is where a job's collected artifacts are kept (in settings, beside the runs' resume
// states), by the job's run id: "<run>" for a plan, "<run>-<step>" for an apply's steps.
const jobArtifactsPrefix = "job_artifacts/"

type keptArtifacts struct {
	Artifacts map[string][]byte `json:"artifacts,omitempty"`
	Errors    map[string]string `json:"errors,omitempty"`
}

// KeepArtifacts stores what an executor collected of a job (jobs.ArtifactStore), replacing what was kept
// before; FinishRun deletes it with the job's run. The executor has already capped each file
// (jobs.MaxArtifactBytes) and their number (jobs.MaxCollect).
func (s *Store) KeepArtifacts(ctx context.Context, jobRunID string, artifacts map[string][]byte, errs map[string]string) error {
	body, err := json.Marshal(keptArtifacts{Artifacts: artifacts, Errors: errs})
	if err != nil {
		return err
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
			jobArtifactsPrefix+jobRunID, body, s.nowMillis())
		return err
	})
}

// KeptArtifacts returns what KeepArtifacts stored for the job; ok is false when nothing was (or its run has
// finished since).
func (s *Store) KeptArtifacts(ctx context.Context, jobRunID string) (map[string][]byte, map[string]string, bool, error) {
	var body []byte
	err := s.db.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, jobArtifactsPrefix+jobRunID).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, false, nil
	}
	if err != nil {
		return nil, nil, false, err
	}
	var kept keptArtifacts
	if err := json.Unmarshal(body, &kept); err != nil {
		return nil, nil, false, fmt.Errorf("the kept artifacts of job %s: %w", jobRunID, err)
	}
	return kept.Artifacts, kept.Errors, true, nil
}

// deleteKeptArtifacts deletes what was kept of the run's jobs: "<run>" and "<run>-<step>" (a key range, so
// that run 1 is not run 12).
func deleteKeptArtifacts(ctx context.Context, tx *sql.Tx, runID int64) error {
	run := jobArtifactsPrefix + strconv.FormatInt(runID, 10)
	_, err := tx.ExecContext(ctx, `DELETE FROM settings WHERE key = ? OR (key >= ? AND key < ?)`, run, run+"-", run+".")
	return err
}
