package bot

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/dagctl/dagctl-bot/internal/approval"
	"github.com/dagctl/dagctl-bot/internal/comments"
	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// needsApproval reports whether applying the environment needs reviews at all.
func needsApproval(pc planContext) bool {
	return pc.Env.Protected || pc.Env.RequiredApprovals > 0
}

// evaluateApproval reads the PR's reviews, its commit authors and the reviewers' permissions fresh from the
// forge and applies the approval rules to the plan. Nothing is cached: approvals change behind the bot's back
// (GitLab resets them on push without a webhook), so every decision reads them again.
func (b *Bot) evaluateApproval(ctx context.Context, forge vcs.Forge, p db.Plan, pc planContext) (approval.Result, error) {
	rule := approval.Rule{RequiredApprovals: pc.Env.RequiredApprovals, Approvers: pc.Env.Approvers}
	if !needsApproval(pc) {
		return approval.Result{Approved: true}, nil
	}
	if rule.RequiredApprovals < 1 {
		rule.RequiredApprovals = 1 // a protected environment always needs someone else's approval
	}
	reviews, err := forge.Reviews(ctx, pc.PR.Repo, p.PR)
	if err != nil {
		return approval.Result{}, fmt.Errorf("reading reviews: %w", err)
	}
	// Reviews given before the plan was last invalidated (its scope changed at apply time) do not count.
	var current []vcs.Review
	for _, r := range reviews {
		if r.ID > pc.ReviewsAfter {
			current = append(current, r)
		}
	}
	authors, err := forge.CommitAuthors(ctx, pc.PR.Repo, p.PR)
	if err != nil {
		return approval.Result{}, fmt.Errorf("reading commit authors: %w", err)
	}
	perms := map[string]vcs.Permission{}
	teams := map[string][]string{}
	for _, r := range current {
		if _, done := perms[r.User]; done {
			continue
		}
		perm, err := forge.Permission(ctx, pc.PR.Repo, r.User)
		if err != nil {
			return approval.Result{}, fmt.Errorf("reading %s's permission: %w", r.User, err)
		}
		perms[r.User] = perm
		for _, team := range rule.Teams() {
			in, err := forge.InTeam(ctx, pc.PR.Repo, team, r.User)
			if err != nil {
				return approval.Result{}, fmt.Errorf("reading team %s: %w", team, err)
			}
			if in {
				teams[team] = append(teams[team], r.User)
			}
		}
	}
	res := approval.Evaluate(approval.Input{
		Rule: rule, PRAuthor: pc.PR.Author, PlanHeadSHA: p.HeadSHA, PlanTrigger: p.TriggerUser,
		CommitAuthors: authors, Reviews: current, Permissions: perms, Teams: teams,
	})
	snap := db.ApprovalSnapshot{PlanID: p.ID, SHA: p.HeadSHA, Satisfied: res.Approved, Missing: missing(res)}
	for _, u := range res.ApprovedBy {
		snap.Approvers = append(snap.Approvers, db.Approver{User: u, SHA: p.HeadSHA})
	}
	if err := b.store.RecordApproval(ctx, snap); err != nil {
		b.log.Warn("recording an approval snapshot", "plan", p.ID, "err", err)
	}
	return res, nil
}

// missing says in words what an approval still needs.
func missing(res approval.Result) []string {
	if res.Approved {
		return nil
	}
	var out []string
	if len(res.ChangesRequestedBy) > 0 {
		out = append(out, "changes requested by "+strings.Join(res.ChangesRequestedBy, ", "))
	}
	if n := res.Missing(); n > 0 {
		word := "approval"
		if n > 1 {
			word = "approvals"
		}
		out = append(out, fmt.Sprintf("%d more %s from someone other than the author, the plan's trigger and the PR's committers", n, word))
	}
	return out
}

// sectionApproval is how an approval shows in the sticky comment.
func sectionApproval(res approval.Result) comments.Approval {
	return comments.Approval{ApprovedBy: res.ApprovedBy, Missing: missing(res)}
}

// reportApprovalCheck shows the approval of a plan as `dagctl/approval: <env>` on the planned commit. It stays
// blocking (action_required) until the approval is there, so branch protection can require it.
func (b *Bot) reportApprovalCheck(ctx context.Context, forge vcs.Forge, p db.Plan, pc planContext, res approval.Result) error {
	check := vcs.Check{Name: pc.checkName(CheckApproval), HeadSHA: p.HeadSHA, Status: vcs.CheckCompleted,
		ExternalID: "plan:" + strconv.FormatInt(p.ID, 10)}
	switch {
	case p.Status == plan.StatusNoChanges:
		check.Conclusion, check.Title = vcs.ConclusionSuccess, "No changes: nothing to approve"
	case res.Approved:
		check.Conclusion, check.Title = vcs.ConclusionSuccess, res.Describe()
	default:
		check.Conclusion, check.Title = vcs.ConclusionActionRequired, "Waiting for approval: "+res.Describe()
	}
	var summary strings.Builder
	fmt.Fprintf(&summary, "**%s** for `%s` at `%s`.\n\n", check.Title, pc.Env.Name, short(p.HeadSHA))
	for _, m := range missing(res) {
		fmt.Fprintf(&summary, "- Missing: %s\n", m)
	}
	for _, ig := range res.Ignored {
		fmt.Fprintf(&summary, "- Not counted: %s %s\n", ig.User, ig.Reason)
	}
	check.Summary = summary.String()
	return b.putCheck(ctx, forge, pc, p.ID, check)
}

// putCheck creates a plan's check run of that name, or updates it: one check run per (plan, name).
func (b *Bot) putCheck(ctx context.Context, forge vcs.Forge, pc planContext, planID int64, check vcs.Check) error {
	id, ok, err := b.store.CheckRun(ctx, planID, check.Name)
	if err != nil {
		return err
	}
	if ok {
		check.ID = id
		if err := forge.UpdateCheck(ctx, pc.PR.Repo, check); err != nil {
			return fmt.Errorf("updating check %q: %w", check.Name, err)
		}
		return nil
	}
	id, err = forge.CreateCheck(ctx, pc.PR.Repo, check)
	if err != nil {
		return fmt.Errorf("creating check %q: %w", check.Name, err)
	}
	return b.store.SetCheckRun(ctx, planID, check.Name, id)
}

// onReview re-evaluates the approval of the PR's current plans when a review is submitted, edited or dismissed.
func (b *Bot) onReview(ctx context.Context, forge vcs.Forge, ev vcs.ReviewEvent) error {
	unlock := b.lockPR(ev.PR.Repo, ev.PR.Number)
	defer unlock()
	plans, err := b.store.ListPlansByPR(ctx, ev.PR.Repo.Forge, ev.PR.Repo.FullName(), ev.PR.Number)
	if err != nil {
		return err
	}
	current := currentPlans(plans)
	if len(current) == 0 {
		return vcs.ErrIgnored
	}
	for _, p := range current {
		if p.Status != plan.StatusReady && p.Status != plan.StatusNoChanges {
			continue
		}
		pc, err := decodeContext(p)
		if err != nil || !needsApproval(pc) {
			continue
		}
		res, err := b.evaluateApproval(ctx, forge, p, pc)
		if err != nil {
			return err
		}
		if err := b.reportApprovalCheck(ctx, forge, p, pc, res); err != nil {
			return err
		}
	}
	pc, err := decodeContext(current[len(current)-1])
	if err != nil {
		return err
	}
	return b.syncStickyLocked(ctx, forge, pc.PR, "")
}

func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}
