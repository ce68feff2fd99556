package events

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"

	"github.com/dagctl/dagctl-bot/internal/bot/jobrun"
	"github.com/dagctl/dagctl-bot/internal/bot/prstate"
	"github.com/dagctl/dagctl-bot/internal/bot/report"
	"github.com/dagctl/dagctl-bot/internal/command"
	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

func (h *Handlers) PullRequest(ctx context.Context, forge vcs.Forge, ev vcs.PullRequestEvent) error {
	switch ev.Action {
	case vcs.PROpened, vcs.PRReopened, vcs.PRPushed, vcs.PRReady:
		if ev.Action == vcs.PRReopened {
			h.recordPREnd(ctx, ev.PR, false)
		}
		return h.planPR(ctx, forge, ev.PR, ev.Sender, nil)
	case vcs.PRClosed:
		return h.closePR(ctx, forge, ev.PR, "the PR was closed")
	case vcs.PRMerged:
		// The merged head's unfinished plans go on: the merge's apply waits for them (applyOnMerge).
		if _, err := h.endPR(ctx, forge, ev.PR, "the PR was merged", ev.PR.HeadSHA); err != nil {
			return err
		}
		return h.applyOnMerge(ctx, forge, ev.PR, ev.Sender)
	}
	return vcs.ErrIgnored
}

// planPR plans a PR's head: automatically (cmd nil) or for a `/dagctl plan` command. pr is fresh from the forge
// and its HeadSHA is what the jobs check out, so a command pinned to a commit runs exactly that commit. Older
// heads' plans become stale first, so their jobs stop and their checks end.
func (h *Handlers) planPR(ctx context.Context, forge vcs.Forge, pr vcs.PullRequest, trigger string, cmd *command.Command) error {
	unlock := h.Locks.Lock(pr.Repo, pr.Number)
	defer unlock()

	if cmd != nil {
		if refusal := PinRefusal(pr, *cmd); refusal != "" {
			return h.Report.ReplyError(ctx, forge, pr, refusal)
		}
	} else {
		current, outdated, err := h.outdatedHead(ctx, forge, pr)
		if err != nil || outdated {
			return err
		}
		if pr.Author == "" {
			// A hook that does not name the author (GitLab's update names only its id): the forge's PR does, and
			// the approval rules exclude the author by it.
			pr.Author = current.Author
		}
		if pr.BaseSHA == "" {
			// Nor the base (GitLab's hooks carry no diff refs): an apply on merge compares from where the PR forked.
			pr.BaseSHA = current.BaseSHA
		}
	}
	if err := h.supersede(ctx, forge, pr); err != nil {
		return err
	}
	cfg, present, err := h.loadConfig(ctx, forge, pr)
	var cfgErr *ConfigError
	switch {
	case errors.As(err, &cfgErr):
		return h.Report.WriteSticky(ctx, forge, pr, report.StickyInput{ConfigError: cfgErr.Error()})
	case err != nil:
		return err
	case !present && cmd == nil:
		return vcs.ErrIgnored // the repository has not opted in
	}

	var targets []Target
	var note string
	if cmd == nil {
		targets, note = AutoTargets(cfg, pr)
	} else {
		if targets, err = CommandTargets(cfg, pr, cmd.Env); err != nil {
			return h.Report.ReplyError(ctx, forge, pr, err.Error())
		}
		// Flags a planned project's framework does not take are the command's mistake, not a failed job.
		if err := h.Runner.Jobs.Frameworks.CheckPlanFlags(projectsOf(targets), cmd.Flags); err != nil {
			return h.Report.ReplyError(ctx, forge, pr, err.Error()+"\n\n"+command.Usage)
		}
	}
	var flags plan.Flags
	if cmd != nil {
		flags = cmd.Flags
	}
	existing, err := h.Store.ListPlansByPR(ctx, pr.Repo.Forge, pr.Repo.FullName(), pr.Number)
	if err != nil {
		return err
	}
	// An automatic plan is one per head; a command's is one per request (its delivery), since asking again
	// plans again.
	delivery := ""
	if d, ok := prstate.DeliveryOf(ctx); ok && cmd != nil {
		delivery = d.Key()
	}
	for _, t := range targets {
		if (cmd == nil || delivery != "") && hasPlanFor(existing, pr.HeadSHA, t, flags, delivery) {
			continue // a replayed delivery: planned already
		}
		if err := h.startPlan(ctx, forge, pr, cfg, t, flags, trigger, delivery); err != nil {
			return err
		}
	}
	return h.Report.Sticky(ctx, forge, pr, note)
}

// outdatedHead reports whether pr's head, as an event or the reconcile's listing named it, is no longer the
// head the forge shows: a queued "opened" handled after the pushed head was planned, or a listing read before
// a push that was handled meanwhile. Such an event must not supersede the newer head's plans (a merge would
// then find them stale); the newer head has its own event, or the reconcile finds it. The forge is asked under
// the PR's lock, so the answer holds until this handler is done.
func (h *Handlers) outdatedHead(ctx context.Context, forge vcs.Forge, pr vcs.PullRequest) (vcs.PullRequest, bool, error) {
	current, err := forge.PullRequest(ctx, pr.Repo, pr.Number)
	if err != nil {
		return vcs.PullRequest{}, false, err
	}
	if current.HeadSHA == pr.HeadSHA {
		return current, false, nil
	}
	h.Log.Info("not planning an outdated head: the PR has moved on", "repo", pr.Repo.FullName(), "pr", pr.Number,
		"head", pr.HeadSHA, "current", current.HeadSHA)
	return current, true, nil
}

// projectsOf are the targets' projects, each once.
func projectsOf(targets []Target) []repoconfig.Project {
	var out []repoconfig.Project
	seen := map[string]bool{}
	for _, t := range targets {
		if !seen[t.Project.Name] {
			seen[t.Project.Name] = true
			out = append(out, t.Project)
		}
	}
	return out
}

// hasPlanFor reports whether the head already has a plan for the target with these flags that is not
// cancelled or failed (a replayed delivery must not plan twice): for a command's delivery, one that delivery
// asked for; for an automatic plan (delivery ""), any.
func hasPlanFor(plans []db.Plan, head string, t Target, flags plan.Flags, delivery string) bool {
	for _, p := range plans {
		if p.HeadSHA == head && p.Project == t.Project.Name && p.Environment == t.Env.Name &&
			reflect.DeepEqual(normFlags(p.Flags), normFlags(flags)) &&
			p.Status != plan.StatusCancelled && p.Status != plan.StatusFailed &&
			(delivery == "" || planDelivery(p) == delivery) {
			return true
		}
	}
	return false
}

// planDelivery is the delivery of the command that asked for the plan ("" for an automatic plan, and for plans
// stored before plans remembered it).
func planDelivery(p db.Plan) string {
	pc, err := prstate.DecodeContext(p)
	if err != nil {
		return ""
	}
	return pc.Delivery
}

func normFlags(f plan.Flags) plan.Flags {
	if len(f.RestateModels) == 0 {
		f.RestateModels = nil
	}
	return f
}

// startPlan stores a queued plan, creates its check run and starts its job.
func (h *Handlers) startPlan(ctx context.Context, forge vcs.Forge, pr vcs.PullRequest, cfg repoconfig.Config, t Target, flags plan.Flags, trigger, delivery string) error {
	pc := prstate.PlanContext{PR: pr, Project: t.Project, Env: t.Env, MultiProject: len(cfg.Projects) > 1, Job: cfg.Job,
		PREnvironment: pr.Number != 0 && t.Env.Name == cfg.PREnvironmentFor(pr.Number), Delivery: delivery}
	if pc.PREnvironment {
		pc.StateFrom = prstate.ProductionEnvironment(cfg) // the environments are the default branch's
	}
	raw, err := json.Marshal(pc)
	if err != nil {
		return err
	}
	p, err := h.Store.CreatePlan(ctx, db.Plan{
		Forge: pr.Repo.Forge, Repo: pr.Repo.FullName(), PR: pr.Number,
		Project: t.Project.Name, Environment: t.Env.Name,
		HeadSHA: pr.HeadSHA, BaseSHA: pr.BaseSHA, TriggerUser: trigger,
		Flags: flags, Status: plan.StatusQueued, Context: raw,
	})
	if err != nil {
		return err
	}
	run, _, err := h.Store.CreateRun(ctx, p.ID, jobs.KindPlan, h.ExecutorName)
	if err != nil {
		return err
	}
	if err := h.Report.PlanStatus(ctx, forge, p, pc, run.ID); err != nil {
		return err
	}
	h.Runner.Launch(p, pc, run)
	return nil
}

// supersede marks plans of older heads stale, cancels their jobs and ends their checks.
func (h *Handlers) supersede(ctx context.Context, forge vcs.Forge, pr vcs.PullRequest) error {
	changes, err := h.Store.MarkStale(ctx, pr.Repo.Forge, pr.Repo.FullName(), pr.Number, pr.HeadSHA)
	if err != nil {
		return err
	}
	for _, c := range changes {
		p := c.Plan
		h.Runner.CancelPlanRuns(ctx, p.ID, jobrun.ErrSuperseded)
		if c.From.Final() {
			continue // its check already ended, on its own (older) commit
		}
		pc, err := prstate.DecodeContext(p)
		if err != nil {
			h.Log.Error("stale plan", "err", err)
			continue
		}
		if err := h.Report.PlanStatus(ctx, forge, p, pc, 0); err != nil {
			return err
		}
	}
	return nil
}

// closePR stops everything of a closed PR (or of a `/dagctl cancel`), as endPR does. A merge that waited for a
// plan it cancelled is told so (mergeAfterPlan), once the PR's lock is released.
func (h *Handlers) closePR(ctx context.Context, forge vcs.Forge, pr vcs.PullRequest, why string) error {
	cancelled, err := h.endPR(ctx, forge, pr, why, "")
	if err != nil {
		return err
	}
	for _, p := range cancelled {
		h.MergeAfterPlan(ctx, forge, p)
	}
	return nil
}

// endPR stops everything of a closed or merged PR, or of a `/dagctl cancel`: queued and running plans are
// cancelled and their checks end, except those of keepHead (a merge's head, whose apply waits for them);
// running applies are cancelled (they end their checks and release their locks themselves); locks the PR
// still holds are released. It returns the plans it cancelled.
func (h *Handlers) endPR(ctx context.Context, forge vcs.Forge, pr vcs.PullRequest, why, keepHead string) ([]db.Plan, error) {
	unlock := h.Locks.Lock(pr.Repo, pr.Number)
	defer unlock()
	plans, err := h.Store.ListPlansByPR(ctx, pr.Repo.Forge, pr.Repo.FullName(), pr.Number)
	if err != nil {
		return nil, err
	}
	cause := errors.New(why) // the runs' contexts end with it; a cancelled apply's check says it
	var cancelled []db.Plan
	for _, p := range plans {
		if p.Status.Final() {
			if !pr.Merged {
				h.Runner.CancelPlanRuns(ctx, p.ID, cause) // a running apply: a merge lets it finish, a close or cancel stops it
			}
			continue
		}
		if keepHead != "" && p.HeadSHA == keepHead {
			continue
		}
		h.Runner.CancelPlanRuns(ctx, p.ID, cause)
		p, err = h.Store.SetPlanResult(ctx, p.ID, db.PlanResult{Status: plan.StatusCancelled, Error: "Cancelled: " + why + "."})
		if err != nil {
			h.Log.Warn("cancelling plan", "plan", p.ID, "err", err)
			continue
		}
		cancelled = append(cancelled, p)
		pc, err := prstate.DecodeContext(p)
		if err != nil {
			continue
		}
		if err := h.Report.PlanStatus(ctx, forge, p, pc, prstate.LatestRun(ctx, h.Store, p.ID)); err != nil {
			return nil, err
		}
	}
	if pr.State == "closed" || pr.Merged {
		h.removePREnvironments(plans) // merged or not, as dbt Cloud's CI drops a PR's schema
	}
	if pr.State == "closed" || pr.Merged {
		locks, err := h.Store.LocksHeldByPR(ctx, pr.Repo.Forge, pr.Repo.FullName(), pr.Number)
		if err != nil {
			return nil, err
		}
		for _, l := range locks {
			if h.Runner.HasActiveRun(l.Owner.PlanID) {
				continue // its apply is stopping or finishing, and releases the lock itself
			}
			if err := h.Store.Unlock(ctx, l.Forge, l.Repo, l.Environment, l.Owner); err != nil {
				h.Log.Warn("releasing a closed PR's lock", "env", l.Environment, "err", err)
			}
		}
		h.recordPREnd(ctx, pr, true)
	}
	return cancelled, nil
}

// recordPREnd records a PR's end or reopening, for the metrics alone: a failure is logged, never retried.
func (h *Handlers) recordPREnd(ctx context.Context, pr vcs.PullRequest, ended bool) {
	if err := h.Store.SetPREnded(ctx, pr.Repo.Forge, pr.Repo.FullName(), pr.Number, ended); err != nil {
		h.Log.Warn("recording a PR's end", "ended", ended, "err", err)
	}
}

// removePREnvironments cleans up the per-PR environments of a closed or merged PR with their framework's cleanup
// (sqlmesh: `invalidate`, after which its janitor drops them; dbt: the PR's schemas are dropped), in the
// background. Best effort: a failure is logged, and the tool's own expiry of environments removes what is left
// (dbt has none: a schema whose drop failed stays, the log names it).
func (h *Handlers) removePREnvironments(plans []db.Plan) {
	seen := map[string]bool{}
	for _, p := range plans {
		pc, err := prstate.DecodeContext(p)
		if err != nil || !pc.PREnvironment || seen[p.Project+"/"+p.Environment] {
			continue
		}
		seen[p.Project+"/"+p.Environment] = true
		h.Runner.InBackground(p.ID, 0, nil, func(ctx context.Context) {
			if err := h.Runner.CleanUpEnvironment(ctx, p, pc); err != nil {
				h.Log.Warn("removing a PR environment", "env", pc.Env.Name, "err", err)
			}
		})
	}
}
