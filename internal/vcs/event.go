package vcs

import (
	"strconv"
	"time"
)

// Event is a forge-neutral webhook event. Exactly one of the pointer fields is set.
type Event struct {
	// DeliveryID is the forge's delivery id (GitHub X-GitHub-Delivery), for logs.
	DeliveryID string `json:"delivery_id,omitempty"`
	// ReceivedAt is when the bot's intake stored the delivery (its own clock; zero when not from the queue):
	// comment commands expire by it.
	ReceivedAt time.Time `json:"-"`
	Repo       Repo      `json:"repo"`

	PullRequest  *PullRequestEvent  `json:"pull_request,omitempty"`
	Review       *ReviewEvent       `json:"review,omitempty"`
	Comment      *CommentEvent      `json:"comment,omitempty"`
	Push         *PushEvent         `json:"push,omitempty"`
	Rerequest    *RerequestEvent    `json:"rerequest,omitempty"`
	Installation *InstallationEvent `json:"installation,omitempty"`
	Pipeline     *PipelineEvent     `json:"pipeline,omitempty"`
}

// PullRequestAction is what happened to a pull request.
type PullRequestAction string

const (
	PROpened      PullRequestAction = "opened"
	PRReopened    PullRequestAction = "reopened"
	PRPushed      PullRequestAction = "synchronized" // new commits on the head branch
	PRReady       PullRequestAction = "ready_for_review"
	PRClosed      PullRequestAction = "closed" // closed without merge
	PRMerged      PullRequestAction = "merged"
	PREdited      PullRequestAction = "edited"
	PRUnsupported PullRequestAction = "unsupported"
)

// PullRequestEvent: a PR was opened, pushed to, closed or merged.
type PullRequestEvent struct {
	Action PullRequestAction `json:"action"`
	PR     PullRequest       `json:"pr"`
	Sender string            `json:"sender"`
}

// ReviewEvent: a review was submitted, edited or dismissed.
type ReviewEvent struct {
	Action string      `json:"action"` // submitted, edited, dismissed
	PR     PullRequest `json:"pr"`
	Review Review      `json:"review"`
}

// CommentEvent: a new comment on a pull request (comments on plain issues are not events for the bot).
type CommentEvent struct {
	Number  int     `json:"number"`
	Comment Comment `json:"comment"`
	// Edited comments are delivered too, but never run commands.
	Edited bool `json:"edited,omitempty"`
}

// PushEvent: commits pushed to a branch.
type PushEvent struct {
	Ref     string `json:"ref"` // refs/heads/main
	Before  string `json:"before"`
	After   string `json:"after"`
	Deleted bool   `json:"deleted,omitempty"`
	Pusher  string `json:"pusher"`
}

// RerequestEvent: a user asked to run a check again.
type RerequestEvent struct {
	CheckName  string `json:"check_name"`
	HeadSHA    string `json:"head_sha"`
	ExternalID string `json:"external_id,omitempty"`
	PRNumbers  []int  `json:"pr_numbers,omitempty"` // empty for forks (GitHub does not link them)
	Sender     string `json:"sender"`
}

// InstallationEvent: the app was installed, removed, suspended, or its repository list changed (GitHub Apps;
// a forge with one configured token has none).
type InstallationEvent struct {
	Action string `json:"action"` // created, deleted, suspend, unsuspend, added, removed
	// Account is the installation as vcs.Repo.Account names it; Owner the user or organisation it is on.
	Account string `json:"account"`
	Owner   string `json:"owner"`
	Added   []Repo `json:"added,omitempty"`
	Removed []Repo `json:"removed,omitempty"`
}

// PipelineEvent: a pipeline the bot's statuses did not create appeared (or changed) for a commit (GitLab's
// Pipeline Hook). It says only where: the bot's statuses of that commit, as the bot stored them, are written
// into the pipeline again, so that the pipeline a merge request waits for carries them. Nothing else of the
// hook is read.
type PipelineEvent struct {
	SHA string `json:"sha"`
	Ref string `json:"ref"`
	// Pipeline is the forge's id of the pipeline, as vcs.Status.Pipeline takes it.
	Pipeline string `json:"pipeline"`
	// Number is the merge request the pipeline runs for (a merge request pipeline), 0 for a branch's pipeline.
	Number int    `json:"number,omitempty"`
	Status string `json:"status,omitempty"` // the forge's word, for logs
}

// OrderingKey groups events that must be handled in order: all events of one PR, or of one repository when
// they are not about a PR.
func (e Event) OrderingKey() string {
	key := e.Repo.Forge + ":" + e.Repo.FullName()
	switch {
	case e.PullRequest != nil:
		return key + "#" + strconv.Itoa(e.PullRequest.PR.Number)
	case e.Review != nil:
		return key + "#" + strconv.Itoa(e.Review.PR.Number)
	case e.Comment != nil:
		return key + "#" + strconv.Itoa(e.Comment.Number)
	case e.Pipeline != nil && e.Pipeline.Number > 0:
		return key + "#" + strconv.Itoa(e.Pipeline.Number)
	}
	return key
}
