package db

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// MaxManifestBytes caps a stored production manifest: the size of a job's inputs (jobs.MaxInputBytes), since
// the stored manifest is given to the next jobs whole.
const MaxManifestBytes = 64 << 20

// DeployedState is what a (project, environment) was last deployed from by an apply job that succeeded.
type DeployedState struct {
	Forge, Repo, Project, Environment string
	CommitSHA                         string
	// Manifest is the manifest.json the apply job left (dbt's production state); nil when it left none.
	Manifest   []byte
	PlanID     int64
	DeployedAt time.Time
}

// RecordDeployed stores what a (project, environment) was just deployed from, replacing the previous record.
// A manifest over MaxManifestBytes is refused, saying so, and nothing is stored.
func (s *Store) RecordDeployed(ctx context.Context, d DeployedState) error {
	if len(d.Manifest) > MaxManifestBytes {
		return fmt.Errorf("db: the production manifest of %s %s/%s is %d bytes, over the %d bytes stored",
			d.Repo, d.Project, d.Environment, len(d.Manifest), MaxManifestBytes)
	}
	if d.CommitSHA == "" {
		return fmt.Errorf("db: a deploy of %s %s/%s names no commit", d.Repo, d.Project, d.Environment)
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO deployed_state
			(forge, repo, project, environment, commit_sha, manifest, plan_id, deployed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (forge, repo, project, environment) DO UPDATE SET commit_sha = excluded.commit_sha,
				manifest = excluded.manifest, plan_id = excluded.plan_id, deployed_at = excluded.deployed_at`,
			d.Forge, d.Repo, d.Project, d.Environment, d.CommitSHA, d.Manifest, d.PlanID, toMillis(d.DeployedAt))
		return err
	})
}

// LastDeployed is what a (project, environment) was last deployed from; ErrNotFound when no apply of this bot
// succeeded there.
func (s *Store) LastDeployed(ctx context.Context, forge, repo, project, env string) (DeployedState, error) {
	d := DeployedState{Forge: forge, Repo: repo, Project: project, Environment: env}
	var at int64
	err := s.db.QueryRowContext(ctx, `SELECT commit_sha, manifest, plan_id, deployed_at FROM deployed_state
		WHERE forge = ? AND repo = ? AND project = ? AND environment = ?`, forge, repo, project, env).
		Scan(&d.CommitSHA, &d.Manifest, &d.PlanID, &at)
	d.DeployedAt = fromMillis(at)
	return one(d, err, fmt.Sprintf("deployed state of %s %s/%s", repo, project, env))
}
