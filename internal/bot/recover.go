package bot

import (
	"context"
	"fmt"

	"github.com/dagctl/dagctl-bot/internal/bot/prstate"
	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/plan"
)

// Recover finishes what a previous process of the bot left behind, so that every check reaches a final state:
//   - runs the executor still has (a Kubernetes Job) are followed to their end and reported: a plan, or an apply,
//     which goes on from the step that was running, holding its lock (apply.Sequence.Reattach);
//   - applies the executor lost end as interrupted, their lock released, once nothing of them runs (the local
//     executor's Attach stops what a killed bot left of its job first);
//   - plan runs the executor lost (a local process dies with the bot) or never started are run again — a plan
//     applies nothing, so running it twice is harmless;
//   - plans whose outcome was stored but not yet shown on the forge are reported;
//   - merges that waited for a plan are carried out once it has ended (events.Handlers.ResumeMergeWaits).
//
// Jobs still running are attached first, each taking a job slot, so that plans run again afterwards wait for
// them: a restart does not run more jobs at once than the bot allows (one DuckDB file takes one writer).
func (b *Bot) Recover(ctx context.Context) error {
	// First, while no recovered plan can end: a merge waiting for a plan that ended before the restart.
	if err := b.handlers.ResumeMergeWaits(ctx); err != nil {
		b.log.Error("resuming merges that waited for their plans", "err", err)
	}
	runs, err := b.store.ListUnfinishedRuns(ctx)
	if err != nil {
		return err
	}
	var lost []db.Run
	for _, run := range runs {
		reattach := b.runner.Reattach
		if run.Kind == jobs.KindApply {
			reattach = b.applies.Reattach
		}
		attached, err := reattach(ctx, run)
		if err != nil {
			b.log.Error("re-attaching a run", "run", run.ID, "plan", run.PlanID, "err", err)
			if run.Kind == jobs.KindApply {
				// Its job may still run: the apply keeps its lock and its check until a next start can tell.
				continue
			}
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
			continue // in flight: planInFlight below
		}
		if err := b.reportStored(ctx, p); err != nil {
			b.log.Error("re-reporting a plan", "plan", p.ID, "err", err)
		}
	}
	inFlight, err := b.store.ListPlansInFlight(ctx)
	if err != nil {
		return err
	}
	for _, p := range inFlight {
		if err := b.planInFlight(ctx, p); err != nil {
			b.log.Error("running a plan a killed bot left in flight", "plan", p.ID, "err", err)
		}
	}
	return nil
}

// planInFlight runs again a plan still queued or running that has no unfinished run, which nothing else would
// run (the head's later events find the plan and plan nothing more). A killed bot leaves one between two of its
// writes: after storing the plan and before its run, or after recording the run's end and before the plan's
// outcome. Plans with an unfinished run were re-attached or run again above.
func (b *Bot) planInFlight(ctx context.Context, p db.Plan) error {
	runs, err := b.store.ListRuns(ctx, p.ID)
	if err != nil {
		return err
	}
	for _, r := range runs {
		if r.FinishedAt.IsZero() {
			return nil
		}
	}
	pc, err := prstate.DecodeContext(p)
	if err != nil {
		return err
	}
	if p.Status == plan.StatusRunning {
		if p, err = b.store.SetPlanStatus(ctx, p.ID, plan.StatusQueued); err != nil {
			return err
		}
	}
	run, _, err := b.store.CreateRun(ctx, p.ID, jobs.KindPlan, b.runner.ExecutorName)
	if err != nil {
		return err
	}
	b.log.Info("running a plan a killed bot left in flight without a run", "plan", p.ID, "run", run.ID, "earlier_runs", len(runs))
	b.runner.Launch(p, pc, run)
	return nil
}

// recoverRun ends a run the previous process left unfinished and lost: an apply fails (recoverApply), a plan
// is run again.
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
		return b.applies.Recover(ctx, p, pc, run)
	}
	final, err := b.runner.RecoverPlanRun(ctx, p, pc, run)
	if err != nil || !final {
		return err
	}
	return b.reportStored(ctx, p)
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
