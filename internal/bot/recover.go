package bot

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/dagctl/dagctl-bot/internal/bot/prstate"
	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// Recover finishes what a previous process of the bot left behind, so that every check reaches a final state:
//   - runs the executor still has (a Kubernetes Job) are followed to their end and reported;
//   - plan runs the executor lost (a local process dies with the bot) or never started are run again — a plan
//     applies nothing, so running it twice is harmless;
//   - plans whose outcome was stored but not yet shown on the forge are reported.
//
// Jobs still running are attached first, each taking a job slot, so that plans run again afterwards wait for
// them: a restart does not run more jobs at once than the bot allows (one DuckDB file takes one writer).
func (b *Bot) Recover(ctx context.Context) error {
	runs, err := b.store.ListUnfinishedRuns(ctx)
	if err != nil {
		return err
	}
	var lost []db.Run
	for _, run := range runs {
		attached, err := b.reattach(ctx, run)
		if err != nil {
			b.log.Error("re-attaching a run", "run", run.ID, "plan", run.PlanID, "err", err)
		}
		if !attached {
			lost = append(lost, run)
		}
	}
	for _, run := range lost {
		if err := b.recoverRun(ctx, run); err != nil {
			b.log.Error("recovering a run", "run", run.ID, "plan", run.PlanID, "err", err)
		}
	}
	plans, err := b.store.ListUnreportedPlans(ctx)
	if err != nil {
		return err
	}
	for _, p := range plans {
		if !p.Status.Final() {
			continue // its run is being recovered above
		}
		if err := b.reportStored(ctx, p); err != nil {
			b.log.Error("re-reporting a plan", "plan", p.ID, "err", err)
		}
	}
	return nil
}

func (b *Bot) recoverRun(ctx context.Context, run db.Run) error {
	p, err := b.store.GetPlan(ctx, run.PlanID)
	if err != nil {
		return err
	}
	pc, err := prstate.DecodeContext(p)
	if err != nil {
		return err
	}
	if run.Kind == jobs.KindApply {
		return b.recoverApply(ctx, p, pc, run)
	}
	// The job is gone or never started: end this run and plan again.
	if _, err := b.store.FinishRun(ctx, run.ID, db.RunResult{Status: db.RunFailed, Reason: "interrupted: the bot restarted"}); err != nil {
		return err
	}
	if p.Status.Final() {
		return b.reportStored(ctx, p)
	}
	if p.Status == plan.StatusRunning {
		if p, err = b.store.SetPlanStatus(ctx, p.ID, plan.StatusQueued); err != nil {
			return err
		}
	}
	next, _, err := b.store.CreateRun(ctx, p.ID, jobs.KindPlan, b.executorName)
	if err != nil {
		return err
	}
	b.log.Info("re-running a plan interrupted by a restart", "plan", p.ID, "run", next.ID)
	b.launch(p, pc, next)
	return nil
}

// reattach follows a plan job a previous process started that the executor still runs (a Kubernetes Job). It
// reports false when there is nothing to follow.
func (b *Bot) reattach(ctx context.Context, run db.Run) (bool, error) {
	if run.Kind != jobs.KindPlan || run.ExecutorJobID == "" || run.Executor != b.executorName {
		return false, nil
	}
	p, err := b.store.GetPlan(ctx, run.PlanID)
	if err != nil {
		return false, err
	}
	pc, err := prstate.DecodeContext(p)
	if err != nil {
		return false, err
	}
	logw := b.store.NewRunLogWriter(run.ID, logFlushInterval)
	h, err := b.executor.Attach(ctx, run.ExecutorJobID, b.jobRedactor("", pc.Job).Sink(logw.Sink))
	if err != nil {
		_ = logw.Close(ctx)
		if errors.Is(err, jobs.ErrGone) {
			return false, nil
		}
		return false, err
	}
	job := &attachedJob{handle: h, log: logw, release: func() {}}
	// The job runs, so it counts against the job slots; with more still running than slots, the extra ones just
	// keep the next jobs waiting longer.
	select {
	case b.slots <- struct{}{}:
		job.release = sync.OnceFunc(func() { <-b.slots })
	default:
	}
	b.follow(p, pc, run, job)
	return true, nil
}

// follow reports a job started by a previous process, in the background.
func (b *Bot) follow(p db.Plan, pc prstate.PlanContext, run db.Run, job *attachedJob) {
	b.inBackground(p.ID, run.ID, job.handle, func(ctx context.Context) {
		defer job.release() // also on the paths that end before the job does
		if err := b.executePlan(ctx, p, pc, run, job); err != nil {
			b.log.Error("followed run not reported", "plan", p.ID, "run", run.ID, "err", err)
		}
	})
}

// reportStored shows a stored plan on the forge: its check and the PR's sticky comment.
func (b *Bot) reportStored(ctx context.Context, p db.Plan) error {
	forge, ok := b.forges(p.Forge)
	if !ok {
		return fmt.Errorf("no forge %q", p.Forge)
	}
	pc, err := prstate.DecodeContext(p)
	if err != nil {
		return err
	}
	unlock := b.lockPR(pc.PR.Repo, pc.PR.Number)
	defer unlock()
	if err := b.report.FinishedPlan(ctx, forge, p, pc, prstate.LatestRun(ctx, b.store, p.ID)); err != nil {
		return err
	}
	return b.report.Sticky(ctx, forge, pc.PR, "")
}

// recoverApply ends an apply a previous process left unfinished. An apply is not re-run by itself: a person
// asked for it at a moment, and much may have changed since. It fails with a clear message, its lock is
// released, and `/dagctl apply` resumes it (sqlmesh skips the intervals it already computed).
func (b *Bot) recoverApply(ctx context.Context, p db.Plan, pc prstate.PlanContext, run db.Run) error {
	forge, ok := b.forges(p.Forge)
	if !ok {
		return fmt.Errorf("no forge %q", p.Forge)
	}
	const why = "interrupted: the bot restarted while this apply ran"
	if _, err := b.store.FinishRun(ctx, run.ID, db.RunResult{Status: db.RunFailed, Reason: why}); err != nil {
		return err
	}
	if held, ok, err := b.store.Holder(ctx, p.Forge, p.Repo, p.Environment); err == nil && ok && held.Owner.PlanID == p.ID {
		if _, _, err := b.store.ForceUnlock(ctx, p.Forge, p.Repo, p.Environment); err != nil {
			return err
		}
	}
	// The check run is updated by its stored id, so the commit here only names it.
	req := applyRequest{plan: p, pc: pc, sha: p.HeadSHA}
	if err := b.reportApply(ctx, forge, req, run.ID, vcs.StatusFailure,
		"Interrupted: comment `/dagctl apply` to resume", "The bot restarted while this apply ran. Completed intervals are kept; applying again resumes where it stopped."); err != nil {
		return err
	}
	unlock := b.lockPR(pc.PR.Repo, pc.PR.Number)
	defer unlock()
	return b.report.Sticky(ctx, forge, pc.PR, "")
}
