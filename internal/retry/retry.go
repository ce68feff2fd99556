// Package retry decides what becomes of work that failed against the forge: try again at a time, give up
// because the retry window is spent, or stop at once because retrying cannot help. Deliveries (internal/dispatch)
// and outbox writes (internal/outbox) follow the same policy, so a status or a reply survives the same outage
// as the event that caused it. It is a pure function over the failure; the caller stores the outcome.
package retry

import (
	"errors"
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
