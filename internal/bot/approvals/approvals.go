// Package approvals evaluates a plan's approval: it reads the reviews, commit authors and reviewers' access fresh
// from the forge, applies the approval rules (internal/approval) and records what they said.
package approvals

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/dagctl/dagctl-bot/internal/approval"
	"github.com/dagctl/dagctl-bot/internal/bot/prstate"
	"github.com/dagctl/dagctl-bot/internal/bot/writes"
	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/deploy"
	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// Evaluator evaluates approvals and records each result in the store (the sticky comment shows the last one).
type Evaluator struct {
	Store prstate.Store
	// Writes knows the refs of the plan statuses the outbox sent: the plan status's is asked when its result
	// was posted.
	Writes *writes.Writes
	Log    *slog.Logger
}

// evaluateApproval reads the PR's reviews, its commit authors and the reviewers' permissions fresh from the
// forge and applies the approval rules to the plan. Nothing is cached: approvals change behind the bot's back
// (GitLab resets them on push without a webhook), so every decision reads them again.
func (e *Evaluator) Evaluate(ctx context.Context, forge vcs.Forge, p db.Plan, pc prstate.PlanContext) (approval.Result, error) {
	rule := approval.Rule{RequiredApprovals: pc.Env.RequiredApprovals, Approvers: pc.Env.Approvers}
	if !pc.NeedsApproval() {
		return approval.Result{Approved: true}, nil
	}
	if rule.RequiredApprovals < 1 {
		rule.RequiredApprovals = 1 // a protected environment always needs someone else's approval
	}
	if p.Status == plan.StatusNoChanges {
		waived, err := e.noChangesWaiver(ctx, forge, pc)
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
	facts := forge.ReviewFacts()
	if !facts.Commit {
		if reviews, err = e.datedByEvents(ctx, p, reviews); err != nil {
			return approval.Result{}, err
		}
	}
	this, err := e.approvalPlan(ctx, forge, p, pc)
	if err != nil {
		return approval.Result{}, err
	}
	sameScope, err := e.sameScopePlans(ctx, forge, p)
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
		CommitAuthors: authors, Reviews: reviews, Permissions: perms, Teams: teams, Facts: facts,
	})
	snap := db.ApprovalSnapshot{PlanID: p.ID, SHA: p.HeadSHA, Satisfied: res.Approved, Missing: Missing(res)}
	for _, u := range res.ApprovedBy {
		snap.Approvers = append(snap.Approvers, db.Approver{User: u, SHA: p.HeadSHA})
	}
	if err := e.Store.RecordApproval(ctx, snap); err != nil {
		e.Log.Warn("recording an approval snapshot", "plan", p.ID, "err", err)
	}
	return res, nil
}

// datedByEvents dates the approvals the forge lists from the review events its webhooks reported (stored by the
// Review handler): the forge's list says who approves, the events when, and a withdrawal voids
// (approval.DateApprovals).
func (e *Evaluator) datedByEvents(ctx context.Context, p db.Plan, reviews []vcs.Review) ([]vcs.Review, error) {
	stored, err := e.Store.ReviewEvents(ctx, p.Forge, p.Repo, p.PR)
	if err != nil {
		return nil, fmt.Errorf("reading the stored review events: %w", err)
	}
	events := make([]approval.Event, len(stored))
	for i, ev := range stored {
		events[i] = approval.Event{User: ev.User, Approved: ev.Approved, At: ev.At}
	}
	return approval.DateApprovals(reviews, events), nil
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
func (e *Evaluator) approvalPlan(ctx context.Context, forge vcs.Forge, p db.Plan, pc prstate.PlanContext) (approval.Plan, error) {
	out := approval.Plan{ID: p.ID, HeadSHA: p.HeadSHA, ResultPostedAt: p.ResultPostedAt}
	if !out.ResultPostedAt.IsZero() {
		return out, nil
	}
	ref, err := e.Writes.StatusRef(ctx, pc, p.ID, pc.CheckName(prstate.CheckPlan), p.HeadSHA)
	if err != nil || ref == "" {
		return out, err // never sent: nothing can have approved it
	}
	at, err := forge.StatusPostedAt(ctx, pc.PR.Repo, ref)
	if err != nil {
		return out, fmt.Errorf("reading when plan %d's result was posted: %w", p.ID, err)
	}
	if !at.IsZero() {
		out.ResultPostedAt = at
		if err := e.Store.SetPlanResultPostedAt(ctx, p.ID, at); err != nil {
			return out, err
		}
	}
	return out, nil
}

// sameScopePlans are the PR's earlier plans of the same commit, project and environment whose scope equals p's:
// an approval of one of them covers p (a re-run plans the same thing).
func (e *Evaluator) sameScopePlans(ctx context.Context, forge vcs.Forge, p db.Plan) ([]approval.Plan, error) {
	if p.Summary == nil {
		return nil, nil
	}
	plans, err := e.Store.ListPlansByPR(ctx, p.Forge, p.Repo, p.PR)
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
		ap, err := e.approvalPlan(ctx, forge, q, qc)
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
func (e *Evaluator) noChangesWaiver(ctx context.Context, forge vcs.Forge, pc prstate.PlanContext) (string, error) {
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

// Missing says in words what an approval still needs.
func Missing(res approval.Result) []string {
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
