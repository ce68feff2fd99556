package github

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	gh "github.com/google/go-github/v88/github"

	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// Webhook headers GitHub sends (shared/forge-limits.md).
const (
	EventHeader     = "X-GitHub-Event"
	DeliveryHeader  = "X-GitHub-Delivery"
	SignatureHeader = "X-Hub-Signature-256"
)

// ErrInvalidSignature is returned by VerifySignature for a missing, malformed or wrong signature.
var ErrInvalidSignature = errors.New("github: invalid webhook signature")

// VerifySignature checks X-Hub-Signature-256 ("sha256=<hex HMAC-SHA256 of the raw body>") in constant time,
// with go-github's validation. It refuses an empty secret and the legacy SHA-1 signature.
func VerifySignature(secret, signatureHeader string, body []byte) error {
	if secret == "" {
		return fmt.Errorf("%w: no webhook secret is configured", ErrInvalidSignature)
	}
	if !strings.HasPrefix(signatureHeader, "sha256=") {
		return fmt.Errorf("%w: %s must be sha256=<hex>", ErrInvalidSignature, SignatureHeader)
	}
	if err := gh.ValidateSignature(signatureHeader, body, []byte(secret)); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidSignature, err)
	}
	return nil
}

// IgnoredError is a valid delivery that is not for the bot: a ping, an event or action the bot does not handle,
// a comment on a plain issue. errors.Is(err, vcs.ErrIgnored) holds; acknowledge it and do nothing.
type IgnoredError struct {
	Event  string
	Action string
	Reason string
}

func (e *IgnoredError) Error() string {
	name := e.Event
	if e.Action != "" {
		name += "." + e.Action
	}
	return fmt.Sprintf("github: %s ignored: %s", name, e.Reason)
}

// Is makes errors.Is(err, vcs.ErrIgnored) hold.
func (e *IgnoredError) Is(target error) bool { return target == vcs.ErrIgnored }

func ignored(event, action, reason string) error {
	return &IgnoredError{Event: event, Action: action, Reason: reason}
}

// ParseWebhook translates a verified GitHub webhook (the X-GitHub-Event value and the raw body) into a
// vcs.Event. Deliveries that are not for the bot return an *IgnoredError; a malformed body returns another
// error. The caller sets Event.DeliveryID.
func ParseWebhook(eventType string, body []byte) (vcs.Event, error) {
	if eventType == "" {
		return vcs.Event{}, fmt.Errorf("github: webhook without %s", EventHeader)
	}
	if gh.EventForType(eventType) == nil {
		return vcs.Event{}, ignored(eventType, "", "unknown event")
	}
	parsed, err := gh.ParseWebHook(eventType, body)
	var timeErr *time.ParseError
	if errors.As(err, &timeErr) {
		// Older deliveries carry timestamps go-github cannot read (the app's created_at in check_run payloads
		// as "2018-04-25 20:42:10"); none of them matters to the bot, so read them as UTC and parse again.
		if fixed, ok := normaliseTimestamps(body); ok {
			parsed, err = gh.ParseWebHook(eventType, fixed)
		}
	}
	if err != nil {
		return vcs.Event{}, fmt.Errorf("github: parse %s webhook: %w", eventType, err)
	}
	switch e := parsed.(type) {
	case *gh.PingEvent:
		return vcs.Event{}, ignored(eventType, "", "ping")
	case *gh.PullRequestEvent:
		return pullRequestEvent(e)
	case *gh.PullRequestReviewEvent:
		return reviewEvent(e)
	case *gh.IssueCommentEvent:
		return commentEvent(e)
	case *gh.PushEvent:
		return pushEvent(e)
	case *gh.CheckRunEvent:
		return checkRunEvent(e)
	case *gh.CheckSuiteEvent:
		return checkSuiteEvent(e)
	case *gh.InstallationEvent:
		return installationEvent(e)
	case *gh.InstallationRepositoriesEvent:
		return installationRepositoriesEvent(e)
	}
	return vcs.Event{}, ignored(eventType, "", "event not handled by the bot")
}

// legacyTimestampLayouts are timestamp spellings seen in older GitHub payloads.
var legacyTimestampLayouts = []string{"2006-01-02 15:04:05 -0700", "2006-01-02 15:04:05"}

// normaliseTimestamps rewrites "…_at" values in a legacy layout as RFC 3339; ok is false when there was
// nothing to rewrite.
func normaliseTimestamps(body []byte) ([]byte, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, false
	}
	changed := false
	var walk func(v any)
	walk = func(v any) {
		switch node := v.(type) {
		case map[string]any:
			for key, value := range node {
				if s, ok := value.(string); ok && strings.HasSuffix(key, "_at") {
					for _, layout := range legacyTimestampLayouts {
						if t, err := time.Parse(layout, s); err == nil {
							node[key] = t.UTC().Format(time.RFC3339)
							changed = true
							break
						}
					}
					continue
				}
				walk(value)
			}
		case []any:
			for _, value := range node {
				walk(value)
			}
		}
	}
	walk(doc)
	if !changed {
		return nil, false
	}
	fixed, err := json.Marshal(doc)
	return fixed, err == nil
}

// repoOf translates a webhook's repository and installation.
func repoOf(r *gh.Repository, inst *gh.Installation) vcs.Repo {
	owner, name := r.GetOwner().GetLogin(), r.GetName()
	if owner == "" || name == "" {
		owner, name, _ = strings.Cut(r.GetFullName(), "/")
	}
	return vcs.Repo{
		Forge: Forge, Owner: owner, Name: name, Account: AccountOf(inst.GetID()),
		CloneURL: r.GetCloneURL(), DefaultBranch: r.GetDefaultBranch(),
	}
}

var pullRequestActions = map[string]vcs.PullRequestAction{
	"opened":           vcs.PROpened,
	"reopened":         vcs.PRReopened,
	"synchronize":      vcs.PRPushed,
	"ready_for_review": vcs.PRReady,
	"closed":           vcs.PRClosed,
	"edited":           vcs.PREdited,
}

func pullRequestEvent(e *gh.PullRequestEvent) (vcs.Event, error) {
	action, ok := pullRequestActions[e.GetAction()]
	if !ok {
		return vcs.Event{}, ignored("pull_request", e.GetAction(), "action not handled by the bot")
	}
	if action == vcs.PRClosed && e.GetPullRequest().GetMerged() {
		action = vcs.PRMerged
	}
	repo := repoOf(e.GetRepo(), e.GetInstallation())
	return vcs.Event{
		Repo: repo,
		PullRequest: &vcs.PullRequestEvent{
			Action: action, PR: pullRequest(repo, e.GetPullRequest()), Sender: e.GetSender().GetLogin(),
		},
	}, nil
}

func reviewEvent(e *gh.PullRequestReviewEvent) (vcs.Event, error) {
	switch e.GetAction() {
	case "submitted", "edited", "dismissed":
	default:
		return vcs.Event{}, ignored("pull_request_review", e.GetAction(), "action not handled by the bot")
	}
	repo := repoOf(e.GetRepo(), e.GetInstallation())
	return vcs.Event{
		Repo: repo,
		Review: &vcs.ReviewEvent{
			Action: e.GetAction(), PR: pullRequest(repo, e.GetPullRequest()), Review: review(e.GetReview()),
		},
	}, nil
}

func commentEvent(e *gh.IssueCommentEvent) (vcs.Event, error) {
	action := e.GetAction()
	switch {
	case action != "created" && action != "edited":
		return vcs.Event{}, ignored("issue_comment", action, "action not handled by the bot")
	case e.GetIssue().PullRequestLinks == nil:
		return vcs.Event{}, ignored("issue_comment", action, "comment on an issue, not a pull request")
	case e.GetComment().GetUser().GetType() == "Bot":
		// Bots (the bot itself first of all) do not run commands: its own comments would loop.
		return vcs.Event{}, ignored("issue_comment", action, "comment by a bot")
	}
	c := e.GetComment()
	return vcs.Event{
		Repo: repoOf(e.GetRepo(), e.GetInstallation()),
		Comment: &vcs.CommentEvent{
			Number:  e.GetIssue().GetNumber(),
			Comment: vcs.Comment{ID: c.GetID(), Author: c.GetUser().GetLogin(), Body: c.GetBody()},
			Edited:  action == "edited",
		},
	}, nil
}

func pushEvent(e *gh.PushEvent) (vcs.Event, error) {
	r := e.GetRepo()
	owner, name := r.GetOwner().GetLogin(), r.GetName()
	if owner == "" {
		owner = r.GetOwner().GetName()
	}
	if owner == "" || name == "" {
		owner, name, _ = strings.Cut(r.GetFullName(), "/")
	}
	pusher := e.GetSender().GetLogin()
	if pusher == "" {
		pusher = e.GetPusher().GetName()
	}
	return vcs.Event{
		Repo: vcs.Repo{
			Forge: Forge, Owner: owner, Name: name, Account: AccountOf(e.GetInstallation().GetID()),
			CloneURL: r.GetCloneURL(), DefaultBranch: r.GetDefaultBranch(),
		},
		Push: &vcs.PushEvent{
			Ref: e.GetRef(), Before: e.GetBefore(), After: e.GetAfter(), Deleted: e.GetDeleted(), Pusher: pusher,
		},
	}, nil
}

func prNumbers(prs []*gh.PullRequest) []int {
	var out []int
	for _, pr := range prs {
		out = append(out, pr.GetNumber())
	}
	return out
}

func checkRunEvent(e *gh.CheckRunEvent) (vcs.Event, error) {
	if e.GetAction() != "rerequested" {
		return vcs.Event{}, ignored("check_run", e.GetAction(), "only rerequests concern the bot")
	}
	run := e.GetCheckRun()
	return vcs.Event{
		Repo: repoOf(e.GetRepo(), e.GetInstallation()),
		Rerequest: &vcs.RerequestEvent{
			CheckName: run.GetName(), HeadSHA: run.GetHeadSHA(), ExternalID: run.GetExternalID(),
			PRNumbers: prNumbers(run.PullRequests), Sender: e.GetSender().GetLogin(),
		},
	}, nil
}

// checkSuiteEvent: "Re-run all checks" asks for the whole suite again: CheckName is empty.
func checkSuiteEvent(e *gh.CheckSuiteEvent) (vcs.Event, error) {
	if e.GetAction() != "rerequested" {
		return vcs.Event{}, ignored("check_suite", e.GetAction(), "only rerequests concern the bot")
	}
	suite := e.GetCheckSuite()
	return vcs.Event{
		Repo: repoOf(e.GetRepo(), e.GetInstallation()),
		Rerequest: &vcs.RerequestEvent{
			HeadSHA: suite.GetHeadSHA(), PRNumbers: prNumbers(suite.PullRequests), Sender: e.GetSender().GetLogin(),
		},
	}, nil
}

// reposOf translates an installation payload's repository list ("owner/name" full names; no clone URLs).
func reposOf(repos []*gh.Repository, account string) []vcs.Repo {
	var out []vcs.Repo
	for _, r := range repos {
		owner, name, _ := strings.Cut(r.GetFullName(), "/")
		if name == "" {
			name = r.GetName()
		}
		out = append(out, vcs.Repo{Forge: Forge, Owner: owner, Name: name, Account: account})
	}
	return out
}

func installationEvent(e *gh.InstallationEvent) (vcs.Event, error) {
	inst := e.GetInstallation()
	ev := &vcs.InstallationEvent{Action: e.GetAction(), Account: AccountOf(inst.GetID()), Owner: inst.GetAccount().GetLogin()}
	switch e.GetAction() {
	case "created":
		ev.Added = reposOf(e.Repositories, ev.Account)
	case "deleted":
		ev.Removed = reposOf(e.Repositories, ev.Account)
	case "suspend", "unsuspend":
	default:
		return vcs.Event{}, ignored("installation", e.GetAction(), "action not handled by the bot")
	}
	return vcs.Event{
		Repo:         vcs.Repo{Forge: Forge, Owner: ev.Owner, Account: ev.Account},
		Installation: ev,
	}, nil
}

func installationRepositoriesEvent(e *gh.InstallationRepositoriesEvent) (vcs.Event, error) {
	switch e.GetAction() {
	case "added", "removed":
	default:
		return vcs.Event{}, ignored("installation_repositories", e.GetAction(), "action not handled by the bot")
	}
	inst := e.GetInstallation()
	ev := &vcs.InstallationEvent{
		Action: e.GetAction(), Account: AccountOf(inst.GetID()), Owner: inst.GetAccount().GetLogin(),
	}
	ev.Added, ev.Removed = reposOf(e.RepositoriesAdded, ev.Account), reposOf(e.RepositoriesRemoved, ev.Account)
	return vcs.Event{
		Repo:         vcs.Repo{Forge: Forge, Owner: ev.Owner, Account: ev.Account},
		Installation: ev,
	}, nil
}
