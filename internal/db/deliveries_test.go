package db

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mustEnqueue(t *testing.T, s *Store, id, key string) {
	t.Helper()
	inserted, err := s.Enqueue(context.Background(), "github", id, "pull_request", key, []byte(`{"id":"`+id+`"}`))
	require.NoError(t, err)
	require.True(t, inserted, id)
}

func mustClaim(t *testing.T, s *Store, worker string) Delivery {
	t.Helper()
	d, ok, err := s.Claim(context.Background(), worker)
	require.NoError(t, err)
	require.True(t, ok, "expected a delivery for %s", worker)
	return d
}

func assertNothingToClaim(t *testing.T, s *Store) {
	t.Helper()
	d, ok, err := s.Claim(context.Background(), "nobody")
	require.NoError(t, err)
	assert.False(t, ok, "unexpected claim of %s", d.DeliveryID)
}

func TestEnqueueIgnoresRedeliveries(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s, _ := openTemp(t, WithClock(clk.Now))
	inserted, err := s.Enqueue(ctx, "github", "d1", "pull_request", "acme/w#1", []byte("first"))
	require.NoError(t, err)
	assert.True(t, inserted)
	inserted, err = s.Enqueue(ctx, "github", "d1", "pull_request", "acme/w#1", []byte("second"))
	require.NoError(t, err)
	assert.False(t, inserted)
	inserted, err = s.Enqueue(ctx, "gitlab", "d1", "merge_request", "acme/w!1", nil)
	require.NoError(t, err)
	assert.True(t, inserted, "delivery ids are per forge")

	d, err := s.GetDelivery(ctx, "github", "d1")
	require.NoError(t, err)
	assert.Equal(t, Delivery{ID: d.ID, Forge: "github", DeliveryID: "d1", Event: "pull_request", OrderingKey: "acme/w#1",
		Body: []byte("first"), Status: DeliveryPending, ReceivedAt: clk.Now(), AvailableAt: clk.Now()}, d)
	_, err = s.GetDelivery(ctx, "github", "nope")
	assert.ErrorIs(t, err, ErrNotFound)
	_, err = s.Enqueue(ctx, "github", "", "ping", "", nil)
	assert.Error(t, err)
}

func TestConcurrentEnqueueOfOneDeliveryStoresItOnce(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	var wg sync.WaitGroup
	var inserted atomic.Int32
	errs := make(chan error, 32)
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := s.Enqueue(ctx, "github", "same", "push", "acme/w", []byte("x"))
			errs <- err
			if ok {
				inserted.Add(1)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.Equal(t, int32(1), inserted.Load())
	var rows int
	require.NoError(t, s.db.QueryRowContext(ctx, `SELECT count(*) FROM deliveries`).Scan(&rows))
	assert.Equal(t, 1, rows)
}

func TestClaimOrdersPerKeyAndRunsKeysInParallel(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	mustEnqueue(t, s, "a1", "acme/w#1")
	mustEnqueue(t, s, "a2", "acme/w#1")
	mustEnqueue(t, s, "b1", "acme/w#2")
	mustEnqueue(t, s, "c1", "")
	mustEnqueue(t, s, "c2", "")

	a1 := mustClaim(t, s, "w1")
	assert.Equal(t, "a1", a1.DeliveryID)
	assert.Equal(t, DeliveryInFlight, a1.Status)
	assert.Equal(t, 1, a1.Attempts)
	assert.Equal(t, "w1", a1.Worker)
	assert.Equal(t, "b1", mustClaim(t, s, "w2").DeliveryID, "a2 waits for a1; another PR does not")
	assert.Equal(t, "c1", mustClaim(t, s, "w3").DeliveryID)
	assert.Equal(t, "c2", mustClaim(t, s, "w4").DeliveryID, "deliveries without a key are ordered with nothing")
	assertNothingToClaim(t, s)

	assert.ErrorIs(t, s.Complete(ctx, a1.ID, "w2"), ErrNotClaimed, "only the holder completes")
	require.NoError(t, s.Complete(ctx, a1.ID, "w1"))
	assert.ErrorIs(t, s.Complete(ctx, a1.ID, "w1"), ErrNotClaimed, "a delivery completes once")
	assert.Equal(t, "a2", mustClaim(t, s, "w1").DeliveryID)

	done, err := s.GetDelivery(ctx, "github", "a1")
	require.NoError(t, err)
	assert.Equal(t, DeliveryDone, done.Status)
	assert.False(t, done.FinishedAt.IsZero())
}

func TestAFailedDeliveryIsRetriedWhenAskedThenDiesAndIsRetriedByAnOperator(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s, _ := openTemp(t, WithClock(clk.Now))
	mustEnqueue(t, s, "a1", "acme/w#1")
	mustEnqueue(t, s, "a2", "acme/w#1")
	mustEnqueue(t, s, "b1", "acme/w#2")

	d := mustClaim(t, s, "w1")
	require.Equal(t, "a1", d.DeliveryID)
	assert.ErrorIs(t, s.Fail(ctx, d.ID, "w2", "x", clk.Now()), ErrNotClaimed)
	firstFailure := clk.Now()
	require.NoError(t, s.Fail(ctx, d.ID, "w1", "github: 502", clk.Now().Add(10*time.Second)))

	// a1 waits until the time it was given; a2 still waits behind it, b1 does not.
	assert.Equal(t, "b1", mustClaim(t, s, "w1").DeliveryID)
	assertNothingToClaim(t, s)
	clk.Advance(9 * time.Second)
	assertNothingToClaim(t, s)
	clk.Advance(time.Second)
	d = mustClaim(t, s, "w1")
	assert.Equal(t, "a1", d.DeliveryID)
	assert.Equal(t, 2, d.Attempts)
	assert.Equal(t, "github: 502", d.LastError)
	assert.Equal(t, firstFailure, d.FirstFailedAt, "the retry window runs from the first failure")

	require.NoError(t, s.Fail(ctx, d.ID, "w1", "github: 502 again", clk.Now().Add(time.Minute)))
	clk.Advance(time.Minute)
	d = mustClaim(t, s, "w1")
	assert.Equal(t, firstFailure, d.FirstFailedAt, "a later failure keeps the first one's time")

	require.NoError(t, s.GiveUp(ctx, d.ID, "w1", "still broken"))
	dead, err := s.GetDelivery(ctx, "github", "a1")
	require.NoError(t, err)
	assert.Equal(t, DeliveryDead, dead.Status)
	assert.Equal(t, "still broken", dead.LastError)
	assert.JSONEq(t, `{"id":"a1"}`, string(dead.Body), "a dead delivery keeps its body")
	assert.Equal(t, "a2", mustClaim(t, s, "w1").DeliveryID, "a dead delivery no longer blocks its key")
	sum, err := s.DeadDeliveries(ctx)
	require.NoError(t, err)
	assert.Equal(t, DeadSummary{Count: 1, Oldest: dead.ReceivedAt}, sum)
	listed, err := s.ListDeliveries(ctx, true)
	require.NoError(t, err)
	require.Len(t, listed, 1)
	assert.Equal(t, dead.ID, listed[0].ID)
	assert.Empty(t, listed[0].Body, "a listing leaves the bodies out")

	// An operator's retry puts it back with fresh attempts and a fresh window.
	require.NoError(t, s.RetryDelivery(ctx, dead.ID))
	assert.ErrorIs(t, s.RetryDelivery(ctx, dead.ID), ErrNotFound, "only dead deliveries are retried")
	again, err := s.GetDelivery(ctx, "github", "a1")
	require.NoError(t, err)
	assert.Equal(t, DeliveryPending, again.Status)
	assert.Zero(t, again.Attempts)
	assert.Zero(t, again.FirstFailedAt)
	sum, err = s.DeadDeliveries(ctx)
	require.NoError(t, err)
	assert.Zero(t, sum.Count)
}

func TestARetriedDeadDeliveryGoesBackInItsKeysOrder(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	for _, id := range []string{"a1", "a2", "a3"} {
		mustEnqueue(t, s, id, "acme/w#1")
	}
	mustEnqueue(t, s, "b1", "acme/w#2")
	a1 := mustClaim(t, s, "w")
	require.NoError(t, s.GiveUp(ctx, a1.ID, "w", "502"))
	b1 := mustClaim(t, s, "w")
	require.Equal(t, "a2", b1.DeliveryID)
	require.NoError(t, s.GiveUp(ctx, b1.ID, "w", "502"))

	n, err := s.RetryDeadDeliveries(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	var order []string
	for {
		d, ok, err := s.Claim(ctx, "w")
		require.NoError(t, err)
		if !ok {
			break
		}
		order = append(order, d.DeliveryID)
		require.NoError(t, s.Complete(ctx, d.ID, "w"))
	}
	assert.Equal(t, []string{"a1", "a2", "a3", "b1"}, order, "retried deliveries go before their key's later ones")
}

func TestRequeueInFlightAfterACrash(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s, path := openTemp(t, WithClock(clk.Now), WithMaxInterruptions(2))
	mustEnqueue(t, s, "a1", "acme/w#1")
	mustEnqueue(t, s, "a2", "acme/w#1")
	mustEnqueue(t, s, "b1", "acme/w#2")
	mustEnqueue(t, s, "c1", "acme/w#3")
	a1 := mustClaim(t, s, "old-1")
	b1 := mustClaim(t, s, "old-2")
	require.Equal(t, "b1", b1.DeliveryID)
	require.NoError(t, s.Complete(ctx, b1.ID, "old-2"))
	c1 := mustClaim(t, s, "old-3")
	require.Equal(t, "c1", c1.DeliveryID)

	// The process dies with a1 and c1 in flight; the next one starts.
	s = reopen(t, s, path, WithClock(clk.Now), WithMaxInterruptions(2))
	n, err := s.RequeueInFlight(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, n)

	d := mustClaim(t, s, "new-1")
	assert.Equal(t, a1.ID, d.ID, "a1 is first in line again, before a2")
	assert.Equal(t, 2, d.Attempts)
	assert.ErrorIs(t, s.Complete(ctx, a1.ID, "old-1"), ErrNotClaimed, "the dead worker's claim is void")
	c := mustClaim(t, s, "new-2")
	assert.Equal(t, c1.ID, c.ID)
	assertNothingToClaim(t, s)

	// Crashing again on a delivery the bot stopped on before makes it dead instead of looping forever.
	s = reopen(t, s, path, WithClock(clk.Now), WithMaxInterruptions(2))
	n, err = s.RequeueInFlight(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	failed, err := s.GetDelivery(ctx, "github", "a1")
	require.NoError(t, err)
	assert.Equal(t, DeliveryDead, failed.Status)
	assert.Contains(t, failed.LastError, "interrupted")
	assert.Equal(t, "a2", mustClaim(t, s, "new-3").DeliveryID)
}

func TestPruneDeliveries(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s, _ := openTemp(t, WithClock(clk.Now))
	for _, id := range []string{"old-done", "old-dead", "new-done", "pending"} {
		mustEnqueue(t, s, id, id)
	}
	for _, id := range []string{"old-done", "old-dead"} {
		d := mustClaim(t, s, "w")
		require.Equal(t, id, d.DeliveryID)
		if id == "old-done" {
			require.NoError(t, s.Complete(ctx, d.ID, "w"))
		} else {
			require.NoError(t, s.GiveUp(ctx, d.ID, "w", "boom"))
		}
	}
	clk.Advance(time.Hour)
	d := mustClaim(t, s, "w")
	require.NoError(t, s.Complete(ctx, d.ID, "w"))

	n, err := s.PruneDeliveries(ctx, clk.Now().Add(-time.Minute), 10)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	for id, kept := range map[string]bool{"old-done": false, "old-dead": true, "new-done": true, "pending": true} {
		_, err := s.GetDelivery(ctx, "github", id)
		if kept {
			assert.NoError(t, err, id)
		} else {
			assert.ErrorIs(t, err, ErrNotFound, id)
		}
	}
}

// Many workers drain a queue of many PRs at once. For every key, deliveries are processed one at a time and
// in enqueue order; every delivery is processed exactly once.
func TestClaimUnderConcurrency(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	// More workers than keys, and runs of one key in the queue: free workers are always tempted by a key that is
	// in flight.
	const keys, perKey, workers = 4, 24, 8
	next := make([]int, keys)
	for n := 0; n < keys*perKey; n++ {
		k := (n / 3) % keys
		for next[k] == perKey {
			k = (k + 1) % keys
		}
		mustEnqueue(t, s, fmt.Sprintf("k%d-%d", k, next[k]), fmt.Sprintf("acme/w#%d", k))
		next[k]++
	}

	var mu sync.Mutex
	processed := map[string][]string{} // key → delivery ids in processing order
	inFlight := map[string]int{}
	var overlaps atomic.Int32

	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(worker string) {
			defer wg.Done()
			for {
				d, ok, err := s.Claim(ctx, worker)
				if err != nil {
					errs <- err
					return
				}
				if !ok {
					mu.Lock()
					total := 0
					for _, ids := range processed {
						total += len(ids)
					}
					mu.Unlock()
					if total == keys*perKey {
						return
					}
					continue // others still hold deliveries that block what is left
				}
				mu.Lock()
				inFlight[d.OrderingKey]++
				if inFlight[d.OrderingKey] > 1 {
					overlaps.Add(1)
				}
				processed[d.OrderingKey] = append(processed[d.OrderingKey], d.DeliveryID)
				mu.Unlock()

				// While this worker holds d, the database must show it as the key's only delivery in flight.
				var holding int
				if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM deliveries WHERE ordering_key = ? AND status = 'in_flight'`,
					d.OrderingKey).Scan(&holding); err != nil {
					errs <- err
					return
				}
				if holding != 1 {
					overlaps.Add(1)
				}

				mu.Lock()
				inFlight[d.OrderingKey]--
				mu.Unlock()
				if err := s.Complete(ctx, d.ID, worker); err != nil {
					errs <- err
					return
				}
			}
		}(fmt.Sprintf("w%d", w))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.Zero(t, overlaps.Load(), "two deliveries of one key were in flight at once")
	require.Len(t, processed, keys)
	for k := 0; k < keys; k++ {
		var want []string
		for i := 0; i < perKey; i++ {
			want = append(want, fmt.Sprintf("k%d-%d", k, i))
		}
		assert.Equal(t, want, processed[fmt.Sprintf("acme/w#%d", k)])
	}
	assertNothingToClaim(t, s)
}
