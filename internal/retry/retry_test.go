package retry

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/dagctl/dagctl-bot/internal/vcs"
)

type permanentErr struct{}

func (permanentErr) Error() string   { return "bad payload" }
func (permanentErr) Permanent() bool { return true }

func TestNext(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	outage := errors.New("github: 502 Bad Gateway")
	lowest := func() float64 { return 0 }
	highest := func() float64 { return 0.999999 }
	half := func() float64 { return 0.5 }
	p := Policy{} // the defaults: 24h, 5s doubling, at most 10m
	cases := []struct {
		name string
		f    Failure
		rnd  func() float64
		want Decision
	}{
		{"first failure waits half the base at least", Failure{Err: outage, Attempts: 1, Now: t0}, lowest,
			Decision{Again, t0.Add(2500 * time.Millisecond)}},
		{"first failure waits the base at most", Failure{Err: outage, Attempts: 1, Now: t0}, highest,
			Decision{Again, t0.Add(5 * time.Second).Add(-2 * time.Microsecond)}},
		{"doubling per attempt", Failure{Err: outage, Attempts: 4, FirstFailed: t0, Now: t0.Add(time.Minute)}, half,
			Decision{Again, t0.Add(time.Minute + 30*time.Second)}},
		{"capped at ten minutes", Failure{Err: outage, Attempts: 60, FirstFailed: t0, Now: t0.Add(5 * time.Hour)}, highest,
			Decision{Again, t0.Add(5*time.Hour + 10*time.Minute).Add(-300 * time.Microsecond)}},
		{"still retried just inside the window", Failure{Err: outage, Attempts: 200, FirstFailed: t0, Now: t0.Add(24*time.Hour - time.Second)}, lowest,
			Decision{Again, t0.Add(24*time.Hour - time.Second + 5*time.Minute)}},
		{"gives up once the window is spent", Failure{Err: outage, Attempts: 200, FirstFailed: t0, Now: t0.Add(24 * time.Hour)}, lowest,
			Decision{Outcome: GiveUp}},
		{"a rate limit waits for its reset, past the cap", Failure{Err: fmt.Errorf("x: %w", &vcs.RateLimited{Reset: t0.Add(50 * time.Minute)}), Attempts: 1, Now: t0}, lowest,
			Decision{Again, t0.Add(50 * time.Minute)}},
		{"a rate limit resetting sooner than the backoff waits the backoff", Failure{Err: &vcs.RateLimited{Reset: t0.Add(time.Second)}, Attempts: 5, FirstFailed: t0, Now: t0}, lowest,
			Decision{Again, t0.Add(40 * time.Second)}},
		{"a rate limit without a reset backs off", Failure{Err: vcs.ErrRateLimited, Attempts: 1, Now: t0}, lowest,
			Decision{Again, t0.Add(2500 * time.Millisecond)}},
		{"not found stops at once", Failure{Err: fmt.Errorf("pr: %w", vcs.ErrNotFound), Attempts: 1, Now: t0}, lowest, Decision{Outcome: Stop}},
		{"invalid (a 422) stops at once", Failure{Err: fmt.Errorf("comment: %w", vcs.ErrInvalid), Attempts: 1, Now: t0}, lowest, Decision{Outcome: Stop}},
		{"permission stops at once", Failure{Err: vcs.ErrPermission, Attempts: 1, Now: t0}, lowest, Decision{Outcome: Stop}},
		{"an error that says it is permanent stops", Failure{Err: fmt.Errorf("w: %w", permanentErr{}), Attempts: 1, Now: t0}, lowest, Decision{Outcome: Stop}},
		{"a permanent error stops even past the window", Failure{Err: vcs.ErrNotFound, Attempts: 9, FirstFailed: t0, Now: t0.Add(48 * time.Hour)}, lowest, Decision{Outcome: Stop}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := p.Next(c.f, c.rnd)
			assert.Equal(t, c.want.Outcome, got.Outcome)
			assert.WithinDuration(t, c.want.At, got.At, time.Millisecond, "at")
		})
	}
}

func TestAShorterWindowAndCap(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	p := Policy{For: time.Hour, Base: time.Second, Cap: time.Minute}
	assert.Equal(t, GiveUp, p.Next(Failure{Err: errors.New("502"), Attempts: 3, FirstFailed: t0, Now: t0.Add(time.Hour)}, func() float64 { return 0 }).Outcome)
	d := p.Next(Failure{Err: errors.New("502"), Attempts: 30, FirstFailed: t0, Now: t0}, func() float64 { return 0 })
	assert.Equal(t, t0.Add(30*time.Second), d.At)
}

// fakeClock is a clock whose sleeps move it, recording each wait.
type fakeClock struct {
	now   time.Time
	waits []time.Duration
}

func (c *fakeClock) clock() Clock {
	return Clock{Now: func() time.Time { return c.now }, Rand: func() float64 { return 0 },
		Sleep: func(ctx context.Context, d time.Duration) error {
			c.waits = append(c.waits, d)
			c.now = c.now.Add(d)
			return ctx.Err()
		}}
}

func TestDo(t *testing.T) {
	outage := errors.New("github: 502 Bad Gateway")
	gone := fmt.Errorf("tree: %w", vcs.ErrNotFound)
	s := time.Second
	cases := []struct {
		name    string
		results []error // op's answers in turn; past the end, it keeps failing with outage
		policy  Policy
		wantErr error
		calls   int
		waits   []time.Duration
	}{
		{"success at once does not wait", []error{nil}, Policy{}, nil, 1, nil},
		{"a 502 is waited out", []error{outage, outage, nil}, Policy{}, nil, 3, []time.Duration{2500 * time.Millisecond, 5 * s}},
		{"a permanent error returns at once", []error{gone}, Policy{}, vcs.ErrNotFound, 1, nil},
		{"a permanent error after transient ones returns then", []error{outage, gone}, Policy{}, vcs.ErrNotFound, 2, []time.Duration{2500 * time.Millisecond}},
		// 5s base, lowest jitter: waits of 2.5, 5, 10 s reach 17.5 s; the fourth failure is past the window.
		{"gives up with the last error once the window is spent", nil, Policy{For: 15 * s}, outage, 4, []time.Duration{2500 * time.Millisecond, 5 * s, 10 * s}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fc := &fakeClock{now: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)}
			calls, told := 0, 0
			err := Do(context.Background(), c.policy, fc.clock(), func() error {
				calls++
				if calls <= len(c.results) {
					return c.results[calls-1]
				}
				return outage
			}, func(error) { told++ })
			if c.wantErr == nil {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, c.wantErr)
			}
			assert.Equal(t, c.calls, calls, "calls")
			assert.Equal(t, c.waits, fc.waits, "waits")
			assert.Equal(t, len(c.waits), told, "told before each wait")
		})
	}
}

// A run cancelled while it waits stops waiting, its error saying why.
func TestDoStopsWhenTheContextEnds(t *testing.T) {
	outage := errors.New("github: 502 Bad Gateway")
	stopping := errors.New("the bot is shutting down")
	fc := &fakeClock{now: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)}
	ctx, cancel := context.WithCancelCause(context.Background())
	calls := 0
	err := Do(ctx, Policy{}, fc.clock(), func() error {
		calls++
		if calls == 2 {
			cancel(stopping)
		}
		return outage
	}, nil)
	assert.ErrorIs(t, err, stopping)
	assert.ErrorIs(t, err, outage)
	assert.Equal(t, 2, calls, "no attempt after the cancel")
	assert.Len(t, fc.waits, 1)
}
