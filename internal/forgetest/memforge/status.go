package memforge

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/dagctl/dagctl-bot/internal/vcs"
)

var knownStates = map[vcs.StatusState]bool{vcs.StatusQueued: true, vcs.StatusRunning: true, vcs.StatusSuccess: true,
	vcs.StatusFailure: true, vcs.StatusNeutral: true, vcs.StatusBlocked: true, vcs.StatusCancelled: true, vcs.StatusSkipped: true}

// PutStatus upserts the status of (commit, name), as a status-only forge does: a write without a ref still
// lands on the one status of its commit and name. The ref is the status's id; a ref of another status is
// refused. memforge shows all eight states as they are.
func (f *Forge) PutStatus(_ context.Context, rp vcs.Repo, s vcs.Status, ref vcs.StatusRef) (vcs.StatusRef, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, err := f.repo(rp)
	if err != nil {
		return "", err
	}
	if s.Name == "" || s.CommitSHA == "" || !knownStates[s.State] {
		return "", fmt.Errorf("memforge: a status needs a name, a commit and a known state (got %q on %q: %q)", s.Name, s.CommitSHA, s.State)
	}
	if _, ok := r.commits[s.CommitSHA]; !ok {
		return "", fmt.Errorf("memforge: no commit %s: %w", s.CommitSHA, vcs.ErrNotFound)
	}
	var st *Status
	for _, have := range r.statuses {
		if have.CommitSHA == s.CommitSHA && have.Name == s.Name {
			st = have
		}
	}
	if st == nil {
		st = &Status{ID: f.id()}
		r.statuses = append(r.statuses, st)
	}
	if ref != "" && ref != statusRef(st.ID) {
		return "", fmt.Errorf("memforge: status ref %q is not the ref of %q on %s", ref, s.Name, s.CommitSHA)
	}
	at := f.tick()
	switch {
	case !s.State.Final():
		st.PostedAt = time.Time{}
	case st.PostedAt.IsZero() || !st.Status.State.Final():
		st.PostedAt = at // reached a final state now
	}
	st.Status = s
	st.History = append(st.History, s)
	return statusRef(st.ID), nil
}

func statusRef(id int64) vcs.StatusRef { return vcs.StatusRef(strconv.FormatInt(id, 10)) }

// StatusPostedAt is when the status last reached a final state, on memforge's clock (zero while it is not in
// one).
func (f *Forge) StatusPostedAt(_ context.Context, rp vcs.Repo, ref vcs.StatusRef) (time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, err := f.repo(rp)
	if err != nil {
		return time.Time{}, err
	}
	for _, st := range r.statuses {
		if statusRef(st.ID) == ref {
			return st.PostedAt, nil
		}
	}
	return time.Time{}, fmt.Errorf("memforge: status %q: %w", ref, vcs.ErrNotFound)
}

// ReviewFacts: memforge's reviews carry their commit and their time, as GitHub's do, unless GitLabReviews was
// set: then, as GitLab's approvals API, neither.
func (f *Forge) ReviewFacts() vcs.ReviewFacts {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gitlabReviews != nil {
		return vcs.ReviewFacts{}
	}
	return vcs.ReviewFacts{Commit: true, SubmittedAt: true}
}

// GitLabPipelines makes the forge say that its statuses join pipelines, as GitLab's do
// (outbox.PipelineStatuses). memforge keeps no pipelines: a write into one is a write of the status whose
// vcs.Status.Pipeline names it, in its History.
func (f *Forge) GitLabPipelines() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pipelines = true
}

// StatusesJoinPipelines is whether GitLabPipelines was set.
func (f *Forge) StatusesJoinPipelines() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pipelines
}

// gitlabMode is how Reviews answers in GitLab's shape.
type gitlabMode struct{ dated bool }

// GitLabReviews makes the forge list reviews as GitLab's approvals API does: without their commit and, unless
// dated (GitLab returned approved_at), without their time.
func (f *Forge) GitLabReviews(dated bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gitlabReviews = &gitlabMode{dated: dated}
}
