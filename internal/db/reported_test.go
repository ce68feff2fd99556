package db

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/plan"
)

func TestUnreportedPlansSurviveARestart(t *testing.T) {
	ctx := context.Background()
	path := t.TempDir() + "/dagctl.db"
	store, err := Open(path)
	require.NoError(t, err)
	a, err := store.CreatePlan(ctx, Plan{Forge: "github", Repo: "o/r", PR: 1, Environment: "prod", HeadSHA: "a"})
	require.NoError(t, err)
	b, err := store.CreatePlan(ctx, Plan{Forge: "github", Repo: "o/r", PR: 1, Environment: "dev", HeadSHA: "a"})
	require.NoError(t, err)
	require.NoError(t, store.SetPlanReported(ctx, a.ID, plan.StatusQueued))
	require.NoError(t, store.SetPlanReported(ctx, b.ID, plan.StatusQueued))
	_, err = store.SetPlanStatus(ctx, b.ID, plan.StatusRunning)
	require.NoError(t, err)
	require.NoError(t, store.Close())

	store, err = Open(path)
	require.NoError(t, err)
	defer store.Close()
	got, err := store.ListUnreportedPlans(ctx)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, b.ID, got[0].ID, "only the plan whose status moved on is behind")
	assert.ErrorIs(t, store.SetPlanReported(ctx, 999, plan.StatusReady), ErrNotFound)
}

func TestSigningKeyIsStableAcrossRestarts(t *testing.T) {
	ctx := context.Background()
	path := t.TempDir() + "/dagctl.db"
	store, err := Open(path)
	require.NoError(t, err)
	k1, err := store.SigningKey(ctx, "log-links")
	require.NoError(t, err)
	other, err := store.SigningKey(ctx, "other")
	require.NoError(t, err)
	require.NoError(t, store.Close())
	store, err = Open(path)
	require.NoError(t, err)
	defer store.Close()
	k2, err := store.SigningKey(ctx, "log-links")
	require.NoError(t, err)
	assert.Len(t, k1, 32)
	assert.Equal(t, k1, k2)
	assert.NotEqual(t, k1, other)
}
