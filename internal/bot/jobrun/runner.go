package jobrun

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dagctl/dagctl-bot/internal/bot/prstate"
	"github.com/dagctl/dagctl-bot/internal/bot/report"
	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/framework"
	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
	"github.com/dagctl/dagctl-bot/internal/retry"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// Runner runs the bot's jobs: plan jobs (started now, or followed after a restart) and the steps of applies,
// bounded by the job slots, cancellable by plan, and tracked so that Wait and Shutdown wait for them.
type Runner struct {
	Config
	slots chan struct{} // bounds concurrent jobs

	mu      sync.Mutex
	redact  *jobs.Redactor
	running map[int64]*runningJob // by run id
	wg      sync.WaitGroup
	closed  bool
}

// Config is what a Runner needs.
type Config struct {
	Store    prstate.Store
	Forges   func(name string) (vcs.Forge, bool)
	Executor jobs.Executor
	// ExecutorName is stored with each run ("local", "kubernetes").
	ExecutorName string
	// Jobs build every job from the project's framework (Jobs.Frameworks) and the operator's settings.
	Jobs    framework.JobSettings
	Report  *report.Reporter
	Locks   *prstate.PRLocks
	Log     *slog.Logger
	MaxJobs int
	// Secrets are masked in every stored log line (the bot's own credentials, as a last line of defence).
	Secrets []string
	// PlanEnded, when set, is called once a plan's final outcome is stored and reported, outside the PR's
	// lock (a merge that waited for the plan is carried out then).
	PlanEnded func(ctx context.Context, forge vcs.Forge, p db.Plan)
	// ForgeRetry and ForgeClock are how a run waits out the forge's transient errors (ForgeRead): the
	// deliveries' policy (DAGCTL_DELIVERY_RETRY_FOR) on the server's clock.
	ForgeRetry retry.Policy
	ForgeClock retry.Clock
}

// New returns a Runner.
func New(c Config) *Runner {
	return &Runner{Config: c, slots: make(chan struct{}, c.MaxJobs), redact: jobs.NewRedactor(c.Secrets...), running: map[int64]*runningJob{}}
}

// LogFlushInterval is how often a running job's output reaches the store (and so the log page).
const LogFlushInterval = 250 * time.Millisecond

type runningJob struct {
	planID int64
	handle jobs.Handle // nil until the executor has started it
	cancel bool        // cancelled (the executor may still be stopping its job)
	stop   context.CancelCauseFunc
}

// Why a run's context ends (context.Cause): the status and the log say it.
var (
	// ErrSuperseded: a newer head of the PR made the run's plan stale.
	ErrSuperseded = errors.New("superseded by a newer head")
	// ErrShutdown: the bot stopped before the run ended; the next start picks the run up.
	ErrShutdown = errors.New("the bot is shutting down")
)

// Launch runs a plan's job in the background, bounded by the bot's job slots.
func (r *Runner) Launch(p db.Plan, pc prstate.PlanContext, run db.Run) {
	r.InBackground(p.ID, run.ID, nil, func(ctx context.Context) {
		if err := r.executePlan(ctx, p, pc, run, nil); err != nil {
			r.Log.Error("plan run not reported", "plan", p.ID, "run", run.ID, "err", err)
		}
	})
}

// InBackground runs a run's work in a goroutine the bot tracks: Wait and Shutdown wait for it, and
// CancelPlanRuns reaches its job. It reports false when the bot is shutting down and nothing was started (the
// run stays queued in the store, and a restarted bot picks it up). The work outlives the event that started it:
// its context is the run's own, not the delivery's, and ends with a cause (context.Cause) when the run is
// cancelled (CancelPlanRuns) or the bot stops without waiting longer (Shutdown: ErrShutdown); waits for a job
// slot, a lock or the forge honour it. Work without a run (runID 0) is waited for but cannot be cancelled.
func (r *Runner) InBackground(planID, runID int64, handle jobs.Handle, work func(ctx context.Context)) bool {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return false
	}
	ctx, stop := context.WithCancelCause(context.Background())
	if runID != 0 {
		r.running[runID] = &runningJob{planID: planID, handle: handle, stop: stop}
	}
	r.wg.Add(1)
	r.mu.Unlock()
	go func() {
		defer r.wg.Done()
		defer stop(nil)
		if runID != 0 {
			defer func() {
				r.mu.Lock()
				delete(r.running, runID)
				r.mu.Unlock()
			}()
		}
		work(ctx)
	}()
	return true
}

// CancelPlanRuns stops the plan's running or waiting jobs, their runs' contexts ending with the cause.
func (r *Runner) CancelPlanRuns(ctx context.Context, planID int64, cause error) {
	r.mu.Lock()
	var handles []jobs.Handle
	for _, rj := range r.running {
		if rj.planID != planID {
			continue
		}
		rj.cancel = true
		rj.stop(cause)
		if rj.handle != nil {
			handles = append(handles, rj.handle)
		}
	}
	r.mu.Unlock()
	for _, h := range handles {
		if err := h.Cancel(ctx); err != nil {
			r.Log.Warn("cancelling a job", "plan", planID, "err", err)
		}
	}
}

// ForgeRead calls op, a forge call of a run's background work (a plan job's token, an apply's reads), until it
// succeeds: once the delivery that started the run is done nothing retries it, so a transient error is waited
// out here, on ForgeRetry, telling waiting (when not nil) before each wait. A permanent error returns at once,
// and so does the end of the run's context (a cancel, a shutdown), with its cause.
func (r *Runner) ForgeRead(ctx context.Context, op func() error, waiting func(err error)) error {
	return retry.Do(ctx, r.ForgeRetry, r.ForgeClock, op, func(err error) {
		r.Log.Warn("waiting for the forge", "err", err)
		if waiting != nil {
			waiting(err)
		}
	})
}

// cloneUserForge is a forge whose clone tokens go with a basic-auth user name of their own (GitLab: oauth2);
// a forge without it takes jobs.DefaultTokenUser (GitHub's x-access-token).
type cloneUserForge interface{ CloneUser() string }

// source is where a job fetches commit sha of repo from, with the forge's token (its transient errors waited
// out) and the user name the forge takes it with.
func (r *Runner) source(ctx context.Context, forge vcs.Forge, repo vcs.Repo, sha string, waiting func(error)) (jobs.Source, error) {
	src := jobs.Source{CloneURL: repo.CloneURL, SHA: sha}
	if f, ok := forge.(cloneUserForge); ok {
		src.TokenUser = f.CloneUser()
	}
	err := r.ForgeRead(ctx, func() (err error) {
		src.Token, err = forge.CloneToken(ctx, repo)
		return err
	}, waiting)
	return src, err
}

// CloneSource is where a build outside the executor (a Dockerfile build's Job) fetches commit sha of repo
// from: the forge's short-lived clone token and its user, as a job gets them.
func (r *Runner) CloneSource(ctx context.Context, forge vcs.Forge, repo vcs.Repo, sha string, waiting func(error)) (jobs.Source, error) {
	return r.source(ctx, forge, repo, sha, waiting)
}

// Abandoned reports whether a job ended only because this process is stopping (the executor killed or let go
// of it), not because anyone cancelled it or it ended by itself. Such a run is left unfinished in the store:
// the next process re-attaches to it (a Kubernetes Job goes on) or runs it again (a local process died with
// this one), so a restart never shows up as a cancelled check.
func (r *Runner) Abandoned(runID int64, res jobs.Result, err error) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		return false
	}
	if rj, ok := r.running[runID]; ok && rj.cancel {
		return false
	}
	return err != nil || res.Reason == jobs.ReasonCancelled
}

// IsClosed reports whether the runner is shutting down.
func (r *Runner) IsClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// HasActiveRun reports whether this process runs a job (or waits to) for the plan.
func (r *Runner) HasActiveRun(planID int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rj := range r.running {
		if rj.planID == planID {
			return true
		}
	}
	return false
}

// Cancelled reports whether the run was cancelled (it may still be waiting for its job to stop).
func (r *Runner) Cancelled(runID int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	rj, ok := r.running[runID]
	return ok && rj.cancel
}

// executePlan runs one plan job and reports it: check in progress, the job with its log streamed to the store,
// the outcome stored, the check completed and the sticky comment updated. With attached set, the job was
// started by a previous process of the bot and is followed to its end.
func (r *Runner) executePlan(ctx context.Context, p db.Plan, pc prstate.PlanContext, run db.Run, attached *attachedJob) error {
	forge, ok := r.Forges(p.Forge)
	if !ok {
		return fmt.Errorf("no forge %q", p.Forge)
	}
	var outcome planOutcome
	if attached == nil {
		var started bool
		var err error
		if outcome, started, err = r.runPlanJob(ctx, forge, p, pc, run); err != nil || !started {
			return err
		}
	} else {
		outcome = r.waitPlanJob(ctx, run, pc, attached)
		if attached.release != nil {
			attached.release()
		}
	}
	runCtx := ctx
	if fw, err := r.Jobs.Frameworks.For(pc.Project); err == nil && !outcome.abandoned {
		if c, ok := framework.ComparerOf(fw); ok {
			outcome = r.completePlan(runCtx, forge, p, pc, c, outcome)
		}
	}
	if outcome.abandoned {
		r.Log.Info("left a plan run for the next start", "plan", p.ID, "run", run.ID)
		return nil
	}
	ctx = context.WithoutCancel(ctx) // the outcome is recorded and reported even when the run was cancelled
	done, err := r.Store.SetPlanResult(ctx, p.ID, db.PlanResult{Status: outcome.Status, Summary: outcome.Summary, Error: outcome.Error})
	if err != nil {
		// The plan went stale or was cancelled while its job ran: its check was ended then.
		if latest, gerr := r.Store.GetPlan(ctx, p.ID); gerr == nil && latest.Status.Final() {
			return nil
		}
		return err
	}
	// Reporting reads the plan's approval from the forge (reviews, authors, permissions): its transient errors
	// are waited out, or a merge waiting for the plan would not be carried out. A cut wait (a shutdown) leaves
	// the report to the next start, which re-reports what the forge does not show yet.
	report := func() error { return r.reportFinished(ctx, forge, done, pc, run.ID) }
	if err := r.ForgeRead(runCtx, report, nil); err != nil {
		return err
	}
	if r.PlanEnded != nil {
		r.PlanEnded(ctx, forge, done)
	}
	return nil
}

// reportFinished reports a plan's stored outcome under the PR's lock: its check and the sticky comment.
func (r *Runner) reportFinished(ctx context.Context, forge vcs.Forge, done db.Plan, pc prstate.PlanContext, runID int64) error {
	unlock := r.Locks.Lock(pc.PR.Repo, pc.PR.Number)
	defer unlock()
	if err := r.Report.FinishedPlan(ctx, forge, done, pc, runID); err != nil {
		return err
	}
	if pc.PR.Number == 0 {
		return nil // a pushed commit has its check only
	}
	return r.Report.Sticky(ctx, forge, pc.PR, "")
}

// runPlanJob starts the plan's job when a job slot is free and waits for it. It reports false when nothing was
// started: the bot is stopping (the run stays queued for the next start), or the plan was superseded or
// cancelled while it waited (its check was ended by whoever did that).
func (r *Runner) runPlanJob(ctx context.Context, forge vcs.Forge, p db.Plan, pc prstate.PlanContext, run db.Run) (planOutcome, bool, error) {
	// A job slot is held while the job runs, and only then: the forge's writes (rate-limited and spaced per
	// installation) must not keep other jobs waiting.
	select {
	case r.slots <- struct{}{}:
		defer func() { <-r.slots }()
	case <-ctx.Done():
	}
	// What is recorded from here on is recorded even when the run was cancelled meanwhile; only the wait for
	// the forge's token honours the run's context.
	runCtx := ctx
	ctx = context.WithoutCancel(ctx)
	if r.IsClosed() {
		return planOutcome{}, false, nil
	}
	current, err := r.Store.GetPlan(ctx, p.ID)
	if err != nil {
		return planOutcome{}, false, err
	}
	if current.Status != plan.StatusQueued || r.Cancelled(run.ID) {
		_, err := r.Store.FinishRun(ctx, run.ID, db.RunResult{Status: db.RunCancelled, Reason: jobs.ReasonCancelled})
		return planOutcome{}, false, err
	}
	if p, err = r.Store.SetPlanStatus(ctx, p.ID, plan.StatusRunning); err != nil {
		return planOutcome{}, false, err
	}
	job, err := r.startPlanJob(runCtx, forge, p, pc, run)
	switch cause := context.Cause(runCtx); {
	case err == nil:
	case errors.Is(cause, ErrShutdown):
		return planOutcome{abandoned: true}, true, nil // running, for the next start to plan again
	case cause != nil: // superseded or cancelled: whoever did it ended the plan and its check
		_, err := r.Store.FinishRun(ctx, run.ID, db.RunResult{Status: db.RunCancelled, Reason: jobs.ReasonCancelled + ": " + cause.Error()})
		return planOutcome{}, false, err
	default:
		return r.failRun(ctx, run.ID, err.Error()), true, nil
	}
	// The job runs while its check says so. Under the PR's lock, and only if the plan is still running: a close
	// or a push may have ended it (and its check) meanwhile, and must not be overwritten.
	unlock := r.Locks.Lock(pc.PR.Repo, pc.PR.Number)
	if cur, err := r.Store.GetPlan(ctx, p.ID); err == nil && cur.Status == plan.StatusRunning {
		if err := r.Report.PlanStatus(ctx, forge, cur, pc, run.ID); err != nil {
			r.Log.Warn("reporting a running plan", "plan", p.ID, "err", err)
		}
	}
	unlock()
	return r.waitPlanJob(ctx, run, pc, job), true, nil
}

// planOutcome is a finished plan job's outcome, or abandoned: the job ended because the bot is stopping, and
// nothing is stored or reported.
type planOutcome struct {
	framework.PlanOutcome
	abandoned bool
	base      *BaseCommit // a comparing framework's base commit, as the job was given it (nil: not known)
}

// attachedJob is a job and its log writer, started now or found again after a restart.
type attachedJob struct {
	handle jobs.Handle
	log    *db.RunLogWriter
	// release gives back the job slot a followed job holds (nil for a job started now: its starter holds it).
	release func()
	// base is the base commit a comparing framework's job checked out (nil: none was picked, or not known).
	base *BaseCommit
}

// waitPlanJob waits for a plan job (started now, or followed after a restart) and interprets it. Every failure
// becomes an outcome: the check must always end. The result is read back from the stored log, so that a job
// followed after a restart is interpreted from everything it printed, before and after the restart.
func (r *Runner) waitPlanJob(ctx context.Context, run db.Run, pc prstate.PlanContext, job *attachedJob) planOutcome {
	ctx = context.WithoutCancel(ctx)
	res, err := WaitJob(ctx, job.handle)
	if cerr := job.log.Close(context.Background()); cerr != nil {
		r.Log.Warn("storing a run's log", "run", run.ID, "err", cerr)
	}
	if r.Abandoned(run.ID, res, err) {
		return planOutcome{abandoned: true}
	}
	if err != nil {
		return r.failRun(ctx, run.ID, fmt.Sprintf("Lost the job: %v", err))
	}
	if _, err := r.Store.FinishRun(ctx, run.ID, db.RunResultFrom(res)); err != nil {
		r.Log.Warn("recording a finished run", "run", run.ID, "err", err)
	}
	failed := func(msg string) planOutcome {
		return planOutcome{PlanOutcome: framework.PlanOutcome{Status: plan.StatusFailed, Error: msg, Result: res}}
	}
	// A job followed after a restart may belong to a framework this process no longer runs.
	fw, err := r.Jobs.Frameworks.For(pc.Project)
	if err != nil {
		return failed(err.Error())
	}
	stdout, tail, err := r.readRunOutput(ctx, run.ID)
	if err != nil {
		return failed(fmt.Sprintf("Could not read the job's output: %v", err))
	}
	return planOutcome{PlanOutcome: framework.InterpretPlan(fw, res, stdout, tail), base: job.base}
}

// failRun ends a run that could not run, and is the plan's failed outcome.
func (r *Runner) failRun(ctx context.Context, runID int64, msg string) planOutcome {
	if _, err := r.Store.FinishRun(ctx, runID, db.RunResultFrom(jobs.Result{ExitCode: -1, Reason: msg})); err != nil {
		r.Log.Warn("recording a failed run", "run", runID, "err", err)
	}
	return planOutcome{PlanOutcome: framework.PlanOutcome{Status: plan.StatusFailed, Error: msg}}
}

// startPlanJob builds the plan job's spec and starts it, its output redacted into the run's log. Only the wait
// for the token honours the run's context (ctx).
func (r *Runner) startPlanJob(runCtx context.Context, forge vcs.Forge, p db.Plan, pc prstate.PlanContext, run db.Run) (*attachedJob, error) {
	src, err := r.source(runCtx, forge, pc.PR.Repo, p.HeadSHA, nil)
	ctx := context.WithoutCancel(runCtx)
	if err != nil {
		return nil, fmt.Errorf("Could not get a token to fetch the code: %v", err)
	}
	fw, err := r.Jobs.Frameworks.For(pc.Project)
	if err != nil {
		return nil, err
	}
	var base *BaseCommit
	var state []byte
	if _, ok := framework.ComparerOf(fw); ok {
		pick, stored, err := r.pickBaseAndState(runCtx, forge, p, pc, p.HeadSHA)
		if err != nil {
			return nil, fmt.Errorf("Could not find the base commit to compare with: %v", err)
		}
		if _, keeps := framework.StateKeeperOf(fw); !keeps {
			pick.ProductionState, stored = false, nil
		}
		src.BaseSHA, base, state = pick.SHA, &pick, stored
		r.rememberBase(ctx, run.ID, pick)
	}
	spec, refused, err := r.Jobs.Spec(framework.JobRequest{
		RunID: strconv.FormatInt(run.ID, 10), Kind: jobs.KindPlan, Config: pc.Config(), Project: pc.Project,
		Env: pc.Env.Name, Flags: p.Flags,
		// The base repository serves fork heads too (refs/pull/N/head); the token reads no fork.
		Source:   src,
		Labels:   map[string]string{"repo": p.Repo, "pr": strconv.Itoa(p.PR), "sha": p.HeadSHA},
		State:    state,
		PRNumber: pc.PRNumber(),
	})
	if err != nil {
		return nil, err
	}
	logw := r.Store.NewRunLogWriter(run.ID, LogFlushInterval)
	sink := r.JobRedactor(src.Token, pc.Job).Sink(logw.Sink)
	if msg := framework.DescribeRefused(refused); msg != "" {
		sink(jobs.Line{Stream: "stderr", Text: "dagctl: " + msg})
	}
	if base != nil {
		sink(jobs.Line{Stream: "stderr", Text: "dagctl: " + base.describe(pc.StateEnvironment())})
	}
	h, err := r.Executor.Start(ctx, spec, sink)
	if err != nil {
		_ = logw.Close(context.Background())
		return nil, fmt.Errorf("The job could not start: %v", err)
	}
	r.Started(ctx, run.ID, h)
	return &attachedJob{handle: h, log: logw, base: base}, nil
}

// readRunOutput reads what a plan is interpreted from: the job's result lines, which the log writer kept aside
// from the capped log, and the last lines of its log, for failures. A run stored before results were kept
// aside has none: its stored standard output stands in.
func (r *Runner) readRunOutput(ctx context.Context, runID int64) (stdout string, tail []string, err error) {
	results, err := r.Store.RunResultLines(ctx, runID)
	if err != nil {
		return "", nil, err
	}
	lines, err := r.Store.RunLogTail(ctx, runID, 40)
	if err != nil {
		return "", nil, err
	}
	for _, l := range lines {
		tail = append(tail, l.Text)
	}
	if len(results) == 0 {
		if results, err = r.storedStdout(ctx, runID); err != nil {
			return "", nil, err
		}
	}
	var out strings.Builder
	for _, text := range results {
		out.WriteString(text)
		out.WriteByte('\n')
	}
	return out.String(), tail, nil
}

func (r *Runner) storedStdout(ctx context.Context, runID int64) ([]string, error) {
	lines, err := r.Store.RunLog(ctx, runID)
	var stdout []string
	for _, l := range lines {
		if l.Stream == "stdout" {
			stdout = append(stdout, l.Text)
		}
	}
	return stdout, err
}

// Started records a job the executor started, and cancels it at once if its plan was cancelled meanwhile.
func (r *Runner) Started(ctx context.Context, runID int64, h jobs.Handle) {
	r.mu.Lock()
	cancel := false
	if rj, ok := r.running[runID]; ok {
		rj.handle = h
		cancel = rj.cancel
	}
	r.mu.Unlock()
	if _, err := r.Store.StartRun(ctx, runID, h.ID()); err != nil {
		r.Log.Warn("recording a started run", "run", runID, "err", err)
	}
	if cancel {
		_ = h.Cancel(ctx)
	}
}

// RecoverPlanRun ends a plan run whose job is gone or never started, and plans again (a plan applies nothing, so
// running it twice is harmless). It reports whether the plan was final already: then only its report is due.
func (r *Runner) RecoverPlanRun(ctx context.Context, p db.Plan, pc prstate.PlanContext, run db.Run) (final bool, err error) {
	if _, err := r.Store.FinishRun(ctx, run.ID, db.RunResult{Status: db.RunFailed, Reason: "interrupted: the bot restarted"}); err != nil {
		return false, err
	}
	if p.Status.Final() {
		return true, nil
	}
	if p.Status == plan.StatusRunning {
		if p, err = r.Store.SetPlanStatus(ctx, p.ID, plan.StatusQueued); err != nil {
			return false, err
		}
	}
	next, _, err := r.Store.CreateRun(ctx, p.ID, jobs.KindPlan, r.ExecutorName)
	if err != nil {
		return false, err
	}
	r.Log.Info("re-running a plan interrupted by a restart", "plan", p.ID, "run", next.ID)
	r.Launch(p, pc, next)
	return false, nil
}

// Reattach follows a plan job a previous process started that the executor still runs (a Kubernetes Job). It
// reports false when there is nothing to follow.
func (r *Runner) Reattach(ctx context.Context, run db.Run) (bool, error) {
	if run.Kind != jobs.KindPlan || run.ExecutorJobID == "" || run.Executor != r.ExecutorName {
		return false, nil
	}
	p, err := r.Store.GetPlan(ctx, run.PlanID)
	if err != nil {
		return false, err
	}
	pc, err := prstate.DecodeContext(p)
	if err != nil {
		return false, err
	}
	logw := r.Store.NewRunLogWriter(run.ID, LogFlushInterval)
	h, release, err := r.Follow(ctx, run, pc, logw.Sink)
	if err != nil {
		_ = logw.Close(ctx)
		if errors.Is(err, jobs.ErrGone) {
			return false, nil
		}
		return false, err
	}
	r.follow(p, pc, run, &attachedJob{handle: h, log: logw, release: release, base: r.rememberedBase(ctx, run.ID)})
	return true, nil
}

// Follow attaches to the job a previous process started for the run (a plan, or an apply's step), its lines
// redacted into sink. The job runs, so it counts against the job slots, given back by release (safe to call
// more than once); with more still running than slots, the extra ones just keep the next jobs waiting longer.
// The executor's jobs.ErrGone says there is nothing to follow.
func (r *Runner) Follow(ctx context.Context, run db.Run, pc prstate.PlanContext, sink jobs.Sink) (h jobs.Handle, release func(), err error) {
	if h, err = r.Executor.Attach(ctx, run.ExecutorJobID, r.JobRedactor("", pc.Job).Sink(sink)); err != nil {
		return nil, nil, err
	}
	release = func() {}
	select {
	case r.slots <- struct{}{}:
		release = sync.OnceFunc(func() { <-r.slots })
	default:
	}
	return h, release, nil
}

// follow reports a job started by a previous process, in the background.
func (r *Runner) follow(p db.Plan, pc prstate.PlanContext, run db.Run, job *attachedJob) {
	r.InBackground(p.ID, run.ID, job.handle, func(ctx context.Context) {
		defer job.release() // also on the paths that end before the job does
		if err := r.executePlan(ctx, p, pc, run, job); err != nil {
			r.Log.Error("followed run not reported", "plan", p.ID, "run", run.ID, "err", err)
		}
	})
}

// CleanUpEnvironment runs the framework's cleanup of a closed PR's environment (Framework.CleanupCommand,
// sqlmesh: invalidate). A framework with nothing to clean up runs no job.
func (r *Runner) CleanUpEnvironment(ctx context.Context, p db.Plan, pc prstate.PlanContext) error {
	forge, ok := r.Forges(p.Forge)
	if !ok {
		return fmt.Errorf("no forge %q", p.Forge)
	}
	fw, err := r.Jobs.Frameworks.For(pc.Project)
	if err != nil {
		return err
	}
	if _, ok := fw.CleanupCommand(framework.CommandRequest{Project: pc.Project, Env: pc.Env.Name, PRNumber: pc.PRNumber()}); !ok {
		return nil
	}
	src, err := r.source(ctx, forge, pc.PR.Repo, p.HeadSHA, nil)
	if err != nil {
		return err
	}
	spec, _, err := r.Jobs.Spec(framework.JobRequest{
		RunID: fmt.Sprintf("invalidate-%d", p.ID), Kind: jobs.KindInvalidate, Config: pc.Config(), Project: pc.Project,
		Env: pc.Env.Name, Source: src, PRNumber: pc.PRNumber(),
		Labels: map[string]string{"repo": p.Repo, "pr": strconv.Itoa(p.PR), "sha": p.HeadSHA},
	})
	if err != nil {
		return err
	}
	r.slots <- struct{}{}
	defer func() { <-r.slots }()
	tail := framework.NewTail(20)
	h, err := r.Executor.Start(ctx, spec, r.JobRedactor(src.Token, pc.Job).Sink(func(l jobs.Line) { tail.Add(l.Text) }))
	if err != nil {
		return err
	}
	res, err := h.Wait(ctx)
	if err != nil {
		return err
	}
	if !res.Succeeded() {
		return fmt.Errorf("%s cleanup of %s: exit %d %s: %s", fw.Name(), pc.Env.Name, res.ExitCode, res.Reason, strings.Join(tail.Lines(), " | "))
	}
	r.Log.Info("removed a closed PR's environment", "env", pc.Env.Name, "pr", p.PR, "framework", fw.Name())
	return nil
}

// Step is one job of an apply, run under the apply's run: the verifying plan, or the apply itself.
type Step struct {
	Plan    db.Plan
	Context prstate.PlanContext
	RunID   int64
	Kind    jobs.Kind
	Name    string // "verify", "apply": in the job's id and its log
	SHA     string // the commit to apply
	// ForgeWait, when set, is told of each transient forge error the step waits out (the apply's check says so).
	ForgeWait func(err error)
	// Base is the base commit a comparing framework's verifying plan checks out beside SHA (StepBase); nil for
	// other frameworks.
	Base *BaseCommit
	// Image is the deploy image the apply built (`repository@sha256:...`), with the project at ImagePath in it:
	// on an executor that runs containers the apply job runs on it; the local executor runs in the checkout.
	Image, ImagePath string
}

// imageExecutor is an executor whose jobs run in containers of the image their spec names (Kubernetes).
type imageExecutor interface{ RunsImages() bool }

// runsImages reports whether the executor runs a job on the image its spec names.
func runsImages(e jobs.Executor) bool {
	ie, ok := e.(imageExecutor)
	return ok && ie.RunsImages()
}

// RunStep runs one job of an apply (the verifying plan, or the apply itself) at the apply's commit.
func (r *Runner) RunStep(ctx context.Context, forge vcs.Forge, s Step, logw *db.RunLogWriter, onLine func(jobs.Line)) (jobs.Result, error) {
	p, pc, runID, kind, step, sha := s.Plan, s.Context, s.RunID, s.Kind, s.Name, s.SHA
	src, err := r.source(ctx, forge, pc.PR.Repo, sha, s.ForgeWait)
	if err != nil {
		return jobs.Result{}, fmt.Errorf("could not get a token to fetch the code: %w", err)
	}
	if s.Base != nil {
		src.BaseSHA = s.Base.SHA
	}
	var approved *plan.DBT // a dbt apply runs the approved plan's exact commands
	if kind == jobs.KindApply && p.Summary != nil {
		approved = p.Summary.DBT
	}
	var state []byte
	if kind != jobs.KindImage {
		if state, err = r.stepState(ctx, s); err != nil {
			return jobs.Result{}, fmt.Errorf("could not read the production state of %s: %w", pc.Env.Name, err)
		}
	}
	jreq := framework.JobRequest{
		RunID: fmt.Sprintf("%d-%s", runID, step), Kind: kind, Config: pc.Config(), Project: pc.Project,
		Env: pc.Env.Name, Flags: p.Flags,
		Source: src,
		Labels: map[string]string{"repo": p.Repo, "pr": strconv.Itoa(p.PR), "sha": sha},
		DBT:    approved,
		State:  state,
	}
	if s.Image != "" && kind == jobs.KindApply && runsImages(r.Executor) {
		jreq.DeployImage, jreq.ImagePath = s.Image, s.ImagePath
	}
	spec, refused, err := r.Jobs.Spec(jreq)
	if err != nil {
		return jobs.Result{}, err
	}
	sink := r.JobRedactor(src.Token, pc.Job).Sink(func(l jobs.Line) {
		logw.Sink(l)
		onLine(l)
	})
	sink(jobs.Line{Stream: "stderr", Text: fmt.Sprintf("dagctl: %s: %s", step, strings.Join(displayCommand(spec.Command), " "))})
	switch {
	case kind != jobs.KindApply || s.Image == "":
	case jreq.DeployImage != "":
		sink(jobs.Line{Stream: "stderr", Text: fmt.Sprintf("dagctl: %s: on the deploy image %s", step, s.Image)})
	default:
		sink(jobs.Line{Stream: "stderr", Text: fmt.Sprintf("dagctl: %s: in the checkout: this executor runs no images (the deploy image is %s)", step, s.Image)})
	}
	if s.Base != nil && kind == jobs.KindPlan {
		sink(jobs.Line{Stream: "stderr", Text: fmt.Sprintf("dagctl: %s: %s", step, s.Base.describe(pc.Env.Name))})
	}
	if msg := framework.DescribeRefused(refused); msg != "" {
		sink(jobs.Line{Stream: "stderr", Text: "dagctl: " + msg})
	}
	select { // applies share the job slots with plans
	case r.slots <- struct{}{}:
		defer func() { <-r.slots }()
	case <-ctx.Done():
	}
	if r.Cancelled(runID) || ctx.Err() != nil {
		return jobs.Result{ExitCode: -1, Reason: jobs.ReasonCancelled}, nil
	}
	h, err := r.Executor.Start(ctx, spec, sink)
	if err != nil {
		return jobs.Result{}, err
	}
	r.Started(context.WithoutCancel(ctx), runID, h)
	return WaitJob(ctx, h)
}

// stepState is the production state an apply's step is given (framework.StateKeeper): the one stored with the
// environment's last successful deploy, read under the apply's lock. The verifying plan gets it when its base
// says so (StepBase), so that its completion and its job agree; the apply itself whenever there is one (a
// selective dbt apply's --state).
func (r *Runner) stepState(ctx context.Context, s Step) ([]byte, error) {
	fw, err := r.Jobs.Frameworks.For(s.Context.Project)
	if err != nil {
		return nil, err
	}
	if _, ok := framework.StateKeeperOf(fw); !ok {
		return nil, nil
	}
	if s.Kind == jobs.KindPlan && (s.Base == nil || !s.Base.ProductionState) {
		return nil, nil
	}
	last, err := r.Store.LastDeployed(ctx, s.Plan.Forge, s.Plan.Repo, s.Plan.Project, s.Context.Env.Name)
	if errors.Is(err, db.ErrNotFound) {
		return nil, nil
	}
	return last.Manifest, err
}

// WaitJob waits for a job to end, even when its run's context ended: a cancelled run's job is stopped by
// Handle.Cancel, and Wait returns once nothing of it runs, so that no lock is released while it does. When the
// bot stops, the executor's own Close or Shutdown ends the wait.
func WaitJob(ctx context.Context, h jobs.Handle) (jobs.Result, error) {
	return h.Wait(context.WithoutCancel(ctx))
}

// displayCommand shortens the embedded helper's source in a logged command line.
func displayCommand(argv []string) []string {
	out := append([]string(nil), argv...)
	for i := range out {
		if i > 0 && out[i-1] == "-c" && len(out[i]) > 80 {
			out[i] = "<dagctl plan helper>"
		}
	}
	return out
}

// AddSecrets masks more values in stored logs from now on (credentials the bot learns while it runs, such as
// an app created through /setup).
func (r *Runner) AddSecrets(secrets ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.redact = r.redact.With(secrets...)
}

func (r *Runner) redactor() *jobs.Redactor {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.redact
}

// JobRedactor masks a job's output of the bot's secrets, the job's clone token and the values the job is given.
func (r *Runner) JobRedactor(token string, job repoconfig.Job) *jobs.Redactor {
	return r.redactor().With(token).With(r.Jobs.Masked(job)...)
}

// Wait blocks until every job the bot started has finished and been reported.
func (r *Runner) Wait() { r.wg.Wait() }

// Shutdown stops accepting jobs and waits for running ones to be reported (or ctx to end).
func (r *Runner) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	// Out of time: every run's waits end (ErrShutdown), and its work leaves the run for the next start.
	r.mu.Lock()
	for _, rj := range r.running {
		rj.stop(ErrShutdown)
	}
	r.mu.Unlock()
	return ctx.Err()
}
