package db

import (
	"context"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/jobs"
)

// A job's collected artifacts, kept as the executor took them, survive a reopen of the database (a restart) and
// go with their run: finishing run 1 deletes what its steps kept and leaves run 12's.
func TestAJobsKeptArtifactsLiveUntilItsRunFinishes(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	p := mustCreatePlan(t, s, newPlan(12, "prod", "sha1"))
	var runs []Run
	for range 12 {
		r, _, err := s.CreateRun(ctx, p.ID, jobs.KindApply, "kubernetes")
		require.NoError(t, err)
		runs = append(runs, r)
	}
	first, twelfth := runs[0], runs[11]
	require.EqualValues(t, 12, twelfth.ID)
	apply := func(r Run) string { return strconv.FormatInt(r.ID, 10) + "-apply" }

	_, _, ok, err := s.KeptArtifacts(ctx, apply(first))
	require.NoError(t, err)
	require.False(t, ok, "nothing before it is kept")
	manifest := []byte(`{"nodes": {"model.a": {}}}` + "\x00\xff") // bytes, not text
	require.NoError(t, s.KeepArtifacts(ctx, apply(first), map[string][]byte{"target/manifest.json": []byte("old")}, nil))
	require.NoError(t, s.KeepArtifacts(ctx, apply(first), map[string][]byte{"target/manifest.json": manifest},
		map[string]string{"target/run_results.json": "the job left no such file"}), "kept again, replaced")
	require.NoError(t, s.KeepArtifacts(ctx, strconv.FormatInt(first.ID, 10), map[string][]byte{"plan.json": []byte("p")}, nil))
	require.NoError(t, s.KeepArtifacts(ctx, apply(twelfth), map[string][]byte{"target/manifest.json": []byte("12")}, nil))

	require.NoError(t, s.Close())
	s, err = Open(path) // openTemp's cleanup closes this one
	require.NoError(t, err)
	artifacts, errs, ok, err := s.KeptArtifacts(ctx, apply(first))
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, map[string][]byte{"target/manifest.json": manifest}, artifacts)
	assert.Equal(t, map[string]string{"target/run_results.json": "the job left no such file"}, errs)

	_, err = s.FinishRun(ctx, first.ID, RunResult{Status: RunSucceeded})
	require.NoError(t, err)
	for _, id := range []string{apply(first), strconv.FormatInt(first.ID, 10)} {
		_, _, ok, err = s.KeptArtifacts(ctx, id)
		require.NoError(t, err)
		assert.False(t, ok, "finishing the run deletes what its job %s kept", id)
	}
	artifacts, _, ok, err = s.KeptArtifacts(ctx, apply(twelfth))
	require.NoError(t, err)
	require.True(t, ok, "run 12 is another run")
	assert.Equal(t, []byte("12"), artifacts["target/manifest.json"])
}
