package vcstest

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// Hook is one webhook as the forge sends it: the event name its header carries, and the body.
type Hook struct {
	Event string
	Body  []byte
}

// EventWorld is the intake side of the contract: the forge's own webhook bodies for what people do (built from
// the forge's real payloads), and the adapter's parser. The gate's rules take from a parsed event only what the
// forge itself says there: who acted, on which commit, from which repository.
type EventWorld interface {
	// Parse is the adapter's webhook parser.
	Parse(event string, body []byte) (vcs.Event, error)
	// PROpened is a pull request opened by author from a branch of the repository; ForkPROpened one whose head
	// lives in a fork owned by forkOwner.
	PROpened(number int, head, author string) Hook
	ForkPROpened(number int, head, author, forkOwner string) Hook
	// Comment is author commenting body on the pull request; CommentEdited author editing a comment to body.
	Comment(number int, author, body string) Hook
	CommentEdited(number int, author, body string) Hook
	// Rerequested is sender asking the forge to run a status again; ok is false for a forge whose statuses
	// cannot be re-run by a person (GitLab re-runs pipelines, not external statuses).
	Rerequested(name, commit, externalID, sender string) (h Hook, ok bool)
}

// fullSHA is a commit id as the gate needs it: all 40 hex digits, so a prefix can never be matched by a new commit.
var fullSHA = regexp.MustCompile(`^[0-9a-f]{40}$`)

// RunEvents runs the intake side of the contract.
func RunEvents(t *testing.T, w EventWorld) {
	head := strings.Repeat("5e", 20)
	t.Run("a pull request names its full head commit and is not a fork", func(t *testing.T) {
		ev := parse(t, w, w.PROpened(3, head, "alice"))
		require.NotNil(t, ev.PullRequest)
		pr := ev.PullRequest.PR
		assert.Regexp(t, fullSHA, pr.HeadSHA)
		assert.Equal(t, head, pr.HeadSHA)
		assert.Equal(t, 3, pr.Number)
		assert.Equal(t, "alice", pr.Author)
		assert.False(t, pr.Fork)
	})
	t.Run("a fork's pull request is a fork, with its full head commit", func(t *testing.T) {
		ev := parse(t, w, w.ForkPROpened(4, head, "mallory", "mallory"))
		require.NotNil(t, ev.PullRequest)
		pr := ev.PullRequest.PR
		assert.True(t, pr.Fork, "a fork's code must never run without a writer naming its commit")
		assert.Equal(t, head, pr.HeadSHA)
		assert.NotEqual(t, ev.Repo.CloneURL, pr.HeadCloneURL, "the head is fetched from the fork")
	})
	t.Run("a comment's author is who the forge says wrote it, whatever the body says", func(t *testing.T) {
		ev := parse(t, w, w.Comment(3, "dave", "/dagctl apply prod\n\n(on behalf of @carol)"))
		require.NotNil(t, ev.Comment)
		assert.Equal(t, "dave", ev.Comment.Comment.Author)
		assert.Equal(t, 3, ev.Comment.Number)
		assert.False(t, ev.Comment.Edited)
	})
	t.Run("an edited comment is marked edited, so it never runs a command", func(t *testing.T) {
		ev := parse(t, w, w.CommentEdited(3, "alice", "/dagctl apply prod"))
		require.NotNil(t, ev.Comment)
		assert.True(t, ev.Comment.Edited)
	})
	t.Run("a re-run names the status's own commit and who asked", func(t *testing.T) {
		h, ok := w.Rerequested("dagctl/plan: prod", head, "plan:12", "dave")
		if !ok {
			t.Log("the forge has no re-runs of a status")
			return
		}
		ev := parse(t, w, h)
		require.NotNil(t, ev.Rerequest)
		assert.Equal(t, head, ev.Rerequest.HeadSHA, "a re-run plans the status's commit, not the PR's head")
		assert.Equal(t, "dave", ev.Rerequest.Sender, "the core checks the sender's permission")
		assert.Equal(t, "plan:12", ev.Rerequest.ExternalID)
	})
}

func parse(t *testing.T, w EventWorld, h Hook) vcs.Event {
	t.Helper()
	ev, err := w.Parse(h.Event, h.Body)
	require.NoError(t, err)
	return ev
}
