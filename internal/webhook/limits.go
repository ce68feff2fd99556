package webhook

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// BodyLimits bound the delivery bodies the intake holds in memory before they are verified: anyone can POST, and
// a body can only be verified once it is read whole. Bodies wait for room rather than being refused, so a burst of
// real deliveries is stored; only a body still without room after Wait is answered 503. Zero fields take the
// defaults.
type BodyLimits struct {
	// SmallBody is the largest body that counts as small (default 1 MiB). Real deliveries nearly all are (the
	// payloads in shared/payloads are 5–30 KB). Small and large bodies have budgets of their own, so a flood
	// of large bodies never holds up ordinary deliveries.
	SmallBody int64
	// SmallBudget is how many bytes of small bodies are read at once (default 16 MiB).
	SmallBudget int64
	// LargeBudget is how many bytes of large bodies are read at once (default 4 × MaxBodyBytes). A body of
	// unknown length (chunked) counts as large, at MaxBodyBytes.
	LargeBudget int64
	// Wait is how long a body waits for room (default 8 s: GitHub gives up after 10 s).
	Wait time.Duration
}

// DefaultBodyLimits bound the bodies being read to 116 MiB.
var DefaultBodyLimits = BodyLimits{SmallBody: 1 << 20, SmallBudget: 16 << 20, LargeBudget: 4 * MaxBodyBytes, Wait: 8 * time.Second}

func (l BodyLimits) withDefaults() BodyLimits {
	d := DefaultBodyLimits
	if l.SmallBody <= 0 {
		l.SmallBody = d.SmallBody
	}
	if l.SmallBudget <= 0 {
		l.SmallBudget = d.SmallBudget
	}
	if l.LargeBudget <= 0 {
		l.LargeBudget = d.LargeBudget
	}
	if l.Wait <= 0 {
		l.Wait = d.Wait
	}
	return l
}

// IntakeStats is what the intake holds at a moment: bodies being read and bodies waiting for room.
type IntakeStats struct {
	Reading      int   // bodies being read into memory
	ReadingBytes int64 // their sizes (declared, or MaxBodyBytes when unknown)
	PeakBytes    int64 // the most ReadingBytes has been
	Waiting      int   // bodies waiting for room
	Refused      int   // bodies answered 503 because no room came in time, so far
}

// admission holds the two budgets and counts what the intake holds, independently of the budgets.
type admission struct {
	limits       BodyLimits
	small, large *budget

	mu    sync.Mutex
	stats IntakeStats
}

func newAdmission(l BodyLimits) *admission {
	l = l.withDefaults()
	return &admission{limits: l, small: &budget{size: l.SmallBudget}, large: &budget{size: l.LargeBudget}}
}

// admit waits up to the limits' Wait for room for a body of n bytes (n < 0: unknown) and returns the function
// that gives the room back.
func (a *admission) admit(ctx context.Context, n int64) (release func(), ok bool) {
	b := a.small
	if n < 0 || n > a.limits.SmallBody {
		b = a.large
	}
	if n < 0 {
		n = MaxBodyBytes
	}
	n = min(n, b.size) // a body the size of the whole budget can still be read, alone
	a.count(func(s *IntakeStats) { s.Waiting++ })
	ctx, cancel := context.WithTimeout(ctx, a.limits.Wait)
	err := b.acquire(ctx, n)
	cancel()
	a.count(func(s *IntakeStats) {
		s.Waiting--
		if err != nil {
			s.Refused++
			return
		}
		s.Reading++
		s.ReadingBytes += n
		s.PeakBytes = max(s.PeakBytes, s.ReadingBytes)
	})
	if err != nil {
		return nil, false
	}
	return func() {
		a.count(func(s *IntakeStats) { s.Reading--; s.ReadingBytes -= n })
		b.release(n)
	}, true
}

func (a *admission) count(f func(*IntakeStats)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f(&a.stats)
}

func (a *admission) snapshot() IntakeStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stats
}

// budget is a semaphore on bytes that grants room in arrival order, so a large body is not passed over forever
// by smaller ones.
type budget struct {
	size int64

	mu      sync.Mutex
	used    int64
	waiters list.List // of *waiter, oldest first
}

type waiter struct {
	n     int64
	ready chan struct{} // closed when the room is granted
}

func (b *budget) acquire(ctx context.Context, n int64) error {
	b.mu.Lock()
	if b.waiters.Len() == 0 && b.used+n <= b.size {
		b.used += n
		b.mu.Unlock()
		return nil
	}
	w := &waiter{n: n, ready: make(chan struct{})}
	elem := b.waiters.PushBack(w)
	b.mu.Unlock()
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		b.mu.Lock()
		defer b.mu.Unlock()
		select {
		case <-w.ready:
			return nil // granted as the wait ended: use it
		default:
		}
		b.waiters.Remove(elem)
		b.grant() // the waiters behind this one may fit now
		return ctx.Err()
	}
}

func (b *budget) release(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
	b.grant()
}

// grant hands room to the oldest waiters while they fit. Called with mu held.
func (b *budget) grant() {
	for e := b.waiters.Front(); e != nil; e = b.waiters.Front() {
		w := e.Value.(*waiter)
		if b.used+w.n > b.size {
			return
		}
		b.used += w.n
		b.waiters.Remove(e)
		close(w.ready)
	}
}
