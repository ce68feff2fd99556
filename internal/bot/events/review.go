package events

import (
	"context"

	"github.com/dagctl/dagctl-bot/internal/bot/prstate"
	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// Review re-evaluates the approval of the PR's current plans when a review is submitted, edited or dismissed.
func (h *Handlers) Review(ctx context.Context, forge vcs.Forge, ev vcs.ReviewEvent) error {
	unlock := h.Locks.Lock(ev.PR.Repo, ev.PR.Number)
	defer unlock()
	plans, err := h.Store.ListPlansByPR(ctx, ev.PR.Repo.Forge, ev.PR.Repo.FullName(), ev.PR.Number)
	if err != nil {
		return err
	}
	current := prstate.CurrentPlans(plans)
	if len(current) == 0 {
		return vcs.ErrIgnored
	}
	for _, p := range current {
		if p.Status != plan.StatusReady && p.Status != plan.StatusNoChanges {
			continue
		}
		pc, err := prstate.DecodeContext(p)
		if err != nil || !pc.NeedsApproval() {
			continue
		}
		res, err := h.Approvals.Evaluate(ctx, forge, p, pc)
		if err != nil {
			return err
		}
		if err := h.Report.ApprovalStatus(ctx, forge, p, pc, res); err != nil {
			return err
		}
	}
	pc, err := prstate.DecodeContext(current[len(current)-1])
	if err != nil {
		return err
	}
	return h.Report.Sticky(ctx, forge, pc.PR, "")
}
