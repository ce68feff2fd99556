package db

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func outboxWrite(key, payload string, prio int) OutboxWrite {
	return OutboxWrite{Forge: "github", Account: "7", Kind: "status", Key: key, Priority: prio,
		Repo: []byte(`{}`), Payload: []byte(payload), Token: "t-" + payload}
}

func TestOutboxReplacesOnlyAnUnsentWriteOfTheKey(t *testing.T) {
	c := newClock()
	s, _ := openTemp(t, WithClock(c.Now))
	ctx := context.Background()

	first, _, err := s.EnqueueOutbox(ctx, outboxWrite("k", `"queued"`, 1))
	require.NoError(t, err)
	claimed, ok, err := s.ClaimOutbox(ctx, "github", "7", c.Now())
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, first, claimed.ID)
	assert.Equal(t, 0, claimed.Attempts, "a claim returns the sends begun before it")

	second, replaced, err := s.EnqueueOutbox(ctx, outboxWrite("k", `"running"`, 1))
	require.NoError(t, err)
	assert.False(t, replaced, "the write being sent is not touched: the newer one waits behind it")
	third, replaced, err := s.EnqueueOutbox(ctx, outboxWrite("k", `"success"`, 0))
	require.NoError(t, err)
	assert.True(t, replaced)
	assert.Equal(t, second, third, "the pending write is replaced in place")

	// The send of the first fails: a newer state of its key waits, so the failed one is dropped, not retried.
	require.NoError(t, s.RetryOutbox(ctx, claimed, c.Now().Add(time.Minute), c.Now(), "502"))
	rows, err := s.ListOutbox(ctx, "github", "7")
	require.NoError(t, err)
	require.Len(t, rows, 1)
	assert.Equal(t, `"success"`, string(rows[0].Payload))
	assert.Equal(t, 0, rows[0].Priority, "the newest write's priority")
	assert.Equal(t, `t-"running"`, rows[0].Token, "the row keeps its token")
	assert.Equal(t, 1, rows[0].Attempts, "the failed send may have reached the forge (a create whose answer was "+
		"lost): the write that replaces it says so, so that its send looks for what that one created first")
}

func TestOutboxClaimsResumedSendsFirstThenByPriorityAndAge(t *testing.T) {
	c := newClock()
	s, path := openTemp(t, WithClock(c.Now))
	ctx := context.Background()
	for _, w := range []OutboxWrite{outboxWrite("a", "a", 2), outboxWrite("b", "b", 1), outboxWrite("", "c", 2), outboxWrite("d", "d", 1)} {
		_, _, err := s.EnqueueOutbox(ctx, w)
		require.NoError(t, err)
	}
	interrupted, _, err := s.ClaimOutbox(ctx, "github", "7", c.Now())
	require.NoError(t, err)
	assert.Equal(t, "b", string(interrupted.Payload))

	s = reopen(t, s, path, WithClock(c.Now)) // the process died while sending b
	var order []string
	for {
		w, ok, err := s.ClaimOutbox(ctx, "github", "7", c.Now())
		require.NoError(t, err)
		if !ok {
			break
		}
		order = append(order, string(w.Payload))
		if string(w.Payload) == "b" {
			assert.Equal(t, 1, w.Attempts, "b's earlier send may have reached the forge")
		}
		require.NoError(t, s.FinishOutbox(ctx, w, "ref:"+w.Key, "r"))
	}
	assert.Equal(t, []string{"b", "d", "a", "c"}, order)
	ref, err := s.OutboxRef(ctx, "github", "7", "ref:a")
	require.NoError(t, err)
	assert.Equal(t, "r", ref)
	rows, err := s.ListOutbox(ctx, "github", "7")
	require.NoError(t, err)
	assert.Empty(t, rows, "sent writes are deleted")
}
