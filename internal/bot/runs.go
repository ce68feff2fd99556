package bot

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dagctl/dagctl-bot/internal/bot/prstate"
	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// logFlushInterval is how often a running job's output reaches the store (and so the log page).
const logFlushInterval = 250 * time.Millisecond

type runningJob struct {
	planID int64
	handle jobs.Handle // nil until the executor has started it
	cancel bool        // cancelled before the executor started it
}

// launch runs a plan's job in the background, bounded by the bot's job slots.
func (b *Bot) launch(p db.Plan, pc prstate.PlanContext, run db.Run) {
	b.inBackground(p.ID, run.ID, nil, func(ctx context.Context) {
		if err := b.executePlan(ctx, p, pc, run, nil); err != nil {
			b.log.Error("plan run not reported", "plan", p.ID, "run", run.ID, "err", err)
		}
	})
}

// inBackground runs a run's work in a goroutine the bot tracks: Wait and Shutdown wait for it, and
// cancelPlanRuns reaches its job. It reports false when the bot is shutting down and nothing was started (the
// run stays queued in the store, and a restarted bot picks it up). The work outlives the event that started it:
// it is stopped by cancelling its job, not by the delivery's context. Work without a run (runID 0) is waited
// for but cannot be cancelled.
func (b *Bot) inBackground(planID, runID int64, handle jobs.Handle, work func(ctx context.Context)) bool {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return false
	}
	if runID != 0 {
		b.running[runID] = &runningJob{planID: planID, handle: handle}
	}
	b.wg.Add(1)
	b.mu.Unlock()
	go func() {
		defer b.wg.Done()
		if runID != 0 {
			defer func() {
				b.mu.Lock()
				delete(b.running, runID)
				b.mu.Unlock()
			}()
		}
		work(context.Background())
	}()
	return true
}

// cancelPlanRuns stops the plan's running or waiting jobs.
func (b *Bot) cancelPlanRuns(ctx context.Context, planID int64) {
	b.mu.Lock()
	var handles []jobs.Handle
	for _, rj := range b.running {
		if rj.planID != planID {
			continue
		}
		rj.cancel = true
		if rj.handle != nil {
			handles = append(handles, rj.handle)
		}
	}
	b.mu.Unlock()
	for _, h := range handles {
		if err := h.Cancel(ctx); err != nil {
			b.log.Warn("cancelling a job", "plan", planID, "err", err)
		}
	}
}

// abandoned reports whether a job ended only because this process is stopping (the executor killed or let go
// of it), not because anyone cancelled it or it ended by itself. Such a run is left unfinished in the store:
// the next process re-attaches to it (a Kubernetes Job goes on) or runs it again (a local process died with
// this one), so a restart never shows up as a cancelled check.
func (b *Bot) abandoned(runID int64, res jobs.Result, err error) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed {
		return false
	}
	if rj, ok := b.running[runID]; ok && rj.cancel {
		return false
	}
	return err != nil || res.Reason == jobs.ReasonCancelled
}

func (b *Bot) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// hasActiveRun reports whether this process runs a job (or waits to) for the plan.
func (b *Bot) hasActiveRun(planID int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, rj := range b.running {
		if rj.planID == planID {
			return true
		}
	}
	return false
}

func (b *Bot) cancelled(runID int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	rj, ok := b.running[runID]
	return ok && rj.cancel
}

// executePlan runs one plan job and reports it: check in progress, the job with its log streamed to the store,
// the outcome stored, the check completed and the sticky comment updated. With attached set, the job was
// started by a previous process of the bot and is followed to its end.
func (b *Bot) executePlan(ctx context.Context, p db.Plan, pc prstate.PlanContext, run db.Run, attached *attachedJob) error {
	forge, ok := b.forges(p.Forge)
	if !ok {
		return fmt.Errorf("no forge %q", p.Forge)
	}
	var outcome PlanOutcome
	if attached == nil {
		// A job slot is held while the job runs, and only then: the forge's writes (rate-limited and spaced per
		// installation) must not keep other jobs waiting.
		b.slots <- struct{}{}
		release := sync.OnceFunc(func() { <-b.slots })
		defer release()
		if b.isClosed() {
			return nil // stopping: the run stays queued for the next start
		}
		current, err := b.store.GetPlan(ctx, p.ID)
		if err != nil {
			return err
		}
		if current.Status != plan.StatusQueued || b.cancelled(run.ID) {
			// Superseded or cancelled while waiting for a slot; its check was ended by whoever did that.
			_, err := b.store.FinishRun(ctx, run.ID, db.RunResult{Status: db.RunCancelled, Reason: jobs.ReasonCancelled})
			return err
		}
		if p, err = b.store.SetPlanStatus(ctx, p.ID, plan.StatusRunning); err != nil {
			return err
		}
		job, err := b.startPlanJob(ctx, forge, p, pc, run)
		if err != nil {
			outcome = b.failRun(ctx, run.ID, err.Error())
		} else {
			// The job runs while its check says so. Under the PR's lock, and only if the plan is still running: a
			// close or a push may have ended it (and its check) meanwhile, and must not be overwritten.
			unlock := b.lockPR(pc.PR.Repo, pc.PR.Number)
			if cur, err := b.store.GetPlan(ctx, p.ID); err == nil && cur.Status == plan.StatusRunning {
				if err := b.report.PlanStatus(ctx, forge, cur, pc, run.ID); err != nil {
					b.log.Warn("reporting a running plan", "plan", p.ID, "err", err)
				}
			}
			unlock()
			outcome = b.waitPlanJob(ctx, run, job)
		}
		release()
	} else {
		outcome = b.waitPlanJob(ctx, run, attached)
		if attached.release != nil {
			attached.release()
		}
	}
	if outcome.abandoned {
		b.log.Info("left a plan run for the next start", "plan", p.ID, "run", run.ID)
		return nil
	}
	done, err := b.store.SetPlanResult(ctx, p.ID, db.PlanResult{Status: outcome.Status, Summary: outcome.Summary, Error: outcome.Error})
	if err != nil {
		// The plan went stale or was cancelled while its job ran: its check was ended then.
		if latest, gerr := b.store.GetPlan(ctx, p.ID); gerr == nil && latest.Status.Final() {
			return nil
		}
		return err
	}
	unlock := b.lockPR(pc.PR.Repo, pc.PR.Number)
	defer unlock()
	if err := b.report.FinishedPlan(ctx, forge, done, pc, run.ID); err != nil {
		return err
	}
	if pc.PR.Number == 0 {
		return nil // a pushed commit has its check only
	}
	return b.report.Sticky(ctx, forge, pc.PR, "")
}

// attachedJob is a job and its log writer, started now or found again after a restart.
type attachedJob struct {
	handle jobs.Handle
	log    *db.RunLogWriter
	// release gives back the job slot a followed job holds (nil for a job started now: its starter holds it).
	release func()
}

// waitPlanJob waits for a plan job (started now, or followed after a restart) and interprets it. Every failure
// becomes an outcome: the check must always end. The result is read back from the stored log, so that a job
// followed after a restart is interpreted from everything it printed, before and after the restart.
func (b *Bot) waitPlanJob(ctx context.Context, run db.Run, job *attachedJob) PlanOutcome {
	res, err := job.handle.Wait(ctx)
	if cerr := job.log.Close(context.Background()); cerr != nil {
		b.log.Warn("storing a run's log", "run", run.ID, "err", cerr)
	}
	if b.abandoned(run.ID, res, err) {
		return PlanOutcome{abandoned: true}
	}
	if err != nil {
		return b.failRun(ctx, run.ID, fmt.Sprintf("Lost the job: %v", err))
	}
	if _, err := b.store.FinishRun(ctx, run.ID, db.RunResultFrom(res)); err != nil {
		b.log.Warn("recording a finished run", "run", run.ID, "err", err)
	}
	stdout, tail, err := b.readRunOutput(ctx, run.ID)
	if err != nil {
		return PlanOutcome{Status: plan.StatusFailed, Error: fmt.Sprintf("Could not read the job's output: %v", err), Result: res}
	}
	return InterpretPlan(res, stdout, tail)
}

// failRun ends a run that could not run, and is the plan's failed outcome.
func (b *Bot) failRun(ctx context.Context, runID int64, msg string) PlanOutcome {
	if _, err := b.store.FinishRun(ctx, runID, db.RunResultFrom(jobs.Result{ExitCode: -1, Reason: msg})); err != nil {
		b.log.Warn("recording a failed run", "run", runID, "err", err)
	}
	return PlanOutcome{Status: plan.StatusFailed, Error: msg}
}

// startPlanJob builds the plan job's spec and starts it, its output redacted into the run's log.
func (b *Bot) startPlanJob(ctx context.Context, forge vcs.Forge, p db.Plan, pc prstate.PlanContext, run db.Run) (*attachedJob, error) {
	token, err := forge.CloneToken(ctx, pc.PR.Repo)
	if err != nil {
		return nil, fmt.Errorf("Could not get a token to fetch the code: %v", err)
	}
	spec, refused, err := b.jobs.Spec(JobRequest{
		RunID: strconv.FormatInt(run.ID, 10), Kind: jobs.KindPlan, Config: pc.Config(), Project: pc.Project,
		Env: pc.Env.Name, Flags: p.Flags,
		// The base repository serves fork heads too (refs/pull/N/head); the token reads no fork.
		Source: jobs.Source{CloneURL: pc.PR.Repo.CloneURL, SHA: p.HeadSHA, Token: token},
		Labels: map[string]string{"repo": p.Repo, "pr": strconv.Itoa(p.PR), "sha": p.HeadSHA},
	})
	if err != nil {
		return nil, err
	}
	logw := b.store.NewRunLogWriter(run.ID, logFlushInterval)
	sink := b.jobRedactor(token, pc.Job).Sink(logw.Sink)
	if msg := DescribeRefused(refused); msg != "" {
		sink(jobs.Line{Stream: "stderr", Text: "dagctl: " + msg})
	}
	h, err := b.executor.Start(ctx, spec, sink)
	if err != nil {
		_ = logw.Close(context.Background())
		return nil, fmt.Errorf("The job could not start: %v", err)
	}
	b.started(ctx, run.ID, h)
	return &attachedJob{handle: h, log: logw}, nil
}

// readRunOutput reads a run's stored log: its standard output (which holds the tool's result line) and the
// last lines of everything, for failures.
func (b *Bot) readRunOutput(ctx context.Context, runID int64) (stdout string, tail []string, err error) {
	lines, err := b.store.RunLog(ctx, runID)
	if err != nil {
		return "", nil, err
	}
	var out strings.Builder
	t := NewTail(40)
	for _, l := range lines {
		if l.Stream == "stdout" {
			out.WriteString(l.Text)
			out.WriteByte('\n')
		}
		t.Add(l.Text)
	}
	return out.String(), t.Lines(), nil
}

// started records a job the executor started, and cancels it at once if its plan was cancelled meanwhile.
func (b *Bot) started(ctx context.Context, runID int64, h jobs.Handle) {
	b.mu.Lock()
	cancel := false
	if rj, ok := b.running[runID]; ok {
		rj.handle = h
		cancel = rj.cancel
	}
	b.mu.Unlock()
	if _, err := b.store.StartRun(ctx, runID, h.ID()); err != nil {
		b.log.Warn("recording a started run", "run", runID, "err", err)
	}
	if cancel {
		_ = h.Cancel(ctx)
	}
}
