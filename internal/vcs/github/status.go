package github

import (
	"context"
	"fmt"
	"strconv"
	"time"

	gh "github.com/google/go-github/v88/github"

	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// GitHub shows a vcs.Status as a check run; the status's ref is the check run's id in decimal (created when the
// ref is "", updated after). Branch protection keys on the check run's name, so the name is the status's name.
//
//	vcs.StatusState   check run status   conclusion
//	queued            queued             -
//	running           in_progress        -
//	success           completed          success
//	failure           completed          failure
//	neutral           completed          neutral
//	cancelled         completed          cancelled
//	skipped           completed          skipped
//	blocked           completed          action_required  (fails a required check until the bot writes again)
//
// Output becomes the check run's title, summary and text, each cut to MaxCheckOutput; without Output the
// Description is the title (and the summary). GitHub has no cap on a title below the output's.
//
// For comparison, GitLab's adapter (internal/vcs/gitlab) maps to commit statuses, found again by (sha, name):
// queued→pending, running→running, success→success, failure→failed, neutral→success (GitLab has no
// informational state; the description starts "Neutral: "), cancelled→canceled, skipped→skipped, and
// blocked→pending: a pending status holds the pipeline open, so "pipelines must succeed" keeps the merge
// request unmergeable while it waits on a person, as action_required does on GitHub
// (../shared/forge-limits.md, "Commit status states"). Output is dropped there; Description is cut to 255.
var checkStates = map[vcs.StatusState]struct {
	status     CheckStatus
	conclusion CheckConclusion
}{
	vcs.StatusQueued:    {CheckQueued, ""},
	vcs.StatusRunning:   {CheckInProgress, ""},
	vcs.StatusSuccess:   {CheckCompleted, ConclusionSuccess},
	vcs.StatusFailure:   {CheckCompleted, ConclusionFailure},
	vcs.StatusNeutral:   {CheckCompleted, ConclusionNeutral},
	vcs.StatusCancelled: {CheckCompleted, ConclusionCancelled},
	vcs.StatusSkipped:   {CheckCompleted, ConclusionSkipped},
	vcs.StatusBlocked:   {CheckCompleted, ConclusionActionRequired},
}

// checkOf is the check run that shows status.
func checkOf(status vcs.Status) (Check, error) {
	state, ok := checkStates[status.State]
	if !ok {
		return Check{}, fmt.Errorf("github: status %q has no state GitHub knows: %q", status.Name, status.State)
	}
	check := Check{
		Name: status.Name, HeadSHA: status.CommitSHA, Status: state.status, Conclusion: state.conclusion,
		DetailsURL: status.DetailsURL, ExternalID: status.ExternalID, Title: status.Description,
	}
	if o := status.Output; o != nil {
		check.Title, check.Summary, check.Text = o.Title, o.Summary, o.Text
	}
	return check, nil
}

// checkRunID reads a status ref: the check run's id.
func checkRunID(ref vcs.StatusRef) (int64, error) {
	id, err := strconv.ParseInt(string(ref), 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("github: status ref %q is not a check run id", ref)
	}
	return id, nil
}

// PutStatus creates the status's check run when ref is "", else updates check run ref.
func (i *Installation) PutStatus(ctx context.Context, repo vcs.Repo, status vcs.Status, ref vcs.StatusRef) (vcs.StatusRef, error) {
	check, err := checkOf(status)
	if err != nil {
		return "", err
	}
	if ref == "" {
		id, err := i.CreateCheck(ctx, repo, check)
		if err != nil {
			return "", err
		}
		return vcs.StatusRef(strconv.FormatInt(id, 10)), nil
	}
	if check.ID, err = checkRunID(ref); err != nil {
		return "", err
	}
	return ref, i.UpdateCheck(ctx, repo, check)
}

// StatusPostedAt is the check run's completed_at (GitHub's clock), zero while it has not completed.
func (i *Installation) StatusPostedAt(ctx context.Context, repo vcs.Repo, ref vcs.StatusRef) (time.Time, error) {
	id, err := checkRunID(ref)
	if err != nil {
		return time.Time{}, err
	}
	return i.CheckCompletedAt(ctx, repo, id)
}

// gitHubReviewFacts: a pull request review has commit_id (the head the reviewer saw) and submitted_at.
var gitHubReviewFacts = vcs.ReviewFacts{Commit: true, SubmittedAt: true}

// ReviewFacts: GitHub's reviews carry both their commit and their submission time.
func (i *Installation) ReviewFacts() vcs.ReviewFacts { return gitHubReviewFacts }

// ReviewFacts: GitHub's reviews carry both their commit and their submission time.
func (a *App) ReviewFacts() vcs.ReviewFacts { return gitHubReviewFacts }

// PutStatus implements vcs.Forge through the repository's installation.
func (a *App) PutStatus(ctx context.Context, repo vcs.Repo, status vcs.Status, ref vcs.StatusRef) (vcs.StatusRef, error) {
	return via(a, repo, func(i *Installation) (vcs.StatusRef, error) { return i.PutStatus(ctx, repo, status, ref) })
}

// StatusPostedAt implements vcs.Forge through the repository's installation.
func (a *App) StatusPostedAt(ctx context.Context, repo vcs.Repo, ref vcs.StatusRef) (time.Time, error) {
	return via(a, repo, func(i *Installation) (time.Time, error) { return i.StatusPostedAt(ctx, repo, ref) })
}

// FindStatus is the ref of the newest check run of (status.CommitSHA, status.Name) whose external_id is the
// status's ExternalID, "" when there is none: the outbox asks before it resends a create whose answer was lost,
// so that a crash between the request and GitHub's answer leaves one check run, not two.
func (i *Installation) FindStatus(ctx context.Context, repo vcs.Repo, status vcs.Status) (vcs.StatusRef, error) {
	if err := i.checkRepo(repo); err != nil {
		return "", err
	}
	// Only this app's check runs: anyone who can push (a workflow the PR runs, another app) can create one with the
	// bot's name and external id, and adopting it would leave the bot's own status unwritten.
	appID := i.app.AppID()
	opts := &gh.ListCheckRunsOptions{CheckName: optional(status.Name), Filter: optional("all"), AppID: &appID,
		ListOptions: gh.ListOptions{PerPage: 100}}
	var newest int64
	for {
		runs, resp, err := i.client.Checks.ListCheckRunsForRef(ctx, repo.Owner, repo.Name, status.CommitSHA, opts)
		if err != nil {
			return "", mapError(fmt.Sprintf("list check runs %q on %s@%s", status.Name, repo.FullName(), status.CommitSHA), err)
		}
		for _, run := range runs.CheckRuns {
			if run.GetApp().GetID() == appID && run.GetName() == status.Name && run.GetExternalID() == status.ExternalID && run.GetID() > newest {
				newest = run.GetID()
			}
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	if newest == 0 {
		return "", nil
	}
	return vcs.StatusRef(strconv.FormatInt(newest, 10)), nil
}

// FindStatus implements outbox.StatusFinder through the repository's installation.
func (a *App) FindStatus(ctx context.Context, repo vcs.Repo, status vcs.Status) (vcs.StatusRef, error) {
	return via(a, repo, func(i *Installation) (vcs.StatusRef, error) { return i.FindStatus(ctx, repo, status) })
}
