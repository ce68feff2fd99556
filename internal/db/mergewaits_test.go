package db

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMergeWaitsOutliveAReopenAndAreListedApartFromOtherSettings(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	require.NoError(t, s.SaveAppCredentials(ctx, "github", testCredentials()))
	_, err := s.SigningKey(ctx, "log-links")
	require.NoError(t, err)
	require.NoError(t, s.SetMergeWait(ctx, 12, []byte(`{"a":1}`)))
	require.NoError(t, s.SetMergeWait(ctx, 3, []byte(`{"b":1}`)))
	require.NoError(t, s.SetMergeWait(ctx, 12, []byte(`{"a":2}`)), "a replayed merge replaces its wait")

	s = reopen(t, s, path)
	ids, err := s.MergeWaitPlans(ctx)
	require.NoError(t, err)
	assert.ElementsMatch(t, []int64{3, 12}, ids)
	v, ok, err := s.MergeWait(ctx, 12)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.JSONEq(t, `{"a":2}`, string(v))

	require.NoError(t, s.DeleteMergeWait(ctx, 12))
	_, ok, err = s.MergeWait(ctx, 12)
	require.NoError(t, err)
	assert.False(t, ok)
	ids, err = s.MergeWaitPlans(ctx)
	require.NoError(t, err)
	assert.Equal(t, []int64{3}, ids)
}
