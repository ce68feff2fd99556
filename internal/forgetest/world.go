// Package forgetest is the forge side of the bot's end-to-end tests in forge-neutral terms: a World is a fake
// forge holding one repository, changed the way people change it (commits, pull requests, comments, reviews,
// permissions) and sending the webhooks the forge would send about it, and showing what the bot wrote there
// (statuses per commit and name, comments, reactions) in the core's words. Scenarios written against it run
// against every fake forge: GitHub's (githubworld) today, GitLab's next.
package forgetest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/dagctl/dagctl-bot/internal/comments"
	"github.com/dagctl/dagctl-bot/internal/serverconfig"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// DeleteFile, as a file's content in Commit, removes the file.
const DeleteFile = "\x00delete"

// World is one fake forge with the repository under test (acme/warehouse).
type World interface {
	// Name is the forge's name: vcs.Repo.Forge, and the bot's route /webhooks/{name}.
	Name() string
	// Repo is the repository under test.
	Repo() vcs.Repo
	// BotAccount is the account the bot writes as.
	BotAccount() string
	// Limits are the forge's size limits for what the bot writes.
	Limits() vcs.Limits
	// Configure points the bot's settings at the fake: its API, the bot's credentials, the webhook secret, and
	// the OAuth client people sign in to the bot's pages with (its callback under cfg.PublicURL).
	Configure(cfg *serverconfig.Config)
	// SignIn is a browser signed in to the forge as user: the forge's OAuth authorize page approves at once for
	// them and sends the browser back to the bot with a code.
	SignIn(user string)
	// Shown is the state this forge shows for a state the core wrote: a forge without blocked or neutral shows
	// another (GitLab: pending, success). Scenarios compare what they expect through it.
	Shown(s vcs.StatusState) vcs.StatusState
	// Can says whether the forge has a capability a scenario's step needs; without it the step has no meaning
	// there and is skipped.
	Can(c Capability) bool
	// Now and Sleep are the forge's clock, for the bot's waits (rate limits) to take no real time.
	Now() time.Time
	Sleep(ctx context.Context, d time.Duration) error

	// Commit commits files (DeleteFile removes one) on branch, which starts at the default branch when it is
	// new, and returns the commit. The bot fetches commits from the forge.
	Commit(branch string, files map[string]string, message string) string
	// Branch creates branch at the head of from.
	Branch(branch, from string)
	// Head is the commit a branch points to.
	Head(branch string) string
	// Merge merges branch into into with a merge commit and returns it.
	Merge(into, branch, message string) string

	// SetPR creates or replaces a pull request as the forge holds it; PullRequest reads it back.
	SetPR(pr PR)
	PullRequest(number int) (PR, bool)
	SetPermission(user string, p vcs.Permission)
	// AddComment is user commenting on the PR (no webhook is sent); it returns the comment's id.
	AddComment(number int, user, body string) int64
	// AddReview is user reviewing commit sha of the PR, now on the forge's clock; it returns the review's id.
	AddReview(number int, user string, state vcs.ReviewState, sha string) int64
	DismissReview(number int, id int64)

	// The webhooks the forge sends, built from its state now. Each is one delivery: sent twice, it is a
	// redelivery of the same id.
	PREvent(action vcs.PullRequestAction, number int) Webhook
	CommentEvent(number int, commentID int64) Webhook
	// CommentEditedEvent is the delivery of an edit of a comment.
	CommentEditedEvent(number int, commentID int64) Webhook
	ReviewEvent(number int, reviewID int64) Webhook
	ReviewDismissedEvent(number int, reviewID int64) Webhook
	PushEvent(branch, before, after, pusher string) Webhook
	// RerequestEvent is sender asking the forge to run a status again (GitHub: "Re-run" on a check run); only
	// where Can(RerunStatus).
	RerequestEvent(s Status, sender string) Webhook
	// BadlySigned is the webhook signed with a secret that is not the bot's.
	BadlySigned(wh Webhook) Webhook

	// Statuses are every status the bot wrote, oldest first.
	Statuses() []Status
	// Comments are the PR's comments that are not deleted, oldest first.
	Comments(number int) []Comment
	// Comment is one comment, deleted or not.
	Comment(id int64) (Comment, bool)
	Reactions(commentID int64) []vcs.Reaction
}

// Capability is something one forge has and another may not.
type Capability string

const (
	// RequestChanges: a review can request changes (GitLab has approvals only).
	RequestChanges Capability = "a review requesting changes"
	// StatusOutput: a status shows rich output (a summary and text) beside its title; GitLab's shows a
	// description alone, and the plan is in the sticky comment.
	StatusOutput Capability = "status output"
	// StatusExternalID: a status carries the bot's id of what it reports (GitHub's check run external_id).
	StatusExternalID Capability = "external ids on statuses"
	// RerunStatus: a person can ask the forge to run a status again (GitLab cannot re-run an external status).
	RerunStatus Capability = "re-running a status"
)

// PR is a pull request (GitHub) or merge request (GitLab) as the forge holds it.
type PR struct {
	Number  int
	Title   string
	Author  string
	HeadRef string
	HeadSHA string
	BaseRef string // empty: the default branch
	BaseSHA string
	// Fork is owner/name of the repository the head lives in when it is not the repository under test.
	Fork           string
	Draft          bool
	Closed         bool
	Merged         bool
	MergeCommitSHA string
}

// Status is what the forge shows for one (commit, name), in the core's words.
type Status struct {
	Name      string
	CommitSHA string
	State     vcs.StatusState
	// Title is the one-line description; Summary and Text the rich output where the forge shows one.
	Title      string
	Summary    string
	Text       string
	DetailsURL string
	ExternalID string
	// Ref is the forge's id of the status (GitHub: the check run's).
	Ref vcs.StatusRef
	// History is every state the bot wrote, in order.
	History []vcs.StatusState
}

// String shows a status briefly, for failure messages.
func (s Status) String() string {
	return fmt.Sprintf("%s@%.7s %s %q %.300q", s.Name, s.CommitSHA, s.State, s.Title, s.Summary+s.Text)
}

// Output is the status's title, summary and text together.
func (s Status) Output() string { return s.Title + "\n" + s.Summary + "\n" + s.Text }

// Comment is a comment on a pull request.
type Comment struct {
	ID      int64
	Author  string
	Body    string
	ByBot   bool
	Deleted bool
	// Edits are the comment's earlier bodies.
	Edits []string
}

// Webhook is one delivery the forge makes to the bot: its route, headers and body.
type Webhook struct {
	Event  string // for messages: "pull_request", "Merge Request Hook"
	ID     string // the delivery's id
	Path   string // "/webhooks/github"
	Header http.Header
	Body   []byte
}

// Delivery is the bot's answer to a webhook.
type Delivery struct {
	ID     string
	Status int
	Body   string
}

// Send POSTs the webhook to the bot at baseURL.
func (wh Webhook) Send(baseURL string) (Delivery, error) {
	req, err := http.NewRequest(http.MethodPost, baseURL+wh.Path, bytes.NewReader(wh.Body))
	if err != nil {
		return Delivery{}, err
	}
	req.Header = wh.Header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Delivery{ID: wh.ID}, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	return Delivery{ID: wh.ID, Status: resp.StatusCode, Body: string(answer)}, err
}

// StatusNamed is the newest status with that name on the commit.
func StatusNamed(w World, name, sha string) (Status, bool) {
	var found Status
	ok := false
	for _, s := range w.Statuses() {
		if s.Name == name && s.CommitSHA == sha {
			found, ok = s, true
		}
	}
	return found, ok
}

// StatusesNamed are the statuses with that name on the commit, oldest first (a re-run makes another).
func StatusesNamed(w World, name, sha string) []Status {
	var out []Status
	for _, s := range w.Statuses() {
		if s.Name == name && s.CommitSHA == sha {
			out = append(out, s)
		}
	}
	return out
}

// Sticky is the PR's sticky comment, all parts joined: the bot's own comments that carry the marker.
func Sticky(w World, number int) string {
	var parts []string
	for _, c := range StickyParts(w, number) {
		parts = append(parts, c.Body)
	}
	return strings.Join(parts, "\n")
}

// StickyParts are the bot's comments that carry the sticky comment's marker.
func StickyParts(w World, number int) []Comment {
	var out []Comment
	for _, c := range w.Comments(number) {
		if _, ok := comments.MarkerPart(c.Body); ok && c.ByBot {
			out = append(out, c)
		}
	}
	return out
}

// LastComment is the PR's newest comment's body, or "".
func LastComment(w World, number int) string {
	cs := w.Comments(number)
	if len(cs) == 0 {
		return ""
	}
	return cs[len(cs)-1].Body
}

// LastReaction is the newest reaction on a comment, or "".
func LastReaction(w World, commentID int64) vcs.Reaction {
	rs := w.Reactions(commentID)
	if len(rs) == 0 {
		return ""
	}
	return rs[len(rs)-1]
}

// CheckState is a check run's status and conclusion in the core's words, as GitHub's adapter maps them:
// queued → queued, in_progress → running, completed with action_required → blocked, otherwise the conclusion.
func CheckState(status, conclusion string) vcs.StatusState {
	switch status {
	case "queued":
		return vcs.StatusQueued
	case "in_progress":
		return vcs.StatusRunning
	}
	if conclusion == "action_required" {
		return vcs.StatusBlocked
	}
	return vcs.StatusState(conclusion)
}
