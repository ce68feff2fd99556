package github_test

import (
	"testing"

	"github.com/dagctl/dagctl-bot/internal/forgetest/githubfake"
	"github.com/dagctl/dagctl-bot/internal/vcs"
	"github.com/dagctl/dagctl-bot/internal/vcs/github"
	"github.com/dagctl/dagctl-bot/internal/vcs/vcstest"
)

// GitHub's webhook parser meets the intake side of the port's contract, on GitHub's real payloads.
func TestGitHubWebhooksMeetThePortContract(t *testing.T) {
	vcstest.RunEvents(t, eventWorld{t: t})
}

type eventWorld struct{ t *testing.T }

const eventsBase = "0123456789abcdef0123456789abcdef01234567"

func (w eventWorld) Parse(event string, body []byte) (vcs.Event, error) {
	return github.ParseWebhook(event, body)
}

func (w eventWorld) hook(p *githubfake.Payload) vcstest.Hook {
	return vcstest.Hook{Event: p.Event, Body: p.Bytes()}
}

func (w eventWorld) opened(number int, head, author string) *githubfake.Payload {
	return githubfake.LoadPayload(w.t, "pull_request.opened.json").Installation(7).
		RepoNamed("acme", "warehouse", "https://github.com/acme/warehouse.git", "main", 99).
		PullRequest(number, head, eventsBase).Set("pull_request.user.login", author).Set("sender.login", author)
}

func (w eventWorld) PROpened(number int, head, author string) vcstest.Hook {
	return w.hook(w.opened(number, head, author))
}

func (w eventWorld) ForkPROpened(number int, head, author, forkOwner string) vcstest.Hook {
	return w.hook(w.opened(number, head, author).Fork(forkOwner, "https://github.com/"+forkOwner+"/warehouse.git"))
}

func (w eventWorld) comment(number int, author, body string) *githubfake.Payload {
	return githubfake.LoadPayload(w.t, "issue_comment.created.on-pr.json").Installation(7).
		RepoNamed("acme", "warehouse", "https://github.com/acme/warehouse.git", "main", 99).
		PullRequest(number, "", "").Set("comment.user.login", author).Set("comment.user.type", "User").
		Set("comment.body", body).Set("sender.login", author)
}

func (w eventWorld) Comment(number int, author, body string) vcstest.Hook {
	return w.hook(w.comment(number, author, body))
}

func (w eventWorld) CommentEdited(number int, author, body string) vcstest.Hook {
	return w.hook(w.comment(number, author, body).Set("action", "edited"))
}

func (w eventWorld) Rerequested(name, commit, externalID, sender string) (vcstest.Hook, bool) {
	p := githubfake.LoadPayload(w.t, "check_run.rerequested.json").Installation(7).
		RepoNamed("acme", "warehouse", "https://github.com/acme/warehouse.git", "main", 99).
		Set("check_run.name", name).Set("check_run.head_sha", commit).Set("check_run.external_id", externalID).
		Set("sender.login", sender)
	return w.hook(p), true
}
