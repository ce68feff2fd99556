// Package gitlabworld is GitLab's forgetest.World: gitlabfake (a stateful fake of GitLab's API v4 and git smart
// HTTP, backed by a real git repository) holding the project acme/warehouse, a bot user with an api token and a
// separate read_repository clone token, and the real webhook payloads of /work/shared/payloads/gitlab, filled in
// from the fake's state.
//
// GitLab's words are not GitHub's, and the world translates: a pull request is a merge request (its number the
// iid), a comment a note (its id the adapter's, gitlab.CommentID), an approving review an approval (approvals
// belong to the merge request, not a commit), and a status a commit status, shown in the core's words:
// pending → queued, running → running, success → success, failed → failure, canceled → cancelled,
// skipped → skipped. GitLab cannot show blocked (written as pending) or neutral (written as success): Shown
// says what it shows instead. A review requesting changes, a status's rich output and the re-run of a status
// have no GitLab meaning: Can says so, and the scenarios skip those steps.
package gitlabworld

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dagctl/dagctl-bot/internal/forgetest"
	"github.com/dagctl/dagctl-bot/internal/forgetest/githubfake"
	"github.com/dagctl/dagctl-bot/internal/forgetest/gitlabfake"
	"github.com/dagctl/dagctl-bot/internal/outbox"
	"github.com/dagctl/dagctl-bot/internal/serverconfig"
	"github.com/dagctl/dagctl-bot/internal/vcs"
	gladapter "github.com/dagctl/dagctl-bot/internal/vcs/gitlab"
)

// The project and bot every world has.
const (
	Namespace     = "acme"
	ProjectPath   = "warehouse"
	DefaultBranch = "main"
	BotUser       = "dagctl-bot"
	WebhookSecret = "s3cret-gitlab-webhook"
	// OAuthAppID and OAuthSecret are the OAuth application people sign in to the bot's pages with.
	OAuthAppID  = "world-oauth-app"
	OAuthSecret = "gloas-world-oauth-secret-0123456789"
)

// World is GitLab's world. Fake, Git and Project are open for the tests that are GitLab's alone.
type World struct {
	T       testing.TB
	Fake    *gitlabfake.Fake
	Git     *githubfake.GitRepo
	Project *gitlabfake.Project
	// Token is the bot's api token; CloneToken the read_repository token its jobs clone with.
	Token      string
	CloneToken string

	mu       sync.Mutex
	forks    map[string]*gitlabfake.Project // by full path
	oldHeads map[int]string                 // a merge request's head before its last move: the hook's oldrev
	reviews  map[int64]review
	nextRev  int64
}

// review is an approval (or a review GitLab has no word for) as the world recorded it.
type review struct {
	number int
	user   string
	state  vcs.ReviewState
	at     time.Time
}

var _ forgetest.World = (*World)(nil)

// New makes a fake GitLab holding acme/warehouse, whose main holds files, with the bot a Developer of it.
func New(t testing.TB, mainFiles map[string]string) *World {
	t.Helper()
	w := &World{T: t, Fake: gitlabfake.New(t), forks: map[string]*gitlabfake.Project{}, oldHeads: map[int]string{},
		reviews: map[int64]review{}}
	w.Fake.AddUser(gitlabfake.User{Username: BotUser, Name: "dagctl bot", Bot: true})
	w.Token = w.Fake.AddToken(BotUser, gitlabfake.ScopeAPI)
	w.CloneToken = w.Fake.AddToken(BotUser, gitlabfake.ScopeReadRepository)
	w.Git = githubfake.NewGitRepo(t, DefaultBranch)
	w.Git.Commit(DefaultBranch, mainFiles, "the example project")
	w.Project = w.Fake.AddProject(Namespace, ProjectPath, w.Git.Dir, DefaultBranch)
	w.Project.SetMember(BotUser, gitlabfake.Developer)
	// GitLab's approvals carry no commit: the bot binds them to a plan by their time, which the approvals API
	// gives only on versions that show approved_at (without it no approval counts: docs/gitlab.md).
	w.Fake.ShowApprovedAt(true)
	return w
}

func (w *World) Name() string { return gladapter.Name }

func (w *World) Repo() vcs.Repo {
	return vcs.Repo{Forge: w.Name(), Owner: Namespace, Name: ProjectPath, DefaultBranch: DefaultBranch,
		CloneURL: w.Project.CloneURL()}
}

func (w *World) BotAccount() string { return BotUser }

// Limits: notes up to the adapter's limit; GitLab shows no rich output.
func (w *World) Limits() vcs.Limits { return vcs.Limits{CommentChars: gladapter.MaxNoteChars} }

// Configure is DAGCTL_GITLAB_URL, _TOKEN, _CLONE_TOKEN, _WEBHOOK_SECRET and _OAUTH_APP_ID/_SECRET; GitHub is
// left unset.
func (w *World) Configure(cfg *serverconfig.Config) {
	cfg.GitLab = serverconfig.GitLab{URL: w.Fake.URL(), Token: serverconfig.Secret(w.Token),
		CloneToken: serverconfig.Secret(w.CloneToken), WebhookSecret: WebhookSecret,
		OAuthAppID: OAuthAppID, OAuthSecret: OAuthSecret}
	w.Fake.OAuth().AddClient(OAuthAppID, OAuthSecret, cfg.PublicURL+"/login/gitlab/callback")
}

// SignIn: the fake's authorize page approves for user.
func (w *World) SignIn(user string) { w.Fake.OAuth().SignIn(user) }

func (w *World) Now() time.Time                                   { return w.Fake.Now() }
func (w *World) Sleep(ctx context.Context, d time.Duration) error { return w.Fake.Sleep(ctx, d) }

// Shown is what GitLab shows for a core state: blocked is written as pending (queued), neutral as success.
func (w *World) Shown(s vcs.StatusState) vcs.StatusState {
	switch s {
	case vcs.StatusBlocked:
		return vcs.StatusQueued
	case vcs.StatusNeutral:
		return vcs.StatusSuccess
	}
	return s
}

// Can: GitLab has no review requesting changes, no output or external id on a commit status and no re-run of
// one.
func (w *World) Can(c forgetest.Capability) bool {
	switch c {
	case forgetest.RequestChanges, forgetest.RerunStatus, forgetest.StatusOutput, forgetest.StatusExternalID:
		return false
	}
	return true
}

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

// fork is the fork project of a full path, made on first use over the world's git directory (the commits the
// test makes are there), with its owner a member of it, as a fork's owner is.
func (w *World) fork(fullPath string) *gitlabfake.Project {
	w.mu.Lock()
	defer w.mu.Unlock()
	if p, ok := w.forks[fullPath]; ok {
		return p
	}
	ns, path, ok := strings.Cut(fullPath, "/")
	if !ok {
		w.T.Fatalf("fork %q is not namespace/project", fullPath)
	}
	p := w.Project.Fork(ns, path, w.Git.Dir)
	p.SetMember(ns, gitlabfake.Owner)
	w.forks[fullPath] = p
	return p
}

func (w *World) SetPR(pr forgetest.PR) {
	mr := gitlabfake.MR{IID: int64(pr.Number), Title: pr.Title, Author: pr.Author, SourceBranch: pr.HeadRef,
		TargetBranch: pr.BaseRef, HeadSHA: pr.HeadSHA, BaseSHA: pr.BaseSHA, Draft: pr.Draft, State: "opened"}
	if pr.Fork != "" {
		mr.SourceProject = w.fork(pr.Fork)
	}
	switch {
	case pr.Merged:
		mr.State, mr.MergeCommit = "merged", pr.MergeCommitSHA
	case pr.Closed:
		mr.State = "closed"
	}
	if have, ok := w.Project.MR(mr.IID); ok && have.HeadSHA != pr.HeadSHA {
		w.mu.Lock()
		w.oldHeads[pr.Number] = have.HeadSHA
		w.mu.Unlock()
	}
	w.Project.SetMR(mr)
}

func (w *World) PullRequest(number int) (forgetest.PR, bool) {
	mr, ok := w.Project.MR(int64(number))
	if !ok {
		return forgetest.PR{}, false
	}
	pr := forgetest.PR{Number: number, Title: mr.Title, Author: mr.Author, HeadRef: mr.SourceBranch, HeadSHA: mr.HeadSHA,
		BaseRef: mr.TargetBranch, BaseSHA: mr.BaseSHA, Draft: mr.Draft, Closed: mr.State != "opened",
		Merged: mr.State == "merged", MergeCommitSHA: mr.MergeCommit}
	if mr.SourceProject != nil && mr.SourceProject != w.Project {
		pr.Fork = mr.SourceProject.FullPath()
	}
	return pr, true
}

func (w *World) mr(number int) gitlabfake.MR {
	w.T.Helper()
	mr, ok := w.Project.MR(int64(number))
	if !ok {
		w.T.Fatalf("no merge request !%d on the fake", number)
	}
	return mr
}

// accessLevels are GitLab's project access levels for the core's permissions.
var accessLevels = map[vcs.Permission]int{vcs.PermissionAdmin: gitlabfake.Maintainer,
	vcs.PermissionWrite: gitlabfake.Developer, vcs.PermissionRead: gitlabfake.Reporter, vcs.PermissionNone: 0}

func (w *World) SetPermission(user string, p vcs.Permission) {
	level, ok := accessLevels[p]
	if !ok {
		w.T.Fatalf("no GitLab access level for permission %q", p)
	}
	w.Project.SetMember(user, level)
}

// AddComment adds a note; its id is the adapter's comment id, which names the merge request too.
func (w *World) AddComment(number int, user, body string) int64 {
	w.T.Helper()
	return w.commentID(number, w.Project.AddNote(int64(number), user, body))
}

func (w *World) commentID(number int, noteID int64) int64 {
	w.T.Helper()
	id, err := gladapter.CommentID(int64(number), noteID)
	if err != nil {
		w.T.Fatal(err)
	}
	return id
}

// AddReview approves the merge request as user (GitLab's approvals are of the merge request, whatever its
// head; sha is not recorded); a user who approved already revokes that approval first, as GitLab requires. Other states are recorded for the scenario alone: GitLab has no such review.
func (w *World) AddReview(number int, user string, state vcs.ReviewState, _ string) int64 {
	rv := review{number: number, user: user, state: state}
	if state == vcs.ReviewApproved {
		// Approving again is, on GitLab, revoking the approval and approving anew: the approval is of now.
		w.Project.Unapprove(int64(number), user)
		rv.at = w.Project.Approve(int64(number), user)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.nextRev++
	w.reviews[w.nextRev] = rv
	return w.nextRev
}

func (w *World) DismissReview(number int, id int64) {
	w.mu.Lock()
	rv := w.reviews[id]
	w.mu.Unlock()
	if rv.state == vcs.ReviewApproved {
		w.Project.Unapprove(int64(number), rv.user)
	}
}

// hookTime is how GitLab's hooks spell a time.
func hookTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

// webhook is a delivery of a hook as GitLab makes it: its secret token echoed, under a fresh idempotency key.
func (w *World) webhook(p *payload) forgetest.Webhook {
	body := p.bytes()
	id := githubfake.NewDeliveryID()
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(gladapter.EventHeader, p.event)
	h.Set(gladapter.TokenHeader, WebhookSecret)
	h.Set(gladapter.IdempotencyHeader, id)
	h.Set(gladapter.EventUUIDHeader, id)
	h.Set("User-Agent", "GitLab/17.6.0")
	return forgetest.Webhook{Event: p.event, ID: id, Path: "/webhooks/" + w.Name(), Header: h, Body: body}
}

func (w *World) BadlySigned(wh forgetest.Webhook) forgetest.Webhook {
	wh.Header = wh.Header.Clone()
	wh.Header.Set(gladapter.TokenHeader, "not-the-secret")
	return wh
}

// projectJSON is a project as hooks describe it.
func projectJSON(p *gitlabfake.Project) map[string]any {
	return map[string]any{"id": p.ID, "name": p.Path, "namespace": p.Namespace, "path_with_namespace": p.FullPath(),
		"default_branch": p.DefaultBranch, "web_url": p.WebURL(), "homepage": p.WebURL(), "url": p.CloneURL(),
		"http_url": p.CloneURL(), "git_http_url": p.CloneURL(), "git_ssh_url": "git@gitlab.test:" + p.FullPath() + ".git",
		"ssh_url": "git@gitlab.test:" + p.FullPath() + ".git", "visibility_level": 0, "avatar_url": nil, "description": ""}
}

func (w *World) withProject(p *payload) *payload {
	p.set("project", projectJSON(w.Project)).set("project_id", w.Project.ID)
	p.set("repository", map[string]any{"name": ProjectPath, "url": w.Project.CloneURL(), "homepage": w.Project.WebURL(),
		"git_http_url": w.Project.CloneURL(), "visibility_level": 0, "description": ""})
	return p
}

func (w *World) userJSON(username string) map[string]any {
	u, _ := w.Fake.User(username)
	return map[string]any{"id": u.ID, "name": u.Name, "username": u.Username, "email": "[REDACTED]",
		"avatar_url": "https://gitlab.test/avatar/" + u.Username}
}

// mrAttrs fills a merge request hook's object_attributes (and the note hook's merge_request) from the fake.
func (w *World) mrAttrs(p *payload, prefix string, mr gitlabfake.MR) {
	source := w.Project
	if mr.SourceProject != nil {
		source = mr.SourceProject
	}
	author, _ := w.Fake.User(mr.Author)
	state := mr.State
	for key, value := range map[string]any{
		"iid": mr.IID, "id": mr.IID + 1000, "title": mr.Title, "state": state, "draft": mr.Draft,
		"work_in_progress": mr.Draft, "source_branch": mr.SourceBranch, "target_branch": mr.TargetBranch,
		"source_project_id": source.ID, "target_project_id": w.Project.ID, "author_id": author.ID,
		"source": projectJSON(source), "target": projectJSON(w.Project),
		"last_commit": map[string]any{"id": mr.HeadSHA, "message": mr.Title, "title": mr.Title,
			"url": w.Project.WebURL() + "/-/commit/" + mr.HeadSHA},
		"url":        fmt.Sprintf("%s/-/merge_requests/%d", w.Project.WebURL(), mr.IID),
		"updated_at": hookTime(w.Fake.Now()), "merge_commit_sha": nilIfEmpty(mr.MergeCommit),
	} {
		p.set(prefix+key, value)
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// mrHookFiles are the recorded hooks each action starts from.
var mrHookFiles = map[string]string{"open": "merge_request.open.json", "reopen": "merge_request.open.json",
	"close": "merge_request.close.json", "merge": "merge_request.merge.json",
	"update": "merge_request.update.new-commit.json", "approved": "merge_request.approved.json",
	"unapproved": "merge_request.unapproved.json"}

func (w *World) mrHook(action string, mr gitlabfake.MR, user string) *payload {
	p := w.withProject(loadPayload(w.T, mrHookFiles[action], "Merge Request Hook"))
	p.set("object_kind", "merge_request").set("event_type", "merge_request").set("changes", map[string]any{})
	w.mrAttrs(p, "object_attributes.", mr)
	p.set("object_attributes.action", action).set("user", w.userJSON(user))
	delete(p.doc["object_attributes"].(map[string]any), "oldrev")
	return p
}

// PREvent is a Merge Request Hook: open, reopen, close, merge, or an update (with oldrev for a push, the draft
// flag's change for ready, the title's for an edit). The acting user is the author.
func (w *World) PREvent(action vcs.PullRequestAction, number int) forgetest.Webhook {
	w.T.Helper()
	mr := w.mr(number)
	var p *payload
	switch action {
	case vcs.PROpened:
		p = w.mrHook("open", mr, mr.Author)
	case vcs.PRReopened:
		p = w.mrHook("reopen", mr, mr.Author)
	case vcs.PRClosed:
		p = w.mrHook("close", mr, mr.Author)
	case vcs.PRMerged:
		p = w.mrHook("merge", mr, mr.Author)
	case vcs.PRPushed:
		p = w.mrHook("update", mr, mr.Author)
		w.mu.Lock()
		old := w.oldHeads[number]
		w.mu.Unlock()
		if old == "" {
			w.T.Fatalf("merge request !%d was never moved: a push hook needs its old head", number)
		}
		p.set("object_attributes.oldrev", old)
	case vcs.PRReady:
		p = w.mrHook("update", mr, mr.Author).set("changes.draft", map[string]any{"previous": true, "current": false})
	case vcs.PREdited:
		p = w.mrHook("update", mr, mr.Author).set("changes.title", map[string]any{"previous": mr.Title + " (before)", "current": mr.Title})
	default:
		w.T.Fatalf("no Merge Request Hook for action %q", action)
	}
	return w.webhook(p)
}

func (w *World) noteHook(number int, commentID int64, action string) forgetest.Webhook {
	w.T.Helper()
	mr := w.mr(number)
	n, ok := w.note(commentID)
	if !ok {
		w.T.Fatalf("no note %d on the fake", commentID)
	}
	p := w.withProject(loadPayload(w.T, "note.merge_request.json", "Note Hook"))
	p.set("object_kind", "note").set("event_type", "note").set("user", w.userJSON(n.Author))
	_, noteID, _ := gladapter.SplitCommentID(commentID)
	for key, value := range map[string]any{"id": noteID, "note": n.Body, "noteable_type": "MergeRequest",
		"action": action, "system": n.System, "author_id": w.userJSON(n.Author)["id"], "project_id": w.Project.ID,
		"created_at": hookTime(n.CreatedAt), "updated_at": hookTime(n.UpdatedAt), "commit_id": nil,
		"url": fmt.Sprintf("%s/-/merge_requests/%d#note_%d", w.Project.WebURL(), number, noteID)} {
		p.set("object_attributes."+key, value)
	}
	w.mrAttrs(p, "merge_request.", mr)
	return w.webhook(p)
}

// CommentEvent is a Note Hook of a note's creation.
func (w *World) CommentEvent(number int, commentID int64) forgetest.Webhook {
	return w.noteHook(number, commentID, "create")
}

// CommentEditedEvent is a Note Hook of a note's update.
func (w *World) CommentEditedEvent(number int, commentID int64) forgetest.Webhook {
	return w.noteHook(number, commentID, "update")
}

// ReviewEvent is the Merge Request Hook of an approval: action approved, its time the hook's updated_at.
func (w *World) ReviewEvent(number int, reviewID int64) forgetest.Webhook {
	w.T.Helper()
	w.mu.Lock()
	rv, ok := w.reviews[reviewID]
	w.mu.Unlock()
	if !ok || rv.state != vcs.ReviewApproved {
		w.T.Fatalf("review %d is not an approval: GitLab has no %q review (check Can)", reviewID, rv.state)
	}
	p := w.mrHook("approved", w.mr(number), rv.user).set("object_attributes.updated_at", hookTime(rv.at))
	return w.webhook(p)
}

// ReviewDismissedEvent is the Merge Request Hook of an approval's withdrawal (unapproved).
func (w *World) ReviewDismissedEvent(number int, reviewID int64) forgetest.Webhook {
	w.T.Helper()
	w.mu.Lock()
	rv := w.reviews[reviewID]
	w.mu.Unlock()
	return w.webhook(w.mrHook("unapproved", w.mr(number), rv.user))
}

// PushEvent is a Push Hook of a branch.
func (w *World) PushEvent(branch, before, after, pusher string) forgetest.Webhook {
	u := w.userJSON(pusher)
	p := w.withProject(loadPayload(w.T, "push.json", "Push Hook")).set("object_kind", "push").set("event_name", "push").
		set("ref", "refs/heads/"+branch).set("before", before).set("after", after).set("checkout_sha", after).
		set("user_id", u["id"]).set("user_name", u["name"]).set("user_username", pusher).
		set("commits", []any{}).set("total_commits_count", 0)
	return w.webhook(p)
}

// RerequestEvent: GitLab cannot re-run an external commit status (Can(RerunStatus) is false).
func (w *World) RerequestEvent(s forgetest.Status, sender string) forgetest.Webhook {
	w.T.Helper()
	w.T.Fatalf("GitLab has no re-run of an external commit status (%s by %s): check Can(RerunStatus)", s.Name, sender)
	return forgetest.Webhook{}
}

// coreStates are commit statuses in the core's words.
var coreStates = map[string]vcs.StatusState{"pending": vcs.StatusQueued, "running": vcs.StatusRunning,
	"success": vcs.StatusSuccess, "failed": vcs.StatusFailure, "canceled": vcs.StatusCancelled, "skipped": vcs.StatusSkipped}

// Statuses are the fake's commit statuses in the core's words, one per (commit, name) as GitLab shows it: a
// status that reached a final state and was written again is a new one on GitLab (the old one retried), so the
// chain is one status here, its History every state of the chain, its Ref the newest's.
func (w *World) Statuses() []forgetest.Status {
	var out []forgetest.Status
	index := map[[2]string]int{}
	for _, s := range w.Project.AllStatuses() {
		key := [2]string{s.SHA, s.Name}
		i, ok := index[key]
		if !ok {
			i = len(out)
			index[key] = i
			out = append(out, forgetest.Status{Name: s.Name, CommitSHA: s.SHA})
		}
		st := &out[i]
		st.State, st.Title, st.DetailsURL = coreStates[s.Status], s.Description, s.TargetURL
		st.Ref = vcs.StatusRef(fmt.Sprintf("%d@%s", s.ID, s.SHA))
		for _, h := range s.History {
			st.History = append(st.History, coreStates[h])
		}
	}
	return out
}

func (w *World) Comments(number int) []forgetest.Comment {
	var out []forgetest.Comment
	for _, n := range w.Project.Notes(int64(number)) {
		if n.Deleted || n.System {
			continue
		}
		out = append(out, w.comment(number, n))
	}
	return out
}

// comment is a note as the scenarios read it: as a person does, without the hidden marker the bot's outbox
// ends a reply with (the fake holds the body as sent).
func (w *World) comment(number int, n gitlabfake.Note) forgetest.Comment {
	byBot := strings.EqualFold(n.Author, BotUser)
	body := n.Body
	if byBot {
		body = outbox.WithoutWriteMarker(body)
	}
	return forgetest.Comment{ID: w.commentID(number, n.ID), Author: n.Author, Body: body, ByBot: byBot,
		Deleted: n.Deleted, Edits: append([]string(nil), n.Edits...)}
}

func (w *World) note(id int64) (gitlabfake.Note, bool) {
	iid, noteID, err := gladapter.SplitCommentID(id)
	if err != nil {
		return gitlabfake.Note{}, false
	}
	if _, ok := w.Project.MR(iid); !ok {
		return gitlabfake.Note{}, false
	}
	for _, n := range w.Project.Notes(iid) {
		if n.ID == noteID {
			return n, true
		}
	}
	return gitlabfake.Note{}, false
}

func (w *World) Comment(id int64) (forgetest.Comment, bool) {
	n, ok := w.note(id)
	if !ok {
		return forgetest.Comment{}, false
	}
	iid, _, _ := gladapter.SplitCommentID(id)
	return w.comment(int(iid), n), true
}

// reactions are the core's reactions for GitLab's award emoji names.
var reactions = map[string]vcs.Reaction{"eyes": vcs.ReactionEyes, "rocket": vcs.ReactionRocket, "confused": vcs.ReactionConfused}

func (w *World) Reactions(commentID int64) []vcs.Reaction {
	n, ok := w.note(commentID)
	if !ok {
		return nil
	}
	var out []vcs.Reaction
	for _, a := range n.Awards {
		r, ok := reactions[a.Name]
		if !ok {
			r = vcs.Reaction(a.Name)
		}
		out = append(out, r)
	}
	return out
}
