// Package vcs is the forge-neutral language of the bot: repositories, pull requests, reviews, comments and
// statuses, and the events a forge sends about them. The GitHub adapter (internal/vcs/github) and later GitLab and
// Gitea adapters translate their APIs and webhooks into these types; nothing outside an adapter sees a forge's
// own types.
package vcs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Repo identifies a repository on a forge.
type Repo struct {
	Forge string `json:"forge"` // "github", "gitlab"
	Owner string `json:"owner"`
	Name  string `json:"name"`
	// Account is the forge account the bot acts through for this repository, as the adapter spells it: GitHub's
	// installation id in decimal; "" for a forge with one configured token (GitLab). Opaque to the core.
	Account       string `json:"account,omitempty"`
	CloneURL      string `json:"clone_url,omitempty"`
	DefaultBranch string `json:"default_branch,omitempty"`
}

// FullName is owner/name.
func (r Repo) FullName() string { return r.Owner + "/" + r.Name }

// UnmarshalJSON also reads what earlier versions stored (plans keep their PR as JSON): the GitHub installation id
// as "installation_id", a number, which is the account in decimal.
func (r *Repo) UnmarshalJSON(data []byte) error {
	type plain Repo // without this method
	var stored struct {
		plain
		InstallationID int64 `json:"installation_id"`
	}
	if err := json.Unmarshal(data, &stored); err != nil {
		return err
	}
	*r = Repo(stored.plain)
	if r.Account == "" && stored.InstallationID != 0 {
		r.Account = strconv.FormatInt(stored.InstallationID, 10)
	}
	return nil
}

// PullRequest is a pull request (GitHub) or merge request (GitLab).
type PullRequest struct {
	Repo   Repo   `json:"repo"`
	Number int    `json:"number"`
	Title  string `json:"title,omitempty"`
	Author string `json:"author"`
	// HeadSHA is the commit that is planned; BaseSHA the commit of the target branch it was compared with.
	HeadSHA string `json:"head_sha"`
	BaseSHA string `json:"base_sha"`
	HeadRef string `json:"head_ref"`
	BaseRef string `json:"base_ref"`
	// HeadCloneURL is where the head commit can be fetched (a fork's URL for fork PRs).
	HeadCloneURL string `json:"head_clone_url,omitempty"`
	// Fork is true when the head lives in another repository: its code is not trusted to run automatically.
	Fork           bool   `json:"fork,omitempty"`
	Draft          bool   `json:"draft,omitempty"`
	State          string `json:"state"` // "open" or "closed"
	Merged         bool   `json:"merged,omitempty"`
	MergeCommitSHA string `json:"merge_commit_sha,omitempty"`
	// Mergeable is nil while the forge is still computing it.
	Mergeable *bool  `json:"mergeable,omitempty"`
	URL       string `json:"url,omitempty"`
}

// Permission is a user's access to a repository, folded to four levels.
type Permission string

const (
	PermissionAdmin Permission = "admin"
	PermissionWrite Permission = "write"
	PermissionRead  Permission = "read"
	PermissionNone  Permission = "none"
)

// CanWrite reports whether the permission allows running commands.
func (p Permission) CanWrite() bool { return p == PermissionAdmin || p == PermissionWrite }

// ReviewState is the state of one review.
type ReviewState string

const (
	ReviewApproved         ReviewState = "approved"
	ReviewChangesRequested ReviewState = "changes_requested"
	ReviewCommented        ReviewState = "commented"
	ReviewDismissed        ReviewState = "dismissed"
	ReviewPending          ReviewState = "pending"
)

// Review is one review of a pull request.
type Review struct {
	ID          int64       `json:"id"`
	User        string      `json:"user"`
	State       ReviewState `json:"state"`
	CommitSHA   string      `json:"commit_sha"` // the commit the review was made on
	SubmittedAt time.Time   `json:"submitted_at"`
	// ByBot: the bot's own account gave it (as the adapter knows that account). A webhook's review event by the bot
	// is no one's approval: the bot records and acts on none.
	ByBot bool `json:"by_bot,omitempty"`
}

// Comment is a comment on a pull request's conversation.
type Comment struct {
	ID     int64  `json:"id"`
	Author string `json:"author"`
	Body   string `json:"body"`
	// ByBot: the bot itself wrote it (as the adapter knows the bot's own account). Only such comments are the
	// bot's to find, edit or delete: anyone can post a body that looks like the bot's.
	ByBot bool `json:"by_bot,omitempty"`
}

// Reaction is an emoji reaction on a comment.
type Reaction string

const (
	ReactionEyes     Reaction = "eyes"
	ReactionRocket   Reaction = "rocket"
	ReactionConfused Reaction = "confused"
)

// ErrNotFound is returned by adapters for a missing file, comment or pull request.
var ErrNotFound = errors.New("not found")

// ErrPermission is returned for a forge's refusal that is not a rate limit: retrying will not help.
var ErrPermission = errors.New("permission denied by the forge")

// ErrInvalid is returned when the forge refuses a request as invalid (GitHub's 422: a comment on a deleted PR, a
// status on a commit that is gone, a body over its limit): sending it again gets the same answer.
var ErrInvalid = errors.New("the forge refused the request as invalid")

// ErrRateLimited is returned when the forge kept answering with rate limits after the adapter's bounded waits:
// the work should be retried later, not dropped.
var ErrRateLimited = errors.New("rate limited by the forge")

// RateLimited is a rate limit with the time the forge said it resets (the zero time when it did not say). It
// is ErrRateLimited to errors.Is; retry policies wait until Reset, however far, instead of spending quota.
type RateLimited struct {
	Reset time.Time
	Err   error // the adapter's error, kept in the chain
}

func (r *RateLimited) Error() string {
	if r.Reset.IsZero() {
		return fmt.Sprintf("%v: %v", ErrRateLimited, r.Err)
	}
	return fmt.Sprintf("%v until %s: %v", ErrRateLimited, r.Reset.UTC().Format(time.RFC3339), r.Err)
}

func (r *RateLimited) Is(target error) bool { return target == ErrRateLimited }
func (r *RateLimited) Unwrap() error        { return r.Err }

// ErrIgnored is returned by webhook parsers for a valid delivery that is not for the bot (a ping, an event or
// action it does not handle, a comment on a plain issue): acknowledge it and do nothing.
var ErrIgnored = errors.New("event is not for the bot")

// Forge is what the bot needs from a forge for one repository's installation. Adapters implement it; they handle
// the forge's own limits (rate limits, sizes) where they meet it.
type Forge interface {
	PullRequest(ctx context.Context, repo Repo, number int) (PullRequest, error)
	Reviews(ctx context.Context, repo Repo, number int) ([]Review, error)
	// CommitAuthors are the logins of the authors and committers of the PR's commits (those with an account).
	CommitAuthors(ctx context.Context, repo Repo, number int) ([]string, error)
	Permission(ctx context.Context, repo Repo, user string) (Permission, error)
	// InTeam reports whether user belongs to org/team (for approvers given as team slugs).
	InTeam(ctx context.Context, repo Repo, team string, user string) (bool, error)

	// ReadFile reads a file at a ref; ErrNotFound when it does not exist.
	ReadFile(ctx context.Context, repo Repo, ref, path string) ([]byte, error)
	// CloneToken is a short-lived credential for fetching the repository's code.
	CloneToken(ctx context.Context, repo Repo) (string, error)

	// PutStatus writes the status of (status.CommitSHA, status.Name): ref is what the previous write of that status
	// returned, "" the first time; the answer is the ref to pass next time. Each adapter documents how the eight
	// states map to its forge.
	PutStatus(ctx context.Context, repo Repo, status Status, ref StatusRef) (StatusRef, error)
	// StatusPostedAt is when the forge says the status reached a final state, on the forge's own clock (zero while
	// it has not): approvals count for a plan only when given after its result was posted.
	StatusPostedAt(ctx context.Context, repo Repo, ref StatusRef) (time.Time, error)

	// Comments lists a PR's conversation, each marked ByBot when the bot's own account wrote it.
	Comments(ctx context.Context, repo Repo, number int) ([]Comment, error)
	CreateComment(ctx context.Context, repo Repo, number int, body string) (int64, error)
	UpdateComment(ctx context.Context, repo Repo, id int64, body string) error
	DeleteComment(ctx context.Context, repo Repo, id int64) error
	React(ctx context.Context, repo Repo, commentID int64, reaction Reaction) error

	// Compare says how head relates to base (branch names or commits): their merge base, and how many commits
	// head is ahead of and behind base.
	Compare(ctx context.Context, repo Repo, base, head string) (Comparison, error)
	// ChangedFiles lists the files a pull request changes, as the forge lists them; the list may be truncated.
	ChangedFiles(ctx context.Context, repo Repo, number int) (FileList, error)
	// BranchHead is the commit a branch points to now.
	BranchHead(ctx context.Context, repo Repo, branch string) (string, error)
	// Tree lists every file of a commit with its content id (a blob hash); it may be truncated.
	Tree(ctx context.Context, repo Repo, sha string) (Tree, error)

	// ReviewFacts says what the forge's reviews carry, for the approval rules to know what they can decide.
	ReviewFacts() ReviewFacts

	// Limits are the forge's size limits for what the bot writes.
	Limits() Limits
}

// ReviewFacts is what each review (approval) a forge lists says about itself. With the commit, the approval rules
// bind an approval to a plan by both: it was given on the plan's commit, after the plan's result was posted.
// Without it (GitLab), time alone binds (internal/approval), and an approval with no known time does not count.
type ReviewFacts struct {
	// Commit: Review.CommitSHA is the commit the reviewer saw when approving.
	Commit bool
	// SubmittedAt: Review.SubmittedAt is when the forge recorded the review, on the forge's clock.
	SubmittedAt bool
}

// Comparison is how a head commit relates to a base.
type Comparison struct {
	MergeBase string
	Ahead     int // commits in head that base lacks
	Behind    int // commits in base that head lacks: head does not contain base
}

// FileList is the files a pull request changes. Truncated: the forge stopped listing (GitHub: at 3,000 files),
// so the list says nothing about the files it does not show.
type FileList struct {
	Paths     []string
	Truncated bool
}

// Tree is a commit's files: path → content id (equal ids, equal content). Truncated: the forge did not list
// every file.
type Tree struct {
	Files     map[string]string
	Truncated bool
}

// Limits are a forge's size limits (see ../shared/forge-limits.md for sources).
type Limits struct {
	CommentChars    int // GitHub: 65,536 characters
	CheckOutputSize int // GitHub: 65,535 (applied as bytes, the stricter reading)
}
