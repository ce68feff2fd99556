package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/dagctl/dagctl-bot/internal/approval"
	"github.com/dagctl/dagctl-bot/internal/bot/apply"
	"github.com/dagctl/dagctl-bot/internal/bot/prstate"
	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/deploy"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// candidate is a plan an apply would run, with the facts the deploy decision reads of it.
type candidate struct {
	plan   db.Plan
	pc     prstate.PlanContext
	target deploy.Target
}

// allowedApplier reports whether the user may apply the environment (appliers: logins or org/team slugs;
// empty means anyone with write permission, which the caller has checked).
func (h *Handlers) allowedApplier(ctx context.Context, forge vcs.Forge, repo vcs.Repo, appliers []string, user string) (bool, error) {
	if len(appliers) == 0 {
		return true, nil
	}
	for _, a := range appliers {
		if !strings.Contains(a, "/") {
			if strings.EqualFold(strings.TrimPrefix(a, "@"), user) {
				return true, nil
			}
			continue
		}
		in, err := forge.InTeam(ctx, repo, a, user)
		if err != nil {
			return false, err
		}
		if in {
			return true, nil
		}
	}
	return false, nil
}

// applyByComment runs `/dagctl apply [env] [--accept HASH]`: the deploy decision must allow every plan first
// (the PR is open and mergeable — or merged, for an admin's --accept —, targets a deploy branch, contains the
// branch's head, the user may apply, the plan at the head is ready and approved), then the applies are queued on
// the environments' locks.
func (h *Handlers) applyByComment(ctx context.Context, forge vcs.Forge, pr vcs.PullRequest, user, envName, accept string) error {
	unlock := h.Locks.Lock(pr.Repo, pr.Number)
	defer unlock()
	facts := deploy.Facts{Step: deploy.StepAsked, Trigger: repoconfig.ApplyOnComment, User: user,
		Request: deploy.Request{EnvNamed: envName != "", Accept: accept}, PR: prFacts(pr, repoconfig.Config{})}
	d := deploy.Decide(facts)
	if d.Need == deploy.NeedAdmin {
		perm, err := forge.Permission(ctx, pr.Repo, user)
		if err != nil {
			return err
		}
		admin := perm == vcs.PermissionAdmin
		facts.Request.UserIsAdmin = &admin
		d = deploy.Decide(facts)
	}
	if d.Verdict == deploy.Refuse {
		return h.Report.ReplyError(ctx, forge, pr, d.Reasons[0].Message)
	}
	cfg, _, err := h.loadConfig(ctx, forge, pr)
	var cfgErr *ConfigError
	switch {
	case errors.As(err, &cfgErr):
		return h.Report.ReplyError(ctx, forge, pr, "Cannot read the config: "+err.Error())
	case err != nil:
		return err // the forge failed: the delivery is retried, and a reply now would end the command for it
	}
	facts.PR = prFacts(pr, cfg)
	envs, refusal := commentEnvironments(cfg, pr, envName)
	if refusal != "" {
		return h.Report.ReplyError(ctx, forge, pr, refusal)
	}
	sha, atBranchHead := pr.HeadSHA, pr.Merged && accept != ""
	if atBranchHead {
		// An admin applies the deploy branch as it is now, having reviewed what no plan covered.
		if sha, err = forge.BranchHead(ctx, pr.Repo, pr.BaseRef); err != nil {
			return err
		}
	}
	ready, refusals, err := h.decideByComment(ctx, forge, pr, cfg, envs, facts)
	switch {
	case err != nil:
		return err
	case len(refusals) == 1 && refusals[0].Code.AboutRequest():
		return h.Report.ReplyError(ctx, forge, pr, refusals[0].Message)
	case len(refusals) > 0:
		return h.Report.ReplyError(ctx, forge, pr, "Not applied:\n\n- "+strings.Join(messages(refusals), "\n- "))
	case len(ready) == 0:
		return h.Report.ReplyError(ctx, forge, pr, "Nothing to apply: the plans have no changes.")
	}
	for _, c := range ready {
		if err := h.Applies.Queue(ctx, forge, apply.Request{Plan: c.plan, Context: c.pc, SHA: sha, User: user, Trigger: repoconfig.ApplyOnComment, Accept: accept, AtBranchHead: atBranchHead}); err != nil {
			return err
		}
	}
	return h.Report.Sticky(ctx, forge, pr, "")
}

// commentEnvironments are the environments `/dagctl apply [env]` is for, or why there are none. A named
// environment not applied by comment is left to the deploy decision (an admin's --accept on a merged PR applies it).
func commentEnvironments(cfg repoconfig.Config, pr vcs.PullRequest, envName string) ([]repoconfig.Environment, string) {
	if envName != "" {
		e, ok := Environment(cfg, pr.Number, envName)
		if !ok {
			return nil, fmt.Sprintf("Environment `%s` is not configured.", envName)
		}
		return []repoconfig.Environment{e}, ""
	}
	var envs []repoconfig.Environment
	for _, e := range Environments(cfg, pr.Number) {
		if e.AppliesOn(repoconfig.ApplyOnComment) {
			envs = append(envs, e)
		}
	}
	if len(envs) == 0 {
		return nil, "No environment of this repository is applied by comment."
	}
	return envs, ""
}

// decideByComment decides each plan of the environments: the ones to apply, and the reasons of the others (an
// environment's own reasons once, however many projects it has). A plan refused for its approval gets its
// approval check updated, so the PR shows what is missing.
func (h *Handlers) decideByComment(ctx context.Context, forge vcs.Forge, pr vcs.PullRequest, cfg repoconfig.Config, envs []repoconfig.Environment, facts deploy.Facts) ([]candidate, []deploy.Reason, error) {
	g := newRequestGatherer(h, forge, pr)
	var ready []candidate
	var refusals []deploy.Reason
	seen := map[string]bool{}
	for _, e := range envs {
		cands, err := h.candidates(ctx, pr, cfg, e, repoconfig.ApplyOnComment)
		if err != nil {
			return nil, nil, err
		}
		for i := range cands {
			c := &cands[i]
			c.target.SHA = pr.HeadSHA
			d, err := g.decide(ctx, facts, c)
			if err != nil {
				return nil, nil, err
			}
			switch {
			case d.Verdict == deploy.Apply:
				ready = append(ready, *c)
			case d.Verdict != deploy.Refuse:
			case d.Reasons[0].Code.AboutRequest():
				return nil, []deploy.Reason{d.Reasons[0]}, nil
			case d.Reasons[0].Code.AboutEnvironment() && seen[d.Reasons[0].Message]:
				// said once for the environment, whatever the number of its projects
			default:
				seen[d.Reasons[0].Message] = true
				refusals = append(refusals, d.Reasons[0])
				if d.Has(deploy.CodeNotApproved) {
					if err := h.Report.ApprovalStatus(ctx, forge, c.plan, c.pc, g.approval); err != nil {
						return nil, nil, err
					}
				}
			}
		}
	}
	return ready, refusals, nil
}

func messages(reasons []deploy.Reason) []string {
	out := make([]string, len(reasons))
	for i, r := range reasons {
		out[i] = r.Message
	}
	return out
}

// applyOnMerge applies the approved plans of a PR merged into a deploy branch, for environments applied on
// merge. Nothing unapproved is applied: the PR and the merge commit are told why.
func (h *Handlers) applyOnMerge(ctx context.Context, forge vcs.Forge, pr vcs.PullRequest, merger string) error {
	return h.mergeApply(ctx, forge, pr, merger, 0)
}

// mergeApply is applyOnMerge for every plan of the merged head, or only for the plan with id only (a merge
// that waited for that plan to end).
func (h *Handlers) mergeApply(ctx context.Context, forge vcs.Forge, pr vcs.PullRequest, merger string, only int64) error {
	unlock := h.Locks.Lock(pr.Repo, pr.Number)
	defer unlock()
	cfg, present, err := h.loadConfig(ctx, forge, pr)
	if err != nil || !present {
		return err
	}
	facts := deploy.Facts{Step: deploy.StepAsked, Trigger: repoconfig.ApplyOnMerge, User: merger, PR: prFacts(pr, cfg)}
	if deploy.Decide(facts).Verdict == deploy.NothingToDo {
		return nil // merged into a branch that does not deploy
	}
	sha := pr.MergeCommitSHA
	if sha == "" {
		sha = pr.HeadSHA
	}
	g := newRequestGatherer(h, forge, pr)
	var notes []string
	for _, e := range Environments(cfg, pr.Number) {
		if !e.AppliesOn(repoconfig.ApplyOnMerge) {
			continue
		}
		cands, err := h.candidates(ctx, pr, cfg, e, repoconfig.ApplyOnMerge)
		if err != nil {
			return err
		}
		for i := range cands {
			c := &cands[i]
			if only != 0 && c.plan.ID != only {
				continue
			}
			c.target.SHA = sha
			d, err := g.decide(ctx, facts, c)
			if err != nil {
				return err
			}
			if err := h.carryOutMerge(ctx, forge, d, *c, g.approval, pr, sha, merger, &notes); err != nil {
				return err
			}
		}
	}
	if len(notes) > 0 {
		if err := h.Report.Reply(ctx, pr, "⚠️ "+strings.Join(notes, "\n\n⚠️ ")); err != nil {
			return err
		}
	}
	return h.Report.Sticky(ctx, forge, pr, "")
}

// carryOutMerge does what the decision says of one plan of a merge: queue its apply, wait for its plan to end,
// record reviewed content of a plan with nothing to apply, or note why it was not applied (on the merge commit's
// apply check too, when the approval was missing).
func (h *Handlers) carryOutMerge(ctx context.Context, forge vcs.Forge, d deploy.Decision, c candidate, res approval.Result, pr vcs.PullRequest, sha, merger string, notes *[]string) error {
	switch d.Verdict {
	case deploy.Apply:
		return h.Applies.Queue(ctx, forge, apply.Request{Plan: c.plan, Context: c.pc, SHA: sha, User: merger, Trigger: repoconfig.ApplyOnMerge})
	case deploy.Wait:
		return h.awaitPlan(ctx, forge, d, c, pr, sha, merger)
	case deploy.NothingToDo:
		if d.Has(deploy.CodeNoChanges) {
			h.Applies.AdvanceAppliedContent(ctx, forge, c.plan, c.pc, sha, merger)
		}
		return nil
	}
	*notes = append(*notes, d.Reasons[0].Message)
	if !d.Has(deploy.CodeNotApproved) {
		return nil
	}
	why := res.Describe()
	if c.target.Approval == nil { // refused before any review was read: its plan had not ended
		why = "its plan had not finished when the PR was merged, so no review could count for it"
	}
	const title = "Not applied: merged without approval"
	return h.Report.PutStatus(ctx, forge, c.pc, c.plan.ID, vcs.Status{Name: c.pc.CheckName(prstate.CheckApply), CommitSHA: sha,
		State: vcs.StatusFailure, Description: title, Output: &vcs.StatusOutput{Title: title,
			Summary: "The plan for `" + c.pc.Env.Name + "` was not approved: " + why + ".\n\nNothing was applied."}})
}

// mergeWait is a merge waiting for its head's plan to end, as stored (Store.SetMergeWait): the merged PR as the
// forge reported it, and who merged it.
type mergeWait struct {
	PR     vcs.PullRequest `json:"pr"`
	Merger string          `json:"merger"`
}

// awaitPlan stores the merge for the plan's end, and says so on the merge commit's apply check.
func (h *Handlers) awaitPlan(ctx context.Context, forge vcs.Forge, d deploy.Decision, c candidate, pr vcs.PullRequest, sha, merger string) error {
	raw, err := json.Marshal(mergeWait{PR: pr, Merger: merger})
	if err != nil {
		return err
	}
	if err := h.Store.SetMergeWait(ctx, c.plan.ID, raw); err != nil {
		return err
	}
	const title = "Waiting for the plan to end"
	return h.Report.PutStatus(ctx, forge, c.pc, c.plan.ID, vcs.Status{Name: c.pc.CheckName(prstate.CheckApply), CommitSHA: sha,
		State: vcs.StatusQueued, Description: title, Output: &vcs.StatusOutput{Title: title, Summary: d.Reasons[0].Message}})
}

// MergeAfterPlan carries out the merge that waited for the plan, now that the plan has ended (or was
// cancelled), as applyOnMerge would have: the same decision, for that plan alone. The jobs' runner calls it
// when a plan ends. The forge's transient errors are waited out (the retry window); a permanent one, or one that
// outlasts the window, is logged and the wait kept, for ResumeMergeWaits at the next start.
func (h *Handlers) MergeAfterPlan(ctx context.Context, forge vcs.Forge, p db.Plan) {
	// The merge's delivery is done by now, so its retries do not cover this: the forge's transient errors are
	// waited out here, as a job's own reads are (carrying a merge out again finds what it queued before).
	err := h.Runner.ForgeRead(ctx, func() error { return h.mergeAfterPlan(ctx, forge, p.ID) }, nil)
	if err != nil {
		h.Log.Error("applying a merge that waited for its plan", "plan", p.ID, "err", err)
	}
}

func (h *Handlers) mergeAfterPlan(ctx context.Context, forge vcs.Forge, planID int64) error {
	raw, ok, err := h.Store.MergeWait(ctx, planID)
	if err != nil || !ok {
		return err
	}
	var w mergeWait
	if err := json.Unmarshal(raw, &w); err != nil {
		return fmt.Errorf("stored merge wait of plan %d: %w", planID, err)
	}
	// Carried out first, forgotten after: a restart in between decides again, and finds the apply queued.
	if err := h.mergeApply(ctx, forge, w.PR, w.Merger, planID); err != nil {
		return err
	}
	return h.Store.DeleteMergeWait(ctx, planID)
}

// ResumeMergeWaits carries out, at start, the merges whose plan ended before the previous process could: the
// plans still unfinished are run again by Recover, and their end carries their merge out.
func (h *Handlers) ResumeMergeWaits(ctx context.Context) error {
	ids, err := h.Store.MergeWaitPlans(ctx)
	if err != nil {
		return err
	}
	for _, id := range ids {
		p, err := h.Store.GetPlan(ctx, id)
		if errors.Is(err, db.ErrNotFound) {
			err = h.Store.DeleteMergeWait(ctx, id)
		}
		if err != nil || !p.Status.Final() {
			if err != nil {
				h.Log.Error("a merge waiting for its plan", "plan", id, "err", err)
			}
			continue
		}
		if forge, ok := h.Runner.Forges(p.Forge); ok {
			h.MergeAfterPlan(ctx, forge, p)
		}
	}
	return nil
}
