package bot

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dagctl/dagctl-bot/internal/approval"
	"github.com/dagctl/dagctl-bot/internal/bot/prstate"
	"github.com/dagctl/dagctl-bot/internal/command"
	"github.com/dagctl/dagctl-bot/internal/comments"
	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/deploy"
	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// evaluateApproval reads the PR's reviews, its commit authors and the reviewers' permissions fresh from the
// forge and applies the approval rules to the plan. Nothing is cached: approvals change behind the bot's back
// (GitLab resets them on push without a webhook), so every decision reads them again.
func (b *Bot) evaluateApproval(ctx context.Context, forge vcs.Forge, p db.Plan, pc prstate.PlanContext) (approval.Result, error) {
	rule := approval.Rule{RequiredApprovals: pc.Env.RequiredApprovals, Approvers: pc.Env.Approvers}
	if !pc.NeedsApproval() {
		return approval.Result{Approved: true}, nil
	}
	if rule.RequiredApprovals < 1 {
		rule.RequiredApprovals = 1 // a protected environment always needs someone else's approval
	}
	if p.Status == plan.StatusNoChanges {
		waived, err := b.noChangesWaiver(ctx, forge, pc)
		if err != nil {
			return approval.Result{}, err
		}
		if waived != "" {
			return approval.Result{Approved: true, Waived: waived}, nil
		}
	}
	reviews, err := forge.Reviews(ctx, pc.PR.Repo, p.PR)
	if err != nil {
		return approval.Result{}, fmt.Errorf("reading reviews: %w", err)
	}
	this, err := b.approvalPlan(ctx, forge, p, pc)
	if err != nil {
		return approval.Result{}, err
	}
	sameScope, err := b.sameScopePlans(ctx, forge, p)
	if err != nil {
		return approval.Result{}, err
	}
	authors, err := forge.CommitAuthors(ctx, pc.PR.Repo, p.PR)
	if err != nil {
		return approval.Result{}, fmt.Errorf("reading commit authors: %w", err)
	}
	perms, teams, err := reviewerAccess(ctx, forge, pc.PR.Repo, rule, reviews)
	if err != nil {
		return approval.Result{}, err
	}
	res := approval.Evaluate(approval.Input{
		Rule: rule, PRAuthor: pc.PR.Author, Plan: this, SameScope: sameScope, PlanTrigger: p.TriggerUser,
		CommitAuthors: authors, Reviews: reviews, Permissions: perms, Teams: teams,
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

// reviewerAccess reads each reviewer's permission and, for approvers given as teams, their memberships.
func reviewerAccess(ctx context.Context, forge vcs.Forge, repo vcs.Repo, rule approval.Rule, reviews []vcs.Review) (map[string]vcs.Permission, map[string][]string, error) {
	perms := map[string]vcs.Permission{}
	teams := map[string][]string{}
	for _, r := range reviews {
		if _, done := perms[r.User]; done || r.User == "" {
			continue
		}
		perm, err := forge.Permission(ctx, repo, r.User)
		if err != nil {
			return nil, nil, fmt.Errorf("reading %s's permission: %w", r.User, err)
		}
		perms[r.User] = perm
		for _, team := range rule.Teams() {
			in, err := forge.InTeam(ctx, repo, team, r.User)
			if err != nil {
				return nil, nil, fmt.Errorf("reading team %s: %w", team, err)
			}
			if in {
				teams[team] = append(teams[team], r.User)
			}
		}
	}
	return perms, teams, nil
}

// approvalPlan is the plan as the approval rules see it, with the forge's time of its result: read from the forge
// once (the plan check's completion) and kept, so that later updates of the check do not move it.
func (b *Bot) approvalPlan(ctx context.Context, forge vcs.Forge, p db.Plan, pc prstate.PlanContext) (approval.Plan, error) {
	out := approval.Plan{ID: p.ID, HeadSHA: p.HeadSHA, ResultPostedAt: p.ResultPostedAt}
	if !out.ResultPostedAt.IsZero() {
		return out, nil
	}
	checkID, ok, err := b.store.CheckRun(ctx, p.ID, pc.CheckName(prstate.CheckPlan))
	if err != nil || !ok {
		return out, err // never reported: nothing can have approved it
	}
	at, err := forge.CheckCompletedAt(ctx, pc.PR.Repo, checkID)
	if err != nil {
		return out, fmt.Errorf("reading when plan %d's result was posted: %w", p.ID, err)
	}
	if !at.IsZero() {
		out.ResultPostedAt = at
		if err := b.store.SetPlanResultPostedAt(ctx, p.ID, at); err != nil {
			return out, err
		}
	}
	return out, nil
}

// sameScopePlans are the PR's earlier plans of the same commit, project and environment whose scope equals p's:
// an approval of one of them covers p (a re-run plans the same thing).
func (b *Bot) sameScopePlans(ctx context.Context, forge vcs.Forge, p db.Plan) ([]approval.Plan, error) {
	if p.Summary == nil {
		return nil, nil
	}
	plans, err := b.store.ListPlansByPR(ctx, p.Forge, p.Repo, p.PR)
	if err != nil {
		return nil, err
	}
	var out []approval.Plan
	for _, q := range plans {
		if q.ID >= p.ID || q.HeadSHA != p.HeadSHA || q.Project != p.Project || q.Environment != p.Environment || q.Summary == nil {
			continue
		}
		if !plan.SameScope(*q.Summary, q.Flags, *p.Summary, p.Flags) {
			continue
		}
		qc, err := prstate.DecodeContext(q)
		if err != nil {
			continue
		}
		ap, err := b.approvalPlan(ctx, forge, q, qc)
		if err != nil {
			return nil, err
		}
		out = append(out, ap)
	}
	return out, nil
}

// noChangesWaiver says why a protected environment's plan that reports no changes needs no approval: the PR
// changes no file of the project, as the forge lists the PR's files (outside the job, whose output PR code can
// forge). "" when it does, or when the forge's list is truncated: then the plan needs approvals like any other.
func (b *Bot) noChangesWaiver(ctx context.Context, forge vcs.Forge, pc prstate.PlanContext) (string, error) {
	if pc.PR.Number == 0 {
		return "", nil
	}
	files, err := forge.ChangedFiles(ctx, pc.PR.Repo, pc.PR.Number)
	if err != nil {
		return "", fmt.Errorf("listing the PR's files: %w", err)
	}
	if deploy.TouchesProject(pc.Project.Path, files.Paths, files.Truncated) {
		return "", nil
	}
	return "No changes: nothing to approve", nil
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
func (b *Bot) reportApprovalCheck(ctx context.Context, forge vcs.Forge, p db.Plan, pc prstate.PlanContext, res approval.Result) error {
	check := vcs.Check{Name: pc.CheckName(prstate.CheckApproval), HeadSHA: p.HeadSHA, Status: vcs.CheckCompleted,
		ExternalID: "plan:" + strconv.FormatInt(p.ID, 10)}
	switch {
	case res.Waived != "":
		check.Conclusion, check.Title = vcs.ConclusionSuccess, res.Waived
	case res.Approved:
		check.Conclusion, check.Title = vcs.ConclusionSuccess, res.Describe()
	default:
		check.Conclusion, check.Title = vcs.ConclusionActionRequired, "Waiting for approval: "+res.Describe()
	}
	var summary strings.Builder
	fmt.Fprintf(&summary, "**%s** for `%s` at `%s`.\n\n", check.Title, pc.Env.Name, prstate.Short(p.HeadSHA))
	for _, m := range missing(res) {
		fmt.Fprintf(&summary, "- Missing: %s\n", m)
	}
	for _, ig := range res.Ignored {
		fmt.Fprintf(&summary, "- Not counted: %s %s\n", ig.User, ig.Reason)
	}
	summary.WriteString("\n" + approvalScope(p, res))
	check.Summary = summary.String()
	return b.putCheck(ctx, forge, pc, p.ID, check)
}

// putCheck creates a plan's check run of that name, or updates it: one check run per (plan, name, commit). A check
// on another commit than the planned one (an apply on the merge commit) is a check run of its own: GitHub's check
// runs cannot move to another commit, and the merge commit is where a deploy is looked for.
func (b *Bot) putCheck(ctx context.Context, forge vcs.Forge, pc prstate.PlanContext, planID int64, check vcs.Check) error {
	key := check.Name
	if check.HeadSHA != pc.PR.HeadSHA {
		key += "@" + check.HeadSHA
	}
	id, ok, err := b.store.CheckRun(ctx, planID, key)
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
	return b.store.SetCheckRun(ctx, planID, key, id)
}

// onReview re-evaluates the approval of the PR's current plans when a review is submitted, edited or dismissed.
func (b *Bot) onReview(ctx context.Context, forge vcs.Forge, ev vcs.ReviewEvent) error {
	unlock := b.lockPR(ev.PR.Repo, ev.PR.Number)
	defer unlock()
	plans, err := b.store.ListPlansByPR(ctx, ev.PR.Repo.Forge, ev.PR.Repo.FullName(), ev.PR.Number)
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
		res, err := b.evaluateApproval(ctx, forge, p, pc)
		if err != nil {
			return err
		}
		if err := b.reportApprovalCheck(ctx, forge, p, pc, res); err != nil {
			return err
		}
	}
	pc, err := prstate.DecodeContext(current[len(current)-1])
	if err != nil {
		return err
	}
	return b.syncStickyLocked(ctx, forge, pc.PR, "")
}

// approvalScope says which plan the approvals apply to: a review approves the plan whose result it followed, and
// plans of the same commit and scope, never a plan made after it with other flags.
func approvalScope(p db.Plan, res approval.Result) string {
	if res.Waived != "" {
		return fmt.Sprintf("Plan %d reports no changes and the PR changes no file of the project.\n", p.ID)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Approvals apply to plan %d (`%s` at `%s`", p.ID, p.Environment, prstate.Short(p.HeadSHA))
	if f := command.FlagsString(p.Flags); f != "" {
		fmt.Fprintf(&b, ", %s", f)
	}
	b.WriteString(")")
	if !p.ResultPostedAt.IsZero() {
		fmt.Fprintf(&b, ", whose result was posted at %s: reviews given before that do not count", p.ResultPostedAt.UTC().Format(time.RFC3339))
	}
	b.WriteString(".")
	var earlier []string
	for _, id := range res.Plans {
		if id != p.ID {
			earlier = append(earlier, strconv.FormatInt(id, 10))
		}
	}
	if len(earlier) > 0 {
		fmt.Fprintf(&b, " Counted approvals of plan %s, which has the same scope.", strings.Join(earlier, ", "))
	}
	return b.String() + "\n"
}
