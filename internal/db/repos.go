package db

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// Installation is one account the bot acts through on a forge: a GitHub App installation, or a forge's one
// configured token (Account "").
type Installation struct {
	Forge string // "github", or whichever name the forge adapter uses consistently
	// Account is vcs.Repo.Account: GitHub's installation id in decimal; "" for a forge with one token.
	Account   string
	Owner     string // the user or organisation it is installed on
	Suspended bool
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Repo is a repository an installation gives the bot access to.
type Repo struct {
	Forge         string
	FullName      string // "owner/name"; compared case-insensitively
	Account       string // its installation's account (vcs.Repo.Account)
	CloneURL      string
	DefaultBranch string
	// Suspended is read-only: whether the repo's installation is suspended. UpsertRepo ignores it.
	Suspended bool
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Owner is the part of FullName before its last slash.
func (r Repo) Owner() string {
	i := strings.LastIndex(r.FullName, "/")
	if i < 0 {
		return ""
	}
	return r.FullName[:i]
}

// Name is the part of FullName after its last slash.
func (r Repo) Name() string { return r.FullName[strings.LastIndex(r.FullName, "/")+1:] }

// UpsertInstallation creates or updates an installation (CreatedAt and UpdatedAt are set by the store).
func (s *Store) UpsertInstallation(ctx context.Context, in Installation) error {
	if in.Forge == "" {
		return fmt.Errorf("upsert installation: a forge is required")
	}
	now := s.nowMillis()
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO installations (forge, account, owner, suspended, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (forge, account) DO UPDATE SET
				owner = excluded.owner, suspended = excluded.suspended, updated_at = excluded.updated_at`,
			in.Forge, in.Account, in.Owner, boolInt(in.Suspended), now, now)
		return err
	})
}

// RemoveInstallation deletes an installation and its repos. Removing a missing one is not an error.
func (s *Store) RemoveInstallation(ctx context.Context, forge, account string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM installations WHERE forge = ? AND account = ?`, forge, account)
		return err
	})
}

const installationColumns = `forge, account, owner, suspended, created_at, updated_at`

func scanInstallation(r scanner) (Installation, error) {
	var in Installation
	var created, updated int64
	err := r.Scan(&in.Forge, &in.Account, &in.Owner, &in.Suspended, &created, &updated)
	in.CreatedAt, in.UpdatedAt = fromMillis(created), fromMillis(updated)
	return in, err
}

// GetInstallation returns one installation, or ErrNotFound.
func (s *Store) GetInstallation(ctx context.Context, forge, account string) (Installation, error) {
	row := s.db.QueryRowContext(ctx, `SELECT `+installationColumns+` FROM installations WHERE forge = ? AND account = ?`, forge, account)
	in, err := scanInstallation(row)
	return one(in, err, fmt.Sprintf("installation %s/%q", forge, account))
}

// ListInstallations returns every installation, by forge and account.
func (s *Store) ListInstallations(ctx context.Context) ([]Installation, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+installationColumns+` FROM installations ORDER BY forge, account`)
	return collect(rows, err, scanInstallation)
}

// UpsertRepo creates or updates a repo. Its installation (forge, account) must exist.
func (s *Store) UpsertRepo(ctx context.Context, r Repo) error {
	if r.Forge == "" || r.FullName == "" {
		return fmt.Errorf("upsert repo: forge and full name are required")
	}
	now := s.nowMillis()
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO repos (forge, full_name, account, clone_url, default_branch, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (forge, full_name) DO UPDATE SET
				full_name = excluded.full_name, account = excluded.account,
				clone_url = excluded.clone_url, default_branch = excluded.default_branch, updated_at = excluded.updated_at`,
			r.Forge, r.FullName, r.Account, r.CloneURL, r.DefaultBranch, now, now)
		if err != nil {
			return fmt.Errorf("upsert repo %s: %w", r.FullName, err)
		}
		return nil
	})
}

// RemoveRepo deletes a repo. Removing a missing one is not an error. Its plans and runs stay as history.
func (s *Store) RemoveRepo(ctx context.Context, forge, fullName string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM repos WHERE forge = ? AND full_name = ?`, forge, fullName)
		return err
	})
}

const repoSelect = `SELECT r.forge, r.full_name, r.account, r.clone_url, r.default_branch, i.suspended, r.created_at, r.updated_at
	FROM repos r JOIN installations i ON i.forge = r.forge AND i.account = r.account`

func scanRepo(row scanner) (Repo, error) {
	var r Repo
	var created, updated int64
	err := row.Scan(&r.Forge, &r.FullName, &r.Account, &r.CloneURL, &r.DefaultBranch, &r.Suspended, &created, &updated)
	r.CreatedAt, r.UpdatedAt = fromMillis(created), fromMillis(updated)
	return r, err
}

// GetRepo returns one repo by its full name (case-insensitively), or ErrNotFound.
func (s *Store) GetRepo(ctx context.Context, forge, fullName string) (Repo, error) {
	r, err := scanRepo(s.db.QueryRowContext(ctx, repoSelect+` WHERE r.forge = ? AND r.full_name = ?`, forge, fullName))
	return one(r, err, fmt.Sprintf("repo %s/%s", forge, fullName))
}

// ListRepos returns every repo, by forge and name.
func (s *Store) ListRepos(ctx context.Context) ([]Repo, error) {
	rows, err := s.db.QueryContext(ctx, repoSelect+` ORDER BY r.forge, r.full_name`)
	return collect(rows, err, scanRepo)
}

// ListInstallationRepos returns the repos of one installation (forge, account), by name.
func (s *Store) ListInstallationRepos(ctx context.Context, forge, account string) ([]Repo, error) {
	rows, err := s.db.QueryContext(ctx, repoSelect+` WHERE r.forge = ? AND r.account = ? ORDER BY r.full_name`, forge, account)
	return collect(rows, err, scanRepo)
}

// LatestPlanPerRepo is the newest plan of each repository with plans (one row a repository): what the bot
// last knew of repositories it plans for, whether or not an installation event named them.
func (s *Store) LatestPlanPerRepo(ctx context.Context) ([]Plan, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+planColumns+` FROM plans
		WHERE id IN (SELECT max(id) FROM plans GROUP BY forge, repo) ORDER BY forge, repo`)
	return collect(rows, err, scanPlan)
}
