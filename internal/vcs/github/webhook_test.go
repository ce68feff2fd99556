package github_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/forgetest/githubfake"
	"github.com/dagctl/dagctl-bot/internal/vcs"
	"github.com/dagctl/dagctl-bot/internal/vcs/github"
)

// helloWorld is the repository most octokit fixtures are about.
func helloWorld(installationID int64) vcs.Repo {
	return vcs.Repo{
		Forge: "github", Owner: "Codertocat", Name: "Hello-World", Account: github.AccountOf(installationID),
		CloneURL: "https://github.com/Codertocat/Hello-World.git", DefaultBranch: "master",
	}
}

// helloWorldPR is PR 2 of the octokit fixtures.
func helloWorldPR(state string) vcs.PullRequest {
	return vcs.PullRequest{
		Repo: helloWorld(1), Number: 2, Title: "Update the README with new information.", Author: "Codertocat",
		HeadSHA: "ec26c3e57ca3a959ca5aad62de7213c562f8c821", BaseSHA: "f95f852bd8fca8fcc58a9a2d6c842781e32a215e",
		HeadRef: "changes", BaseRef: "master", HeadCloneURL: "https://github.com/Codertocat/Hello-World.git",
		State: state, URL: "https://github.com/Codertocat/Hello-World/pull/2",
	}
}

// expectedEvents is what every real payload in shared/payloads/github turns into. A payload file without an
// entry here fails TestEveryRealPayload.
var expectedEvents = map[string]func(t *testing.T, ev vcs.Event, err error){
	"pull_request.opened.json": func(t *testing.T, ev vcs.Event, err error) {
		require.NoError(t, err)
		assert.Equal(t, vcs.Event{Repo: helloWorld(1), PullRequest: &vcs.PullRequestEvent{
			Action: vcs.PROpened, PR: helloWorldPR("open"), Sender: "Codertocat",
		}}, ev)
		assert.Equal(t, "github:Codertocat/Hello-World#2", ev.OrderingKey())
	},
	"pull_request.reopened.json": func(t *testing.T, ev vcs.Event, err error) {
		require.NoError(t, err)
		assert.Equal(t, vcs.PRReopened, ev.PullRequest.Action)
		assert.Equal(t, helloWorldPR("open"), ev.PullRequest.PR)
	},
	"pull_request.synchronize.json": func(t *testing.T, ev vcs.Event, err error) {
		require.NoError(t, err)
		assert.Equal(t, vcs.PRPushed, ev.PullRequest.Action)
		assert.Equal(t, "ec26c3e57ca3a959ca5aad62de7213c562f8c821", ev.PullRequest.PR.HeadSHA)
	},
	"pull_request.closed.json": func(t *testing.T, ev vcs.Event, err error) {
		require.NoError(t, err)
		assert.Equal(t, vcs.PRClosed, ev.PullRequest.Action, "merged is false: closed without merge")
		pr := helloWorldPR("closed")
		pr.MergeCommitSHA = "c4295bd74fb0f4fda03689c3df3f2803b658fd85"
		mergeable := true
		pr.Mergeable = &mergeable
		assert.Equal(t, pr, ev.PullRequest.PR)
	},
	"pull_request_review.submitted.json": func(t *testing.T, ev vcs.Event, err error) {
		require.NoError(t, err)
		require.NotNil(t, ev.Review)
		assert.Equal(t, "submitted", ev.Review.Action)
		assert.Equal(t, vcs.Review{
			ID: 237895671, User: "Codertocat", State: vcs.ReviewCommented,
			CommitSHA:   "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
			SubmittedAt: time.Date(2019, 5, 15, 15, 20, 38, 0, time.UTC),
		}, normaliseReview(ev.Review.Review))
		assert.Equal(t, 2, ev.Review.PR.Number)
		assert.Equal(t, "github:Codertocat/Hello-World#2", ev.OrderingKey())
	},
	"pull_request_review.dismissed.json": func(t *testing.T, ev vcs.Event, err error) {
		require.NoError(t, err)
		assert.Equal(t, "dismissed", ev.Review.Action)
		assert.Equal(t, vcs.ReviewDismissed, ev.Review.Review.State)
	},
	"issue_comment.created.on-pr.json": func(t *testing.T, ev vcs.Event, err error) {
		require.NoError(t, err)
		assert.Equal(t, vcs.Event{
			Repo: vcs.Repo{
				Forge: "github", Owner: "runatlantis", Name: "atlantis-tests",
				CloneURL: "https://github.com/runatlantis/atlantis-tests.git", DefaultBranch: "main",
			},
			Comment: &vcs.CommentEvent{Number: 1, Comment: vcs.Comment{
				ID: 396926483, Author: "runatlantis", Body: "###comment body###",
			}},
		}, ev)
	},
	"issue_comment.created.on-issue.json": func(t *testing.T, ev vcs.Event, err error) {
		assertIgnored(t, err, "issue_comment", "created", "comment on an issue, not a pull request")
	},
	"push.branch.json": func(t *testing.T, ev vcs.Event, err error) {
		require.NoError(t, err)
		assert.Equal(t, vcs.Event{Repo: helloWorld(0), Push: &vcs.PushEvent{
			Ref: "refs/heads/master", Before: "a10867b14bb761a232cd80139fbd4c0d33264240",
			After: "199eddf46df50de8d02e99bf1c5fdb4101338224", Pusher: "Codertocat",
		}}, ev)
	},
	"push.tag-delete.json": func(t *testing.T, ev vcs.Event, err error) {
		require.NoError(t, err)
		assert.Equal(t, vcs.Event{Repo: helloWorld(1), Push: &vcs.PushEvent{
			Ref: "refs/tags/simple-tag", Before: "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
			After: "0000000000000000000000000000000000000000", Deleted: true, Pusher: "Codertocat",
		}}, ev)
	},
	"check_run.rerequested.json": func(t *testing.T, ev vcs.Event, err error) {
		require.NoError(t, err)
		assert.Equal(t, "github", ev.Repo.Forge)
		assert.Equal(t, "github/hello-world", ev.Repo.FullName())
		assert.Equal(t, "1", ev.Repo.Account)
		assert.Equal(t, &vcs.RerequestEvent{
			CheckName: "randscape", HeadSHA: "d6fde92930d4715a2b49857d24b940956b26d2d3", Sender: "octocat",
		}, ev.Rerequest, "no pull requests: GitHub does not link them for forks")
	},
	"check_run.requested_action.json": func(t *testing.T, ev vcs.Event, err error) {
		assertIgnored(t, err, "check_run", "requested_action", "only rerequests concern the bot")
	},
	"check_suite.rerequested.json": func(t *testing.T, ev vcs.Event, err error) {
		require.NoError(t, err)
		assert.Equal(t, helloWorld(957387).FullName(), ev.Repo.FullName())
		assert.Equal(t, &vcs.RerequestEvent{
			HeadSHA: "ec26c3e57ca3a959ca5aad62de7213c562f8c821", PRNumbers: []int{2}, Sender: "octocoders-linter[bot]",
		}, ev.Rerequest)
	},
	"check_suite.requested.json": func(t *testing.T, ev vcs.Event, err error) {
		assertIgnored(t, err, "check_suite", "requested", "only rerequests concern the bot")
	},
	"installation.created.json": func(t *testing.T, ev vcs.Event, err error) {
		require.NoError(t, err)
		assert.Equal(t, vcs.Event{
			Repo: vcs.Repo{Forge: "github", Owner: "Codertocat", Account: "957387"},
			Installation: &vcs.InstallationEvent{
				Action: "created", Account: "957387", Owner: "Codertocat",
				Added: []vcs.Repo{{Forge: "github", Owner: "Codertocat", Name: "Hello-World", Account: "957387"}},
			},
		}, ev)
	},
	"installation.deleted.json": func(t *testing.T, ev vcs.Event, err error) {
		require.NoError(t, err)
		assert.Equal(t, &vcs.InstallationEvent{
			Action: "deleted", Account: "2", Owner: "octocat",
			Removed: []vcs.Repo{{Forge: "github", Owner: "octocat", Name: "Hello-World", Account: "2"}},
		}, ev.Installation)
	},
	"installation.suspend.json": func(t *testing.T, ev vcs.Event, err error) {
		require.NoError(t, err)
		assert.Equal(t, &vcs.InstallationEvent{Action: "suspend", Account: "16598467", Owner: "Codertocat"}, ev.Installation)
	},
	"installation_repositories.added.json": func(t *testing.T, ev vcs.Event, err error) {
		require.NoError(t, err)
		assert.Equal(t, &vcs.InstallationEvent{
			Action: "added", Account: "957387", Owner: "Codertocat",
			Added: []vcs.Repo{{Forge: "github", Owner: "Codertocat", Name: "Space", Account: "957387"}},
		}, ev.Installation)
	},
	"installation_repositories.removed.json": func(t *testing.T, ev vcs.Event, err error) {
		require.NoError(t, err)
		assert.Equal(t, &vcs.InstallationEvent{
			Action: "removed", Account: "2", Owner: "octocat",
			Removed: []vcs.Repo{{Forge: "github", Owner: "octocat", Name: "Hello-World", Account: "2"}},
		}, ev.Installation)
	},
	"ping.json": func(t *testing.T, ev vcs.Event, err error) {
		assertIgnored(t, err, "ping", "", "ping")
	},
}

func normaliseReview(r vcs.Review) vcs.Review {
	r.SubmittedAt = r.SubmittedAt.UTC()
	return r
}

func assertIgnored(t *testing.T, err error, event, action, reason string) {
	t.Helper()
	require.ErrorIs(t, err, vcs.ErrIgnored)
	var ignoredErr *github.IgnoredError
	require.ErrorAs(t, err, &ignoredErr)
	assert.Equal(t, github.IgnoredError{Event: event, Action: action, Reason: reason}, *ignoredErr)
}

func TestEveryRealPayload(t *testing.T) {
	dir, err := githubfake.PayloadDir()
	require.NoError(t, err)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	seen := 0
	for _, entry := range entries {
		name := entry.Name()
		if !strings.HasSuffix(name, ".json") {
			continue
		}
		seen++
		t.Run(name, func(t *testing.T) {
			check, ok := expectedEvents[name]
			require.True(t, ok, "no expectation for payload %s: add one", name)
			body, err := os.ReadFile(filepath.Join(dir, name))
			require.NoError(t, err)
			ev, err := github.ParseWebhook(strings.SplitN(name, ".", 2)[0], body)
			check(t, ev, err)
		})
	}
	assert.Equal(t, len(expectedEvents), seen, "every expectation has its payload")
}

func TestMergedPullRequestPayload(t *testing.T) {
	p := githubfake.LoadPayload(t, "pull_request.closed.json").Merged("c4295bd74fb0f4fda03689c3df3f2803b658fd85")
	ev, err := github.ParseWebhook(p.Event, p.Bytes())
	require.NoError(t, err)
	assert.Equal(t, vcs.PRMerged, ev.PullRequest.Action)
	assert.True(t, ev.PullRequest.PR.Merged)
	assert.Equal(t, "c4295bd74fb0f4fda03689c3df3f2803b658fd85", ev.PullRequest.PR.MergeCommitSHA)
}

func TestForkAndDraftPayloads(t *testing.T) {
	p := githubfake.LoadPayload(t, "pull_request.opened.json").
		Fork("mallory", "https://github.com/mallory/Hello-World.git").Set("pull_request.draft", true)
	ev, err := github.ParseWebhook(p.Event, p.Bytes())
	require.NoError(t, err)
	assert.True(t, ev.PullRequest.PR.Fork)
	assert.True(t, ev.PullRequest.PR.Draft)
	assert.Equal(t, "https://github.com/mallory/Hello-World.git", ev.PullRequest.PR.HeadCloneURL)

	// A deleted fork leaves head.repo null.
	p = githubfake.LoadPayload(t, "pull_request.synchronize.json").Set("pull_request.head.repo", nil)
	ev, err = github.ParseWebhook(p.Event, p.Bytes())
	require.NoError(t, err)
	assert.True(t, ev.PullRequest.PR.Fork)

	p = githubfake.LoadPayload(t, "pull_request.opened.json").Set("action", "ready_for_review")
	ev, err = github.ParseWebhook(p.Event, p.Bytes())
	require.NoError(t, err)
	assert.Equal(t, vcs.PRReady, ev.PullRequest.Action)
	assert.False(t, ev.PullRequest.PR.Fork)
}

func TestCommentPayloadVariants(t *testing.T) {
	base := func() *githubfake.Payload {
		return githubfake.LoadPayload(t, "issue_comment.created.on-pr.json").
			Installation(77).Set("comment.body", "/dagctl apply prod")
	}
	ev, err := github.ParseWebhook("issue_comment", base().Bytes())
	require.NoError(t, err)
	assert.Equal(t, "77", ev.Repo.Account)
	assert.Equal(t, "/dagctl apply prod", ev.Comment.Comment.Body)
	assert.False(t, ev.Comment.Edited)
	assert.Equal(t, "github:runatlantis/atlantis-tests#1", ev.OrderingKey())

	ev, err = github.ParseWebhook("issue_comment", base().Set("action", "edited").Bytes())
	require.NoError(t, err)
	assert.True(t, ev.Comment.Edited)

	_, err = github.ParseWebhook("issue_comment", base().Set("action", "deleted").Bytes())
	assertIgnored(t, err, "issue_comment", "deleted", "action not handled by the bot")

	_, err = github.ParseWebhook("issue_comment", base().Set("comment.user.type", "Bot").Bytes())
	assertIgnored(t, err, "issue_comment", "created", "comment by a bot")
}

func TestOtherPayloadVariants(t *testing.T) {
	_, err := github.ParseWebhook("pull_request",
		githubfake.LoadPayload(t, "pull_request.opened.json").Set("action", "labeled").Bytes())
	assertIgnored(t, err, "pull_request", "labeled", "action not handled by the bot")

	ev, err := github.ParseWebhook("pull_request",
		githubfake.LoadPayload(t, "pull_request.opened.json").Set("action", "edited").Bytes())
	require.NoError(t, err)
	assert.Equal(t, vcs.PREdited, ev.PullRequest.Action)

	ev, err = github.ParseWebhook("installation",
		githubfake.LoadPayload(t, "installation.suspend.json").Set("action", "unsuspend").Bytes())
	require.NoError(t, err)
	assert.Equal(t, "unsuspend", ev.Installation.Action)

	branchDelete := githubfake.LoadPayload(t, "push.tag-delete.json").Set("ref", "refs/heads/feature")
	ev, err = github.ParseWebhook("push", branchDelete.Bytes())
	require.NoError(t, err)
	assert.True(t, ev.Push.Deleted)
	assert.Equal(t, "refs/heads/feature", ev.Push.Ref)

	_, err = github.ParseWebhook("check_run",
		githubfake.LoadPayload(t, "check_run.rerequested.json").Set("action", "created").Bytes())
	assertIgnored(t, err, "check_run", "created", "only rerequests concern the bot")

	_, err = github.ParseWebhook("star", []byte(`{"action":"created"}`))
	assertIgnored(t, err, "star", "", "event not handled by the bot")

	_, err = github.ParseWebhook("made_up_event", []byte(`{}`))
	assertIgnored(t, err, "made_up_event", "", "unknown event")

	_, err = github.ParseWebhook("pull_request", []byte(`{"action": "opened", "pull_request": `))
	require.Error(t, err)
	assert.NotErrorIs(t, err, vcs.ErrIgnored, "a malformed body is an error, not an ignorable event")

	_, err = github.ParseWebhook("", []byte(`{}`))
	require.Error(t, err)
}

func TestVerifySignature(t *testing.T) {
	body := []byte(`{"zen":"Design for failure."}`)
	good := githubfake.Sign("s3cret", body)
	require.NoError(t, github.VerifySignature("s3cret", good, body))

	for name, tc := range map[string]struct{ secret, header string }{
		"wrong secret":   {"other", good},
		"missing header": {"s3cret", ""},
		"sha1 signature": {"s3cret", "sha1=" + strings.TrimPrefix(good, "sha256=")},
		"not hex":        {"s3cret", "sha256=zz"},
		"no secret":      {"", good},
	} {
		err := github.VerifySignature(tc.secret, tc.header, body)
		assert.ErrorIs(t, err, github.ErrInvalidSignature, name)
	}
	assert.ErrorIs(t, github.VerifySignature("s3cret", good, append(body, ' ')), github.ErrInvalidSignature, "tampered body")
}

// TestSendPatchedPayloadToAnIntake drives the fake's webhook sender against a minimal intake built from the
// adapter's verification and parsing, as the bot's intake does.
func TestSendPatchedPayloadToAnIntake(t *testing.T) {
	e := newEnv(t)
	pr := e.openPR()
	const secret = "webhook-secret"
	events := make(chan vcs.Event, 1)
	intake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := github.VerifySignature(secret, r.Header.Get(github.SignatureHeader), body); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		ev, err := github.ParseWebhook(r.Header.Get(github.EventHeader), body)
		if errors.Is(err, vcs.ErrIgnored) {
			w.WriteHeader(http.StatusAccepted)
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ev.DeliveryID = r.Header.Get(github.DeliveryHeader)
		events <- ev
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(intake.Close)

	delivery := githubfake.LoadPayload(t, "pull_request.synchronize.json").
		Installation(testInstallationID).Repo(e.fr).PullRequest(1, pr.HeadSHA, pr.BaseSHA).
		SendT(t, intake.URL, secret)
	require.Equal(t, http.StatusOK, delivery.Status, delivery.Body)
	ev := <-events
	assert.Equal(t, delivery.ID, ev.DeliveryID)
	assert.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`, ev.DeliveryID)
	assert.Equal(t, e.repo, ev.Repo)
	assert.Equal(t, vcs.PRPushed, ev.PullRequest.Action)
	assert.Equal(t, 1, ev.PullRequest.PR.Number)
	assert.Equal(t, pr.HeadSHA, ev.PullRequest.PR.HeadSHA)
	assert.Equal(t, pr.BaseSHA, ev.PullRequest.PR.BaseSHA)
	assert.Equal(t, e.fr.CloneURL(), ev.PullRequest.PR.HeadCloneURL)
	assert.False(t, ev.PullRequest.PR.Fork)

	// The event's repository is what the adapter needs to act on it.
	got, err := e.app.PullRequest(e.ctx, ev.Repo, ev.PullRequest.PR.Number)
	require.NoError(t, err)
	assert.Equal(t, pr.HeadSHA, got.HeadSHA)

	ping := githubfake.LoadPayload(t, "ping.json").SendT(t, intake.URL, secret)
	assert.Equal(t, http.StatusAccepted, ping.Status)
	forged := githubfake.LoadPayload(t, "ping.json").SendT(t, intake.URL, "wrong-secret")
	assert.Equal(t, http.StatusUnauthorized, forged.Status)
}
