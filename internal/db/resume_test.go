package db

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/jobs"
)

// What a restarted bot needs to finish a run lives exactly as long as the run: it survives a reopen of the
// database, and finishing the run deletes it in the same transaction, so nothing is left behind.
func TestARunsResumeStateLivesUntilTheRunFinishes(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	p := mustCreatePlan(t, s, newPlan(12, "prod", "sha1"))
	r, _, err := s.CreateRun(ctx, p.ID, jobs.KindApply, "kubernetes")
	require.NoError(t, err)

	_, err = s.RunResume(ctx, r.ID)
	require.ErrorIs(t, err, ErrNotFound, "nothing before it is stored")
	require.NoError(t, s.SetRunResume(ctx, r.ID, []byte(`{"sha":"abc"}`)))
	require.NoError(t, s.SetRunResume(ctx, r.ID, []byte(`{"sha":"def"}`)), "stored again, replaced")

	require.NoError(t, s.Close())
	s, err = Open(path) // openTemp's cleanup closes this one
	require.NoError(t, err)
	got, err := s.RunResume(ctx, r.ID)
	require.NoError(t, err)
	assert.JSONEq(t, `{"sha":"def"}`, string(got))

	_, err = s.FinishRun(ctx, r.ID, RunResult{Status: RunSucceeded})
	require.NoError(t, err)
	_, err = s.RunResume(ctx, r.ID)
	assert.ErrorIs(t, err, ErrNotFound, "finishing the run deletes it")
	var left int
	require.NoError(t, s.db.QueryRowContext(ctx, `SELECT count(*) FROM settings WHERE key LIKE 'run_resume/%'`).Scan(&left))
	assert.Zero(t, left)
	assert.Error(t, s.SetRunResume(ctx, r.ID, []byte(`{}`)), "a finished run cannot be resumed")
}
