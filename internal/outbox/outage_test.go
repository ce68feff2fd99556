package outbox_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/forgetest/githubfake"
	"github.com/dagctl/dagctl-bot/internal/outbox"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

var badGateway = githubfake.Failure{Status: http.StatusBadGateway, Message: "Server Error"}

// drainFor drains every minute of fake time for d: a sender polling through an outage.
func drainFor(t *testing.T, w *world, ob *outbox.Outbox, d time.Duration) {
	t.Helper()
	for end := w.fake.Now().Add(d); w.fake.Now().Before(end); w.fake.Advance(time.Minute) {
		require.NoError(t, ob.Drain(context.Background()))
	}
}

// The forge answers 502 to everything for four hours: a status and a reply wait it out, with the sends spaced by
// the policy's cap (bounded), and a newer state of the status still replaces the retried one.
func TestWritesWaitOutAFourHourOutage(t *testing.T) {
	w := newWorld(t)
	ob := w.outbox(w.app)
	ctx := context.Background()
	w.fake.Outage(4*time.Hour, badGateway)
	require.NoError(t, ob.PutStatus(ctx, acct, w.vrepo, w.status(planProd, vcs.StatusRunning, "plan:1"), outbox.PriorityProgress))
	require.NoError(t, ob.Reply(ctx, acct, w.vrepo, prNumber, "the merge could not be applied", outbox.PriorityResult))
	drainFor(t, w, ob, time.Hour)
	require.NoError(t, ob.PutStatus(ctx, acct, w.vrepo, w.status(planProd, vcs.StatusSuccess, "plan:1"), outbox.PriorityResult))
	drainFor(t, w, ob, 3*time.Hour+15*time.Minute)

	check, ok := w.repo.CheckRun(planProd, w.head)
	require.True(t, ok, "the status reached the forge once it answered again")
	assert.Equal(t, "success", check.Conclusion, "the newest state, not the retried running one")
	live := w.repo.Comments(prNumber)
	require.Len(t, live, 1)
	assert.True(t, strings.HasPrefix(live[0].Body, "the merge could not be applied"))
	assert.Empty(t, w.pending())
	// Two writes, each retried from 1 min doubling to at most 10 min apart over four hours: about 2×(4+24).
	t.Logf("%d requests to the forge over the four hours", len(w.fake.Requests()))
	assert.Less(t, len(w.fake.Requests()), 120, "calls during the outage are bounded")
	assert.NotContains(t, w.logs.String(), "giving up")
}

// A write that keeps failing past the retry window (here 2h) is dropped with an ERROR line.
func TestAWriteFailingPastTheRetryWindowIsDropped(t *testing.T) {
	w := newWorld(t)
	ob := w.outboxWith(outbox.Config{RetryFor: 2 * time.Hour})
	ctx := context.Background()
	w.fake.Outage(5*time.Hour, badGateway)
	require.NoError(t, ob.Reply(ctx, acct, w.vrepo, prNumber, "lost", outbox.PriorityResult))
	drainFor(t, w, ob, time.Hour)
	require.Len(t, w.pending(), 1, "still retried within the window")
	drainFor(t, w, ob, time.Hour+15*time.Minute)
	assert.Empty(t, w.pending(), "dropped once the window is spent")
	assert.Contains(t, w.logs.String(), "level=ERROR msg=\"outbox: giving up on a write")
}

// A rate limit is waited for until its reset, however far, not retried on the backoff.
func TestARateLimitedWriteWaitsForTheReset(t *testing.T) {
	w := newWorld(t)
	ob := w.outbox(w.app)
	ctx := context.Background()
	w.fake.FailNext("POST", "/repos/acme/warehouse/issues/1/comments", 1, githubfake.PrimaryRateLimit(http.StatusForbidden, 50*time.Minute))
	require.NoError(t, ob.Reply(ctx, acct, w.vrepo, prNumber, "hello", outbox.PriorityResult))
	limitedAt := w.fake.Now()
	require.NoError(t, ob.Drain(ctx))
	rows := w.pending()
	require.Len(t, rows, 1)
	assert.WithinDuration(t, limitedAt.Add(50*time.Minute+time.Second), rows[0].NotBefore, 2*time.Second)
	drainFor(t, w, ob, 52*time.Minute)
	assert.Len(t, w.fake.RequestsMatching("POST", "/repos/acme/warehouse/issues/1/comments"), 2, "one try, then one at the reset")
	assert.Len(t, w.repo.Comments(prNumber), 1)
}
