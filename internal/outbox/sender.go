package outbox

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/retry"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// Forge is what the sender writes through: the vcs.Forge port has exactly these methods. PutStatus creates the
// status when ref is "" and returns the ref to write it again with (forges that upsert by commit and name
// return "").
type Forge interface {
	PutStatus(ctx context.Context, repo vcs.Repo, status vcs.Status, ref vcs.StatusRef) (vcs.StatusRef, error)
	Comments(ctx context.Context, repo vcs.Repo, number int) ([]vcs.Comment, error)
	CreateComment(ctx context.Context, repo vcs.Repo, number int, body string) (int64, error)
	UpdateComment(ctx context.Context, repo vcs.Repo, id int64, body string) error
	DeleteComment(ctx context.Context, repo vcs.Repo, id int64) error
	React(ctx context.Context, repo vcs.Repo, commentID int64, reaction vcs.Reaction) error
}

// StatusFinder is what a forge whose statuses are created by one call and updated by ref (GitHub's check runs)
// adds: the ref of the status of (commit, name) with the status's ExternalID that a send whose answer was lost
// may have created ("" when there is none), so that a resumed send updates it instead of creating a second.
// Forges that upsert by (commit, name) need not have it.
type StatusFinder interface {
	FindStatus(ctx context.Context, repo vcs.Repo, status vcs.Status) (vcs.StatusRef, error)
}

// PipelineStatuses is what a forge whose statuses join pipelines (GitLab) adds: a pipeline can start after a
// status was written, without it, and become what a merge waits for. The outbox then keeps the status each key
// last showed, to write it into such a pipeline (RejoinSlot); for other forges (GitHub) it keeps nothing more.
type PipelineStatuses interface {
	StatusesJoinPipelines() bool
}

// Defaults of Config.
const (
	// DefaultInterval spaces an account's writes, as GitHub asks (one second between content-creating
	// requests). The GitHub adapter spaces its writes by the same second (github.DefaultMinWriteInterval); the
	// sender waits from the end of its previous write, after the adapter has stamped it, so the adapter never
	// waits for the outbox's writes and stays a safety net for writes made outside it.
	DefaultInterval = time.Second
	// DefaultBackoff is the wait before the first retry of a failed send, doubling on each further one (with
	// jitter: between half of it and all of it).
	DefaultBackoff = time.Second
	// DefaultMaxBackoff caps the wait between retries (a rate limit's reset is waited for however far).
	DefaultMaxBackoff = 10 * time.Minute
	// DefaultRefTTL is how long the outbox keeps a key's ref (a check run's id, a sticky part's comment id)
	// after its last write: statuses of old commits and the stickies of PRs closed long ago are not written
	// again. A later write of a forgotten key starts afresh (a sticky part is found again by its marker).
	DefaultRefTTL = 30 * 24 * time.Hour
	// pruneEvery is how often Run prunes refs.
	pruneEvery = time.Hour
	// DefaultPoll is how often Run looks at the outbox when nothing woke it (writes enqueued by another
	// process, retries falling due).
	DefaultPoll = 5 * time.Second
)

// Config configures the sender. Now decides which writes are due (it stamps each write when enqueued); the
// store's own clock only dates refs, for pruning.
type Config struct {
	Interval   time.Duration // 0: DefaultInterval; negative: no spacing
	Backoff    time.Duration // 0: DefaultBackoff
	MaxBackoff time.Duration // 0: DefaultMaxBackoff
	// RetryFor is how long a write is retried after its first failed send before it is dropped (0:
	// retry.DefaultFor, 24h: a status or reply survives the outages a delivery does).
	RetryFor time.Duration
	Poll     time.Duration // 0: DefaultPoll
	RefTTL   time.Duration // 0: DefaultRefTTL
	Now      func() time.Time
	Sleep    func(ctx context.Context, d time.Duration) error
	// Rand is the retry jitter's source, in [0, 1) (nil: math/rand).
	Rand func() float64
	Log  *slog.Logger
}

// retryPolicy is the policy failed sends follow (the dispatcher's, with the outbox's own backoff).
func (c Config) retryPolicy() retry.Policy {
	return retry.Policy{For: c.RetryFor, Base: c.Backoff, Cap: c.MaxBackoff}
}

func (c Config) withDefaults() Config {
	switch {
	case c.Interval == 0:
		c.Interval = DefaultInterval
	case c.Interval < 0:
		c.Interval = 0
	}
	if c.Backoff <= 0 {
		c.Backoff = DefaultBackoff
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.Rand == nil {
		c.Rand = rand.Float64
	}
	if c.Poll <= 0 {
		c.Poll = DefaultPoll
	}
	if c.RefTTL <= 0 {
		c.RefTTL = DefaultRefTTL
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Sleep == nil {
		c.Sleep = sleepContext
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return c
}

type sender struct {
	store  *db.Store
	forges func(Account) (Forge, error)
	cfg    Config
	wake   chan struct{}

	mu        sync.Mutex
	draining  map[Account]bool
	lastWrite map[Account]time.Time
}

func newSender(store *db.Store, forges func(Account) (Forge, error), cfg Config) *sender {
	return &sender{
		store: store, forges: forges, cfg: cfg.withDefaults(), wake: make(chan struct{}, 1),
		draining: map[Account]bool{}, lastWrite: map[Account]time.Time{},
	}
}

func (s *sender) notify() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run sends writes until ctx ends: one drainer per account with due writes, woken by every enqueue, by a
// drainer that finished, and at the latest when the next retry falls due or Poll passed. One process runs the
// sender of a database.
func (s *sender) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	var pruned time.Time
	for {
		if now := s.cfg.Now(); now.Sub(pruned) >= pruneEvery {
			pruned = now
			if n, err := s.store.PruneOutboxRefs(ctx, now.Add(-s.cfg.RefTTL)); err != nil {
				s.cfg.Log.Error("outbox: pruning refs", "err", err)
			} else if n > 0 {
				s.cfg.Log.Info("outbox: forgot the refs of keys not written for a while", "refs", n, "ttl", s.cfg.RefTTL)
			}
		}
		wait := s.cfg.Poll
		next, err := s.startDue(ctx, &wg)
		if err != nil {
			s.cfg.Log.Error("outbox: reading the queue", "err", err)
		} else if !next.IsZero() {
			wait = min(wait, max(next.Sub(s.cfg.Now()), time.Millisecond))
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-s.wake:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// Drain sends every write that is due, each account in its own goroutine, and returns when none is due (or the
// first error of a drainer). Tests and one-shot tools use it instead of Run.
func (s *sender) Drain(ctx context.Context) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	accounts, err := s.store.OutboxAccounts(ctx)
	if err != nil {
		return err
	}
	now := s.cfg.Now()
	for _, a := range accounts {
		acct := Account{Forge: a.Forge, ID: a.Account}
		if a.NextDue.After(now) || !s.claimDrainer(acct) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.releaseDrainer(acct)
			if err := s.drainAccount(ctx, acct); err != nil {
				mu.Lock()
				first = cmpOr(first, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// startDue starts a drainer for each account with due writes that has none, and returns when the earliest
// write of the other accounts falls due (zero: none waits).
func (s *sender) startDue(ctx context.Context, wg *sync.WaitGroup) (time.Time, error) {
	accounts, err := s.store.OutboxAccounts(ctx)
	if err != nil {
		return time.Time{}, err
	}
	now := s.cfg.Now()
	var next time.Time
	for _, a := range accounts {
		acct := Account{Forge: a.Forge, ID: a.Account}
		if a.NextDue.After(now) {
			if next.IsZero() || a.NextDue.Before(next) {
				next = a.NextDue
			}
			continue
		}
		if !s.claimDrainer(acct) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.drainAccount(ctx, acct)
			s.releaseDrainer(acct)
			if err != nil {
				if ctx.Err() == nil {
					s.cfg.Log.Error("outbox: draining stopped", "forge", acct.Forge, "account", acct.ID, "err", err)
				}
				return // no wake-up: the poll retries, rather than a hot loop on a failing store or forge
			}
			s.notify() // a write enqueued while this drainer was finishing is picked up now
		}()
	}
	return next, nil
}

// Quiet reports whether no write is due and no drainer is sending: what was enqueued has reached the forge
// (or waits for a retry's backoff). Tests wait for it.
func (s *sender) Quiet(ctx context.Context) (bool, error) {
	s.mu.Lock()
	busy := len(s.draining) > 0
	s.mu.Unlock()
	if busy {
		return false, nil
	}
	accounts, err := s.store.OutboxAccounts(ctx)
	if err != nil {
		return false, err
	}
	now := s.cfg.Now()
	for _, a := range accounts {
		if !a.NextDue.After(now) {
			return false, nil
		}
	}
	return true, nil
}

func (s *sender) claimDrainer(acct Account) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining[acct] {
		return false
	}
	s.draining[acct] = true
	return true
}

func (s *sender) releaseDrainer(acct Account) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.draining, acct)
}

// drainAccount sends the account's due writes one at a time until none is due. It waits for the account's
// spacing before it claims the next write, so that writes enqueued meanwhile can still replace a pending state
// or go first by priority.
func (s *sender) drainAccount(ctx context.Context, acct Account) error {
	forge, err := s.forges(acct)
	if err != nil {
		return err
	}
	spacedForge := &spaced{Forge: forge, s: s, acct: acct}
	for {
		if err := s.waitTurn(ctx, acct); err != nil {
			return err
		}
		w, ok, err := s.store.ClaimOutbox(ctx, acct.Forge, acct.ID, s.cfg.Now())
		if err != nil || !ok {
			return err
		}
		if err := s.sendOne(ctx, spacedForge, w); err != nil {
			return err
		}
	}
}

// sendOne sends a claimed write and records the outcome: sent (deleted, its ref kept), refused for good
// (dropped), or failed (retried on the retry policy's schedule, dropped once its window is spent). It returns
// only errors that stop the drainer.
func (s *sender) sendOne(ctx context.Context, f Forge, w db.OutboxWrite) error {
	res, err := s.deliver(ctx, f, w)
	log := s.cfg.Log.With("id", w.ID, "kind", w.Kind, "forge", w.Forge, "account", w.Account, "attempt", w.Attempts+1)
	if err == nil {
		return s.store.FinishOutbox(ctx, w, res.refKey, res.ref, res.more...)
	}
	if ctx.Err() != nil {
		return ctx.Err() // left as being sent: the next start resumes it and looks for what it created
	}
	now := s.cfg.Now()
	decision := s.cfg.retryPolicy().Next(retry.Failure{Err: err, Attempts: w.Attempts + 1, FirstFailed: w.FirstFailedAt, Now: now}, s.cfg.Rand)
	switch {
	case permanent(err) || decision.Outcome == retry.Stop:
		log.Warn("outbox: the forge refused a write for good; dropped", "err", err)
		return s.store.DropOutbox(ctx, w.ID)
	case decision.Outcome == retry.GiveUp:
		log.Error("outbox: giving up on a write after failing for the whole retry window; dropped", "err", err,
			"first_failed", w.FirstFailedAt)
		return s.store.DropOutbox(ctx, w.ID)
	}
	log.Warn("outbox: sending failed; will retry", "retry_at", decision.At, "err", err)
	return s.store.RetryOutbox(ctx, w, decision.At, now, err.Error())
}

// permanent errors will not change by retrying: the thing is gone, or the app may not write it.
func permanent(err error) bool {
	return retry.IsPermanent(err) || errors.Is(err, errUnreadable)
}

// waitTurn waits until the account's previous write is Interval old.
func (s *sender) waitTurn(ctx context.Context, acct Account) error {
	if s.cfg.Interval <= 0 {
		return ctx.Err()
	}
	s.mu.Lock()
	last := s.lastWrite[acct]
	s.mu.Unlock()
	if last.IsZero() {
		return ctx.Err()
	}
	if d := last.Add(s.cfg.Interval).Sub(s.cfg.Now()); d > 0 {
		return s.cfg.Sleep(ctx, d)
	}
	return ctx.Err()
}

func (s *sender) wrote(acct Account) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastWrite[acct] = s.cfg.Now()
}

// spaced keeps the account's spacing between the write requests of one send too (a trim deletes several
// comments); reads pass through.
type spaced struct {
	Forge
	s    *sender
	acct Account
}

func (f *spaced) turn(ctx context.Context) (func(), error) {
	if err := f.s.waitTurn(ctx, f.acct); err != nil {
		return nil, err
	}
	return func() { f.s.wrote(f.acct) }, nil
}

func (f *spaced) PutStatus(ctx context.Context, repo vcs.Repo, st vcs.Status, ref vcs.StatusRef) (vcs.StatusRef, error) {
	done, err := f.turn(ctx)
	if err != nil {
		return "", err
	}
	defer done()
	return f.Forge.PutStatus(ctx, repo, st, ref)
}

// FindStatus passes the lookup through to a forge that has it (a read: not spaced).
func (f *spaced) FindStatus(ctx context.Context, repo vcs.Repo, st vcs.Status) (vcs.StatusRef, error) {
	if finder, ok := f.Forge.(StatusFinder); ok {
		return finder.FindStatus(ctx, repo, st)
	}
	return "", nil
}

// StatusesJoinPipelines passes the forge's answer through.
func (f *spaced) StatusesJoinPipelines() bool { return joinsPipelines(f.Forge) }

func joinsPipelines(f Forge) bool {
	p, ok := f.(PipelineStatuses)
	return ok && p.StatusesJoinPipelines()
}

func (f *spaced) CreateComment(ctx context.Context, repo vcs.Repo, number int, body string) (int64, error) {
	done, err := f.turn(ctx)
	if err != nil {
		return 0, err
	}
	defer done()
	return f.Forge.CreateComment(ctx, repo, number, body)
}

func (f *spaced) UpdateComment(ctx context.Context, repo vcs.Repo, id int64, body string) error {
	done, err := f.turn(ctx)
	if err != nil {
		return err
	}
	defer done()
	return f.Forge.UpdateComment(ctx, repo, id, body)
}

func (f *spaced) DeleteComment(ctx context.Context, repo vcs.Repo, id int64) error {
	done, err := f.turn(ctx)
	if err != nil {
		return err
	}
	defer done()
	return f.Forge.DeleteComment(ctx, repo, id)
}

func (f *spaced) React(ctx context.Context, repo vcs.Repo, commentID int64, reaction vcs.Reaction) error {
	done, err := f.turn(ctx)
	if err != nil {
		return err
	}
	defer done()
	return f.Forge.React(ctx, repo, commentID, reaction)
}

func sleepContext(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
