package gitlab

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	gl "gitlab.com/gitlab-org/api/client-go"

	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// Webhook headers GitLab sends (shared/forge-limits.md, "GitLab: webhook delivery").
const (
	EventHeader = "X-Gitlab-Event"
	// TokenHeader echoes the webhook's secret token: GitLab signs nothing, so the token is the proof.
	TokenHeader = "X-Gitlab-Token"
	// IdempotencyHeader is the same across retries of one event (GitLab 17.4+); EventUUIDHeader names the event
	// (14.8+; recursive hooks share it). The intake dedupes on the first present.
	IdempotencyHeader = "Idempotency-Key"
	EventUUIDHeader   = "X-Gitlab-Event-UUID"
)

// IgnoredError is a valid delivery that is not for the bot: an event or action it does not handle, a note on an
// issue, a confidential note, the bot's own note. errors.Is(err, vcs.ErrIgnored) holds.
type IgnoredError struct {
	Event  string
	Action string
	Reason string
}

func (e *IgnoredError) Error() string {
	name := e.Event
	if e.Action != "" {
		name += " (" + e.Action + ")"
	}
	return fmt.Sprintf("gitlab: %s ignored: %s", name, e.Reason)
}

// Is makes errors.Is(err, vcs.ErrIgnored) hold.
func (e *IgnoredError) Is(target error) bool { return target == vcs.ErrIgnored }

func ignored(event, action, reason string) error {
	return &IgnoredError{Event: event, Action: action, Reason: reason}
}

// ParseWebhook translates a verified GitLab webhook (the X-Gitlab-Event value and the raw body) into a vcs.Event.
// It knows nothing of the bot's own account: WebhookParser does, and is what the server registers.
func ParseWebhook(event string, body []byte) (vcs.Event, error) { return parse("", event, body) }

// WebhookParser is ParseWebhook for a bot acting as botUser: that user's notes are ignored (the bot's own replies
// and sticky note must never run as commands; GitLab's hook carries no "is a bot" flag, only the username).
func WebhookParser(botUser string) func(event string, body []byte) (vcs.Event, error) {
	return func(event string, body []byte) (vcs.Event, error) { return parse(botUser, event, body) }
}

func parse(botUser, event string, body []byte) (vcs.Event, error) {
	switch gl.EventType(event) {
	case "":
		return vcs.Event{}, fmt.Errorf("gitlab: webhook without %s", EventHeader)
	case gl.EventConfidentialNote:
		// Internal notes are for members only; the bot answers in public notes, which would reveal them.
		return vcs.Event{}, ignored(event, "", "confidential (internal) notes never run commands: the bot's answers are public")
	case gl.EventTypeMergeRequest, gl.EventTypeNote, gl.EventTypePush, gl.EventTypePipeline:
	default:
		return vcs.Event{}, ignored(event, "", "event not handled by the bot")
	}
	if gl.EventType(event) == gl.EventTypeNote {
		// The client's parser refuses kinds of notes it does not know; the bot wants notes on MRs alone.
		var kind struct {
			Attrs struct {
				NoteableType string `json:"noteable_type"`
			} `json:"object_attributes"`
			EventType string `json:"event_type"`
		}
		if err := json.Unmarshal(body, &kind); err != nil {
			return vcs.Event{}, fmt.Errorf("gitlab: parse %s: %w", event, err)
		}
		if kind.EventType == "confidential_note" {
			return vcs.Event{}, ignored(event, "", "confidential (internal) notes never run commands: the bot's answers are public")
		}
		if kind.Attrs.NoteableType != "MergeRequest" {
			return vcs.Event{}, ignored(event, "", "note on "+orUnknown(kind.Attrs.NoteableType)+", not a merge request")
		}
	}
	parsed, err := gl.ParseWebhook(gl.EventType(event), body)
	if err != nil {
		return vcs.Event{}, fmt.Errorf("gitlab: parse %s: %w", event, err)
	}
	switch e := parsed.(type) {
	case *gl.MergeEvent:
		return mergeRequestEvent(botUser, event, e, body)
	case *gl.MergeCommentEvent:
		return noteEvent(botUser, event, e)
	case *gl.PushEvent:
		return pushEvent(e)
	case *gl.PipelineEvent:
		return pipelineEvent(botUser, e)
	}
	return vcs.Event{}, ignored(event, "", "event not handled by the bot")
}

func orUnknown(s string) string {
	if s == "" {
		return "an unknown object"
	}
	return s
}

// repoOf is a project as the core names it: Owner the namespace's full path (group/subgroup), Name the project's
// path, cloned over HTTPS. A GitLab bot acts through one token: Account is "".
func repoOf(pathWithNamespace, httpURL, defaultBranch string) (vcs.Repo, error) {
	i := strings.LastIndex(pathWithNamespace, "/")
	if i <= 0 || i == len(pathWithNamespace)-1 {
		return vcs.Repo{}, fmt.Errorf("gitlab: project.path_with_namespace %q is not namespace/project", pathWithNamespace)
	}
	return vcs.Repo{
		Forge: Name, Owner: pathWithNamespace[:i], Name: pathWithNamespace[i+1:],
		CloneURL: httpURL, DefaultBranch: defaultBranch,
	}, nil
}

func httpURLOf(r *gl.Repository) string {
	if r == nil {
		return ""
	}
	if r.HTTPURL != "" {
		return r.HTTPURL
	}
	return r.GitHTTPURL
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

// fullSHA: the gate plans and applies commits by their full id, never a prefix.
var fullSHA = regexp.MustCompile(`^[0-9a-f]{40}$`)

// draftTitle is how GitLab marks a draft in the title (older payloads have no draft field).
var draftTitle = regexp.MustCompile(`(?i)^\s*(draft:|\[draft\]|\(draft\))`)

// squashCommit is the one field of a merge the client's type lacks: a squashed merge without a merge commit
// (fast-forward) is applied on the squash commit.
type squashCommit struct {
	Attrs struct {
		SquashCommitSHA string `json:"squash_commit_sha"`
	} `json:"object_attributes"`
}

func mergeRequestEvent(botUser, event string, e *gl.MergeEvent, body []byte) (vcs.Event, error) {
	a := e.ObjectAttributes
	repo, err := repoOf(e.Project.PathWithNamespace, firstNonEmpty(e.Project.HTTPURL, e.Project.GitHTTPURL), e.Project.DefaultBranch)
	if err != nil {
		return vcs.Event{}, err
	}
	if a.IID <= 0 {
		return vcs.Event{}, fmt.Errorf("gitlab: %s: object_attributes.iid %d is not a merge request number", event, a.IID)
	}
	if !fullSHA.MatchString(a.LastCommit.ID) {
		return vcs.Event{}, fmt.Errorf("gitlab: %s: object_attributes.last_commit.id %q is not a full commit id", event, a.LastCommit.ID)
	}
	sender := ""
	if e.User != nil {
		sender = e.User.Username
	}
	pr := vcs.PullRequest{
		Repo: repo, Number: int(a.IID), Title: a.Title,
		HeadSHA: a.LastCommit.ID, HeadRef: a.SourceBranch, BaseRef: a.TargetBranch,
		HeadCloneURL: firstNonEmpty(httpURLOf(a.Source), repo.CloneURL),
		// A fork's MR comes from another project: its code is not trusted to run without a writer naming it.
		Fork:  a.SourceProjectID != a.TargetProjectID,
		Draft: a.Draft || a.WorkInProgress || draftTitle.MatchString(a.Title),
		State: "open", URL: a.URL,
	}
	if a.State == "closed" || a.State == "merged" {
		pr.State = "closed"
	}
	if a.Action == "open" {
		// The hook names the MR's author by id only; the user who opened it is its author. For every other
		// action `user` is whoever acted, so the author is left for the forge's API to say.
		pr.Author = sender
	}
	action, err := mergeRequestAction(event, e)
	if err != nil {
		return vcs.Event{}, err
	}
	switch action {
	case "submitted", "dismissed":
		return reviewEvent(botUser, event, e, repo, pr, sender, action)
	case string(vcs.PRMerged):
		var squash squashCommit
		_ = json.Unmarshal(body, &squash) // the body parsed once already
		pr.Merged, pr.State = true, "closed"
		pr.MergeCommitSHA = firstNonEmpty(a.MergeCommitSHA, squash.Attrs.SquashCommitSHA)
	}
	return vcs.Event{Repo: repo, PullRequest: &vcs.PullRequestEvent{
		Action: vcs.PullRequestAction(action), PR: pr, Sender: sender,
	}}, nil
}

// mergeRequestAction is what a Merge Request Hook's action means to the bot: a PR action, or "submitted" /
// "dismissed" for approvals. An update with oldrev brought new commits (GitLab sends oldrev only then); other
// updates matter only when they make a draft ready or change what a person reads.
func mergeRequestAction(event string, e *gl.MergeEvent) (string, error) {
	a, c := e.ObjectAttributes, e.Changes
	switch a.Action {
	case "open":
		return string(vcs.PROpened), nil
	case "reopen":
		return string(vcs.PRReopened), nil
	case "close":
		return string(vcs.PRClosed), nil
	case "merge":
		return string(vcs.PRMerged), nil
	case "approval", "approved":
		return "submitted", nil
	case "unapproval", "unapproved":
		return "dismissed", nil
	case "update":
		switch {
		case a.OldRev != "":
			return string(vcs.PRPushed), nil
		case c.Draft.Previous && !c.Draft.Current:
			return string(vcs.PRReady), nil
		case c.Draft.Previous != c.Draft.Current, c.Title.Previous != c.Title.Current,
			c.Description.Previous != c.Description.Current, c.TargetBranch.Previous != c.TargetBranch.Current:
			return string(vcs.PREdited), nil
		}
		return "", ignored(event, a.Action, "an update without new commits or a change the bot shows")
	}
	return "", ignored(event, a.Action, "action not handled by the bot")
}

// reviewEvent is an approval (or its withdrawal) by the hook's user. GitLab's approvals carry no commit; their
// time is the hook's object_attributes.updated_at, GitLab's clock, the one a status's finished_at is on. One by
// the bot's own user is marked ByBot.
func reviewEvent(botUser, event string, e *gl.MergeEvent, repo vcs.Repo, pr vcs.PullRequest, user, action string) (vcs.Event, error) {
	if user == "" {
		return vcs.Event{}, fmt.Errorf("gitlab: %s (%s): no user.username: whose approval it is is unknown", event, e.ObjectAttributes.Action)
	}
	at, err := parseTime(e.ObjectAttributes.UpdatedAt)
	if err != nil {
		return vcs.Event{}, fmt.Errorf("gitlab: %s (%s): object_attributes.updated_at: %w", event, e.ObjectAttributes.Action, err)
	}
	state := vcs.ReviewApproved
	if action == "dismissed" {
		state = vcs.ReviewDismissed
	}
	return vcs.Event{Repo: repo, Review: &vcs.ReviewEvent{
		Action: action, PR: pr, Review: vcs.Review{User: user, State: state, SubmittedAt: at, ByBot: botUser != "" && strings.EqualFold(user, botUser)},
	}}, nil
}

// timeLayouts are the spellings of times in GitLab's hooks: "2020-12-08 04:15:39 UTC" in most, RFC 3339 in some.
var timeLayouts = []string{"2006-01-02 15:04:05 MST", "2006-01-02 15:04:05 -0700", time.RFC3339Nano}

func parseTime(s string) (time.Time, error) {
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time GitLab writes (like 2020-12-08 04:15:39 UTC)", s)
}

// noteEvent is a note on a merge request: a new one may run commands; an edit is delivered as edited and never
// does. System notes ("added 1 commit") and the bot's own notes are ignored.
func noteEvent(botUser, event string, e *gl.MergeCommentEvent) (vcs.Event, error) {
	a := e.ObjectAttributes
	action := string(a.Action)
	switch action {
	case "", "create": // notes before GitLab 16.11 carry no action; they were all creations
	case "update":
	default:
		return vcs.Event{}, ignored(event, action, "action not handled by the bot")
	}
	author := ""
	if e.User != nil {
		author = e.User.Username
	}
	switch {
	case a.System:
		return vcs.Event{}, ignored(event, action, "a system note")
	case author == "":
		return vcs.Event{}, fmt.Errorf("gitlab: %s: no user.username: the note's author is unknown", event)
	case botUser != "" && strings.EqualFold(author, botUser):
		return vcs.Event{}, ignored(event, action, "the bot's own note")
	case e.MergeRequest.IID <= 0:
		return vcs.Event{}, fmt.Errorf("gitlab: %s: merge_request.iid %d is not a merge request number", event, e.MergeRequest.IID)
	}
	repo, err := repoOf(e.Project.PathWithNamespace, firstNonEmpty(e.Project.HTTPURL, e.Project.GitHTTPURL), e.Project.DefaultBranch)
	if err != nil {
		return vcs.Event{}, err
	}
	// The port's id of the note names its merge request too: a reaction to the command, sent later with the id
	// alone, must find the note (a bare note id names none).
	id, err := CommentID(e.MergeRequest.IID, a.ID)
	if err != nil {
		return vcs.Event{}, fmt.Errorf("gitlab: %s: %w", event, err)
	}
	return vcs.Event{Repo: repo, Comment: &vcs.CommentEvent{
		Number:  int(e.MergeRequest.IID),
		Comment: vcs.Comment{ID: id, Author: author, Body: a.Note},
		Edited:  action == "update",
	}}, nil
}

// zeroSHA is the "after" of a deleted branch.
var zeroSHA = strings.Repeat("0", 40)

// pushEvent is a push to a branch (tags come as Tag Push Hook and are ignored). The core acts on the default
// branch's; before and after bound what was pushed, since commits[] lists at most 20 (total_commits_count says
// how many there were), so the bot never reads it.
func pushEvent(e *gl.PushEvent) (vcs.Event, error) {
	repo, err := repoOf(e.Project.PathWithNamespace, firstNonEmpty(e.Project.HTTPURL, e.Project.GitHTTPURL), e.Project.DefaultBranch)
	if err != nil {
		return vcs.Event{}, err
	}
	if !strings.HasPrefix(e.Ref, "refs/heads/") {
		return vcs.Event{}, ignored(string(gl.EventTypePush), "", "not a branch: "+strconv.Quote(e.Ref))
	}
	deleted := e.After == zeroSHA
	if !deleted && !fullSHA.MatchString(e.After) {
		return vcs.Event{}, fmt.Errorf("gitlab: %s: after %q is not a full commit id", gl.EventTypePush, e.After)
	}
	return vcs.Event{Repo: repo, Push: &vcs.PushEvent{
		Ref: e.Ref, Before: e.Before, After: e.After, Deleted: deleted, Pusher: e.UserUsername,
	}}, nil
}

// pipelineEvent is a pipeline of a commit, which the bot's statuses must join when it is a merge request's head
// pipeline. A tag's pipeline is no merge request's; an external pipeline of the bot's own user is the one its
// statuses created (botUser unknown: every external one), which has them already. The hook's status is only
// logged: a pipeline that already ended is the MR's head pipeline too, and GitLab reopens it for a pending
// status.
func pipelineEvent(botUser string, e *gl.PipelineEvent) (vcs.Event, error) {
	event, a := string(gl.EventTypePipeline), e.ObjectAttributes
	user := ""
	if e.User != nil {
		user = e.User.Username
	}
	switch {
	case a.Tag:
		return vcs.Event{}, ignored(event, a.Status, "a tag's pipeline is no merge request's")
	case a.Source == "external" && (botUser == "" || strings.EqualFold(user, botUser)):
		return vcs.Event{}, ignored(event, a.Status, "the external pipeline the bot's own statuses created")
	case a.ID <= 0:
		return vcs.Event{}, fmt.Errorf("gitlab: %s: object_attributes.id %d is not a pipeline id", event, a.ID)
	case !fullSHA.MatchString(a.SHA):
		return vcs.Event{}, fmt.Errorf("gitlab: %s: object_attributes.sha %q is not a full commit id", event, a.SHA)
	}
	repo, err := repoOf(e.Project.PathWithNamespace, firstNonEmpty(e.Project.HTTPURL, e.Project.GitHTTPURL), e.Project.DefaultBranch)
	if err != nil {
		return vcs.Event{}, err
	}
	return vcs.Event{Repo: repo, Pipeline: &vcs.PipelineEvent{
		SHA: a.SHA, Ref: a.Ref, Pipeline: strconv.FormatInt(a.ID, 10), Number: int(max(e.MergeRequest.IID, 0)), Status: a.Status,
	}}, nil
}

// OrderingKey is the intake's ordering of GitLab deliveries, read from the body alone, as vcs.Event.OrderingKey
// spells it: every event of one MR (its hooks, its notes and its merge request pipelines' hooks) under
// "gitlab:group/project#iid", others under the project's key.
func OrderingKey(body []byte) string {
	var p struct {
		ObjectKind string `json:"object_kind"`
		Project    struct {
			PathWithNamespace string `json:"path_with_namespace"`
		} `json:"project"`
		Attrs struct {
			IID          int64  `json:"iid"`
			NoteableType string `json:"noteable_type"`
		} `json:"object_attributes"`
		MergeRequest *struct {
			IID int64 `json:"iid"`
		} `json:"merge_request"`
	}
	if err := json.Unmarshal(body, &p); err != nil || p.Project.PathWithNamespace == "" {
		return Name + ":unparsable"
	}
	key := Name + ":" + p.Project.PathWithNamespace
	switch {
	case p.ObjectKind == "merge_request" && p.Attrs.IID > 0:
		return key + "#" + strconv.FormatInt(p.Attrs.IID, 10)
	case p.ObjectKind == "note" && p.Attrs.NoteableType == "MergeRequest" && p.MergeRequest != nil && p.MergeRequest.IID > 0,
		p.ObjectKind == "pipeline" && p.MergeRequest != nil && p.MergeRequest.IID > 0:
		// A merge request pipeline's hook is in line with its merge request's; a branch's pipeline names none.
		return key + "#" + strconv.FormatInt(p.MergeRequest.IID, 10)
	}
	return key
}
