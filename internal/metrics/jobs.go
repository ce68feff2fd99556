package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/dagctl/dagctl-bot/internal/jobs"
)

// Job outcomes, a fixed set: how the executor said the job ended.
const (
	OutcomeSucceeded = "succeeded" // exited 0
	OutcomeFailed    = "failed"    // exited non-zero
	OutcomeCancelled = "cancelled"
	OutcomeTimeout   = "timeout"
	// OutcomeError: the job did not run to an exit code of its own (the checkout failed, OOMKilled, the image
	// could not be pulled, ...: the executor's reason, in the run's log, not in a label).
	OutcomeError = "error"
)

// JobKind is the kind label of a job: plan (plans, and the re-plan of an apply), apply, cleanup (a closed PR's
// environment), image (a dbt deploy's project handed back for its image).
func JobKind(k jobs.Kind) string {
	switch k {
	case jobs.KindPlan:
		return "plan"
	case jobs.KindApply:
		return "apply"
	case jobs.KindInvalidate:
		return "cleanup"
	case jobs.KindImage:
		return "image"
	}
	return "other"
}

// JobOutcome is the outcome label of a job's result.
func JobOutcome(res jobs.Result) string {
	switch {
	case res.Succeeded():
		return OutcomeSucceeded
	case res.Reason == jobs.ReasonCancelled:
		return OutcomeCancelled
	case res.Reason == jobs.ReasonTimeout:
		return OutcomeTimeout
	case res.Reason == "":
		return OutcomeFailed
	}
	return OutcomeError
}

// Executor is next, observed: the jobs it starts, and the end of every job it starts or attaches to. It keeps
// next's jobs.SecretChecker when next has one, which the bot asks for.
func (m *Metrics) Executor(next jobs.Executor, now func() time.Time) jobs.Executor {
	if now == nil {
		now = time.Now
	}
	e := &observedExecutor{next: next, m: m, now: now}
	if checker, ok := next.(jobs.SecretChecker); ok {
		return &observedCheckingExecutor{observedExecutor: e, SecretChecker: checker}
	}
	return e
}

type observedExecutor struct {
	next jobs.Executor
	m    *Metrics
	now  func() time.Time
}

type observedCheckingExecutor struct {
	*observedExecutor
	jobs.SecretChecker
}

// RunsImages is next's (jobrun asks it whether an apply runs on the deploy image): observing a job never
// changes where it runs.
func (e *observedExecutor) RunsImages() bool {
	ie, ok := e.next.(interface{ RunsImages() bool })
	return ok && ie.RunsImages()
}

func (e *observedExecutor) Start(ctx context.Context, spec jobs.Spec, sink jobs.Sink) (jobs.Handle, error) {
	kind := JobKind(spec.Kind)
	started := e.now()
	h, err := e.next.Start(ctx, spec, sink)
	e.m.jobsStarted.WithLabelValues(kind).Inc()
	if err != nil {
		e.m.finished(kind, OutcomeError, 0)
		return nil, err
	}
	return &observedHandle{Handle: h, e: e, kind: kind, started: started}, nil
}

// Attach follows a job an earlier process may have started (Kubernetes, after a restart): its end is counted,
// its start was this process's predecessor's. The executor's id does not say the job's kind, so it is "unknown".
func (e *observedExecutor) Attach(ctx context.Context, id string, sink jobs.Sink) (jobs.Handle, error) {
	h, err := e.next.Attach(ctx, id, sink)
	if err != nil {
		return nil, err
	}
	return &observedHandle{Handle: h, e: e, kind: "unknown", started: e.now()}, nil
}

func (m *Metrics) finished(kind, outcome string, d time.Duration) {
	m.jobsFinished.WithLabelValues(kind, outcome).Inc()
	m.jobDuration.WithLabelValues(kind, outcome).Observe(d.Seconds())
}

// observedHandle counts its job's end once, however often it is waited for. A wait that ends with an error (the
// bot stopping) is not an end: the job may go on, and the next process counts it.
type observedHandle struct {
	jobs.Handle
	e       *observedExecutor
	kind    string
	started time.Time
	once    sync.Once
}

func (h *observedHandle) Wait(ctx context.Context) (jobs.Result, error) {
	res, err := h.Handle.Wait(ctx)
	if err == nil {
		h.once.Do(func() {
			d := res.Duration
			if d <= 0 {
				d = h.e.now().Sub(h.started)
			}
			h.e.m.finished(h.kind, JobOutcome(res), d)
		})
	}
	return res, err
}
