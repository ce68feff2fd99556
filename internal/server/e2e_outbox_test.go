package server_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/command"
	"github.com/dagctl/dagctl-bot/internal/forgetest/e2e"
	"github.com/dagctl/dagctl-bot/internal/forgetest/githubworld"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// A crash with the bot's writes still in the outbox (one of them being sent) loses none of them and repeats
// none: after the restart each status is one status that got its final state once, the sticky comment is one
// comment written once, the reply is posted once and the reaction added once.
func TestACrashWithWritesInTheOutboxSendsThemOnceAfterTheRestart(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{holdWrites: true})
		head := w.PR(1, "x", "alice", nonBreaking)
		ctx := context.Background()
		w.deliver(w.PREvent(vcs.PROpened, 1))
		w.srv.Drain(ctx)
		w.srv.WaitJobs()
		help := w.AddComment(1, "bob", "/dagctl help")
		w.deliver(w.CommentEvent(1, help))
		w.srv.Drain(ctx)
		require.Empty(t, w.Statuses(), "nothing was sent yet")
		require.Empty(t, w.Comments(1)[1:], "only bob's comment is on the PR")

		// One write is being sent when the bot dies: the forge never answered it.
		accounts, err := w.srv.Store().OutboxAccounts(ctx)
		require.NoError(t, err)
		require.Len(t, accounts, 1)
		_, ok, err := w.srv.Store().ClaimOutbox(ctx, accounts[0].Forge, accounts[0].Account, w.Now())
		require.NoError(t, err)
		require.True(t, ok)
		w.crash()

		w.opts.holdWrites = false
		w.start()
		w.settle()
		for _, env := range []string{"prod", "dev"} {
			runs := w.StatusesNamed("dagctl/plan: "+env, head)
			require.Len(t, runs, 1, "%s: one status; all: %v", env, w.Statuses())
			assert.Equal(t, []vcs.StatusState{vcs.StatusSuccess}, runs[0].History, "%s: only the final state, once", env)
		}
		assert.Len(t, w.StatusesNamed("dagctl/approval: prod", head), 1)
		var stickies, replies int
		for _, c := range w.Comments(1) {
			switch {
			case !c.ByBot:
			case strings.Contains(c.Body, "dagctl-bot:sticky"):
				stickies++
				assert.Empty(t, c.Edits, "the sticky comment was written once")
				assert.Contains(t, c.Body, "dagctl_example.customer_totals")
			default:
				replies++
				assert.Equal(t, command.Usage, c.Body)
			}
		}
		assert.Equal(t, 1, stickies)
		assert.Equal(t, 1, replies, "the reply was posted once")
		assert.Equal(t, []vcs.Reaction{vcs.ReactionEyes}, w.Reactions(help), "the reaction was added once")
		idle, err := w.srv.Store().OutboxAccounts(ctx)
		require.NoError(t, err)
		assert.Empty(t, idle, "the outbox is empty")
	})
}

// GitHub only: versions before the outbox stored the check run ids of a plan's statuses themselves
// (plan_checks). A bot upgraded mid-PR updates those check runs instead of creating second ones.
func TestABotUpgradedMidPRUpdatesTheCheckRunsAnEarlierVersionCreated(t *testing.T) {
	w := newWorld(t, e2e.GitHub, worldOptions{})
	head := w.PR(1, "x", "alice", nonBreaking)
	w.send(w.PREvent(vcs.PROpened, 1))
	approval, ok := w.Status("dagctl/approval: prod", head)
	require.True(t, ok)
	require.Equal(t, vcs.StatusBlocked, approval.State)

	// What the earlier version left: its check run ids in plan_checks, and no outbox refs.
	ctx := context.Background()
	store := w.srv.Store()
	account := strconv.Itoa(githubworld.InstallationID)
	plans, err := store.ListPlansByPR(ctx, w.forge(), w.repoName(), 1)
	require.NoError(t, err)
	planOf := map[string]int64{}
	for _, p := range plans {
		planOf[p.Environment] = p.ID
	}
	for _, st := range w.Statuses() {
		env := st.Name[strings.LastIndex(st.Name, " ")+1:] // "dagctl/plan: prod"
		checkRun, err := strconv.ParseInt(string(st.Ref), 10, 64)
		require.NoError(t, err)
		require.NoError(t, store.SetCheckRun(ctx, planOf[env], st.Name, checkRun))
	}
	keys, err := store.OutboxRefKeys(ctx, w.forge(), account, "status|")
	require.NoError(t, err)
	require.NotEmpty(t, keys)
	for _, k := range keys {
		require.NoError(t, store.SetOutboxRef(ctx, w.forge(), account, k, ""))
	}

	w.review(1, head, "bob", vcs.ReviewApproved)
	runs := w.StatusesNamed("dagctl/approval: prod", head)
	require.Len(t, runs, 1, "the approval's check run was updated, not created again: %v", w.Statuses())
	assert.Equal(t, vcs.StatusSuccess, runs[0].State, runs[0].Title)
	assert.Len(t, w.StatusesNamed("dagctl/plan: prod", head), 1)
}
