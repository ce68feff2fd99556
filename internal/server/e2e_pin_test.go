package server_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/comments"
	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/forgetest/githubfake"
)

// forkRepo is where mallory's fork lives; GitHub serves its heads from the base repository too
// (refs/pull/N/head), which is where the bot fetches them.
const forkRepo = "mallory/warehouse"

// forkPR makes a PR from mallory's fork with the given changes on top of main, and returns its head.
func (w *world) forkPR(number int, branch string, files map[string]string) string {
	w.t.Helper()
	head := w.PR(number, branch, "mallory", files)
	w.Repo.SetPR(githubfake.PR{Number: number, Title: "Change " + branch, Author: "mallory", HeadRef: branch,
		HeadSHA: head, BaseRef: "main", BaseSHA: w.Base, HeadRepo: forkRepo})
	return head
}

// forkPush is mallory pushing to the fork's branch: the PR's head moves on the forge at once, while GitHub's
// synchronize event is still on its way.
func (w *world) forkPush(number int, branch string, files map[string]string) string {
	w.t.Helper()
	w.Git.Git("checkout", "--quiet", branch)
	head := w.Git.Commit(branch, files, "push to "+branch)
	w.Repo.SetPR(githubfake.PR{Number: number, Title: "Change " + branch, Author: "mallory", HeadRef: branch,
		HeadSHA: head, BaseRef: "main", BaseSHA: w.Base, HeadRepo: forkRepo})
	return head
}

func (w *world) forkEvent(action string, number int, head string) *githubfake.Payload {
	return w.PREvent(action, number, head, "mallory").Fork("mallory", "https://example.invalid/"+forkRepo+".git")
}

// rerequest is the check_run event of someone clicking "Re-run" on a check run.
func (w *world) rerequest(check githubfake.CheckRun, sender string) *githubfake.Payload {
	return githubfake.LoadPayload(w.t, "check_run.rerequested.json").Installation(installationID).Repo(w.Repo).
		Set("check_run.id", check.ID).Set("check_run.name", check.Name).Set("check_run.head_sha", check.HeadSHA).
		Set("check_run.external_id", check.ExternalID).Set("sender.login", sender)
}

func storedPlans(t *testing.T, w *world, pr int) []db.Plan {
	t.Helper()
	plans, err := w.srv.Store().ListPlansByPR(context.Background(), "github", "acme/warehouse", pr)
	require.NoError(t, err)
	return plans
}

// aNewModel is a second push's change.
var aNewModel = map[string]string{"models/new_model.sql": "MODEL (name dagctl_example.new_model, kind VIEW);\nSELECT 1 AS one\n"}

func TestForkPlanRunsOnlyTheCommitAMaintainerSaw(t *testing.T) {
	w := newWorld(t, worldOptions{})
	first := w.forkPR(1, "fork-change", nonBreaking)
	w.send(w.forkEvent("opened", 1, first))
	assert.Empty(t, w.Repo.CheckRuns())
	assert.Contains(t, w.Sticky(1), "/dagctl plan --sha "+first, "the note gives the exact command, with the full SHA")

	// bob reviews first; meanwhile mallory pushes, and the synchronize event has not been handled yet.
	second := w.forkPush(1, "fork-change", aNewModel)
	w.send(w.CommentEvent(1, first, "bob", "/dagctl plan --sha "+first))
	assert.Empty(t, w.Repo.CheckRuns(), "the commit bob saw is no longer the head: nothing runs")
	assert.Contains(t, lastComment(w, 1), "moved")
	assert.Contains(t, lastComment(w, 1), "/dagctl plan --sha "+second)

	// A command without --sha would plan whatever the head is when the bot gets to it.
	w.send(w.CommentEvent(1, first, "bob", "/dagctl plan"))
	assert.Empty(t, w.Repo.CheckRuns(), "a fork is planned only at a named commit")
	assert.Contains(t, lastComment(w, 1), "/dagctl plan --sha "+second)

	// A prefix is not a commit.
	w.send(w.CommentEvent(1, first, "bob", "/dagctl plan --sha "+second[:7]))
	assert.Empty(t, w.Repo.CheckRuns())
	assert.Contains(t, lastComment(w, 1), "full 40-character commit SHA")

	w.send(w.forkEvent("synchronize", 1, second))
	assert.Empty(t, w.Repo.CheckRuns())
	assert.Contains(t, w.Sticky(1), "/dagctl plan --sha "+second, "the note follows the head")
	assert.NotContains(t, w.Sticky(1), first)

	w.send(w.CommentEvent(1, second, "bob", "/dagctl plan --sha "+second))
	for _, env := range []string{"prod", "dev"} {
		check, ok := w.Repo.CheckRun("dagctl/plan: "+env, second)
		require.True(t, ok, "checks: %v", w.Repo.CheckRuns())
		assert.Equal(t, "success", check.Conclusion, env)
	}
	for _, p := range storedPlans(t, w, 1) {
		assert.Equal(t, second, p.HeadSHA, "only the named commit is planned")
	}
	assert.Empty(t, w.ChecksNamed("dagctl/plan: prod", first))
}

func TestShaPinsAPlanOnAnyPR(t *testing.T) {
	w := newWorld(t, worldOptions{})
	first := w.PR(1, "x", "alice", nonBreaking)
	w.Repo.SetPR(githubfake.PR{Number: 1, Author: "alice", HeadRef: "x", HeadSHA: first, BaseSHA: w.Base, Draft: true})
	w.send(w.PREvent("opened", 1, first, "alice").Set("pull_request.draft", true)) // drafts are not planned
	w.Git.Git("checkout", "--quiet", "x")
	second := w.Git.Commit("x", aNewModel, "second push")
	w.Repo.SetPR(githubfake.PR{Number: 1, Author: "alice", HeadRef: "x", HeadSHA: second, BaseSHA: w.Base, Draft: true})

	w.send(w.CommentEvent(1, first, "bob", "/dagctl plan dev --sha "+first))
	assert.Empty(t, w.Repo.CheckRuns())
	assert.Contains(t, lastComment(w, 1), "/dagctl plan dev --sha "+second, "the refusal keeps the command's environment")

	w.send(w.CommentEvent(1, second, "bob", "/dagctl plan dev --sha "+second))
	dev, ok := w.Repo.CheckRun("dagctl/plan: dev", second)
	require.True(t, ok, "checks: %v", w.Repo.CheckRuns())
	assert.Equal(t, "success", dev.Conclusion)
}

func TestRerequestPlansOnlyTheChecksOwnCommitForAWriter(t *testing.T) {
	w := newWorld(t, worldOptions{})
	first := w.forkPR(1, "fork-change", nonBreaking)
	w.send(w.forkEvent("opened", 1, first))
	w.send(w.CommentEvent(1, first, "bob", "/dagctl plan dev --sha "+first))
	dev, ok := w.Repo.CheckRun("dagctl/plan: dev", first)
	require.True(t, ok, "checks: %v", w.Repo.CheckRuns())
	require.Equal(t, 1, len(storedPlans(t, w, 1)))
	checks := len(w.Repo.CheckRuns())

	// dave can only read: his re-run plans nothing, and the PR says why.
	w.send(w.rerequest(dev, "dave"))
	assert.Equal(t, 1, len(storedPlans(t, w, 1)), "a read-only user's re-run plans nothing")
	assert.Len(t, w.Repo.CheckRuns(), checks)
	assert.Contains(t, lastComment(w, 1), "@dave")
	assert.Contains(t, lastComment(w, 1), "write permission")

	// mallory pushes; before the bot hears of it, bob re-runs the check bob's plan made on first.
	second := w.forkPush(1, "fork-change", aNewModel)
	w.send(w.rerequest(dev, "bob"))
	assert.Equal(t, 1, len(storedPlans(t, w, 1)), "re-running first's check never plans another commit")
	assert.Empty(t, w.ChecksNamed("dagctl/plan: dev", second))
	assert.Len(t, w.Repo.CheckRuns(), checks)
	assert.Contains(t, lastComment(w, 1), "/dagctl plan dev --sha "+second)

	// Once a writer has planned the new head, re-running its check plans that commit again.
	w.send(w.forkEvent("synchronize", 1, second))
	w.send(w.CommentEvent(1, second, "bob", "/dagctl plan dev --sha "+second))
	dev2, ok := w.Repo.CheckRun("dagctl/plan: dev", second)
	require.True(t, ok)
	w.send(w.rerequest(dev2, "carol"))
	plans := storedPlans(t, w, 1)
	require.Equal(t, 3, len(plans))
	assert.Equal(t, second, plans[2].HeadSHA)
	assert.Equal(t, "carol", plans[2].TriggerUser)
	assert.Len(t, w.ChecksNamed("dagctl/plan: dev", second), 2, "a new check run for the new plan")
}

func TestAMarkerCommentByAnotherUserIsNotAdopted(t *testing.T) {
	w := newWorld(t, worldOptions{})
	head := w.PR(1, "x", "alice", nonBreaking)
	// dave (read-only) posts comments that look like the sticky comment before the bot writes its own, to edit
	// them into a fake "approved" later.
	fakeFirst := w.Repo.AddComment(1, "dave", comments.Marker+"\n**dagctl** · ✅ approved, ready to merge")
	fakePart := w.Repo.AddComment(1, "dave", comments.PartMarker(2)+"\nall checks passed")
	w.send(w.PREvent("opened", 1, head, "alice"))

	var ours []githubfake.Comment
	for _, c := range w.Repo.Comments(1) {
		if _, ok := comments.MarkerPart(c.Body); ok && c.Bot {
			ours = append(ours, c)
		}
	}
	require.Len(t, ours, 1, "the bot wrote its own sticky comment")
	assert.Equal(t, "dagctl-bot[bot]", ours[0].User)
	assert.Contains(t, ours[0].Body, "Ready to apply")
	for _, id := range []int64{fakeFirst, fakePart} {
		c, ok := w.Repo.Comment(id)
		require.True(t, ok)
		assert.False(t, c.Deleted, "dave's comment %d is not deleted", id)
		assert.Empty(t, c.History, "dave's comment %d is not edited", id)
	}
}
