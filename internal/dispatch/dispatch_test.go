package dispatch

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/retry"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// events are delivered as a tiny text body "<key>:<n>:<behaviour>" so that the parser is real code over bytes.
func parse(event string, body []byte) (vcs.Event, error) {
	var key string
	var n int
	var behaviour string
	if _, err := fmt.Sscanf(string(body), "%s %d %s", &key, &n, &behaviour); err != nil {
		return vcs.Event{}, err
	}
	switch behaviour {
	case "ignore":
		return vcs.Event{}, vcs.ErrIgnored
	case "garbage":
		return vcs.Event{}, errors.New("unparsable")
	}
	return vcs.Event{Repo: vcs.Repo{Forge: "test", Owner: key, Name: behaviour}, Comment: &vcs.CommentEvent{Number: n}}, nil
}

func newStore(t *testing.T) *db.Store {
	store, err := db.Open(filepath.Join(t.TempDir(), "q.db"))
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	return store
}

func enqueue(t *testing.T, store *db.Store, id, key string, n int, behaviour string) {
	_, err := store.Enqueue(context.Background(), "test", id, "e", key, []byte(fmt.Sprintf("%s %d %s", key, n, behaviour)))
	require.NoError(t, err)
}

func TestEventsOfOneKeyAreHandledInOrderOnce(t *testing.T) {
	store := newStore(t)
	for i := 1; i <= 20; i++ {
		enqueue(t, store, fmt.Sprintf("a%d", i), "pr-a", i, "ok")
		enqueue(t, store, fmt.Sprintf("b%d", i), "pr-b", i, "ok")
	}
	var mu sync.Mutex
	seen := map[string][]int{}
	d := &Dispatcher{Queue: store, Parsers: map[string]Parser{"test": parse}, Workers: 4, Poll: time.Millisecond,
		Handle: func(ctx context.Context, ev vcs.Event) error {
			mu.Lock()
			seen[ev.Repo.Owner] = append(seen[ev.Repo.Owner], ev.Comment.Number)
			mu.Unlock()
			return nil
		}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = d.Run(ctx); close(done) }()
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen["pr-a"]) == 20 && len(seen["pr-b"]) == 20
	}, 10*time.Second, 5*time.Millisecond)
	cancel()
	<-done
	want := make([]int, 20)
	for i := range want {
		want[i] = i + 1
	}
	assert.Equal(t, want, seen["pr-a"])
	assert.Equal(t, want, seen["pr-b"])
}

func TestFailuresRetryIgnoredAndPermanentComplete(t *testing.T) {
	store := newStore(t)
	enqueue(t, store, "flaky", "k1", 1, "flaky")
	enqueue(t, store, "ignored", "k2", 1, "ignore")
	enqueue(t, store, "garbage", "k3", 1, "garbage")
	enqueue(t, store, "denied", "k4", 1, "denied")
	calls := map[string]int{}
	d := &Dispatcher{Queue: store, Parsers: map[string]Parser{"test": parse}, Policy: retry.Policy{Base: time.Millisecond},
		Handle: func(ctx context.Context, ev vcs.Event) error {
			calls[ev.Repo.Name]++
			switch ev.Repo.Name {
			case "flaky":
				if calls["flaky"] < 2 {
					return errors.New("transient")
				}
			case "denied":
				return fmt.Errorf("writing a check: %w", vcs.ErrPermission)
			}
			return nil
		}}
	ctx := context.Background()
	require.Eventually(t, func() bool { d.Drain(ctx); return calls["flaky"] == 2 }, 5*time.Second, 5*time.Millisecond)
	for id, want := range map[string]db.DeliveryStatus{"flaky": db.DeliveryDone, "ignored": db.DeliveryDone, "garbage": db.DeliveryDone, "denied": db.DeliveryDone} {
		got, err := store.GetDelivery(ctx, "test", id)
		require.NoError(t, err)
		assert.Equal(t, want, got.Status, id)
	}
	assert.Equal(t, 1, calls["denied"], "a permission error is not retried")
}

func TestPanicInHandlerDoesNotKillTheWorker(t *testing.T) {
	store := newStore(t)
	enqueue(t, store, "boom", "k", 1, "ok")
	enqueue(t, store, "after", "k2", 2, "ok")
	handled := 0
	d := &Dispatcher{Queue: store, Parsers: map[string]Parser{"test": parse},
		Handle: func(ctx context.Context, ev vcs.Event) error {
			if ev.Comment.Number == 1 {
				panic("bug")
			}
			handled++
			return nil
		}}
	assert.Equal(t, 2, d.Drain(context.Background()))
	assert.Equal(t, 1, handled)
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// An outage longer than the retry window: the delivery is retried on the policy's schedule (bounded: the cap
// spaces the attempts), then dies with its body; the PR's later delivery goes on and the dead hook is told.
func TestADeliveryFailingPastTheWindowDiesAndItsKeyGoesOn(t *testing.T) {
	clk := &fakeClock{now: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)}
	store, err := db.Open(filepath.Join(t.TempDir(), "q.db"), db.WithClock(clk.Now))
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	enqueue(t, store, "merge", "pr-1", 1, "down")
	enqueue(t, store, "later", "pr-1", 2, "ok")
	var handled []int
	var dead []string
	d := &Dispatcher{Queue: store, Parsers: map[string]Parser{"test": parse}, Now: clk.Now, Rand: func() float64 { return 0 },
		Policy: retry.Policy{For: 4 * time.Hour, Base: time.Second, Cap: 10 * time.Minute},
		Handle: func(ctx context.Context, ev vcs.Event) error {
			handled = append(handled, ev.Comment.Number)
			if ev.Repo.Name == "down" {
				return errors.New("github: 502 Bad Gateway")
			}
			return nil
		},
		OnDead: func(ctx context.Context, del db.Delivery, ev vcs.Event, cause error) {
			dead = append(dead, fmt.Sprintf("%s #%d: %v", del.DeliveryID, ev.Comment.Number, cause))
		}}
	ctx := context.Background()
	for i := 0; i < 5*60; i++ { // five hours, a minute at a time
		d.Drain(ctx)
		clk.Advance(time.Minute)
	}
	got, err := store.GetDelivery(ctx, "test", "merge")
	require.NoError(t, err)
	assert.Equal(t, db.DeliveryDead, got.Status)
	assert.Equal(t, "github: 502 Bad Gateway", got.LastError)
	assert.NotEmpty(t, got.Body)
	// 1s doubling to 10m with the lowest jitter (half): ~11 attempts to reach the cap, then one per 5 minutes.
	assert.InDelta(t, 11+4*60/5, got.Attempts, 3, "attempts are bounded by the cap")
	assert.Equal(t, []string{"merge #1: github: 502 Bad Gateway"}, dead)
	later, err := store.GetDelivery(ctx, "test", "later")
	require.NoError(t, err)
	assert.Equal(t, db.DeliveryDone, later.Status, "the PR's later delivery goes on")
	assert.Equal(t, 2, handled[len(handled)-1])
}

func TestARateLimitedDeliveryWaitsForTheReset(t *testing.T) {
	clk := &fakeClock{now: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)}
	store, err := db.Open(filepath.Join(t.TempDir(), "q.db"), db.WithClock(clk.Now))
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	enqueue(t, store, "limited", "pr-1", 1, "ok")
	reset := clk.Now().Add(40 * time.Minute)
	calls := 0
	d := &Dispatcher{Queue: store, Parsers: map[string]Parser{"test": parse}, Now: clk.Now, Rand: func() float64 { return 0 },
		Handle: func(ctx context.Context, ev vcs.Event) error {
			calls++
			if clk.Now().Before(reset) {
				return fmt.Errorf("reading the PR: %w", &vcs.RateLimited{Reset: reset})
			}
			return nil
		}}
	ctx := context.Background()
	for i := 0; i < 60; i++ {
		d.Drain(ctx)
		clk.Advance(time.Minute)
	}
	assert.Equal(t, 2, calls, "tried once, then at the reset")
	got, err := store.GetDelivery(ctx, "test", "limited")
	require.NoError(t, err)
	assert.Equal(t, db.DeliveryDone, got.Status)
}
