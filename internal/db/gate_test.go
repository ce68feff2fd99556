package db

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTheFirstPostingTimeOfAPlanStays(t *testing.T) {
	ctx := context.Background()
	store, err := Open(filepath.Join(t.TempDir(), "d.db"))
	require.NoError(t, err)
	defer store.Close()
	p, err := store.CreatePlan(ctx, Plan{Forge: "github", Repo: "acme/w", PR: 1, Project: "default", Environment: "prod", HeadSHA: "h", Status: "queued"})
	require.NoError(t, err)
	assert.True(t, p.ResultPostedAt.IsZero())

	first := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	require.NoError(t, store.SetPlanResultPostedAt(ctx, p.ID, first))
	require.NoError(t, store.SetPlanResultPostedAt(ctx, p.ID, first.Add(time.Hour)))
	got, err := store.GetPlan(ctx, p.ID)
	require.NoError(t, err)
	assert.Equal(t, first, got.ResultPostedAt)
}

func TestLastAppliedIsPerProjectAndEnvironment(t *testing.T) {
	ctx := context.Background()
	store, err := Open(filepath.Join(t.TempDir(), "d.db"))
	require.NoError(t, err)
	defer store.Close()
	_, err = store.LastApplied(ctx, "github", "acme/w", "default", "prod")
	require.ErrorIs(t, err, ErrNotFound)

	at := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	require.NoError(t, store.RecordApplied(ctx, AppliedContent{Forge: "github", Repo: "acme/w", Project: "default", Environment: "prod", CommitSHA: "a", ContentHash: "h1", PlanID: 1, AppliedAt: at}))
	require.NoError(t, store.RecordApplied(ctx, AppliedContent{Forge: "github", Repo: "Acme/W", Project: "default", Environment: "prod", CommitSHA: "b", ContentHash: "h2", PlanID: 2, AppliedAt: at}))
	got, err := store.LastApplied(ctx, "github", "acme/w", "default", "prod")
	require.NoError(t, err)
	assert.Equal(t, AppliedContent{Forge: "github", Repo: "acme/w", Project: "default", Environment: "prod", CommitSHA: "b", ContentHash: "h2", PlanID: 2, AppliedAt: at}, got)
	_, err = store.LastApplied(ctx, "github", "acme/w", "default", "dev")
	require.ErrorIs(t, err, ErrNotFound)
}
