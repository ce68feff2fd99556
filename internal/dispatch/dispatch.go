// Package dispatch drains the webhook queue: workers claim stored deliveries, the forge adapter parses each into
// a forge-neutral vcs.Event, and the handler acts on it. Events of one pull request are handled in order (the
// queue hands out one delivery per ordering key at a time); different PRs are handled in parallel. A failure is
// retried on the retry policy's schedule (internal/retry), long enough to wait out an outage, then kept as dead.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/retry"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// Queue is the durable intake queue (internal/db).
type Queue interface {
	// Claim takes the oldest due delivery whose ordering key has none in flight; ok is false when there is none.
	Claim(ctx context.Context, worker string) (d db.Delivery, ok bool, err error)
	Complete(ctx context.Context, id int64, worker string) error
	// Fail records a failure; the delivery is claimable again at retryAt, and its key waits for it.
	Fail(ctx context.Context, id int64, worker, cause string, retryAt time.Time) error
	// GiveUp records that the retry window is spent: the delivery is dead (kept) and its key goes on.
	GiveUp(ctx context.Context, id int64, worker, cause string) error
	// RequeueInFlight puts deliveries a crashed process had claimed back in the queue.
	RequeueInFlight(ctx context.Context) (int, error)
}

// Parser turns a forge's delivery into an event; vcs.ErrIgnored means the bot has nothing to do with it.
type Parser func(event string, body []byte) (vcs.Event, error)

// ParseLater is a parser's error for a delivery it cannot read yet, because a fact it needs from the forge did
// not answer (GitLab: which user the bot is, to tell its own notes from commands). Unlike other parse errors,
// which are permanent, it is retried on the retry policy.
type ParseLater struct{ Err error }

func (e ParseLater) Error() string { return "cannot parse yet: " + e.Err.Error() }
func (e ParseLater) Unwrap() error { return e.Err }

// Handler acts on an event. Returning an error marks the delivery failed (retried when the error is not
// permanent).
type Handler func(ctx context.Context, ev vcs.Event) error

// Permanent marks an error that retrying cannot fix (a bad payload, a permission the app lacks).
type Permanent struct{ Err error }

func (p Permanent) Error() string { return p.Err.Error() }
func (p Permanent) Unwrap() error { return p.Err }

// Permanent tells the retry policy (retry.IsPermanent) to stop at once.
func (p Permanent) Permanent() bool { return true }

// Dispatcher runs the workers.
type Dispatcher struct {
	Queue   Queue
	Parsers map[string]Parser // by forge name
	Handle  Handler
	Workers int
	// Poll is how often idle workers look for work even without a wake-up (deliveries retried after a failure,
	// or stored by another process).
	Poll time.Duration
	Log  *slog.Logger
	// Policy decides when a failed delivery is tried again and when it is given up as dead.
	Policy retry.Policy
	// Now is the clock failures are dated by (the store's clock decides when a retry is due: give both the
	// same); Rand the jitter's source. nil: the wall clock and math/rand.
	Now  func() time.Time
	Rand func() float64
	// OnDead, when set, is told of a delivery that died (after the store recorded it), with its event when it
	// parsed: the bot tells the PR about a merge it could not act on.
	OnDead func(ctx context.Context, del db.Delivery, ev vcs.Event, cause error)

	wake chan struct{}
	once sync.Once
}

func (d *Dispatcher) init() {
	d.once.Do(func() {
		d.wake = make(chan struct{}, 1)
		if d.Workers <= 0 {
			d.Workers = 4
		}
		if d.Poll <= 0 {
			d.Poll = time.Second
		}
		if d.Log == nil {
			d.Log = slog.Default()
		}
		if d.Now == nil {
			d.Now = time.Now
		}
		if d.Rand == nil {
			d.Rand = rand.Float64
		}
	})
}

// Notify wakes an idle worker; the intake calls it after storing a delivery.
func (d *Dispatcher) Notify() {
	d.init()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run requeues what a previous process left in flight, then runs the workers until ctx ends.
func (d *Dispatcher) Run(ctx context.Context) error {
	d.init()
	if n, err := d.Queue.RequeueInFlight(ctx); err != nil {
		return fmt.Errorf("requeueing deliveries: %w", err)
	} else if n > 0 {
		d.Log.Info("requeued deliveries left in flight by a previous run", "count", n)
	}
	var wg sync.WaitGroup
	for i := 0; i < d.Workers; i++ {
		wg.Add(1)
		go func(worker string) {
			defer wg.Done()
			d.work(ctx, worker)
		}(fmt.Sprintf("worker-%d", i))
	}
	wg.Wait()
	return nil
}

func (d *Dispatcher) work(ctx context.Context, worker string) {
	ticker := time.NewTicker(d.Poll)
	defer ticker.Stop()
	for ctx.Err() == nil {
		if d.drain(ctx, worker) > 0 {
			continue
		}
		select {
		case <-ctx.Done():
		case <-d.wake:
		case <-ticker.C:
		}
	}
}

// Drain handles deliveries until none is claimable, and returns how many it handled. Tests call it directly.
func (d *Dispatcher) Drain(ctx context.Context) int {
	d.init()
	return d.drain(ctx, "drain")
}

func (d *Dispatcher) drain(ctx context.Context, worker string) int {
	n := 0
	for ctx.Err() == nil {
		del, ok, err := d.Queue.Claim(ctx, worker)
		if err != nil {
			d.Log.Error("claiming a delivery", "err", err)
			return n
		}
		if !ok {
			return n
		}
		// Another delivery may be claimable now (another key); let an idle worker look.
		d.Notify()
		d.process(ctx, worker, del)
		n++
	}
	return n
}

func (d *Dispatcher) process(ctx context.Context, worker string, del db.Delivery) {
	log := d.Log.With("delivery", del.DeliveryID, "event", del.Event, "forge", del.Forge)
	// The queue's state must be written even when the server is stopping, or the delivery stays in flight until
	// the next start requeues it (harmless, but slower).
	qctx := context.WithoutCancel(ctx)
	ev, err := d.handle(ctx, del)
	if err == nil || errors.Is(err, vcs.ErrIgnored) {
		if err != nil {
			log.Debug("delivery ignored", "reason", err)
		}
		if cerr := d.Queue.Complete(qctx, del.ID, worker); cerr != nil {
			log.Error("completing a delivery", "err", cerr)
		}
		return
	}
	decision := d.Policy.Next(retry.Failure{Err: err, Attempts: del.Attempts, FirstFailed: del.FirstFailedAt, Now: d.Now()}, d.Rand)
	switch decision.Outcome {
	case retry.Stop:
		// Retrying cannot help: record it and move on, so the PR's later events are not held up.
		log.Error("delivery cannot be handled", "err", err)
		if cerr := d.Queue.Complete(qctx, del.ID, worker); cerr != nil {
			log.Error("completing a delivery", "err", cerr)
		}
	case retry.GiveUp:
		if gerr := d.Queue.GiveUp(qctx, del.ID, worker, err.Error()); gerr != nil {
			log.Error("recording a dead delivery", "err", gerr)
			return
		}
		log.Error("delivery is dead: it kept failing for the whole retry window; `dagctl-bot deliveries retry` runs it again",
			"id", del.ID, "err", err, "attempts", del.Attempts, "first_failed", del.FirstFailedAt)
		if d.OnDead != nil {
			d.OnDead(qctx, del, ev, err)
		}
	default:
		if ferr := d.Queue.Fail(qctx, del.ID, worker, err.Error(), decision.At); ferr != nil {
			log.Error("recording a failed delivery", "err", ferr)
		}
		log.Warn("delivery failed; will retry", "err", err, "attempt", del.Attempts, "retry_at", decision.At)
	}
}

func (d *Dispatcher) handle(ctx context.Context, del db.Delivery) (ev vcs.Event, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = Permanent{fmt.Errorf("panic handling the delivery: %v", r)}
		}
	}()
	parse, ok := d.Parsers[del.Forge]
	if !ok {
		return ev, Permanent{fmt.Errorf("no parser for forge %q", del.Forge)}
	}
	ev, err = parse(del.Event, del.Body)
	if err != nil {
		if errors.Is(err, vcs.ErrIgnored) {
			return ev, err
		}
		var later ParseLater
		if errors.As(err, &later) {
			return ev, err // retried like a failed handling
		}
		return ev, Permanent{fmt.Errorf("parsing %s delivery: %w", del.Event, err)}
	}
	ev.DeliveryID, ev.ReceivedAt = del.DeliveryID, del.ReceivedAt
	return ev, d.Handle(ctx, ev)
}
