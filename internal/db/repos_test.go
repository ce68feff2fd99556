package db

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestInstallationsAndRepos(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s, path := openTemp(t, WithClock(clk.Now))

	require.NoError(t, s.UpsertInstallation(ctx, Installation{Forge: "github", Account: "7", Owner: "acme"}))
	require.NoError(t, s.UpsertInstallation(ctx, Installation{Forge: "github", Account: "8", Owner: "other"}))
	require.NoError(t, s.UpsertRepo(ctx, Repo{Forge: "github", FullName: "acme/warehouse", Account: "7",
		CloneURL: "https://github.com/acme/warehouse.git", DefaultBranch: "main"}))
	require.NoError(t, s.UpsertRepo(ctx, Repo{Forge: "github", FullName: "acme/analytics", Account: "7",
		CloneURL: "https://github.com/acme/analytics.git", DefaultBranch: "main"}))
	require.NoError(t, s.UpsertRepo(ctx, Repo{Forge: "github", FullName: "other/x", Account: "8",
		CloneURL: "https://github.com/other/x.git", DefaultBranch: "trunk"}))

	assert.Error(t, s.UpsertRepo(ctx, Repo{Forge: "github", FullName: "ghost/x", Account: "99"}),
		"a repo needs its installation")

	r, err := s.GetRepo(ctx, "github", "ACME/Warehouse")
	require.NoError(t, err, "names compare case-insensitively, as on the forge")
	assert.Equal(t, "acme/warehouse", r.FullName)
	assert.Equal(t, "acme", r.Owner())
	assert.Equal(t, "warehouse", r.Name())
	assert.Equal(t, clk.Now(), r.CreatedAt)

	// Upsert updates in place (a renamed default branch, a suspended installation).
	clk.Advance(time.Minute)
	require.NoError(t, s.UpsertRepo(ctx, Repo{Forge: "github", FullName: "acme/warehouse", Account: "7",
		CloneURL: "https://github.com/acme/warehouse.git", DefaultBranch: "develop"}))
	require.NoError(t, s.UpsertInstallation(ctx, Installation{Forge: "github", Account: "7", Owner: "acme", Suspended: true}))
	r, err = s.GetRepo(ctx, "github", "acme/warehouse")
	require.NoError(t, err)
	assert.Equal(t, "develop", r.DefaultBranch)
	assert.True(t, r.Suspended, "a repo is suspended with its installation")
	assert.Equal(t, clk.Now(), r.UpdatedAt)
	assert.True(t, r.UpdatedAt.After(r.CreatedAt))

	in, err := s.GetInstallation(ctx, "github", "7")
	require.NoError(t, err)
	assert.True(t, in.Suspended)

	installs, err := s.ListInstallations(ctx)
	require.NoError(t, err)
	assert.Len(t, installs, 2)
	repos, err := s.ListInstallationRepos(ctx, "github", "7")
	require.NoError(t, err)
	assert.Equal(t, []string{"acme/analytics", "acme/warehouse"}, repoNames(repos))

	// Everything survives a restart.
	s = reopen(t, s, path, WithClock(clk.Now))
	all, err := s.ListRepos(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"acme/analytics", "acme/warehouse", "other/x"}, repoNames(all))

	require.NoError(t, s.RemoveRepo(ctx, "github", "acme/analytics"))
	require.NoError(t, s.RemoveRepo(ctx, "github", "acme/analytics"), "removing twice is harmless")
	_, err = s.GetRepo(ctx, "github", "acme/analytics")
	assert.ErrorIs(t, err, ErrNotFound)

	require.NoError(t, s.RemoveInstallation(ctx, "github", "7"))
	_, err = s.GetInstallation(ctx, "github", "7")
	assert.ErrorIs(t, err, ErrNotFound)
	all, err = s.ListRepos(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"other/x"}, repoNames(all), "an installation's repos go with it")
}

func repoNames(rs []Repo) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.FullName)
	}
	return out
}
