package bot

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/dagctl/dagctl-bot/internal/bot/prstate"
	"github.com/dagctl/dagctl-bot/internal/comments"
	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// section is how a stored plan shows on the PR.
func (b *Bot) section(p db.Plan, pc prstate.PlanContext, runID int64) comments.Section {
	s := comments.Section{
		Environment:    p.Environment,
		State:          comments.StateOf(p.Status),
		Summary:        p.Summary,
		Error:          p.Error,
		LogURL:         b.logURL(runID),
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
func (b *Bot) stickySection(ctx context.Context, p db.Plan, pc prstate.PlanContext) comments.Section {
	runs, err := b.store.ListRuns(ctx, p.ID)
	if err != nil {
		b.log.Warn("listing runs", "plan", p.ID, "err", err)
	}
	var lastRun int64
	var lastApply *db.Run
	for i := range runs {
		lastRun = runs[i].ID
		if runs[i].Kind == jobs.KindApply {
			lastApply = &runs[i]
		}
	}
	s := b.section(p, pc, lastRun)
	if p.Status == plan.StatusReady && pc.NeedsApproval() {
		snap, err := b.store.Approval(ctx, p.ID)
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

// reportPlanCheck makes the plan's check run show the plan's status: created on first report, updated after.
// A plan that went stale while its check was still open ends as cancelled; a check that already ended is left
// as it was (it belongs to an older commit).
func (b *Bot) reportPlanCheck(ctx context.Context, forge vcs.Forge, p db.Plan, pc prstate.PlanContext, runID int64) error {
	name := pc.CheckName(prstate.CheckPlan)
	checkID, _, err := b.store.CheckRun(ctx, p.ID, name)
	if err != nil {
		return err
	}
	sec := b.section(p, pc, runID)
	title, summary, text := comments.CheckOutput(sec)
	check := vcs.Check{
		ID: checkID, Name: name, HeadSHA: p.HeadSHA,
		Title: title, Summary: summary, Text: text,
		DetailsURL: b.logURL(runID), ExternalID: "plan:" + strconv.FormatInt(p.ID, 10),
	}
	switch p.Status {
	case plan.StatusQueued:
		check.Status = vcs.CheckQueued
	case plan.StatusRunning:
		check.Status = vcs.CheckInProgress
	case plan.StatusStale:
		check.Status, check.Conclusion = vcs.CheckCompleted, vcs.ConclusionCancelled
		check.Title = "Superseded by a newer commit"
	default:
		check.Status, check.Conclusion = vcs.CheckCompleted, vcs.CheckConclusion(comments.Conclusion(sec))
	}
	if check.ID == 0 {
		id, err := forge.CreateCheck(ctx, pc.PR.Repo, check)
		if err != nil {
			return fmt.Errorf("creating check %q: %w", check.Name, err)
		}
		if err := b.store.SetCheckRun(ctx, p.ID, name, id); err != nil {
			return err
		}
	} else if err := forge.UpdateCheck(ctx, pc.PR.Repo, check); err != nil {
		return fmt.Errorf("updating check %q: %w", check.Name, err)
	}
	return b.store.SetPlanReported(ctx, p.ID, p.Status)
}

// stickyInput is what the sticky comment shows besides the plans.
type stickyInput struct {
	Note        string
	ConfigError string
}

// syncStickyLocked renders the PR's sticky comment from the stored plans of its newest head. The caller holds
// the PR's lock.
func (b *Bot) syncStickyLocked(ctx context.Context, forge vcs.Forge, pr vcs.PullRequest, note string) error {
	return b.writeSticky(ctx, forge, pr, stickyInput{Note: note})
}

func (b *Bot) writeSticky(ctx context.Context, forge vcs.Forge, pr vcs.PullRequest, in stickyInput) error {
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
		plans, err := b.store.ListPlansByPR(ctx, pr.Repo.Forge, pr.Repo.FullName(), pr.Number)
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
				b.log.Error("sticky comment", "err", err)
				continue
			}
			view.Sections = append(view.Sections, b.stickySection(ctx, p, pc))
		}
	}
	if len(view.Sections) == 0 && len(view.Notes) == 0 {
		return nil
	}
	return b.putSticky(ctx, forge, pr, comments.Comment(view, forge.Limits().CommentChars))
}

// putSticky writes the sticky comment's parts: each part edits the bot's comment that carries its marker, or is
// created; parts left over from a longer earlier version are deleted. Only the bot's own comments count: anyone
// can post a body that starts with the marker, and adopting it would let its author edit what the bot said.
func (b *Bot) putSticky(ctx context.Context, forge vcs.Forge, pr vcs.PullRequest, parts []string) error {
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

// replyError answers a command with what was wrong.
func (b *Bot) replyError(ctx context.Context, forge vcs.Forge, pr vcs.PullRequest, msg string) error {
	_, err := forge.CreateComment(ctx, pr.Repo, pr.Number, "⚠️ "+msg)
	return err
}
