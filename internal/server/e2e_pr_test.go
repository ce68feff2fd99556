package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/comments"
	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/forgetest"
	"github.com/dagctl/dagctl-bot/internal/forgetest/e2e"
	"github.com/dagctl/dagctl-bot/internal/forgetest/githubfake"
	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

func TestBadSignatureStoresNothingAndPlansNothing(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{})
		w.PR(1, "x", "alice", nonBreaking)
		d := w.deliver(w.BadlySigned(w.PREvent(vcs.PROpened, 1)))
		assert.Equal(t, 401, d.Status)
		_, err := w.srv.Store().GetDelivery(context.Background(), w.forge(), d.ID)
		assert.ErrorIs(t, err, db.ErrNotFound)
		w.settle()
		assert.Empty(t, w.Statuses())
		assert.Empty(t, w.Comments(1))
	})
}

func TestDuplicateAndReplayedDeliveriesPlanOnce(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{})
		head := w.PR(1, "x", "alice", nonBreaking)
		ev := w.PREvent(vcs.PROpened, 1)
		first := w.deliver(ev)
		again := w.deliver(ev) // the same delivery, as the forge redelivers it
		assert.Equal(t, 202, first.Status)
		assert.Equal(t, 200, again.Status)
		w.settle()
		// A redelivery by hand gets a new id: the plan of this head exists, so nothing runs again.
		w.send(w.PREvent(vcs.PRReopened, 1))

		assert.Len(t, w.StatusesNamed("dagctl/plan: prod", head), 1)
		assert.Len(t, w.StatusesNamed("dagctl/plan: dev", head), 1)
		plans, err := w.srv.Store().ListPlansByPR(context.Background(), w.forge(), w.repoName(), 1)
		require.NoError(t, err)
		assert.Len(t, plans, 2)
	})
}

func TestDeliveriesQueuedBeforeARestartAreHandledAfterIt(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{})
		head := w.PR(1, "x", "alice", nonBreaking)
		d := w.deliver(w.PREvent(vcs.PROpened, 1))
		require.Equal(t, 202, d.Status)
		w.stop() // acknowledged, stored, not handled yet
		assert.Empty(t, w.Statuses())

		w.start()
		w.settle()
		check, ok := w.Status("dagctl/plan: prod", head)
		require.True(t, ok)
		assert.Equal(t, vcs.StatusSuccess, check.State)
		got, err := w.srv.Store().GetDelivery(context.Background(), w.forge(), d.ID)
		require.NoError(t, err)
		assert.Equal(t, db.DeliveryDone, got.Status)
	})
}

func TestBotCrashMidJobFinishesTheCheckAfterRestart(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{})
		head := w.PR(1, "x", "alice", nonBreaking)
		w.deliver(w.PREvent(vcs.PROpened, 1))
		w.srv.Drain(context.Background())
		// Wait until a plan job is running, then crash: no clean shutdown, nothing reported.
		require.Eventually(t, func() bool {
			c, ok := w.Status("dagctl/plan: prod", head)
			return ok && c.State == vcs.StatusRunning
		}, time.Minute, 20*time.Millisecond)
		w.crash()
		c, _ := w.Status("dagctl/plan: prod", head)
		require.False(t, c.State.Final(), "the crash left the check open")

		w.start()
		w.settle()
		for _, env := range []string{"prod", "dev"} {
			c, ok := w.Status("dagctl/plan: "+env, head)
			require.True(t, ok)
			assert.True(t, c.State.Final(), env)
			assert.Equal(t, vcs.StatusSuccess, c.State, env)
		}
		assert.Len(t, w.StatusesNamed("dagctl/plan: prod", head), 1, "the same check run is finished, not a new one")
		assert.Contains(t, w.Sticky(1), "Ready to apply")
	})
}

func TestForkPRWaitsForAWriterToPlanIt(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{})
		head := w.PR(1, "fork-change", "mallory", nonBreaking)
		w.UpdatePR(1, func(pr *forgetest.PR) { pr.Fork = "mallory/warehouse" })
		w.send(w.PREvent(vcs.PROpened, 1))
		assert.Empty(t, w.Statuses(), "a fork's code never runs automatically")
		assert.Contains(t, w.Sticky(1), "fork")

		w.comment(1, "dave", "/dagctl plan")
		assert.Empty(t, w.Statuses(), "a read-only user cannot run it")
		assert.Contains(t, w.LastComment(1), "only users with write permission")

		cmd := w.comment(1, "bob", "/dagctl plan --sha "+head)
		check, ok := w.Status("dagctl/plan: prod", head)
		require.True(t, ok, "a writer's command plans the fork's exact commit")
		assert.Equal(t, vcs.StatusSuccess, check.State, check.Output())
		assert.Equal(t, vcs.ReactionEyes, forgetest.LastReaction(w, cmd))
	})
}

func TestPushWhilePlanningSupersedesTheOldCommit(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{})
		first := w.PR(1, "x", "alice", nonBreaking)
		w.deliver(w.PREvent(vcs.PROpened, 1))
		w.srv.Drain(context.Background()) // jobs start in the background
		second := w.Push(1, map[string]string{"models/new_model.sql": "MODEL (name dagctl_example.new_model, kind VIEW);\nSELECT 1 AS one\n"}, "second push")
		w.send(w.PREvent(vcs.PRPushed, 1))

		for _, env := range []string{"prod", "dev"} {
			old, ok := w.Status("dagctl/plan: "+env, first)
			require.True(t, ok)
			assert.True(t, old.State.Final(), env)
			assert.Equal(t, vcs.StatusCancelled, old.State, "%s: the old commit's check ends as cancelled", env)
			cur, ok := w.Status("dagctl/plan: "+env, second)
			require.True(t, ok)
			assert.Equal(t, vcs.StatusSuccess, cur.State, env)
		}
		sticky := w.Sticky(1)
		assert.Contains(t, sticky, second[:7])
		assert.Contains(t, sticky, "dagctl_example.new_model")
	})
}

// GitHub's alone: its secondary rate limit, and the fake's record of when each request came.
func TestSecondaryRateLimitIsWaitedOut(t *testing.T) {
	w := newWorld(t, e2e.GitHub, worldOptions{})
	gh := w.GitHub()
	head := w.PR(1, "x", "alice", nonBreaking)
	gh.Fake.FailNext("POST", "/repos/acme/warehouse/check-runs", 1, githubfake.SecondaryRateLimit(30*time.Second))
	w.send(w.PREvent(vcs.PROpened, 1))

	check, ok := w.Status("dagctl/plan: prod", head)
	require.True(t, ok, "the check was created after the wait")
	assert.Equal(t, vcs.StatusSuccess, check.State)
	var posts []githubfake.Request
	for _, r := range gh.Fake.RequestsMatching("POST", "/repos/acme/warehouse/check-runs") {
		posts = append(posts, r)
	}
	require.GreaterOrEqual(t, len(posts), 2)
	assert.Equal(t, 403, posts[0].Status)
	assert.GreaterOrEqual(t, posts[1].Time.Sub(posts[0].Time), 30*time.Second, "retry-after was honoured")
}

// wideModels are n views of many columns; factor changes every column, so a change of factor makes a long diff.
func wideModels(n, factor int) map[string]string {
	files := map[string]string{}
	for i := 0; i < n; i++ {
		var cols []string
		for c := 0; c < 80; c++ {
			cols = append(cols, fmt.Sprintf("  amount * %d AS a_rather_long_column_name_%03d", c*factor+1, c))
		}
		files[fmt.Sprintf("models/wide_%03d.sql", i)] = fmt.Sprintf("MODEL (name dagctl_example.wide_%03d, kind VIEW);\nSELECT\n%s\nFROM dagctl_example.orders\n", i, strings.Join(cols, ",\n"))
	}
	return files
}

func TestOversizedPlanIsSplitWithinGitHubsLimit(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{seedProd: true, baseFiles: wideModels(40, 1)})
		if w.Limits().CommentChars > comments.GitHubCommentLimit {
			t.Skipf("GitHub only: %s's notes hold %d characters, and this plan fits one", w.Name(), w.Limits().CommentChars)
		}
		w.PR(1, "wide", "alice", wideModels(40, 2)) // forty long diffs: far more than one comment holds
		w.send(w.PREvent(vcs.PROpened, 1))

		parts := w.Comments(1)
		require.Greater(t, len(parts), 1, "the sticky comment is split")
		for i, c := range parts {
			assert.LessOrEqual(t, utf8.RuneCountInString(c.Body), w.Limits().CommentChars)
			n, ok := comments.MarkerPart(c.Body)
			require.True(t, ok)
			assert.Equal(t, i+1, n)
			assert.Equal(t, strings.Count(c.Body, "<details>"), strings.Count(c.Body, "</details>"), "part %d", n)
			assert.Zero(t, strings.Count(c.Body, "```")%2, "part %d has an open code fence", n)
		}
		all := w.Sticky(1)
		assert.Contains(t, all, "dagctl_example.wide_000")
		assert.Contains(t, all, "dagctl_example.wide_039")

		// A small plan on the next push shrinks the comment: leftover parts are deleted, the first is edited.
		first := parts[0].ID
		files := wideModels(40, 1)
		for name, content := range nonBreaking {
			files[name] = content
		}
		w.Push(1, files, "small after all")
		w.send(w.PREvent(vcs.PRPushed, 1))
		left := w.Comments(1)
		require.Len(t, left, 1)
		assert.Equal(t, first, left[0].ID, "the sticky comment is edited in place")
		assert.NotContains(t, left[0].Body, "wide_000")
	})
}

func TestBrokenConfigIsReportedWithFileAndLine(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{})
		w.PR(1, "bad-config", "alice", map[string]string{".dagctl/config.yaml": "version: 1\nenvironments:\n  - name: prod\n    protectd: true\n"})
		w.send(w.PREvent(vcs.PROpened, 1))
		sticky := w.Sticky(1)
		assert.Contains(t, sticky, ".dagctl/config.yaml:4")
		assert.Contains(t, sticky, "protectd")
		assert.Empty(t, w.Statuses(), "nothing is planned with a broken config")
	})
}

func TestCommands(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{})
		head := w.PR(1, "x", "alice", nonBreaking)

		bad := w.comment(1, "bob", "/dagctl destroy everything")
		assert.Contains(t, w.LastComment(1), `unknown command "destroy"`)
		assert.Contains(t, w.LastComment(1), "/dagctl plan [env]")
		assert.Equal(t, vcs.ReactionConfused, forgetest.LastReaction(w, bad))

		w.comment(1, "bob", "/dagctl help")
		assert.Contains(t, w.LastComment(1), "/dagctl apply [env]")

		edited := w.AddComment(1, "bob", "/dagctl plan dev")
		w.send(w.CommentEditedEvent(1, edited))
		assert.Empty(t, w.Statuses(), "an edited comment runs nothing")

		plan1 := w.comment(1, "bob", "/dagctl plan dev --forward-only")
		assert.Equal(t, vcs.ReactionEyes, forgetest.LastReaction(w, plan1))
		_, prod := w.Status("dagctl/plan: prod", head)
		assert.False(t, prod, "only the named environment is planned")
		dev, ok := w.Status("dagctl/plan: dev", head)
		require.True(t, ok)
		assert.True(t, dev.State.Final())
		plans, err := w.srv.Store().ListPlansByPR(context.Background(), w.forge(), w.repoName(), 1)
		require.NoError(t, err)
		require.Len(t, plans, 1)
		assert.True(t, plans[0].Flags.ForwardOnly)
		assert.Equal(t, "bob", plans[0].TriggerUser)

		// Re-running a check plans that environment again, with the same flags (GitLab re-runs no external status).
		if !w.Can(forgetest.RerunStatus) {
			return
		}
		w.send(w.RerequestEvent(dev, "carol"))
		plans, err = w.srv.Store().ListPlansByPR(context.Background(), w.forge(), w.repoName(), 1)
		require.NoError(t, err)
		require.Len(t, plans, 2)
		assert.Equal(t, "carol", plans[1].TriggerUser)
		assert.True(t, plans[1].Flags.ForwardOnly)
		latest, ok := w.Status("dagctl/plan: dev", head)
		require.True(t, ok)
		assert.True(t, latest.State.Final())
		assert.Equal(t, fmt.Sprintf("plan:%d", plans[1].ID), latest.ExternalID, "a new check run for the new plan")
	})
}

func TestDraftsAreSkippedAndClosingCancels(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{})
		head := w.PR(1, "x", "alice", nonBreaking)
		w.UpdatePR(1, func(pr *forgetest.PR) { pr.Draft = true })
		w.send(w.PREvent(vcs.PROpened, 1))
		assert.Empty(t, w.Statuses())
		assert.Contains(t, w.Sticky(1), "Draft")

		w.UpdatePR(1, func(pr *forgetest.PR) { pr.Draft = false })
		w.deliver(w.PREvent(vcs.PRReady, 1))
		w.srv.Drain(context.Background())
		w.close(1)
		for _, env := range []string{"prod", "dev"} {
			c, ok := w.Status("dagctl/plan: "+env, head)
			require.True(t, ok)
			assert.True(t, c.State.Final(), env)
		}
		plans, err := w.srv.Store().ListPlansByPR(context.Background(), w.forge(), w.repoName(), 1)
		require.NoError(t, err)
		for _, p := range plans {
			assert.True(t, p.Status.Final(), "plan %d is %s", p.ID, p.Status)
			assert.NotEqual(t, plan.StatusRunning, p.Status)
		}
	})
}

func TestAGracefulRestartMidJobLeavesNoCancelledCheck(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{})
		head := w.PR(1, "x", "alice", nonBreaking)
		w.deliver(w.PREvent(vcs.PROpened, 1))
		w.srv.Drain(context.Background())
		require.Eventually(t, func() bool {
			c, ok := w.Status("dagctl/plan: prod", head)
			return ok && c.State == vcs.StatusRunning
		}, time.Minute, 20*time.Millisecond)
		w.restartNow() // a deploy: the running job is killed, nothing is reported as cancelled
		w.settle()
		for _, env := range []string{"prod", "dev"} {
			c, ok := w.Status("dagctl/plan: "+env, head)
			require.True(t, ok)
			assert.Equal(t, vcs.StatusSuccess, c.State, env)
			assert.NotContains(t, c.History, vcs.StatusCancelled, "%s: a restart is not a cancellation", env)
		}
	})
}
