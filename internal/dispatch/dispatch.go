// Package dispatch drains the webhook queue: workers claim stored deliveries, the forge adapter parses each into
// a forge-neutral vcs.Event, and the handler acts on it. Events of one pull request are handled in order (the
// queue hands out one delivery per ordering key at a time); different PRs are handled in parallel.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// Delivery is a claimed delivery.
type Delivery struct {
	Seq      int64
	Forge    string
	ID       string
	Event    string
	Body     []byte
	Attempts int
}

// Queue is the durable intake queue.
type Queue interface {
	// Claim takes the oldest pending delivery whose ordering key has none in flight; ok is false when there is
	// nothing to do.
	Claim(ctx context.Context) (d Delivery, ok bool, err error)
	Complete(ctx context.Context, seq int64) error
	// Fail records an error; the delivery is retried later unless it has been tried MaxAttempts times.
	Fail(ctx context.Context, seq int64, errText string, retry bool) error
	// RequeueInFlight puts deliveries a crashed process had claimed back in the queue.
	RequeueInFlight(ctx context.Context) (int, error)
}

// Parser turns a forge's delivery into an event; vcs.ErrIgnored means the bot has nothing to do with it.
type Parser func(event string, body []byte) (vcs.Event, error)

// Handler acts on an event. Returning an error marks the delivery failed (retried when the error is not
// permanent).
type Handler func(ctx context.Context, ev vcs.Event) error

// Permanent marks an error that retrying cannot fix (a bad payload, a permission the app lacks).
type Permanent struct{ Err error }

func (p Permanent) Error() string { return p.Err.Error() }
func (p Permanent) Unwrap() error { return p.Err }

// MaxAttempts bounds retries of a failing delivery.
const MaxAttempts = 5

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
		go func() {
			defer wg.Done()
			d.work(ctx)
		}()
	}
	wg.Wait()
	return nil
}

func (d *Dispatcher) work(ctx context.Context) {
	ticker := time.NewTicker(d.Poll)
	defer ticker.Stop()
	for ctx.Err() == nil {
		if d.Drain(ctx) > 0 {
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
	n := 0
	for ctx.Err() == nil {
		del, ok, err := d.Queue.Claim(ctx)
		if err != nil {
			d.Log.Error("claiming a delivery", "err", err)
			return n
		}
		if !ok {
			return n
		}
		// Another delivery may be claimable now (another key); let an idle worker look.
		d.Notify()
		d.process(ctx, del)
		n++
	}
	return n
}

func (d *Dispatcher) process(ctx context.Context, del Delivery) {
	log := d.Log.With("delivery", del.ID, "event", del.Event, "forge", del.Forge)
	err := d.handle(ctx, del)
	switch {
	case err == nil || errors.Is(err, vcs.ErrIgnored):
		if err != nil {
			log.Debug("delivery ignored", "reason", err)
		}
		if cerr := d.Queue.Complete(ctx, del.Seq); cerr != nil {
			log.Error("completing a delivery", "err", cerr)
		}
	default:
		var perm Permanent
		retry := !errors.As(err, &perm) && del.Attempts+1 < MaxAttempts && ctx.Err() == nil
		log.Error("delivery failed", "err", err, "attempt", del.Attempts+1, "retry", retry)
		if ferr := d.Queue.Fail(context.WithoutCancel(ctx), del.Seq, err.Error(), retry); ferr != nil {
			log.Error("recording a failed delivery", "err", ferr)
		}
	}
}

func (d *Dispatcher) handle(ctx context.Context, del Delivery) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = Permanent{fmt.Errorf("panic handling the delivery: %v", r)}
		}
	}()
	parse, ok := d.Parsers[del.Forge]
	if !ok {
		return Permanent{fmt.Errorf("no parser for forge %q", del.Forge)}
	}
	ev, err := parse(del.Event, del.Body)
	if err != nil {
		if errors.Is(err, vcs.ErrIgnored) {
			return err
		}
		return Permanent{fmt.Errorf("parsing %s delivery: %w", del.Event, err)}
	}
	ev.DeliveryID = del.ID
	return d.Handle(ctx, ev)
}
