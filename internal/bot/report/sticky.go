package report

import (
	"context"
	"fmt"

	"github.com/dagctl/dagctl-bot/internal/bot/prstate"
	"github.com/dagctl/dagctl-bot/internal/comments"
	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// section is how a stored plan shows on the PR.
func (r *Reporter) section(p db.Plan, pc prstate.PlanContext, runID int64) comments.Section {
	s := comments.Section{
		Environment:    p.Environment,
		State:          comments.StateOf(p.Status),
		Summary:        p.Summary,
		Error:          p.Error,
		LogURL:         r.LogURL(runID),
		TriggeredBy:    p.TriggerUser,
		ApplyByComment: pc.Env.AppliesOn(repoconfig.ApplyOnComment),
		ApplyOnMerge:   pc.Env.AppliesOn(repoconfig.ApplyOnMerge),
	}
	if pc.MultiProject {
		s.Project = p.Project
	}
	if p.Status == plan.StatusStale {
		s.Note = "Superseded by a newer commit."
	}
	return s
}

// stickySection is a plan's section of the sticky comment: the plan, its approval (as last evaluated) and its
// latest apply.
func (r *Reporter) stickySection(ctx context.Context, p db.Plan, pc prstate.PlanContext) comments.Section {
	runs, err := r.Store.ListRuns(ctx, p.ID)
	if err != nil {
		r.Log.Warn("listing runs", "plan", p.ID, "err", err)
	}
	var lastRun int64
	var lastApply *db.Run
	for i := range runs {
		lastRun = runs[i].ID
		if runs[i].Kind == jobs.KindApply {
			lastApply = &runs[i]
		}
	}
	s := r.section(p, pc, lastRun)
	if p.Status == plan.StatusReady && pc.NeedsApproval() {
		snap, err := r.Store.Approval(ctx, p.ID)
		switch {
		case err == nil:
			var users []string
			for _, a := range snap.Approvers {
				users = append(users, a.User)
			}
			s.Approval = comments.Approval{ApprovedBy: users, Missing: snap.Missing}
		default:
			s.Approval = comments.Approval{Missing: []string{"an approving review from someone other than the author"}}
		}
	}
	if lastApply != nil {
		switch lastApply.Status {
		case db.RunQueued, db.RunRunning:
			s.State = comments.StateApplying
		case db.RunSucceeded:
			s.State = comments.StateApplied
		case db.RunFailed:
			s.State, s.Error = comments.StateApplyFailed, "The apply failed: "+lastApply.Reason+". See the log; comment `/dagctl apply "+p.Environment+"` to retry (completed intervals are kept)."
		case db.RunCancelled:
			s.Note = "The last apply was cancelled; completed intervals are kept."
		}
	}
	return s
}

// StickyInput is what the sticky comment shows besides the plans.
type StickyInput struct {
	Note        string
	ConfigError string
}

// Sticky renders the PR's sticky comment from the stored plans of its newest head. The caller holds
// the PR's lock.
func (r *Reporter) Sticky(ctx context.Context, forge vcs.Forge, pr vcs.PullRequest, note string) error {
	return r.WriteSticky(ctx, forge, pr, StickyInput{Note: note})
}

// WriteSticky renders the sticky comment with a config error or a note. The caller holds the PR's lock.
func (r *Reporter) WriteSticky(ctx context.Context, forge vcs.Forge, pr vcs.PullRequest, in StickyInput) error {
	if pr.Number == 0 {
		return nil // a pushed commit, not a pull request
	}
	view := comments.View{Repo: pr.Repo.FullName(), PR: pr.Number, HeadSHA: pr.HeadSHA}
	if in.Note != "" {
		view.Notes = append(view.Notes, in.Note)
	}
	if in.ConfigError != "" {
		view.Sections = append(view.Sections, comments.Section{
			Environment: repoconfig.Path, State: comments.StatePlanFailed,
			Error: "The bot cannot plan this PR until its config is fixed:\n\n" + in.ConfigError,
		})
	} else {
		plans, err := r.Store.ListPlansByPR(ctx, pr.Repo.Forge, pr.Repo.FullName(), pr.Number)
		if err != nil {
			return err
		}
		current := prstate.CurrentPlans(plans)
		if len(current) > 0 {
			view.HeadSHA = current[0].HeadSHA
		}
		for _, p := range current {
			pc, err := prstate.DecodeContext(p)
			if err != nil {
				r.Log.Error("sticky comment", "err", err)
				continue
			}
			view.Sections = append(view.Sections, r.stickySection(ctx, p, pc))
		}
	}
	if len(view.Sections) == 0 && len(view.Notes) == 0 {
		return nil
	}
	return r.putSticky(ctx, pr, comments.Comment(view, forge.Limits().CommentChars))
}

// putSticky enqueues the sticky comment's parts; the outbox edits each part's comment in place (only the bot's
// own comments are adopted), creates missing ones and deletes parts left over from a longer earlier version.
func (r *Reporter) putSticky(ctx context.Context, pr vcs.PullRequest, parts []string) error {
	if err := r.Writes.Sticky(ctx, pr, parts); err != nil {
		return fmt.Errorf("the sticky comment: %w", err)
	}
	return nil
}

// ReplyError answers a command with what was wrong.
func (r *Reporter) ReplyError(ctx context.Context, forge vcs.Forge, pr vcs.PullRequest, msg string) error {
	return r.Reply(ctx, pr, "⚠️ "+msg)
}

// Reply posts a new comment on the PR, through the outbox (once, even across a crash).
func (r *Reporter) Reply(ctx context.Context, pr vcs.PullRequest, body string) error {
	if err := r.Writes.Reply(ctx, pr, body); err != nil {
		return fmt.Errorf("replying: %w", err)
	}
	return nil
}

// ReplyOnce posts a reply of a named effect (e.g. an apply's end, by its run) outside any delivery: asked for
// again, after a restart, it is not posted twice.
func (r *Reporter) ReplyOnce(ctx context.Context, pr vcs.PullRequest, effect, body string) error {
	if err := r.Writes.ReplyOnce(ctx, pr, effect, body); err != nil {
		return fmt.Errorf("replying: %w", err)
	}
	return nil
}

// React reacts to a comment, through the outbox.
func (r *Reporter) React(ctx context.Context, repo vcs.Repo, commentID int64, reaction vcs.Reaction) error {
	return r.Writes.React(ctx, repo, commentID, reaction)
}
