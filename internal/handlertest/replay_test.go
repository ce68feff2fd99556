package handlertest_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/command"
	"github.com/dagctl/dagctl-bot/internal/comments"
	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/outbox"
	"github.com/dagctl/dagctl-bot/internal/testutil"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// A delivery handled twice (the bot was killed after acting on it and before marking it done, and the
// dispatcher requeued it; or it failed after acting and was retried) carries the same delivery id both times:
// every effect the first handling made is found by its key, and none is made twice.

func TestAReplayedHelpCommandRepliesAndReactsOnce(t *testing.T) {
	w := newWorld(t)
	pr := w.openPR(1, "more-columns", "alice", testutil.NonBreakingChange)
	c := w.forge.AddComment(w.repo, pr.Number, "bob", "/dagctl help")
	ev := vcs.Event{Comment: &vcs.CommentEvent{Number: pr.Number, Comment: c}, DeliveryID: "delivery-help"}

	w.handle(ev)
	w.handle(ev)

	assert.Equal(t, []string{command.Usage}, w.replies(pr.Number), "one reply")
	assert.Equal(t, []vcs.Reaction{vcs.ReactionEyes}, w.forge.ReactionsOf(w.repo, c.ID), "one reaction")
}

// The replay may come while the first handling's reply still waits in the outbox (the sender had not sent
// it when the bot died): the replay finds it there.
func TestAReplayBeforeTheReplyWasSentEnqueuesNoSecond(t *testing.T) {
	w := newWorld(t)
	pr := w.openPR(1, "more-columns", "alice", testutil.NonBreakingChange)
	c := w.forge.AddComment(w.repo, pr.Number, "bob", "/dagctl help")
	ev := vcs.Event{Repo: w.repo, Comment: &vcs.CommentEvent{Number: pr.Number, Comment: c}, DeliveryID: "delivery-help"}

	for range 2 {
		require.NoError(t, w.bot.Handle(context.Background(), ev))
	}
	w.drainWrites()

	assert.Equal(t, []string{command.Usage}, w.replies(pr.Number))
}

// Two comments of the same command are two requests: each is answered.
func TestTheSameCommandInTwoDeliveriesIsAnsweredTwice(t *testing.T) {
	w := newWorld(t)
	pr := w.openPR(1, "more-columns", "alice", testutil.NonBreakingChange)
	for _, id := range []string{"delivery-1", "delivery-2"} {
		c := w.forge.AddComment(w.repo, pr.Number, "bob", "/dagctl help")
		w.handle(vcs.Event{Comment: &vcs.CommentEvent{Number: pr.Number, Comment: c}, DeliveryID: id})
	}
	assert.Equal(t, []string{command.Usage, command.Usage}, w.replies(pr.Number))
}

func TestAReplayedPROpenedPlansOnce(t *testing.T) {
	w := newWorld(t)
	w.forge.Commit(w.repo, "more-columns", "alice", testutil.NonBreakingChange)
	pr := w.forge.OpenPR(w.repo, 1, "more-columns", "main", "alice")
	ev := vcs.Event{PullRequest: &vcs.PullRequestEvent{Action: vcs.PROpened, PR: pr, Sender: "alice"}, DeliveryID: "delivery-opened"}

	w.handle(ev)
	w.handle(ev)

	w.assertPlannedOnce(pr)
}

func TestAReplayedPlanCommandPlansOnce(t *testing.T) {
	w := newWorld(t)
	w.forge.Commit(w.repo, "more-columns", "alice", testutil.NonBreakingChange)
	pr := w.forge.OpenPR(w.repo, 1, "more-columns", "main", "alice")
	c := w.forge.AddComment(w.repo, pr.Number, "bob", "/dagctl plan dev")
	ev := vcs.Event{Comment: &vcs.CommentEvent{Number: pr.Number, Comment: c}, DeliveryID: "delivery-plan"}

	w.handle(ev)
	w.handle(ev)

	plans, err := w.store.ListPlansByPR(context.Background(), w.repo.Forge, w.repo.FullName(), pr.Number)
	require.NoError(t, err)
	require.Len(t, plans, 1, "one plan of dev")
	if w.jobs != nil {
		assert.Len(t, w.jobs.Started(), 1, "one plan job")
	}
	assert.Equal(t, []vcs.StatusState{vcs.StatusSuccess}, w.states("dagctl/plan: dev", pr.HeadSHA))

	// A second comment asks again, and is planned again.
	again := w.forge.AddComment(w.repo, pr.Number, "bob", "/dagctl plan dev")
	w.handle(vcs.Event{Comment: &vcs.CommentEvent{Number: pr.Number, Comment: again}, DeliveryID: "delivery-plan-again"})
	plans, err = w.store.ListPlansByPR(context.Background(), w.repo.Forge, w.repo.FullName(), pr.Number)
	require.NoError(t, err)
	assert.Len(t, plans, 2, "a new request plans again")
}

// assertPlannedOnce: one plan and one job per environment, each status written in place.
func (w *world) assertPlannedOnce(pr vcs.PullRequest) {
	w.t.Helper()
	plans, err := w.store.ListPlansByPR(context.Background(), w.repo.Forge, w.repo.FullName(), pr.Number)
	require.NoError(w.t, err)
	envs := map[string]int{}
	for _, p := range plans {
		envs[p.Environment]++
	}
	assert.Equal(w.t, map[string]int{"prod": 1, "dev": 1}, envs, "one plan per environment")
	if w.jobs != nil {
		assert.Len(w.t, w.jobs.Started(), 2, "one plan job per environment")
	}
	for _, env := range []string{"prod", "dev"} {
		assert.Equal(w.t, []vcs.StatusState{vcs.StatusSuccess}, w.states("dagctl/plan: "+env, pr.HeadSHA), env)
	}
	assert.Len(w.t, w.forge.CommentsOf(w.repo, pr.Number), 1, "one sticky comment")
}

// replies are the bot's comments on the PR that are not the sticky comment, as a person reads them.
func (w *world) replies(number int) []string {
	var out []string
	for _, c := range w.forge.CommentsOf(w.repo, number) {
		if _, sticky := comments.MarkerPart(c.Body); c.ByBot && !sticky {
			out = append(out, outbox.WithoutWriteMarker(c.Body))
		}
	}
	return out
}

// One apply per plan: the replayed `/dagctl apply` finds the plan applied, applies nothing and says nothing new.
func TestAReplayedApplyCommandAppliesOnce(t *testing.T) {
	w := newWorld(t)
	pr := w.openPR(1, "more-columns", "alice", testutil.NonBreakingChange)
	c := w.forge.AddComment(w.repo, pr.Number, "bob", "/dagctl apply dev")
	ev := vcs.Event{Comment: &vcs.CommentEvent{Number: pr.Number, Comment: c}, DeliveryID: "delivery-apply"}

	w.handle(ev)
	require.Equal(t, vcs.StatusSuccess, w.state("dagctl/apply: dev", pr.HeadSHA), "applied; replies: %q", w.replies(pr.Number))
	replies := w.replies(pr.Number)
	w.handle(ev)

	assert.Equal(t, replies, w.replies(pr.Number), "nothing new is said")
	if w.jobs != nil {
		var applies int
		for _, k := range w.jobs.Started() {
			if k.Kind == jobs.KindApply {
				applies++
			}
		}
		assert.Equal(t, 1, applies, "one apply job")
	}
	assert.Equal(t, vcs.StatusSuccess, w.state("dagctl/apply: dev", pr.HeadSHA))
}

// A push to the default branch is planned for the environments applied on merge, once per commit.
func TestAReplayedPushToTheDefaultBranchPlansOnce(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	before, err := w.forge.BranchHead(ctx, w.repo, "main")
	require.NoError(t, err)
	after := w.forge.Commit(w.repo, "main", "alice", testutil.NonBreakingChange)
	ev := vcs.Event{Push: &vcs.PushEvent{Ref: "refs/heads/main", Before: before, After: after, Pusher: "alice"}, DeliveryID: "delivery-push"}

	w.handle(ev)
	w.handle(ev)

	plans, err := w.store.ListPlansByPR(ctx, w.repo.Forge, w.repo.FullName(), 0)
	require.NoError(t, err)
	require.NotEmpty(t, plans, "the push was planned")
	envs := map[string]int{}
	for _, p := range plans {
		envs[p.Environment]++
	}
	for env, n := range envs {
		assert.Equal(t, 1, n, "%s: one plan of the commit", env)
	}
}
