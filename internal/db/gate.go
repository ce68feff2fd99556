package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// SetPlanResultPostedAt records when the forge says the plan's result was posted. The first time recorded
// stays: a later update of the same check must not move it past reviews given in between.
func (s *Store) SetPlanResultPostedAt(ctx context.Context, id int64, at time.Time) error {
	if at.IsZero() {
		return errors.New("db: a result's posting time must not be zero")
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE plans SET result_posted_at = ? WHERE id = ? AND result_posted_at IS NULL`,
			toMillis(at), id)
		return err
	})
}

// AppliedContent is what a (project, environment) was last applied from.
type AppliedContent struct {
	Forge, Repo, Project, Environment string
	CommitSHA                         string
	// ContentHash is a hash of the project's files at CommitSHA (paths and content ids), so that squash and
	// rebase merges of the same content compare equal.
	ContentHash string
	PlanID      int64
	AppliedAt   time.Time
}

// RecordApplied stores what a (project, environment) was just applied from.
func (s *Store) RecordApplied(ctx context.Context, a AppliedContent) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO applied_content
			(forge, repo, project, environment, commit_sha, content_hash, plan_id, applied_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (forge, repo, project, environment) DO UPDATE SET commit_sha = excluded.commit_sha,
				content_hash = excluded.content_hash, plan_id = excluded.plan_id, applied_at = excluded.applied_at`,
			a.Forge, a.Repo, a.Project, a.Environment, a.CommitSHA, a.ContentHash, a.PlanID, toMillis(a.AppliedAt))
		return err
	})
}

// LastApplied is what a (project, environment) was last applied from; ErrNotFound when it never was (by this bot).
func (s *Store) LastApplied(ctx context.Context, forge, repo, project, env string) (AppliedContent, error) {
	a := AppliedContent{Forge: forge, Repo: repo, Project: project, Environment: env}
	var at int64
	err := s.db.QueryRowContext(ctx, `SELECT commit_sha, content_hash, plan_id, applied_at FROM applied_content
		WHERE forge = ? AND repo = ? AND project = ? AND environment = ?`, forge, repo, project, env).
		Scan(&a.CommitSHA, &a.ContentHash, &a.PlanID, &at)
	a.AppliedAt = fromMillis(at)
	return one(a, err, fmt.Sprintf("applied content of %s %s/%s", repo, project, env))
}
