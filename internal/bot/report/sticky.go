package report

import (
	"context"
	"errors"
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
	return r.putSticky(ctx, forge, pr, comments.Comment(view, forge.Limits().CommentChars))
}

// putSticky writes the sticky comment's parts: each part edits the bot's comment that carries its marker, or is
// created; parts left over from a longer earlier version are deleted. Only the bot's own comments count: anyone
// can post a body that starts with the marker, and adopting it would let its author edit what the bot said.
func (r *Reporter) putSticky(ctx context.Context, forge vcs.Forge, pr vcs.PullRequest, parts []string) error {
	existing, err := forge.Comments(ctx, pr.Repo, pr.Number)
	if err != nil {
		return fmt.Errorf("listing comments: %w", err)
	}
	byPart := map[int]vcs.Comment{}
	for _, c := range existing {
		if !c.ByBot {
			continue
		}
		if n, ok := comments.MarkerPart(c.Body); ok {
			if _, seen := byPart[n]; !seen {
				byPart[n] = c
			}
		}
	}
	for i, body := range parts {
		n := i + 1
		if c, ok := byPart[n]; ok {
			delete(byPart, n)
			if c.Body == body {
				continue
			}
			err := forge.UpdateComment(ctx, pr.Repo, c.ID, body)
			if err == nil {
				continue
			}
			if !errors.Is(err, vcs.ErrNotFound) {
				return fmt.Errorf("updating the sticky comment: %w", err)
			}
			// Deleted meanwhile: create it again below.
		}
		if _, err := forge.CreateComment(ctx, pr.Repo, pr.Number, body); err != nil {
			return fmt.Errorf("creating the sticky comment: %w", err)
		}
	}
	for _, c := range byPart {
		if err := forge.DeleteComment(ctx, pr.Repo, c.ID); err != nil && !errors.Is(err, vcs.ErrNotFound) {
			return fmt.Errorf("deleting a leftover part of the sticky comment: %w", err)
		}
	}
	return nil
}

// ReplyError answers a command with what was wrong.
func (r *Reporter) ReplyError(ctx context.Context, forge vcs.Forge, pr vcs.PullRequest, msg string) error {
	_, err := forge.CreateComment(ctx, pr.Repo, pr.Number, "⚠️ "+msg)
	return err
}
