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
	"github.com/dagctl/dagctl-bot/internal/forgetest/githubfake"
	"github.com/dagctl/dagctl-bot/internal/plan"
)

func TestBadSignatureStoresNothingAndPlansNothing(t *testing.T) {
	w := newWorld(t, worldOptions{})
	head := w.PR(1, "x", "alice", nonBreaking)
	d := w.PREvent("opened", 1, head, "alice").SendT(t, w.http.URL+"/webhooks/github", "not-the-secret")
	assert.Equal(t, 401, d.Status)
	_, err := w.srv.Store().GetDelivery(context.Background(), "github", d.ID)
	assert.ErrorIs(t, err, db.ErrNotFound)
	w.settle()
	assert.Empty(t, w.Repo.CheckRuns())
	assert.Empty(t, w.Repo.Comments(1))
}

func TestDuplicateAndReplayedDeliveriesPlanOnce(t *testing.T) {
	w := newWorld(t, worldOptions{})
	head := w.PR(1, "x", "alice", nonBreaking)
	ev := w.PREvent("opened", 1, head, "alice")
	first, err := ev.SendAs(w.http.URL+"/webhooks/github", webhookSecret, "same-delivery")
	require.NoError(t, err)
	again, err := ev.SendAs(w.http.URL+"/webhooks/github", webhookSecret, "same-delivery")
	require.NoError(t, err)
	assert.Equal(t, 202, first.Status)
	assert.Equal(t, 200, again.Status)
	w.settle()
	// A redelivery by hand gets a new id: the plan of this head exists, so nothing runs again.
	w.send(w.PREvent("reopened", 1, head, "alice"))

	assert.Len(t, w.ChecksNamed("dagctl/plan: prod", head), 1)
	assert.Len(t, w.ChecksNamed("dagctl/plan: dev", head), 1)
	plans, err := w.srv.Store().ListPlansByPR(context.Background(), "github", "acme/warehouse", 1)
	require.NoError(t, err)
	assert.Len(t, plans, 2)
}

func TestDeliveriesQueuedBeforeARestartAreHandledAfterIt(t *testing.T) {
	w := newWorld(t, worldOptions{})
	head := w.PR(1, "x", "alice", nonBreaking)
	d := w.PREvent("opened", 1, head, "alice").SendT(t, w.http.URL+"/webhooks/github", webhookSecret)
	require.Equal(t, 202, d.Status)
	w.stop() // acknowledged, stored, not handled yet
	assert.Empty(t, w.Repo.CheckRuns())

	w.start()
	w.settle()
	check, ok := w.Repo.CheckRun("dagctl/plan: prod", head)
	require.True(t, ok)
	assert.Equal(t, "success", check.Conclusion)
	got, err := w.srv.Store().GetDelivery(context.Background(), "github", d.ID)
	require.NoError(t, err)
	assert.Equal(t, db.DeliveryDone, got.Status)
}

func TestBotCrashMidJobFinishesTheCheckAfterRestart(t *testing.T) {
	w := newWorld(t, worldOptions{})
	head := w.PR(1, "x", "alice", nonBreaking)
	w.PREvent("opened", 1, head, "alice").SendT(t, w.http.URL+"/webhooks/github", webhookSecret)
	w.srv.Drain(context.Background())
	// Wait until a plan job is running, then crash: no clean shutdown, nothing reported.
	require.Eventually(t, func() bool {
		c, ok := w.Repo.CheckRun("dagctl/plan: prod", head)
		return ok && c.Status == "in_progress"
	}, time.Minute, 20*time.Millisecond)
	w.crash()
	c, _ := w.Repo.CheckRun("dagctl/plan: prod", head)
	require.NotEqual(t, "completed", c.Status, "the crash left the check open")

	w.start()
	w.settle()
	for _, env := range []string{"prod", "dev"} {
		c, ok := w.Repo.CheckRun("dagctl/plan: "+env, head)
		require.True(t, ok)
		assert.Equal(t, "completed", c.Status, env)
		assert.Equal(t, "success", c.Conclusion, env)
	}
	assert.Len(t, w.ChecksNamed("dagctl/plan: prod", head), 1, "the same check run is finished, not a new one")
	assert.Contains(t, w.Sticky(1), "Ready to apply")
}

func TestForkPRWaitsForAWriterToPlanIt(t *testing.T) {
	w := newWorld(t, worldOptions{})
	head := w.PR(1, "fork-change", "mallory", nonBreaking)
	w.send(w.PREvent("opened", 1, head, "mallory").Fork("mallory", "https://example.invalid/mallory/warehouse.git"))
	assert.Empty(t, w.Repo.CheckRuns(), "a fork's code never runs automatically")
	assert.Contains(t, w.Sticky(1), "fork")

	w.send(w.CommentEvent(1, head, "dave", "/dagctl plan"))
	assert.Empty(t, w.Repo.CheckRuns(), "a read-only user cannot run it")
	assert.Contains(t, lastComment(w, 1), "only users with write permission")

	w.Repo.SetPR(githubfake.PR{Number: 1, Author: "mallory", HeadRef: "fork-change", HeadSHA: head, BaseSHA: w.Base, HeadRepo: "mallory/warehouse"})
	cmd := w.CommentEvent(1, head, "bob", "/dagctl plan --sha "+head)
	w.send(cmd)
	check, ok := w.Repo.CheckRun("dagctl/plan: prod", head)
	require.True(t, ok, "a writer's command plans the fork's exact commit")
	assert.Equal(t, "success", check.Conclusion)
	assert.Equal(t, "eyes", reactionOf(w, cmd))
}

func TestPushWhilePlanningSupersedesTheOldCommit(t *testing.T) {
	w := newWorld(t, worldOptions{})
	first := w.PR(1, "x", "alice", nonBreaking)
	w.PREvent("opened", 1, first, "alice").SendT(t, w.http.URL+"/webhooks/github", webhookSecret)
	w.srv.Drain(context.Background()) // jobs start in the background
	second := w.Git.Commit("x", map[string]string{"models/new_model.sql": "MODEL (name dagctl_example.new_model, kind VIEW);\nSELECT 1 AS one\n"}, "second push")
	w.Repo.SetPR(githubfake.PR{Number: 1, Author: "alice", HeadRef: "x", HeadSHA: second, BaseSHA: w.Base})
	w.send(w.PREvent("synchronize", 1, second, "alice"))

	for _, env := range []string{"prod", "dev"} {
		old, ok := w.Repo.CheckRun("dagctl/plan: "+env, first)
		require.True(t, ok)
		assert.Equal(t, "completed", old.Status, env)
		assert.Equal(t, "cancelled", old.Conclusion, "%s: the old commit's check ends as cancelled", env)
		cur, ok := w.Repo.CheckRun("dagctl/plan: "+env, second)
		require.True(t, ok)
		assert.Equal(t, "success", cur.Conclusion, env)
	}
	sticky := w.Sticky(1)
	assert.Contains(t, sticky, second[:7])
	assert.Contains(t, sticky, "dagctl_example.new_model")
}

func TestSecondaryRateLimitIsWaitedOut(t *testing.T) {
	w := newWorld(t, worldOptions{})
	head := w.PR(1, "x", "alice", nonBreaking)
	w.Fake.FailNext("POST", "/repos/acme/warehouse/check-runs", 1, githubfake.SecondaryRateLimit(30*time.Second))
	w.send(w.PREvent("opened", 1, head, "alice"))

	check, ok := w.Repo.CheckRun("dagctl/plan: prod", head)
	require.True(t, ok, "the check was created after the wait")
	assert.Equal(t, "success", check.Conclusion)
	var posts []githubfake.Request
	for _, r := range w.Fake.RequestsMatching("POST", "/repos/acme/warehouse/check-runs") {
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
	w := newWorld(t, worldOptions{seedProd: true, baseFiles: wideModels(40, 1)})
	head := w.PR(1, "wide", "alice", wideModels(40, 2)) // forty long diffs: far more than one comment holds
	w.send(w.PREvent("opened", 1, head, "alice"))

	parts := w.Repo.Comments(1)
	require.Greater(t, len(parts), 1, "the sticky comment is split")
	for i, c := range parts {
		assert.LessOrEqual(t, utf8.RuneCountInString(c.Body), comments.GitHubCommentLimit)
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
	w.Git.Git("checkout", "--quiet", "wide")
	files := wideModels(40, 1)
	for name, content := range nonBreaking {
		files[name] = content
	}
	second := w.Git.Commit("wide", files, "small after all")
	w.Repo.SetPR(githubfake.PR{Number: 1, Author: "alice", HeadRef: "wide", HeadSHA: second, BaseSHA: w.Base})
	w.send(w.PREvent("synchronize", 1, second, "alice"))
	left := w.Repo.Comments(1)
	require.Len(t, left, 1)
	assert.Equal(t, first, left[0].ID, "the sticky comment is edited in place")
	assert.NotContains(t, left[0].Body, "wide_000")
}

func TestBrokenConfigIsReportedWithFileAndLine(t *testing.T) {
	w := newWorld(t, worldOptions{})
	head := w.PR(1, "bad-config", "alice", map[string]string{".dagctl/config.yaml": "version: 1\nenvironments:\n  - name: prod\n    protectd: true\n"})
	w.send(w.PREvent("opened", 1, head, "alice"))
	sticky := w.Sticky(1)
	assert.Contains(t, sticky, ".dagctl/config.yaml:4")
	assert.Contains(t, sticky, "protectd")
	assert.Empty(t, w.Repo.CheckRuns(), "nothing is planned with a broken config")
}

func TestCommands(t *testing.T) {
	w := newWorld(t, worldOptions{})
	head := w.PR(1, "x", "alice", nonBreaking)

	bad := w.CommentEvent(1, head, "bob", "/dagctl destroy everything")
	w.send(bad)
	assert.Contains(t, lastComment(w, 1), `unknown command "destroy"`)
	assert.Contains(t, lastComment(w, 1), "/dagctl plan [env]")
	assert.Equal(t, "confused", reactionOf(w, bad))

	help := w.CommentEvent(1, head, "bob", "/dagctl help")
	w.send(help)
	assert.Contains(t, lastComment(w, 1), "/dagctl apply [env]")

	edited := w.CommentEvent(1, head, "bob", "/dagctl plan dev")
	w.send(edited.Set("action", "edited"))
	assert.Empty(t, w.Repo.CheckRuns(), "an edited comment runs nothing")

	plan1 := w.CommentEvent(1, head, "bob", "/dagctl plan dev --forward-only")
	w.send(plan1)
	assert.Equal(t, "eyes", reactionOf(w, plan1))
	_, prod := w.Repo.CheckRun("dagctl/plan: prod", head)
	assert.False(t, prod, "only the named environment is planned")
	dev, ok := w.Repo.CheckRun("dagctl/plan: dev", head)
	require.True(t, ok)
	assert.Equal(t, "completed", dev.Status)
	plans, err := w.srv.Store().ListPlansByPR(context.Background(), "github", "acme/warehouse", 1)
	require.NoError(t, err)
	require.Len(t, plans, 1)
	assert.True(t, plans[0].Flags.ForwardOnly)
	assert.Equal(t, "bob", plans[0].TriggerUser)

	// Re-running a check plans that environment again, with the same flags.
	rerun := githubfake.LoadPayload(t, "check_run.rerequested.json").Installation(installationID).Repo(w.Repo).
		Set("check_run.external_id", dev.ExternalID).Set("check_run.head_sha", head).Set("check_run.name", dev.Name).Set("sender.login", "carol")
	w.send(rerun)
	plans, err = w.srv.Store().ListPlansByPR(context.Background(), "github", "acme/warehouse", 1)
	require.NoError(t, err)
	require.Len(t, plans, 2)
	assert.Equal(t, "carol", plans[1].TriggerUser)
	assert.True(t, plans[1].Flags.ForwardOnly)
	latest, ok := w.Repo.CheckRun("dagctl/plan: dev", head)
	require.True(t, ok)
	assert.Equal(t, "completed", latest.Status)
	assert.Equal(t, fmt.Sprintf("plan:%d", plans[1].ID), latest.ExternalID, "a new check run for the new plan")
}

func TestDraftsAreSkippedAndClosingCancels(t *testing.T) {
	w := newWorld(t, worldOptions{})
	head := w.PR(1, "x", "alice", nonBreaking)
	w.send(w.PREvent("opened", 1, head, "alice").Set("pull_request.draft", true))
	assert.Empty(t, w.Repo.CheckRuns())
	assert.Contains(t, w.Sticky(1), "Draft")

	w.PREvent("ready_for_review", 1, head, "alice").SendT(t, w.http.URL+"/webhooks/github", webhookSecret)
	w.srv.Drain(context.Background())
	w.send(w.PREvent("closed", 1, head, "alice").Set("pull_request.state", "closed"))
	for _, env := range []string{"prod", "dev"} {
		c, ok := w.Repo.CheckRun("dagctl/plan: "+env, head)
		require.True(t, ok)
		assert.Equal(t, "completed", c.Status, env)
	}
	plans, err := w.srv.Store().ListPlansByPR(context.Background(), "github", "acme/warehouse", 1)
	require.NoError(t, err)
	for _, p := range plans {
		assert.True(t, p.Status.Final(), "plan %d is %s", p.ID, p.Status)
		assert.NotEqual(t, plan.StatusRunning, p.Status)
	}
}

func lastComment(w *world, number int) string {
	cs := w.Repo.Comments(number)
	if len(cs) == 0 {
		return ""
	}
	return cs[len(cs)-1].Body
}

// reactionOf is the bot's reaction to the comment a payload carries.
func reactionOf(w *world, p *githubfake.Payload) string {
	id, _ := p.Get("comment.id").(int64)
	if id == 0 {
		if n, ok := p.Get("comment.id").(interface{ Int64() (int64, error) }); ok {
			id, _ = n.Int64()
		}
	}
	rs := w.Repo.Reactions(id)
	if len(rs) == 0 {
		return ""
	}
	return rs[len(rs)-1].Content
}

func TestAGracefulRestartMidJobLeavesNoCancelledCheck(t *testing.T) {
	w := newWorld(t, worldOptions{})
	head := w.PR(1, "x", "alice", nonBreaking)
	w.PREvent("opened", 1, head, "alice").SendT(t, w.http.URL+"/webhooks/github", webhookSecret)
	w.srv.Drain(context.Background())
	require.Eventually(t, func() bool {
		c, ok := w.Repo.CheckRun("dagctl/plan: prod", head)
		return ok && c.Status == "in_progress"
	}, time.Minute, 20*time.Millisecond)
	w.restartNow() // a deploy: the running job is killed, nothing is reported as cancelled
	w.settle()
	for _, env := range []string{"prod", "dev"} {
		c, ok := w.Repo.CheckRun("dagctl/plan: "+env, head)
		require.True(t, ok)
		assert.Equal(t, "success", c.Conclusion, env)
		for _, h := range c.History {
			assert.NotEqual(t, "cancelled", h.Conclusion, "%s: a restart is not a cancellation", env)
		}
	}
}
