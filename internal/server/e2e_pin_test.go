package server_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/comments"
	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/forgetest"
	"github.com/dagctl/dagctl-bot/internal/forgetest/e2e"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// forkRepo is where mallory's fork lives; GitHub serves its heads from the base repository too
// (refs/pull/N/head), which is where the bot fetches them.
const forkRepo = "mallory/warehouse"

// forkPR makes a PR from mallory's fork with the given changes on top of main, and returns its head.
func (w *world) forkPR(number int, branch string, files map[string]string) string {
	w.t.Helper()
	head := w.PR(number, branch, "mallory", files)
	w.UpdatePR(number, func(pr *forgetest.PR) { pr.Fork = forkRepo })
	return head
}

// forkPush is mallory pushing to the fork's branch: the PR's head moves on the forge at once, while the
// forge's webhook about it is still on its way.
func (w *world) forkPush(number int, branch string, files map[string]string) string {
	w.t.Helper()
	return w.Push(number, files, "push to "+branch)
}

func storedPlans(t *testing.T, w *world, pr int) []db.Plan {
	t.Helper()
	plans, err := w.srv.Store().ListPlansByPR(context.Background(), w.forge(), w.repoName(), pr)
	require.NoError(t, err)
	return plans
}

// aNewModel is a second push's change.
var aNewModel = map[string]string{"models/new_model.sql": "MODEL (name dagctl_example.new_model, kind VIEW);\nSELECT 1 AS one\n"}

func TestForkPlanRunsOnlyTheCommitAMaintainerSaw(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{})
		first := w.forkPR(1, "fork-change", nonBreaking)
		w.send(w.PREvent(vcs.PROpened, 1))
		assert.Empty(t, w.Statuses())
		assert.Contains(t, w.Sticky(1), "/dagctl plan --sha "+first, "the note gives the exact command, with the full SHA")

		// bob reviews first; meanwhile mallory pushes, and the synchronize event has not been handled yet.
		second := w.forkPush(1, "fork-change", aNewModel)
		w.comment(1, "bob", "/dagctl plan --sha "+first)
		assert.Empty(t, w.Statuses(), "the commit bob saw is no longer the head: nothing runs")
		assert.Contains(t, w.LastComment(1), "moved")
		assert.Contains(t, w.LastComment(1), "/dagctl plan --sha "+second)

		// A command without --sha would plan whatever the head is when the bot gets to it.
		w.comment(1, "bob", "/dagctl plan")
		assert.Empty(t, w.Statuses(), "a fork is planned only at a named commit")
		assert.Contains(t, w.LastComment(1), "/dagctl plan --sha "+second)

		// A prefix is not a commit.
		w.comment(1, "bob", "/dagctl plan --sha "+second[:7])
		assert.Empty(t, w.Statuses())
		assert.Contains(t, w.LastComment(1), "full 40-character commit SHA")

		w.send(w.PREvent(vcs.PRPushed, 1))
		assert.Empty(t, w.Statuses())
		assert.Contains(t, w.Sticky(1), "/dagctl plan --sha "+second, "the note follows the head")
		assert.NotContains(t, w.Sticky(1), first)

		w.comment(1, "bob", "/dagctl plan --sha "+second)
		for _, env := range []string{"prod", "dev"} {
			check, ok := w.Status("dagctl/plan: "+env, second)
			require.True(t, ok, "checks: %v", w.Statuses())
			assert.Equal(t, vcs.StatusSuccess, check.State, env)
		}
		for _, p := range storedPlans(t, w, 1) {
			assert.Equal(t, second, p.HeadSHA, "only the named commit is planned")
		}
		assert.Empty(t, w.StatusesNamed("dagctl/plan: prod", first))
	})
}

func TestShaPinsAPlanOnAnyPR(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{})
		first := w.PR(1, "x", "alice", nonBreaking)
		w.UpdatePR(1, func(pr *forgetest.PR) { pr.Draft = true })
		w.send(w.PREvent(vcs.PROpened, 1)) // drafts are not planned
		second := w.Push(1, aNewModel, "second push")

		w.comment(1, "bob", "/dagctl plan dev --sha "+first)
		assert.Empty(t, w.Statuses())
		assert.Contains(t, w.LastComment(1), "/dagctl plan dev --sha "+second, "the refusal keeps the command's environment")

		w.comment(1, "bob", "/dagctl plan dev --sha "+second)
		dev, ok := w.Status("dagctl/plan: dev", second)
		require.True(t, ok, "checks: %v", w.Statuses())
		assert.Equal(t, vcs.StatusSuccess, dev.State)
	})
}

func TestRerequestPlansOnlyTheChecksOwnCommitForAWriter(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{})
		w.skipUnless(forgetest.RerunStatus) // GitLab cannot re-run an external commit status: `/dagctl plan --sha` is its way
		first := w.forkPR(1, "fork-change", nonBreaking)
		w.send(w.PREvent(vcs.PROpened, 1))
		w.comment(1, "bob", "/dagctl plan dev --sha "+first)
		dev, ok := w.Status("dagctl/plan: dev", first)
		require.True(t, ok, "checks: %v", w.Statuses())
		require.Equal(t, 1, len(storedPlans(t, w, 1)))
		checks := len(w.Statuses())

		// dave can only read: his re-run plans nothing, and the PR says why.
		w.send(w.RerequestEvent(dev, "dave"))
		assert.Equal(t, 1, len(storedPlans(t, w, 1)), "a read-only user's re-run plans nothing")
		assert.Len(t, w.Statuses(), checks)
		assert.Contains(t, w.LastComment(1), "@dave")
		assert.Contains(t, w.LastComment(1), "write permission")

		// mallory pushes; before the bot hears of it, bob re-runs the check bob's plan made on first.
		second := w.forkPush(1, "fork-change", aNewModel)
		w.send(w.RerequestEvent(dev, "bob"))
		assert.Equal(t, 1, len(storedPlans(t, w, 1)), "re-running first's check never plans another commit")
		assert.Empty(t, w.StatusesNamed("dagctl/plan: dev", second))
		assert.Len(t, w.Statuses(), checks)
		assert.Contains(t, w.LastComment(1), "/dagctl plan dev --sha "+second)

		// Once a writer has planned the new head, re-running its check plans that commit again.
		w.send(w.PREvent(vcs.PRPushed, 1))
		w.comment(1, "bob", "/dagctl plan dev --sha "+second)
		dev2, ok := w.Status("dagctl/plan: dev", second)
		require.True(t, ok)
		w.send(w.RerequestEvent(dev2, "carol"))
		plans := storedPlans(t, w, 1)
		require.Equal(t, 3, len(plans))
		assert.Equal(t, second, plans[2].HeadSHA)
		assert.Equal(t, "carol", plans[2].TriggerUser)
		assert.Len(t, w.StatusesNamed("dagctl/plan: dev", second), 2, "a new check run for the new plan")
	})
}

func TestAMarkerCommentByAnotherUserIsNotAdopted(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{})
		w.PR(1, "x", "alice", nonBreaking)
		// dave (read-only) posts comments that look like the sticky comment before the bot writes its own, to edit
		// them into a fake "approved" later.
		fakeFirst := w.AddComment(1, "dave", comments.Marker+"\n**dagctl** · ✅ approved, ready to merge")
		fakePart := w.AddComment(1, "dave", comments.PartMarker(2)+"\nall checks passed")
		w.send(w.PREvent(vcs.PROpened, 1))

		ours := forgetest.StickyParts(w, 1)
		require.Len(t, ours, 1, "the bot wrote its own sticky comment")
		assert.Equal(t, w.BotAccount(), ours[0].Author)
		assert.Contains(t, ours[0].Body, "Ready to apply")
		for _, id := range []int64{fakeFirst, fakePart} {
			c, ok := w.Comment(id)
			require.True(t, ok)
			assert.False(t, c.Deleted, "dave's comment %d is not deleted", id)
			assert.Empty(t, c.Edits, "dave's comment %d is not edited", id)
		}
	})
}
