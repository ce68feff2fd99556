package events

import (
	"context"

	"github.com/dagctl/dagctl-bot/internal/bot/prstate"
	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// Review re-evaluates the approval of the PR's current plans when a review is submitted, edited or dismissed. On a
// forge whose approvals name no commit it first stores the event, which is what dates the approval later: the
// event comes from the forge's verified webhook (never from a comment's text), and one by the bot's own account
// is no one's approval.
func (h *Handlers) Review(ctx context.Context, forge vcs.Forge, ev vcs.ReviewEvent) error {
	if ev.Review.ByBot {
		return vcs.ErrIgnored
	}
	unlock := h.Locks.Lock(ev.PR.Repo, ev.PR.Number)
	defer unlock()
	if !forge.ReviewFacts().Commit {
		if err := h.recordReviewEvent(ctx, ev); err != nil {
			return err
		}
	}
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

// recordReviewEvent stores an approval or its withdrawal with the forge's time, once however often it is
// delivered. A review that neither approves nor withdraws, or has no time, dates nothing.
func (h *Handlers) recordReviewEvent(ctx context.Context, ev vcs.ReviewEvent) error {
	r := ev.Review
	if r.User == "" || r.SubmittedAt.IsZero() || (r.State != vcs.ReviewApproved && r.State != vcs.ReviewDismissed) {
		return nil
	}
	_, err := h.Store.RecordReviewEvent(ctx, db.ReviewEvent{Forge: ev.PR.Repo.Forge, Repo: ev.PR.Repo.FullName(), PR: ev.PR.Number,
		User: r.User, Approved: r.State == vcs.ReviewApproved, At: r.SubmittedAt})
	return err
}
