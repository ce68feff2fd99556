package db

import (
	"context"
	"database/sql"
	"encoding/json"
	"io/fs"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// migrationsUpTo is the embedded migrations with versions up to last, as an older binary had them.
func migrationsUpTo(t *testing.T, last int) fs.FS {
	t.Helper()
	ms, err := loadMigrations(migrationsFS)
	require.NoError(t, err)
	out := fstest.MapFS{}
	for _, m := range ms {
		if m.version <= last {
			out["migrations/"+m.name] = &fstest.MapFile{Data: []byte(m.sql)}
		}
	}
	return out
}

// openAtVersion creates a database at path migrated to version last only, as an older bot left it.
func openAtVersion(t *testing.T, path string, last int) *sql.DB {
	t.Helper()
	sqlDB, err := sql.Open("sqlite", path+"?_txlock=immediate&_pragma=foreign_keys(1)")
	require.NoError(t, err)
	old := &Store{db: sqlDB, writeSlot: make(chan struct{}, 1), now: newClock().Now}
	require.NoError(t, old.migrate(context.Background(), migrationsUpTo(t, last)))
	v, err := old.SchemaVersion(context.Background())
	require.NoError(t, err)
	require.Equal(t, last, v)
	return sqlDB
}

// A database written by a bot at migration 0009 (integer installation ids, plans whose stored context names
// the installation as "installation_id": 7) opens, is migrated, and serves the same installations, repos and
// plans under the forge-neutral account.
func TestADatabaseAt0009MovesToAccounts(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "dagctl.db")
	old := openAtVersion(t, path, 9)
	for _, stmt := range []string{
		`INSERT INTO installations (forge, installation_id, account, suspended, created_at, updated_at) VALUES
			('github', 7, 'acme', 0, 1000, 2000), ('github', 8, 'other', 1, 1000, 1000)`,
		`INSERT INTO repos (forge, full_name, installation_id, clone_url, default_branch, created_at, updated_at) VALUES
			('github', 'acme/warehouse', 7, 'https://github.com/acme/warehouse.git', 'main', 1000, 1000),
			('github', 'acme/analytics', 7, 'https://github.com/acme/analytics.git', 'main', 1000, 1000),
			('github', 'other/x', 8, 'https://github.com/other/x.git', 'trunk', 1000, 1000)`,
		`INSERT INTO plans (forge, repo, pr, project, environment, head_sha, base_sha, trigger_user, flags, status,
			context, created_at, updated_at) VALUES ('github', 'acme/warehouse', 12, 'sqlmesh', 'prod', 'abc123',
			'base0', 'alice', '{}', 'queued', '{"pr":{"repo":{"forge":"github","owner":"acme","name":"warehouse",` +
			`"installation_id":7,"clone_url":"https://github.com/acme/warehouse.git"},"number":12,"author":"alice",` +
			`"head_sha":"abc123"},"project":{"name":"sqlmesh"}}', 1000, 1000)`,
	} {
		_, err := old.ExecContext(ctx, stmt)
		require.NoError(t, err, stmt)
	}
	require.NoError(t, old.Close())

	s, err := Open(path)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	v, err := s.SchemaVersion(ctx)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, v, 10)

	in, err := s.GetInstallation(ctx, "github", "7")
	require.NoError(t, err)
	assert.Equal(t, Installation{Forge: "github", Account: "7", Owner: "acme", CreatedAt: fromMillis(1000),
		UpdatedAt: fromMillis(2000)}, in)
	r, err := s.GetRepo(ctx, "github", "other/x")
	require.NoError(t, err)
	assert.Equal(t, "8", r.Account)
	assert.True(t, r.Suspended, "the repo still joins its installation")
	repos, err := s.ListInstallationRepos(ctx, "github", "7")
	require.NoError(t, err)
	assert.Equal(t, []string{"acme/analytics", "acme/warehouse"}, repoNames(repos))

	plans, err := s.LatestPlansByPR(ctx, "github", "acme/warehouse", 12)
	require.NoError(t, err)
	require.Len(t, plans, 1)
	var stored struct {
		PR vcs.PullRequest `json:"pr"`
	}
	require.NoError(t, json.Unmarshal(plans[0].Context, &stored))
	assert.Equal(t, vcs.Repo{Forge: "github", Owner: "acme", Name: "warehouse", Account: "7",
		CloneURL: "https://github.com/acme/warehouse.git"}, stored.PR.Repo, "the old installation id is the account")

	// The rebuilt tables keep their rules: a repo needs its installation, and goes with it.
	assert.Error(t, s.UpsertRepo(ctx, Repo{Forge: "github", FullName: "ghost/x", Account: "99"}))
	require.NoError(t, s.RemoveInstallation(ctx, "github", "7"))
	all, err := s.ListRepos(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"other/x"}, repoNames(all))
	var violations int
	require.NoError(t, s.db.QueryRowContext(ctx, `SELECT count(*) FROM pragma_foreign_key_check`).Scan(&violations))
	assert.Zero(t, violations)
}

// A forge with one configured token has one installation of account "", and its repos are served like others.
func TestAnInstallationWithoutAnID(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	require.NoError(t, s.UpsertInstallation(ctx, Installation{Forge: "gitlab", Owner: "gitlab.example.com"}))
	require.NoError(t, s.UpsertRepo(ctx, Repo{Forge: "gitlab", FullName: "group/sub/warehouse",
		CloneURL: "https://gitlab.example.com/group/sub/warehouse.git", DefaultBranch: "main"}))
	r, err := s.GetRepo(ctx, "gitlab", "group/sub/warehouse")
	require.NoError(t, err)
	assert.Equal(t, "", r.Account)
	assert.Equal(t, "group/sub", r.Owner())
	_, err = s.GetInstallation(ctx, "github", "")
	assert.ErrorIs(t, err, ErrNotFound, "accounts are per forge")
}
