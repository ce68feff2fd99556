package memforge

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// PutStatus writes a status as one of memforge's checks: the ref is the check's id.
func (f *Forge) PutStatus(ctx context.Context, rp vcs.Repo, s vcs.Status, ref vcs.StatusRef) (vcs.StatusRef, error) {
	check := vcs.Check{Name: s.Name, HeadSHA: s.CommitSHA, DetailsURL: s.DetailsURL, ExternalID: s.ExternalID, Title: s.Description}
	if s.Output != nil {
		check.Title, check.Summary, check.Text = s.Output.Title, s.Output.Summary, s.Output.Text
	}
	switch s.State {
	case vcs.StatusQueued:
		check.Status = vcs.CheckQueued
	case vcs.StatusRunning:
		check.Status = vcs.CheckInProgress
	case vcs.StatusBlocked:
		check.Status, check.Conclusion = vcs.CheckCompleted, vcs.ConclusionActionRequired
	case vcs.StatusSuccess, vcs.StatusFailure, vcs.StatusNeutral, vcs.StatusCancelled, vcs.StatusSkipped:
		check.Status, check.Conclusion = vcs.CheckCompleted, vcs.CheckConclusion(s.State)
	default:
		return "", fmt.Errorf("memforge: unknown status state %q", s.State)
	}
	if ref == "" {
		id, err := f.CreateCheck(ctx, rp, check)
		return vcs.StatusRef(strconv.FormatInt(id, 10)), err
	}
	id, err := strconv.ParseInt(string(ref), 10, 64)
	if err != nil {
		return "", fmt.Errorf("memforge: status ref %q: %w", ref, err)
	}
	check.ID = id
	return ref, f.UpdateCheck(ctx, rp, check)
}

// StatusPostedAt is when the status's check completed, on memforge's clock.
func (f *Forge) StatusPostedAt(ctx context.Context, rp vcs.Repo, ref vcs.StatusRef) (time.Time, error) {
	id, err := strconv.ParseInt(string(ref), 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("memforge: status ref %q: %w", ref, err)
	}
	return f.CheckCompletedAt(ctx, rp, id)
}

// ReviewFacts: memforge's reviews carry their commit and their time, as GitHub's do.
func (f *Forge) ReviewFacts() vcs.ReviewFacts {
	return vcs.ReviewFacts{Commit: true, SubmittedAt: true}
}
