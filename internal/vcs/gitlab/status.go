package gitlab

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	gl "gitlab.com/gitlab-org/api/client-go"

	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// GitLab shows a vcs.Status as a commit status (POST /projects/:id/statuses/:sha), upserted by (commit, name,
// ref) among the statuses still pending or running; the name is the status's name, which "Pipelines must
// succeed" sees in the commit's newest pipeline (the status joins it, or GitLab creates an external one).
//
//	vcs.StatusState   commit status
//	queued            pending
//	running           running
//	success           success
//	failure           failed
//	neutral           success, the description starting "Neutral: " (GitLab has no informational state)
//	cancelled         canceled
//	skipped           skipped
//	blocked           pending: holds the pipeline open, so the merge request cannot merge while it waits on a
//	                  person, as action_required does on GitHub; failed would turn the pipeline red
//
// Output is dropped (GitLab shows none); the description is cut to MaxDescriptionChars; DetailsURL is the
// target_url. The ref is "<status id>@<commit>": GitLab's status for StatusPostedAt, which is its finished_at.
// A status that reached a final state is not written again in place: GitLab starts a new one of the same name
// (the old one is then "retried"), and the ref returned names it.
//
// A status with a Pipeline is written into that pipeline (pipeline_id; GitLab refuses one that is not of the
// commit with 404): the bot's statuses joining the team's own pipeline, which became the merge request's head
// pipeline after they were written. There it is a new status of its own (the one in the older pipeline stays
// as it was); written again with what that pipeline shows already, nothing is posted.
var commitStates = map[vcs.StatusState]gl.BuildStateValue{
	vcs.StatusQueued:    gl.Pending,
	vcs.StatusRunning:   gl.Running,
	vcs.StatusSuccess:   gl.Success,
	vcs.StatusFailure:   gl.Failed,
	vcs.StatusNeutral:   gl.Success,
	vcs.StatusCancelled: gl.Canceled,
	vcs.StatusSkipped:   gl.Skipped,
	vcs.StatusBlocked:   gl.Pending,
}

// NeutralPrefix starts the description of a neutral status, shown as success.
const NeutralPrefix = "Neutral: "

// description is what GitLab shows of a status: one line, within its limit.
func description(st vcs.Status) string {
	d := st.Description
	if d == "" && st.Output != nil {
		d = st.Output.Title
	}
	d = strings.Join(strings.Fields(d), " ")
	if st.State == vcs.StatusNeutral {
		d = NeutralPrefix + d
	}
	if r := []rune(d); len(r) > MaxDescriptionChars {
		d = string(r[:MaxDescriptionChars-1]) + "…"
	}
	return d
}

func statusRef(s *gl.CommitStatus) vcs.StatusRef {
	return vcs.StatusRef(strconv.FormatInt(s.ID, 10) + "@" + s.SHA)
}

func parseStatusRef(ref vcs.StatusRef) (int64, string, error) {
	idText, sha, ok := strings.Cut(string(ref), "@")
	id, err := strconv.ParseInt(idText, 10, 64)
	if !ok || err != nil || id <= 0 || sha == "" {
		return 0, "", fmt.Errorf("gitlab: status ref %q is not <status id>@<commit>", ref)
	}
	return id, sha, nil
}

// PutStatus writes the commit status of (status.CommitSHA, status.Name); the ref passed in is not needed, as
// GitLab finds the status by its name. Writing the state it already has (a resend whose answer was lost) is
// refused by GitLab's state machine: the status it has is then adopted. Blocked after running cannot go back
// to pending in place: the running status is cancelled and a pending one follows it.
func (f *Forge) PutStatus(ctx context.Context, repo vcs.Repo, status vcs.Status, _ vcs.StatusRef) (vcs.StatusRef, error) {
	id, err := pid(repo)
	if err != nil {
		return "", err
	}
	state, ok := commitStates[status.State]
	if !ok || status.Name == "" || status.CommitSHA == "" {
		return "", fmt.Errorf("gitlab: status %q on %q has no state GitLab knows: %q", status.Name, status.CommitSHA, status.State)
	}
	op := fmt.Sprintf("status %q on %s@%s", status.Name, id, status.CommitSHA)
	var pipeline *int64
	if status.Pipeline != "" {
		n, err := strconv.ParseInt(status.Pipeline, 10, 64)
		if err != nil || n <= 0 {
			return "", fmt.Errorf("gitlab: %s: pipeline %q is not a pipeline id: %w", op, status.Pipeline, vcs.ErrInvalid)
		}
		pipeline, op = &n, fmt.Sprintf("%s in pipeline %d", op, n)
		// Written into a pipeline again (each of its hooks asks): what the pipeline shows already is not
		// written twice, since a final state written again would start a second status there.
		have, err := f.currentStatus(ctx, id, status)
		if err != nil {
			return "", err
		}
		if have != nil && have.Status == string(state) && have.Description == description(status) &&
			have.TargetURL == status.DetailsURL {
			return statusRef(have), nil
		}
	}
	var ref *string // GitLab's: the commit's newest pipeline's (the named pipeline's), else a branch that contains it
	post := func(state gl.BuildStateValue) (*gl.CommitStatus, error) {
		opts := &gl.SetCommitStatusOptions{State: state, Name: &status.Name, Description: gl.Ptr(description(status)), Ref: ref,
			PipelineID: pipeline}
		if status.DetailsURL != "" {
			opts.TargetURL = &status.DetailsURL
		}
		s, _, err := f.client.Commits.SetCommitStatus(id, status.CommitSHA, opts, gl.WithContext(ctx))
		return s, err
	}
	s, err := post(state)
	if errors.Is(err, gl.ErrNotFound) && pipeline == nil {
		// A fork's head is on no branch of the target project ("404 References for commit Not Found"): it is
		// there as its merge request's refs/merge-requests/<iid>/head, which the status then names.
		if ref, err = f.mergeRequestRef(ctx, id, status.CommitSHA); err != nil {
			return "", err
		}
		if ref == nil {
			return "", f.mapError(op, gl.ErrNotFound)
		}
		s, err = post(state)
	}
	if err == nil {
		return statusRef(s), nil
	}
	if !isStatus(err, http.StatusBadRequest) || !strings.Contains(message(err), "Cannot transition status") {
		return "", f.mapError(op, err)
	}
	current, findErr := f.currentStatus(ctx, id, status)
	if findErr != nil {
		return "", findErr
	}
	switch {
	case current != nil && current.Status == string(state):
		return statusRef(current), nil
	case current != nil && current.Status == string(gl.Running) && state == gl.Pending:
		if _, err := post(gl.Canceled); err != nil {
			return "", f.mapError(op+" (ending the running one)", err)
		}
		if s, err = post(state); err != nil {
			return "", f.mapError(op, err)
		}
		return statusRef(s), nil
	}
	return "", f.mapError(op, err)
}

// StatusesJoinPipelines: a commit status joins a pipeline, and the team's pipeline that starts later is the
// merge request's head pipeline without it (outbox.PipelineStatuses).
func (f *Forge) StatusesJoinPipelines() bool { return true }

// mergeRequestRef is the head ref of the merge request of a commit (the open one, the newest first), nil when
// the commit is in none.
func (f *Forge) mergeRequestRef(ctx context.Context, id, sha string) (*string, error) {
	mrs, _, err := f.client.Commits.ListMergeRequestsByCommit(id, sha, gl.WithContext(ctx))
	if err != nil {
		return nil, f.mapError(fmt.Sprintf("merge requests of %s@%s", id, sha), err)
	}
	var best *gl.BasicMergeRequest
	for _, mr := range mrs {
		if best == nil || (mr.State == "opened") != (best.State == "opened") && mr.State == "opened" ||
			(mr.State == "opened") == (best.State == "opened") && mr.IID > best.IID {
			best = mr
		}
	}
	if best == nil {
		return nil, nil
	}
	return gl.Ptr(fmt.Sprintf("refs/merge-requests/%d/head", best.IID)), nil
}

// currentStatus is the bot's newest status of the commit and name, in the status's pipeline when it names one
// (nil when there is none).
func (f *Forge) currentStatus(ctx context.Context, id string, status vcs.Status) (*gl.CommitStatus, error) {
	bot, err := f.Bot(ctx)
	if err != nil {
		return nil, err
	}
	inPipeline := func(s *gl.CommitStatus) bool {
		return status.Pipeline == "" || strconv.FormatInt(s.PipelineID, 10) == status.Pipeline
	}
	var newest *gl.CommitStatus
	err = f.statuses(ctx, id, status.CommitSHA, status.Name, false, func(s *gl.CommitStatus) {
		if s.Author.ID == bot.ID && s.Name == status.Name && inPipeline(s) && (newest == nil || s.ID > newest.ID) {
			newest = s
		}
	})
	return newest, err
}

// statuses calls each for every status of a commit (all: the retried ones too), every page.
func (f *Forge) statuses(ctx context.Context, id, sha, name string, all bool, each func(*gl.CommitStatus)) error {
	opts := &gl.GetCommitStatusesOptions{ListOptions: gl.ListOptions{PerPage: perPage}, All: &all}
	if name != "" {
		opts.Name = &name
	}
	for {
		page, resp, err := f.client.Commits.GetCommitStatuses(id, sha, opts, gl.WithContext(ctx))
		if err != nil {
			return f.mapError(fmt.Sprintf("statuses of %s@%s", id, sha), err)
		}
		for _, s := range page {
			each(s)
		}
		if resp.NextPage == 0 {
			return nil
		}
		opts.Page = resp.NextPage
	}
}

// StatusPostedAt is the status's finished_at, on GitLab's clock: zero while it is pending or running (a
// blocked status stays pending, so it is never posted) and for skipped, which GitLab does not finish.
func (f *Forge) StatusPostedAt(ctx context.Context, repo vcs.Repo, ref vcs.StatusRef) (time.Time, error) {
	id, err := pid(repo)
	if err != nil {
		return time.Time{}, err
	}
	statusID, sha, err := parseStatusRef(ref)
	if err != nil {
		return time.Time{}, err
	}
	var found *gl.CommitStatus
	if err := f.statuses(ctx, id, sha, "", true, func(s *gl.CommitStatus) {
		if s.ID == statusID {
			found = s
		}
	}); err != nil {
		return time.Time{}, err
	}
	if found == nil {
		return time.Time{}, fmt.Errorf("gitlab: status %s of %s: %w", ref, id, vcs.ErrNotFound)
	}
	switch gl.BuildStateValue(found.Status) {
	case gl.Success, gl.Failed, gl.Canceled:
		if found.FinishedAt != nil {
			return found.FinishedAt.UTC(), nil
		}
	}
	return time.Time{}, nil
}
