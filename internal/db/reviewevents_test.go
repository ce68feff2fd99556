package db

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func reviewEvent(pr int, user string, approved bool, at time.Time) ReviewEvent {
	return ReviewEvent{Forge: "gitlab", Repo: "group/sub/warehouse", PR: pr, User: user, Approved: approved, At: at}
}

// A redelivered event is stored once; events are per PR, oldest first by the forge's time, with when they came.
func TestReviewEventsAreStoredOncePerPR(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s, _ := openTemp(t, WithClock(clk.Now))
	t0 := time.Date(2025, 2, 1, 9, 0, 0, 0, time.UTC)
	for _, e := range []ReviewEvent{reviewEvent(1, "bob", false, t0.Add(time.Minute)), reviewEvent(1, "bob", true, t0), reviewEvent(2, "bob", true, t0)} {
		inserted, err := s.RecordReviewEvent(ctx, e)
		require.NoError(t, err)
		assert.True(t, inserted)
	}
	clk.Advance(time.Hour)
	again, err := s.RecordReviewEvent(ctx, reviewEvent(1, "BOB", true, t0)) // a redelivery; usernames fold case
	require.NoError(t, err)
	assert.False(t, again, "a redelivery inserts nothing")

	got, err := s.ReviewEvents(ctx, "gitlab", "Group/Sub/Warehouse", 1)
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, ReviewEvent{Forge: "gitlab", Repo: "group/sub/warehouse", PR: 1, User: "bob", Approved: true, At: t0, ReceivedAt: newClock().Now()}, got[0])
	assert.False(t, got[1].Approved)
	assert.Equal(t, t0.Add(time.Minute), got[1].At)
	other, err := s.ReviewEvents(ctx, "github", "group/sub/warehouse", 1)
	require.NoError(t, err)
	assert.Empty(t, other, "another forge's PR of the same name shares nothing")
}

// A PR's review events go together once the newest of them is older than the retention: a withdrawal is never
// pruned before the approval it voids. PRs with a recent event keep all of theirs.
func TestPruningReviewEventsTakesWholePRsWhoseNewestEventIsOld(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s, _ := openTemp(t, WithClock(clk.Now))
	at := clk.Now()
	record := func(e ReviewEvent) {
		_, err := s.RecordReviewEvent(ctx, e)
		require.NoError(t, err)
	}
	record(reviewEvent(1, "bob", true, at))
	record(reviewEvent(2, "bob", true, at))
	clk.Advance(50 * day)
	record(reviewEvent(1, "bob", false, at.Add(time.Minute))) // PR 1 is still active
	clk.Advance(50 * day)

	n, err := s.PruneReviewEvents(ctx, clk.Now().Add(-90*day), DefaultPruneBatch)
	require.NoError(t, err)
	assert.Equal(t, 1, n, "PR 2's one event")
	kept, err := s.ReviewEvents(ctx, "gitlab", "group/sub/warehouse", 1)
	require.NoError(t, err)
	assert.Len(t, kept, 2, "PR 1's old approval stays with its recent withdrawal")
	gone, err := s.ReviewEvents(ctx, "gitlab", "group/sub/warehouse", 2)
	require.NoError(t, err)
	assert.Empty(t, gone)

	clk.Advance(50 * day)
	p, err := s.Prune(ctx, Retention{ReviewEvents: 90 * day}, clk.Now(), func(context.Context) error { return nil })
	require.NoError(t, err)
	assert.Equal(t, Pruned{ReviewEvents: 2, Batches: 1}, p, "the retention's step prunes them")
	kept, err = s.ReviewEvents(ctx, "gitlab", "group/sub/warehouse", 1)
	require.NoError(t, err)
	assert.Empty(t, kept)
}

// A batch takes at most its limit of PRs, and the next goes on.
func TestPruningReviewEventsIsBatchedByPR(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s, _ := openTemp(t, WithClock(clk.Now))
	for pr := 1; pr <= 5; pr++ {
		for i, user := range []string{"bob", "carol"} {
			_, err := s.RecordReviewEvent(ctx, reviewEvent(pr, user, true, clk.Now().Add(time.Duration(i)*time.Second)))
			require.NoError(t, err, fmt.Sprint(pr))
		}
	}
	clk.Advance(91 * day)
	var batches []int
	for {
		n, err := s.PruneReviewEvents(ctx, clk.Now().Add(-90*day), 2)
		require.NoError(t, err)
		if n == 0 {
			break
		}
		batches = append(batches, n)
	}
	assert.Equal(t, []int{4, 4, 2}, batches, "two PRs of two events, then the last PR")
}
