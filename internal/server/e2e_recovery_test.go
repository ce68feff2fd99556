package server_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/command"
	"github.com/dagctl/dagctl-bot/internal/forgetest"
	"github.com/dagctl/dagctl-bot/internal/forgetest/e2e"
	"github.com/dagctl/dagctl-bot/internal/forgetest/githubfake"
	"github.com/dagctl/dagctl-bot/internal/forgetest/githubworld"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// hookedToTheBot points the fake's app webhook at the running bot (a restarted test bot listens elsewhere;
// a real app's webhook URL stays the same) and returns a sender of webhooks through the fake, which records
// each delivery and the bot's answer as GitHub does.
func hookedToTheBot(w *world) func(wh forgetest.Webhook) githubfake.HookDelivery {
	fake := w.GitHub().Fake
	fake.SetHookURL(githubworld.AppID, w.http.URL+"/webhooks/github")
	return func(wh forgetest.Webhook) githubfake.HookDelivery {
		return fake.SendWebhook(githubworld.AppID, wh.Header, wh.Body)
	}
}

// GitHub only: GitHub keeps an app's deliveries and sends one again when asked; it never retries by itself.
// Deliveries made while the bot was stopped (its listener closed: every chart upgrade has such a window) are
// asked for again when it starts, and acted on once.
func TestWebhooksSentWhileTheBotWasDownAreActedOnAfterItStarts(t *testing.T) {
	w := newWorld(t, e2e.GitHub, worldOptions{})
	fake := w.GitHub().Fake
	ctx := context.Background()
	send := hookedToTheBot(w)
	head := w.PR(1, "x", "alice", nonBreaking)
	require.True(t, send(w.PREvent(vcs.PROpened, 1)).OK(), "the bot was up")
	w.settle()

	w.stop()
	pushed := w.Push(1, map[string]string{"models/another.sql": "MODEL (name dagctl_example.another, kind VIEW);\nSELECT 2 AS two\n"}, "push")
	require.NotEqual(t, head, pushed)
	missed := []githubfake.HookDelivery{send(w.PREvent(vcs.PRPushed, 1))}
	help := w.AddComment(1, "bob", "/dagctl help")
	missed = append(missed, send(w.CommentEvent(1, help)))
	for _, d := range missed {
		require.False(t, d.OK(), "the bot was down: %+v", d)
	}

	w.start()
	send = hookedToTheBot(w)
	require.NoError(t, w.srv.RecoverMissed(ctx))
	w.settle()

	for _, env := range []string{"prod", "dev"} {
		st, ok := w.Status("dagctl/plan: "+env, pushed)
		require.True(t, ok, "%s: the push was planned; statuses: %v", env, w.Statuses())
		assert.Equal(t, vcs.StatusSuccess, st.State, env)
	}
	var replies []string
	for _, c := range w.Comments(1) {
		if c.ByBot && !strings.Contains(c.Body, "dagctl-bot:sticky") {
			replies = append(replies, c.Body)
		}
	}
	assert.Equal(t, []string{command.Usage}, replies, "the missed command was answered once")

	// Each missed delivery was asked for once, with its GUID; the one the bot had was not. Asking again finds
	// nothing more to ask for.
	redelivered := map[string]int{}
	for _, d := range fake.HookDeliveries(githubworld.AppID) {
		if d.Redelivery {
			redelivered[d.GUID]++
			assert.True(t, d.OK(), "the bot took the redelivery")
		}
	}
	assert.Equal(t, map[string]int{missed[0].GUID: 1, missed[1].GUID: 1}, redelivered)
	before := len(fake.HookDeliveries(githubworld.AppID))
	require.NoError(t, w.srv.RecoverMissed(ctx))
	assert.Len(t, fake.HookDeliveries(githubworld.AppID), before, "nothing more to ask for")
}

// A PR opened while the bot was down whose webhook the forge lost entirely (GitHub kept none to redeliver; GitLab
// has no redelivery at all) is planned by the reconcile of open PRs, once.
func TestAPROpenedWhileTheBotWasDownWhoseWebhookWasLostIsPlannedByTheReconcile(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{})
		ctx := context.Background()
		w.PR(1, "x", "alice", nonBreaking)
		w.send(w.PREvent(vcs.PROpened, 1))

		w.stop()
		head := w.PR(2, "y", "bob", aNewModel) // no webhook reaches the bot, now or later
		w.start()
		require.NoError(t, w.srv.RecoverMissed(ctx))
		w.settle()

		for _, env := range []string{"prod", "dev"} {
			st, ok := w.Status("dagctl/plan: "+env, head)
			require.True(t, ok, "%s: the lost PR was planned; statuses: %v", env, w.Statuses())
			assert.Equal(t, vcs.StatusSuccess, st.State, env)
		}
		assert.Contains(t, w.Sticky(2), head[:7])

		require.NoError(t, w.srv.RecoverMissed(ctx))
		w.settle()
		for _, env := range []string{"prod", "dev"} {
			assert.Len(t, w.StatusesNamed("dagctl/plan: "+env, head), 1, "%s: planned once", env)
		}
	})
}

// GitHub only (githubfake's failures): a reconcile whose plan of a lost PR fails on the forge's 502 tries that
// head again at its next round; it is not marked as done for the rest of the process.
func TestAReconcileWhosePlanFailedOnA502TriesAgainNextRound(t *testing.T) {
	w := newWorld(t, e2e.GitHub, worldOptions{})
	ctx := context.Background()
	w.PR(1, "x", "alice", nonBreaking)
	w.send(w.PREvent(vcs.PROpened, 1))

	w.stop()
	head := w.PR(2, "y", "bob", aNewModel) // its webhook is lost
	w.start()
	w.GitHub().Fake.FailNext("GET", "/repos/acme/warehouse/contents/.dagctl/config.yaml", 1, badGateway)
	assert.NoError(t, w.srv.RecoverMissed(ctx), "a PR the reconcile could not plan is logged, the round goes on")
	w.settle()
	_, planned := w.Status("dagctl/plan: prod", head)
	require.False(t, planned, "the config read failed: nothing was planned in the first round")

	require.NoError(t, w.srv.RecoverMissed(ctx))
	w.settle()
	st, ok := w.Status("dagctl/plan: prod", head)
	require.True(t, ok, "the next round planned the head; statuses: %v", w.Statuses())
	assert.Equal(t, vcs.StatusSuccess, st.State)
}
