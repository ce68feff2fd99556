package recovery

import (
	"context"
	"log/slog"
	"time"
)

// Redelivery is a forge that keeps its webhook deliveries and sends one again when asked (GitHub's app
// webhook deliveries).
type Redelivery interface {
	// RecentDeliveries are the attempts made since then, newest first or in any order.
	RecentDeliveries(ctx context.Context, since time.Time) ([]Attempt, error)
	// Redeliver asks the forge to send the attempt's delivery again, with its GUID.
	Redeliver(ctx context.Context, attemptID int64) error
}

// Redeliverer asks a forge for the deliveries the bot missed.
type Redeliverer struct {
	Forge string // the forge's name, as the intake stores its deliveries
	// Source is the forge's redelivery API; false while the forge is not set up (a GitHub App not created yet).
	Source func() (Redelivery, bool)
	// Stored reports whether the intake has the delivery (by forge and GUID): it was accepted by an attempt the
	// forge recorded as failed (an answer that came too late), or by another attempt.
	Stored      func(ctx context.Context, forge, guid string) (bool, error)
	Lookback    time.Duration // 0: DefaultLookback
	MaxAttempts int           // 0: DefaultMaxAttempts
	Now         func() time.Time
	Log         *slog.Logger
}

// Once asks for every failed delivery the bot does not have, and returns how many it asked for. A failure to
// ask for one is logged and the rest are still asked for; the next round tries it again.
func (r *Redeliverer) Once(ctx context.Context) (int, error) {
	src, ok := r.Source()
	if !ok {
		return 0, nil
	}
	lookback, maxAttempts := r.Lookback, r.MaxAttempts
	if lookback <= 0 {
		lookback = DefaultLookback
	}
	if maxAttempts <= 0 {
		maxAttempts = DefaultMaxAttempts
	}
	attempts, err := src.RecentDeliveries(ctx, r.Now().Add(-lookback))
	if err != nil {
		return 0, err
	}
	asked := 0
	for _, a := range Failed(attempts, r.Now().Add(-lookback), maxAttempts) {
		have, err := r.Stored(ctx, r.Forge, a.GUID)
		if err != nil {
			return asked, err
		}
		if have {
			continue
		}
		if err := src.Redeliver(ctx, a.ID); err != nil {
			r.Log.Warn("asking the forge to redeliver a missed webhook", "forge", r.Forge, "delivery", a.GUID, "err", err)
			continue
		}
		asked++
		r.Log.Info("asked the forge to redeliver a webhook the bot missed", "forge", r.Forge, "delivery", a.GUID,
			"attempted_at", a.At, "status_code", a.StatusCode)
	}
	return asked, nil
}

// Loop runs its steps on start and then every Every, until ctx ends. A step that fails is logged; the next
// round runs it again.
type Loop struct {
	Every time.Duration
	Steps []Step
	Sleep func(ctx context.Context, d time.Duration) error
	Log   *slog.Logger
}

// Step is one recovery: its name, for logs, and what it does.
type Step struct {
	Name string
	Run  func(ctx context.Context) error
}

// Run runs the loop until ctx ends.
func (l *Loop) Run(ctx context.Context) {
	for {
		for _, s := range l.Steps {
			if err := s.Run(ctx); err != nil && ctx.Err() == nil {
				l.Log.Error("recovery: "+s.Name, "err", err)
			}
		}
		if l.Every <= 0 || l.Sleep(ctx, l.Every) != nil {
			return
		}
	}
}
