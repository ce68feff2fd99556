package db

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/jobs"
)

func TestAnApplyRunKeepsTheOneImageItBuilt(t *testing.T) {
	ctx := context.Background()
	store, err := Open(filepath.Join(t.TempDir(), "d.db"))
	require.NoError(t, err)
	defer store.Close()
	p, err := store.CreatePlan(ctx, Plan{Forge: "github", Repo: "acme/w", PR: 1, Project: "marts", Environment: "prod", HeadSHA: "h"})
	require.NoError(t, err)
	run, _, err := store.CreateRun(ctx, p.ID, jobs.KindApply, "local")
	require.NoError(t, err)
	other, _, err := store.CreateRun(ctx, p.ID, jobs.KindApply, "local")
	require.NoError(t, err)

	_, err = store.ApplyImageOf(ctx, run.ID)
	require.ErrorIs(t, err, ErrNotFound, "a run that built nothing has no image")

	at := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	img := ApplyImage{RunID: run.ID, PlanID: p.ID, Reference: "registry.example/acme/marts@sha256:" + sha64("a"),
		Tagged: "registry.example/acme/marts:1.1.0-abc", BuiltAt: at}
	require.NoError(t, store.RecordApplyImage(ctx, img))
	require.NoError(t, store.RecordApplyImage(ctx, img), "recording the same image again (a replayed step) is harmless")
	again := img
	again.Reference = "registry.example/acme/marts@sha256:" + sha64("b")
	require.ErrorContains(t, store.RecordApplyImage(ctx, again), "already built", "one run, one image")

	got, err := store.ApplyImageOf(ctx, run.ID)
	require.NoError(t, err)
	assert.Equal(t, img, got)
	_, err = store.ApplyImageOf(ctx, other.ID)
	require.ErrorIs(t, err, ErrNotFound, "per run")
	require.ErrorContains(t, store.RecordApplyImage(ctx, ApplyImage{RunID: other.ID, PlanID: p.ID}), "no reference")
}

func sha64(c string) string {
	out := make([]byte, 64)
	for i := range out {
		out[i] = c[0]
	}
	return string(out)
}
