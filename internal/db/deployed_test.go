package db

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTheLastDeployIsPerProjectAndEnvironmentAndKeepsItsManifest(t *testing.T) {
	ctx := context.Background()
	store, err := Open(filepath.Join(t.TempDir(), "d.db"))
	require.NoError(t, err)
	defer store.Close()
	_, err = store.LastDeployed(ctx, "github", "acme/w", "default", "prod")
	require.ErrorIs(t, err, ErrNotFound)

	at := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	require.NoError(t, store.RecordDeployed(ctx, DeployedState{Forge: "github", Repo: "acme/w", Project: "default", Environment: "prod", CommitSHA: "a", Manifest: []byte(`{"v":1}`), PlanID: 1, DeployedAt: at}))
	require.NoError(t, store.RecordDeployed(ctx, DeployedState{Forge: "github", Repo: "Acme/W", Project: "default", Environment: "prod", CommitSHA: "b", Manifest: []byte(`{"v":2}`), PlanID: 2, DeployedAt: at.Add(time.Hour)}))
	require.NoError(t, store.RecordDeployed(ctx, DeployedState{Forge: "github", Repo: "acme/w", Project: "default", Environment: "staging", CommitSHA: "c", PlanID: 3, DeployedAt: at}))

	got, err := store.LastDeployed(ctx, "github", "acme/w", "default", "prod")
	require.NoError(t, err)
	assert.Equal(t, "b", got.CommitSHA)
	assert.Equal(t, `{"v":2}`, string(got.Manifest))
	assert.Equal(t, int64(2), got.PlanID)
	assert.Equal(t, at.Add(time.Hour), got.DeployedAt)

	staging, err := store.LastDeployed(ctx, "github", "acme/w", "default", "staging")
	require.NoError(t, err)
	assert.Equal(t, "c", staging.CommitSHA)
	assert.Nil(t, staging.Manifest)
	_, err = store.LastDeployed(ctx, "gitlab", "acme/w", "default", "prod")
	require.ErrorIs(t, err, ErrNotFound)
}

func TestAManifestOverTheCapIsRefusedAndNothingIsStored(t *testing.T) {
	ctx := context.Background()
	store, err := Open(filepath.Join(t.TempDir(), "d.db"))
	require.NoError(t, err)
	defer store.Close()
	at := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	require.NoError(t, store.RecordDeployed(ctx, DeployedState{Forge: "github", Repo: "acme/w", Project: "default", Environment: "prod", CommitSHA: "a", Manifest: []byte("{}"), PlanID: 1, DeployedAt: at}))

	err = store.RecordDeployed(ctx, DeployedState{Forge: "github", Repo: "acme/w", Project: "default", Environment: "prod", CommitSHA: "b", Manifest: make([]byte, MaxManifestBytes+1), PlanID: 2, DeployedAt: at})
	require.ErrorContains(t, err, "over the")
	got, err := store.LastDeployed(ctx, "github", "acme/w", "default", "prod")
	require.NoError(t, err)
	assert.Equal(t, "a", got.CommitSHA, "the refused deploy replaced nothing")
}
