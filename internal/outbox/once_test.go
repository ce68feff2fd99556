package outbox_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/outbox"
)

// A reply of a named effect (a delivery's n-th reply) is posted once however often it is asked for: while it
// waits, and after it was sent, until its record is pruned with the refs.
func TestAReplyOfAnEffectIsPostedOnceWhateverAsksForItAgain(t *testing.T) {
	w := newWorld(t)
	ob := w.outbox(w.app)
	ctx := context.Background()
	reply := func(effect, body string) {
		t.Helper()
		require.NoError(t, ob.ReplyOnce(ctx, acct, w.vrepo, prNumber, effect, body, outbox.PriorityResult))
	}
	reply("delivery|github|d1|reply|1", "first")
	reply("delivery|github|d1|reply|1", "first") // waiting: not enqueued again
	assert.Len(t, w.pending(), 1)
	require.NoError(t, ob.Drain(ctx))
	reply("delivery|github|d1|reply|1", "first, said again") // sent: not enqueued again
	assert.Empty(t, w.pending())
	reply("delivery|github|d1|reply|2", "second") // another reply of the delivery
	reply("", "unnamed")
	reply("", "unnamed") // replies of no effect are each posted
	require.NoError(t, ob.Drain(ctx))
	var bodies []string
	for _, c := range w.repo.Comments(prNumber) {
		bodies = append(bodies, outbox.WithoutWriteMarker(c.Body))
	}
	assert.Equal(t, []string{"first", "second", "unnamed", "unnamed"}, bodies)

	w.fake.Advance(31 * 24 * time.Hour)
	_, err := w.store.PruneOutboxRefs(ctx, w.fake.Now().Add(-30*24*time.Hour))
	require.NoError(t, err)
	reply("delivery|github|d1|reply|1", "first")
	assert.Len(t, w.pending(), 1, "the record of a sent reply is bounded: pruned with the refs")
}

// The marker of an effect's reply is the length of a random one: the core sizes replies by ReplyOverhead.
func TestAnEffectsMarkerIsAsLongAsARandomOne(t *testing.T) {
	w := newWorld(t)
	ob := w.outbox(w.app)
	ctx := context.Background()
	require.NoError(t, ob.ReplyOnce(ctx, acct, w.vrepo, prNumber, "delivery|github|d1|reply|1", "hello", outbox.PriorityResult))
	require.NoError(t, ob.Drain(ctx))
	cs := w.repo.Comments(prNumber)
	require.Len(t, cs, 1)
	assert.Len(t, cs[0].Body, len("hello")+outbox.ReplyOverhead)
	assert.Equal(t, "hello", outbox.WithoutWriteMarker(cs[0].Body))
}
