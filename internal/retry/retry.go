// Package retry decides what becomes of work that failed against the forge: try again at a time, give up
// because the retry window is spent, or stop at once because retrying cannot help. Deliveries (internal/dispatch)
// and outbox writes (internal/outbox) follow the same policy, so a status or a reply survives the same outage
// as the event that caused it. It is a pure function over the failure; the caller stores the outcome. Work
// running in the background after its delivery was done (applies, plan jobs) waits its forge reads out in
// place, with Do.
package retry

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// Defaults of Policy.
const (
	// DefaultFor is how long failing work is retried after its first failure: a forge outage of a day is waited
	// out.
	DefaultFor = 24 * time.Hour
	// DefaultBase is the wait after the first failure, doubling after each further one.
	DefaultBase = 5 * time.Second
	// DefaultCap is the longest wait between two attempts (a rate limit's reset excepted), so that work resumes
	// within minutes of the forge answering again.
	DefaultCap = 10 * time.Minute
)

// Policy is capped exponential backoff with jitter, for a window of time since the first failure.
type Policy struct {
	For  time.Duration // 0: DefaultFor
	Base time.Duration // 0: DefaultBase
	Cap  time.Duration // 0: DefaultCap
}

// Failure is what the policy decides over.
type Failure struct {
	Err         error
	Attempts    int       // attempts made so far, this one included (1 after the first failure)
	FirstFailed time.Time // when the work first failed; zero when this is the first failure
	Now         time.Time
}

// Outcome is what becomes of the failed work.
type Outcome int

const (
	// Again: try again at Decision.At.
	Again Outcome = iota
	// GiveUp: the window since the first failure is spent (a delivery becomes dead).
	GiveUp
	// Stop: retrying cannot help (the thing is gone, the app may not do it, the input is bad).
	Stop
)

func (o Outcome) String() string {
	switch o {
	case Again:
		return "again"
	case GiveUp:
		return "give up"
	case Stop:
		return "stop"
	}
	return "unknown"
}

// Decision is the policy's answer.
type Decision struct {
	Outcome Outcome
	At      time.Time // when to try again (Again only)
}

// PermanentError is implemented by errors that say retrying cannot fix them (dispatch.Permanent).
type PermanentError interface{ Permanent() bool }

// IsPermanent reports whether err is one that retrying cannot fix: the forge says the thing is not there
// (a deleted PR, comment or file), that the app may not do it or that the request is invalid (422), or the
// error says so itself.
func IsPermanent(err error) bool {
	var p PermanentError
	if errors.As(err, &p) && p.Permanent() {
		return true
	}
	return errors.Is(err, vcs.ErrNotFound) || errors.Is(err, vcs.ErrPermission) || errors.Is(err, vcs.ErrInvalid)
}

// Next decides what becomes of the failure. rnd returns a number in [0, 1) (the jitter's source, injected so
// that tests are exact): the wait is drawn from the upper half of the backoff, so that work failed together
// does not all come back at once, yet never sooner than half of it.
func (p Policy) Next(f Failure, rnd func() float64) Decision {
	p = p.withDefaults()
	if IsPermanent(f.Err) {
		return Decision{Outcome: Stop}
	}
	first := f.FirstFailed
	if first.IsZero() {
		first = f.Now
	}
	if f.Now.Sub(first) >= p.For {
		return Decision{Outcome: GiveUp}
	}
	at := f.Now.Add(p.jittered(f.Attempts, rnd))
	var limited *vcs.RateLimited
	if errors.As(f.Err, &limited) && limited.Reset.After(at) {
		at = limited.Reset // the forge said when: waiting less only spends quota, however far it is
	}
	return Decision{Outcome: Again, At: at}
}

func (p Policy) withDefaults() Policy {
	if p.For <= 0 {
		p.For = DefaultFor
	}
	if p.Base <= 0 {
		p.Base = DefaultBase
	}
	if p.Cap <= 0 {
		p.Cap = DefaultCap
	}
	return p
}

// backoff is Base doubled per attempt after the first, at most Cap.
func (p Policy) backoff(attempts int) time.Duration {
	d := p.Base
	for i := 1; i < attempts && d < p.Cap; i++ {
		d *= 2
	}
	return min(d, p.Cap)
}

func (p Policy) jittered(attempts int, rnd func() float64) time.Duration {
	d := p.backoff(attempts)
	r := rnd()
	if r < 0 || r >= 1 {
		r = 0 // a source out of its range must not stretch the wait past the backoff
	}
	return d/2 + time.Duration(float64(d/2)*r)
}

// Clock is what Do waits on: the server's clock and sleep (tests pass a fake forge's, so waits take no real
// time). Zero fields are the wall clock, a timer honouring the context, and math/rand.
type Clock struct {
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
	Rand  func() float64
}

func (c Clock) withDefaults() Clock {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Sleep == nil {
		c.Sleep = sleepContext
	}
	if c.Rand == nil {
		c.Rand = rand.Float64
	}
	return c
}

func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// Do calls op until it succeeds, for work that has no delivery to be retried with (an apply, a plan job, once
// the event that started them is done): a transient error is waited out on the policy, calling waiting (when
// not nil) before each wait; a permanent error is returned at once, and the last error once the window is
// spent. When ctx ends, Do returns at once, with the last error, wrapping the context's cause.
func Do(ctx context.Context, p Policy, c Clock, op func() error, waiting func(err error)) error {
	c = c.withDefaults()
	var first time.Time
	for attempts := 1; ; attempts++ {
		err := op()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w (%w)", err, context.Cause(ctx))
		}
		now := c.Now()
		d := p.Next(Failure{Err: err, Attempts: attempts, FirstFailed: first, Now: now}, c.Rand)
		if d.Outcome != Again {
			return err
		}
		if first.IsZero() {
			first = now
		}
		if waiting != nil {
			waiting(err)
		}
		if serr := c.Sleep(ctx, d.At.Sub(now)); serr != nil || ctx.Err() != nil {
			return fmt.Errorf("%w (%w)", err, cmp.Or(context.Cause(ctx), serr))
		}
	}
}
