package db

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// Installation is one installation of the app on a forge account.
type Installation struct {
	Forge     string // "github", or whichever name the forge adapter uses consistently
	ID        int64  // the forge's installation id
	Account   string // the user or organisation it is installed on
	Suspended bool
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Repo is a repository an installation gives the bot access to.
type Repo struct {
	Forge          string
	FullName       string // "owner/name"; compared case-insensitively
	InstallationID int64
	CloneURL       string
	DefaultBranch  string
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
	if in.Forge == "" || in.ID == 0 {
		return fmt.Errorf("upsert installation: forge and id are required")
	}
	now := s.nowMillis()
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO installations (forge, installation_id, account, suspended, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (forge, installation_id) DO UPDATE SET
				account = excluded.account, suspended = excluded.suspended, updated_at = excluded.updated_at`,
			in.Forge, in.ID, in.Account, boolInt(in.Suspended), now, now)
		return err
	})
}

// RemoveInstallation deletes an installation and its repos. Removing a missing one is not an error.
func (s *Store) RemoveInstallation(ctx context.Context, forge string, id int64) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM installations WHERE forge = ? AND installation_id = ?`, forge, id)
		return err
	})
}

const installationColumns = `forge, installation_id, account, suspended, created_at, updated_at`

func scanInstallation(r scanner) (Installation, error) {
	var in Installation
	var created, updated int64
	err := r.Scan(&in.Forge, &in.ID, &in.Account, &in.Suspended, &created, &updated)
	in.CreatedAt, in.UpdatedAt = fromMillis(created), fromMillis(updated)
	return in, err
}

// GetInstallation returns one installation, or ErrNotFound.
func (s *Store) GetInstallation(ctx context.Context, forge string, id int64) (Installation, error) {
	row := s.db.QueryRowContext(ctx, `SELECT `+installationColumns+` FROM installations WHERE forge = ? AND installation_id = ?`, forge, id)
	in, err := scanInstallation(row)
	return one(in, err, fmt.Sprintf("installation %s/%d", forge, id))
}

// ListInstallations returns every installation, by forge and id.
func (s *Store) ListInstallations(ctx context.Context) ([]Installation, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+installationColumns+` FROM installations ORDER BY forge, installation_id`)
	return collect(rows, err, scanInstallation)
}

// UpsertRepo creates or updates a repo. Its installation must exist.
func (s *Store) UpsertRepo(ctx context.Context, r Repo) error {
	if r.Forge == "" || r.FullName == "" || r.InstallationID == 0 {
		return fmt.Errorf("upsert repo: forge, full name and installation id are required")
	}
	now := s.nowMillis()
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO repos (forge, full_name, installation_id, clone_url, default_branch, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (forge, full_name) DO UPDATE SET
				full_name = excluded.full_name, installation_id = excluded.installation_id,
				clone_url = excluded.clone_url, default_branch = excluded.default_branch, updated_at = excluded.updated_at`,
			r.Forge, r.FullName, r.InstallationID, r.CloneURL, r.DefaultBranch, now, now)
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

const repoSelect = `SELECT r.forge, r.full_name, r.installation_id, r.clone_url, r.default_branch, i.suspended, r.created_at, r.updated_at
	FROM repos r JOIN installations i ON i.forge = r.forge AND i.installation_id = r.installation_id`

func scanRepo(row scanner) (Repo, error) {
	var r Repo
	var created, updated int64
	err := row.Scan(&r.Forge, &r.FullName, &r.InstallationID, &r.CloneURL, &r.DefaultBranch, &r.Suspended, &created, &updated)
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

// ListInstallationRepos returns the repos of one installation, by name.
func (s *Store) ListInstallationRepos(ctx context.Context, forge string, installationID int64) ([]Repo, error) {
	rows, err := s.db.QueryContext(ctx, repoSelect+` WHERE r.forge = ? AND r.installation_id = ? ORDER BY r.full_name`, forge, installationID)
	return collect(rows, err, scanRepo)
}
