// Package githubworld is GitHub's forgetest.World: githubfake (a stateful fake of GitHub's API over HTTP,
// backed by a real git repository) with the app installed on acme/warehouse, and the real webhook payloads of
// /work/shared/payloads, filled in from the fake's state. Check runs are shown in the core's words:
// queued → queued, in_progress → running, completed with action_required → blocked, otherwise the conclusion.
package githubworld

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dagctl/dagctl-bot/internal/comments"
	"github.com/dagctl/dagctl-bot/internal/forgetest"
	"github.com/dagctl/dagctl-bot/internal/forgetest/githubfake"
	"github.com/dagctl/dagctl-bot/internal/outbox"
	"github.com/dagctl/dagctl-bot/internal/serverconfig"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// The app and repository every world has.
const (
	AppID          = 42
	InstallationID = 7
	WebhookSecret  = "s3cret-webhook"
	AppSlug        = "dagctl-bot"
	Owner          = "acme"
	RepoName       = "warehouse"
	DefaultBranch  = "main"
	// ClientID and ClientSecret are the app's OAuth client, which people sign in to the bot's pages with.
	ClientID     = "Iv1.world0client"
	ClientSecret = "world-client-secret-0123456789"
)

// World is GitHub's world. Fake, Git and FakeRepo are open for the tests that are GitHub's alone (the manifest
// flow, installations, rate limits).
type World struct {
	T        testing.TB
	Fake     *githubfake.Fake
	Git      *githubfake.GitRepo
	FakeRepo *githubfake.Repo
	PEM      []byte // the app's private key

	mu      sync.Mutex
	reviews map[int64]githubfake.Review // by id: what a review event says
}

var _ forgetest.World = (*World)(nil)

// New makes a fake GitHub with the app installed on acme/warehouse, whose main holds files.
func New(t testing.TB, mainFiles map[string]string) *World {
	t.Helper()
	w := &World{T: t, Fake: githubfake.New(t), reviews: map[int64]githubfake.Review{}}
	w.PEM = w.Fake.NewApp(t, AppID, AppSlug)
	w.Fake.AddInstallation(githubfake.Installation{ID: InstallationID, AppID: AppID, Account: Owner})
	w.Git = githubfake.NewGitRepo(t, DefaultBranch)
	w.Git.Commit(DefaultBranch, mainFiles, "the example project")
	w.FakeRepo = w.Fake.AddRepo(Owner, RepoName, w.Git.Dir, DefaultBranch)
	return w
}

func (w *World) Name() string { return "github" }

func (w *World) Repo() vcs.Repo {
	return vcs.Repo{Forge: w.Name(), Owner: Owner, Name: RepoName, DefaultBranch: DefaultBranch,
		CloneURL: w.FakeRepo.CloneURL()}
}

func (w *World) BotAccount() string { return AppSlug + "[bot]" }

func (w *World) Limits() vcs.Limits {
	return vcs.Limits{CommentChars: comments.GitHubCommentLimit, CheckOutputSize: 65535}
}

func (w *World) Configure(cfg *serverconfig.Config) {
	cfg.GitHub = serverconfig.GitHub{AppID: AppID, PrivateKey: serverconfig.Secret(w.PEM), WebhookSecret: WebhookSecret,
		APIURL: w.Fake.APIURL() + "/", ClientID: ClientID, ClientSecret: ClientSecret}
	w.Fake.OAuth().AddClient(ClientID, ClientSecret, cfg.PublicURL+"/login/github/callback")
}

// SignIn: the fake's authorize page approves for user.
func (w *World) SignIn(user string) { w.Fake.OAuth().SignIn(user) }

// Shown: GitHub shows every state the core writes.
func (w *World) Shown(s vcs.StatusState) vcs.StatusState { return s }

// Can: GitHub has every capability the scenarios use.
func (w *World) Can(forgetest.Capability) bool { return true }

func (w *World) Now() time.Time                                   { return w.Fake.Now() }
func (w *World) Sleep(ctx context.Context, d time.Duration) error { return w.Fake.Sleep(ctx, d) }

// Commit commits on branch; a new branch starts at main, whichever branch was checked out last.
func (w *World) Commit(branch string, files map[string]string, message string) string {
	w.T.Helper()
	if out := w.Git.Git("branch", "--list", branch); out == "" {
		w.Git.Git("checkout", "--quiet", DefaultBranch)
	}
	return w.Git.Commit(branch, files, message)
}

func (w *World) Branch(branch, from string) { w.T.Helper(); w.Git.Git("branch", branch, from) }

func (w *World) Head(branch string) string { return w.Git.SHA(branch) }

func (w *World) Merge(into, branch, message string) string {
	w.T.Helper()
	w.Git.Git("checkout", "--quiet", into)
	w.Git.Git("merge", "--quiet", "--no-ff", "-m", message, branch)
	return w.Git.SHA("HEAD")
}

func (w *World) SetPR(pr forgetest.PR) {
	state := "open"
	if pr.Closed || pr.Merged {
		state = "closed"
	}
	w.FakeRepo.SetPR(githubfake.PR{Number: pr.Number, Title: pr.Title, Author: pr.Author, HeadRef: pr.HeadRef,
		HeadSHA: pr.HeadSHA, BaseRef: pr.BaseRef, BaseSHA: pr.BaseSHA, HeadRepo: pr.Fork, Draft: pr.Draft,
		State: state, Merged: pr.Merged, MergeCommitSHA: pr.MergeCommitSHA})
}

func (w *World) PullRequest(number int) (forgetest.PR, bool) {
	pr, ok := w.FakeRepo.PR(number)
	if !ok {
		return forgetest.PR{}, false
	}
	return forgetest.PR{Number: pr.Number, Title: pr.Title, Author: pr.Author, HeadRef: pr.HeadRef, HeadSHA: pr.HeadSHA,
		BaseRef: pr.BaseRef, BaseSHA: pr.BaseSHA, Fork: pr.HeadRepo, Draft: pr.Draft, Closed: pr.State == "closed",
		Merged: pr.Merged, MergeCommitSHA: pr.MergeCommitSHA}, true
}

func (w *World) pr(number int) forgetest.PR {
	w.T.Helper()
	pr, ok := w.PullRequest(number)
	if !ok {
		w.T.Fatalf("no PR #%d on the fake", number)
	}
	return pr
}

// permissionRoles are GitHub's roles for the core's permissions.
var permissionRoles = map[vcs.Permission]string{vcs.PermissionAdmin: "admin", vcs.PermissionWrite: "write",
	vcs.PermissionRead: "read", vcs.PermissionNone: "none"}

func (w *World) SetPermission(user string, p vcs.Permission) {
	w.FakeRepo.SetPermission(user, permissionRoles[p])
}

func (w *World) AddComment(number int, user, body string) int64 {
	return w.FakeRepo.AddComment(number, user, body)
}

// reviewStates are GitHub's API spellings of review states.
var reviewStates = map[vcs.ReviewState]string{vcs.ReviewApproved: "APPROVED", vcs.ReviewChangesRequested: "CHANGES_REQUESTED",
	vcs.ReviewCommented: "COMMENTED", vcs.ReviewDismissed: "DISMISSED", vcs.ReviewPending: "PENDING"}

func (w *World) AddReview(number int, user string, state vcs.ReviewState, sha string) int64 {
	rv := githubfake.Review{User: user, State: reviewStates[state], CommitID: sha}
	rv.ID = w.FakeRepo.AddReview(number, rv)
	w.mu.Lock()
	w.reviews[rv.ID] = rv
	w.mu.Unlock()
	return rv.ID
}

func (w *World) DismissReview(number int, id int64) { w.FakeRepo.DismissReview(number, id) }

// Webhook signs a payload for the bot as GitHub would, under a fresh delivery id.
func (w *World) Webhook(p *githubfake.Payload) forgetest.Webhook {
	body := p.Bytes()
	id := githubfake.NewDeliveryID()
	return forgetest.Webhook{Event: p.Event, ID: id, Path: "/webhooks/github", Header: p.Header(body, WebhookSecret, id), Body: body}
}

func (w *World) BadlySigned(wh forgetest.Webhook) forgetest.Webhook {
	wh.Header = wh.Header.Clone()
	wh.Header.Set("X-Hub-Signature-256", githubfake.Sign("not-the-secret", wh.Body))
	return wh
}

func (w *World) payload(name string) *githubfake.Payload {
	return githubfake.LoadPayload(w.T, name).Installation(InstallationID).Repo(w.FakeRepo)
}

// PREvent is a pull_request delivery (from the opened payload, as GitHub's share their shape) for the PR as
// the fake holds it: head, base, author, draft, fork, closed or merged.
func (w *World) PREvent(action vcs.PullRequestAction, number int) forgetest.Webhook {
	pr := w.pr(number)
	base := pr.BaseRef
	if base == "" {
		base = DefaultBranch
	}
	ghAction := map[vcs.PullRequestAction]string{vcs.PRPushed: "synchronize", vcs.PRMerged: "closed"}[action]
	if ghAction == "" {
		ghAction = string(action)
	}
	p := w.payload("pull_request.opened.json").PullRequest(number, pr.HeadSHA, pr.BaseSHA).Set("action", ghAction).
		Set("pull_request.base.ref", base).Set("pull_request.user.login", pr.Author).Set("sender.login", pr.Author)
	if pr.Draft {
		p.Set("pull_request.draft", true)
	}
	if pr.Fork != "" {
		owner, _, _ := strings.Cut(pr.Fork, "/")
		p.Fork(owner, "https://example.invalid/"+pr.Fork+".git")
	}
	if pr.Closed {
		p.Set("pull_request.state", "closed")
	}
	if pr.Merged {
		p.Merged(pr.MergeCommitSHA)
	}
	return w.Webhook(p)
}

func (w *World) commentPayload(number int, commentID int64) *githubfake.Payload {
	pr := w.pr(number)
	c, ok := w.FakeRepo.Comment(commentID)
	if !ok {
		w.T.Fatalf("no comment %d on the fake", commentID)
	}
	return w.payload("issue_comment.created.on-pr.json").PullRequest(number, pr.HeadSHA, pr.BaseSHA).
		Set("comment.id", c.ID).Set("comment.body", c.Body).Set("comment.user.login", c.User).
		Set("comment.user.type", "User").Set("sender.login", c.User)
}

func (w *World) CommentEvent(number int, commentID int64) forgetest.Webhook {
	return w.Webhook(w.commentPayload(number, commentID))
}

func (w *World) CommentEditedEvent(number int, commentID int64) forgetest.Webhook {
	return w.Webhook(w.commentPayload(number, commentID).Set("action", "edited"))
}

func (w *World) ReviewEvent(number int, reviewID int64) forgetest.Webhook {
	pr := w.pr(number)
	w.mu.Lock()
	rv := w.reviews[reviewID]
	w.mu.Unlock()
	return w.Webhook(w.payload("pull_request_review.submitted.json").PullRequest(number, rv.CommitID, pr.BaseSHA).
		Set("review.id", reviewID).Set("review.state", strings.ToLower(rv.State)).Set("review.user.login", rv.User).
		Set("review.commit_id", rv.CommitID).Set("sender.login", rv.User))
}

func (w *World) ReviewDismissedEvent(number int, reviewID int64) forgetest.Webhook {
	pr := w.pr(number)
	w.mu.Lock()
	rv := w.reviews[reviewID]
	w.mu.Unlock()
	return w.Webhook(w.payload("pull_request_review.dismissed.json").PullRequest(number, rv.CommitID, pr.BaseSHA).
		Set("review.id", reviewID).Set("review.commit_id", rv.CommitID))
}

func (w *World) PushEvent(branch, before, after, pusher string) forgetest.Webhook {
	return w.Webhook(w.payload("push.branch.json").Set("ref", "refs/heads/"+branch).Set("before", before).
		Set("after", after).Set("deleted", false).Set("pusher.name", pusher))
}

func (w *World) RerequestEvent(s forgetest.Status, sender string) forgetest.Webhook {
	var id int64
	fmt.Sscan(string(s.Ref), &id)
	return w.Webhook(w.payload("check_run.rerequested.json").Set("check_run.id", id).Set("check_run.name", s.Name).
		Set("check_run.head_sha", s.CommitSHA).Set("check_run.external_id", s.ExternalID).Set("sender.login", sender))
}

// Statuses are the fake's check runs in the core's words.
func (w *World) Statuses() []forgetest.Status {
	var out []forgetest.Status
	for _, c := range w.FakeRepo.CheckRuns() {
		s := forgetest.Status{Name: c.Name, CommitSHA: c.HeadSHA, State: forgetest.CheckState(c.Status, c.Conclusion), Title: c.Title,
			Summary: c.Summary, Text: c.Text, DetailsURL: c.DetailsURL, ExternalID: c.ExternalID,
			Ref: vcs.StatusRef(fmt.Sprint(c.ID))}
		for _, h := range c.History {
			s.History = append(s.History, forgetest.CheckState(h.Status, h.Conclusion))
		}
		out = append(out, s)
	}
	return out
}

func (w *World) Comments(number int) []forgetest.Comment {
	var out []forgetest.Comment
	for _, c := range w.FakeRepo.Comments(number) {
		out = append(out, comment(c))
	}
	return out
}

// comment is a comment as the scenarios read it: as a person does, without the hidden marker the bot's
// outbox ends a reply with (the fake holds the body as sent).
func comment(c githubfake.Comment) forgetest.Comment {
	body := c.Body
	if c.Bot {
		body = outbox.WithoutWriteMarker(body)
	}
	return forgetest.Comment{ID: c.ID, Author: c.User, Body: body, ByBot: c.Bot, Deleted: c.Deleted,
		Edits: append([]string(nil), c.History...)}
}

func (w *World) Comment(id int64) (forgetest.Comment, bool) {
	c, ok := w.FakeRepo.Comment(id)
	return comment(c), ok
}

func (w *World) Reactions(commentID int64) []vcs.Reaction {
	var out []vcs.Reaction
	for _, r := range w.FakeRepo.Reactions(commentID) {
		out = append(out, vcs.Reaction(r.Content))
	}
	return out
}
