package outbox_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/comments"
	"github.com/dagctl/dagctl-bot/internal/forgetest/githubfake"
	"github.com/dagctl/dagctl-bot/internal/outbox"
	"github.com/dagctl/dagctl-bot/internal/vcs"
	ghadapter "github.com/dagctl/dagctl-bot/internal/vcs/github"
)

const planProd = "dagctl/plan: prod"

func TestOnlyTheNewestStateOfAStatusIsSent(t *testing.T) {
	w := newWorld(t)
	ob := w.outbox(w.app)
	ctx := context.Background()
	for _, state := range []vcs.StatusState{vcs.StatusQueued, vcs.StatusRunning, vcs.StatusSuccess} {
		require.NoError(t, ob.PutStatus(ctx, acct, w.vrepo, w.status(planProd, state, "plan:1"), outbox.PriorityResult))
	}
	require.Len(t, w.pending(), 1, "the queued and running states were replaced before they were sent")
	require.NoError(t, ob.Drain(ctx))

	check, ok := w.repo.CheckRun(planProd, w.head)
	require.True(t, ok)
	assert.Equal(t, []string{"completed"}, check.Statuses(), "running, superseded by success, is never sent")
	assert.Equal(t, "success", check.Conclusion)
	assert.Equal(t, []string{"POST /repos/acme/warehouse/check-runs"}, w.writes())
	assert.Empty(t, w.pending(), "a sent write leaves the table")
}

func TestAStatusIsWrittenAgainThroughTheRefTheForgeReturned(t *testing.T) {
	w := newWorld(t)
	ob := w.outbox(w.app)
	ctx := context.Background()
	require.NoError(t, ob.PutStatus(ctx, acct, w.vrepo, w.status(planProd, vcs.StatusRunning, "plan:1"), outbox.PriorityProgress))
	require.NoError(t, ob.Drain(ctx))
	require.NoError(t, ob.PutStatus(ctx, acct, w.vrepo, w.status(planProd, vcs.StatusFailure, "plan:1"), outbox.PriorityResult))
	require.NoError(t, ob.Drain(ctx))

	runs := w.repo.CheckRuns()
	require.Len(t, runs, 1, "the second state updates the check run the first created")
	ref, err := ob.StatusRef(ctx, acct, w.vrepo, w.status(planProd, vcs.StatusSuccess, "plan:1"))
	require.NoError(t, err)
	assert.Equal(t, vcs.StatusRef(itoa(runs[0].ID)), ref, "the core can read the status back through its ref")
	assert.Equal(t, []string{"in_progress", "completed"}, runs[0].Statuses())
	assert.Equal(t, "failure", runs[0].Conclusion)
}

func TestAnotherRunOfAStatusGetsItsOwnCheckAndTheEarlierRunStillEnds(t *testing.T) {
	w := newWorld(t)
	ob := w.outbox(w.app)
	ctx := context.Background()
	require.NoError(t, ob.PutStatus(ctx, acct, w.vrepo, w.status(planProd, vcs.StatusRunning, "plan:1"), outbox.PriorityProgress))
	require.NoError(t, ob.Drain(ctx))
	// The plan is run again on the same commit: the first run is cancelled, the second queued, before either is sent.
	require.NoError(t, ob.PutStatus(ctx, acct, w.vrepo, w.status(planProd, vcs.StatusCancelled, "plan:1"), outbox.PriorityResult))
	require.NoError(t, ob.PutStatus(ctx, acct, w.vrepo, w.status(planProd, vcs.StatusQueued, "plan:2"), outbox.PriorityProgress))
	require.NoError(t, ob.Drain(ctx))

	runs := w.repo.CheckRuns()
	require.Len(t, runs, 2)
	assert.Equal(t, "plan:1", runs[0].ExternalID)
	assert.Equal(t, "cancelled", runs[0].Conclusion, "the earlier run's check does not stay in progress")
	assert.Equal(t, "plan:2", runs[1].ExternalID)
	assert.Equal(t, "queued", runs[1].Status)
}

func TestWritesGoByPriorityThenFirstInFirstOut(t *testing.T) {
	w := newWorld(t)
	ob := w.outbox(w.app)
	ctx := context.Background()
	commentID := w.repo.AddComment(prNumber, "alice", "/dagctl plan")
	require.NoError(t, ob.React(ctx, acct, w.vrepo, commentID, vcs.ReactionEyes, outbox.PriorityOther))
	require.NoError(t, ob.PutStatus(ctx, acct, w.vrepo, w.status("dagctl/plan: dev", vcs.StatusRunning, "plan:2"), outbox.PriorityProgress))
	require.NoError(t, ob.PutStatus(ctx, acct, w.vrepo, w.status(planProd, vcs.StatusSuccess, "plan:1"), outbox.PriorityResult))
	require.NoError(t, ob.PutSticky(ctx, acct, w.vrepo, prNumber, []string{comments.Marker + "\nprod planned"}, outbox.PriorityResult))
	require.NoError(t, ob.Reply(ctx, acct, w.vrepo, prNumber, "🚀 Applying", outbox.PriorityProgress))
	require.NoError(t, ob.Drain(ctx))

	assert.Equal(t, []string{
		"POST /repos/acme/warehouse/check-runs",        // prod's result
		"POST /repos/acme/warehouse/issues/1/comments", // the sticky comment
		"POST /repos/acme/warehouse/check-runs",        // dev's progress
		"POST /repos/acme/warehouse/issues/1/comments", // the reply, after the progress enqueued before it
		"POST /repos/acme/warehouse/issues/comments/" + itoa(commentID) + "/reactions",
	}, w.writes())
	runs := w.repo.CheckRuns()
	require.Len(t, runs, 2)
	assert.Equal(t, planProd, runs[0].Name)
}

func TestAnAccountsWritesAreSpacedAndNeverConcurrent(t *testing.T) {
	w := newWorld(t)
	ob := w.outbox(w.app)
	ctx := context.Background()
	for i := range 4 {
		require.NoError(t, ob.Reply(ctx, acct, w.vrepo, prNumber, "reply "+itoa(int64(i)), outbox.PriorityOther))
	}
	require.NoError(t, ob.Drain(ctx))

	posts := w.fake.RequestsMatching("POST", "/repos/acme/warehouse/issues/1/comments")
	require.Len(t, posts, 4)
	for i := 1; i < len(posts); i++ {
		assert.GreaterOrEqual(t, posts[i].Time.Sub(posts[i-1].Time), outbox.DefaultInterval, "write %d on the fake's clock", i)
	}
	assert.Equal(t, 1, w.fake.MaxConcurrentWrites())
}

func TestRepliesNeverCoalesceAndCarryTheirHiddenMarker(t *testing.T) {
	w := newWorld(t)
	ob := w.outbox(w.app)
	ctx := context.Background()
	require.NoError(t, ob.Reply(ctx, acct, w.vrepo, prNumber, "⚠️ same words", outbox.PriorityOther))
	require.NoError(t, ob.Reply(ctx, acct, w.vrepo, prNumber, "⚠️ same words", outbox.PriorityOther))
	require.NoError(t, ob.Drain(ctx))

	got := w.repo.Comments(prNumber)
	require.Len(t, got, 2)
	for _, c := range got {
		assert.True(t, strings.HasPrefix(c.Body, "⚠️ same words\n\n<!-- dagctl-bot:write="), c.Body)
	}
	assert.NotEqual(t, got[0].Body, got[1].Body, "each reply has its own marker")
}

func TestTheStickyIsEditedInPlaceUnchangedPartsAreNotWrittenAndLeftoverPartsDeleted(t *testing.T) {
	w := newWorld(t)
	ob := w.outbox(w.app)
	ctx := context.Background()
	part := func(n int, text string) string { return comments.PartMarker(n) + "\n" + text }
	put := func(parts ...string) {
		t.Helper()
		require.NoError(t, ob.PutSticky(ctx, acct, w.vrepo, prNumber, parts, outbox.PriorityResult))
		require.NoError(t, ob.Drain(ctx))
	}

	put(part(1, "queued"))
	put(part(1, "running"), part(2, "more"))
	before := w.repo.Comments(prNumber)
	require.Len(t, before, 2)
	w.fake.ResetRequests()
	put(part(1, "running"), part(2, "more"))
	assert.Empty(t, w.writes(), "nothing changed: nothing is written")
	put(part(1, "done"))

	live := w.repo.Comments(prNumber)
	require.Len(t, live, 1, "part 2 is deleted when the comment shrinks")
	assert.Equal(t, part(1, "done"), live[0].Body)
	first, ok := w.repo.Comment(live[0].ID)
	require.True(t, ok)
	assert.Equal(t, []string{part(1, "queued"), part(1, "running")}, first.History, "part 1 is one comment, edited in place")
	assert.Equal(t, []string{
		"PATCH /repos/acme/warehouse/issues/comments/" + itoa(live[0].ID),
		"DELETE /repos/acme/warehouse/issues/comments/" + itoa(before[1].ID),
	}, w.writes())
}

func TestTheStickyAdoptsTheBotsOwnCommentButNotAStrangersCopy(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	body := comments.Marker + "\nwritten before the outbox"
	strangers := w.repo.AddComment(prNumber, "mallory", body)
	botsID, err := w.app.CreateComment(ctx, w.vrepo, prNumber, body)
	require.NoError(t, err)
	// A longer sticky from before the outbox: its second part must go when the new one has one part.
	_, err = w.app.CreateComment(ctx, w.vrepo, prNumber, comments.PartMarker(2)+"\nold part 2")
	require.NoError(t, err)

	ob := w.outbox(w.app)
	require.NoError(t, ob.PutSticky(ctx, acct, w.vrepo, prNumber, []string{comments.Marker + "\nnow"}, outbox.PriorityResult))
	require.NoError(t, ob.Drain(ctx))

	live := w.repo.Comments(prNumber)
	require.Len(t, live, 2)
	assert.Equal(t, strangers, live[0].ID)
	assert.Equal(t, body, live[0].Body, "a stranger's comment that looks like the sticky is not touched")
	assert.Equal(t, botsID, live[1].ID)
	assert.Equal(t, comments.Marker+"\nnow", live[1].Body)
}

func TestTransientFailuresAreRetriedWithBackoffAndRefusalsDropped(t *testing.T) {
	w := newWorld(t)
	ob := w.outbox(w.app)
	ctx := context.Background()
	w.fake.FailNext("POST", "/repos/acme/warehouse/check-runs", 1, githubfake.Failure{Status: http.StatusBadGateway, Message: "Server Error"})
	require.NoError(t, ob.PutStatus(ctx, acct, w.vrepo, w.status(planProd, vcs.StatusSuccess, "plan:1"), outbox.PriorityResult))
	require.NoError(t, ob.Drain(ctx))

	_, ok := w.repo.CheckRun(planProd, w.head)
	require.False(t, ok)
	rows := w.pending()
	require.Len(t, rows, 1, "the failed write waits for its retry")
	assert.Equal(t, 1, rows[0].Attempts)
	failed := w.fake.RequestsMatching("POST", "/repos/acme/warehouse/check-runs")
	require.Len(t, failed, 1)
	assert.Equal(t, failed[0].Time.Add(backoff), rows[0].NotBefore, "due a backoff after the failure")
	require.NoError(t, ob.Drain(ctx))
	assert.Len(t, w.fake.RequestsMatching("POST", "/repos/acme/warehouse/check-runs"), 1, "not retried before its backoff")

	w.fake.Advance(backoff)
	require.NoError(t, ob.Drain(ctx))
	check, ok := w.repo.CheckRun(planProd, w.head)
	require.True(t, ok, "sent on retry")
	assert.Equal(t, "success", check.Conclusion)

	w.fake.FailNext("POST", "/repos/acme/warehouse/issues/1/comments", 1, githubfake.PermissionDenied())
	require.NoError(t, ob.Reply(ctx, acct, w.vrepo, prNumber, "refused", outbox.PriorityOther))
	require.NoError(t, ob.Reply(ctx, acct, w.vrepo, prNumber, "accepted", outbox.PriorityOther))
	require.NoError(t, ob.Drain(ctx))
	live := w.repo.Comments(prNumber)
	require.Len(t, live, 1)
	assert.True(t, strings.HasPrefix(live[0].Body, "accepted"))
	assert.Empty(t, w.pending(), "the refused write is dropped, not retried")
	assert.Contains(t, w.logs.String(), "refused a write for good")
}

// TestAReplyWhoseAnswerWasLostIsNotPostedAgain: the forge created the comment but its answer never arrived (a
// proxy turns it into a 502): the retry finds the comment by its marker.
func TestAReplyWhoseAnswerWasLostIsNotPostedAgain(t *testing.T) {
	w := newWorld(t)
	proxy := newHoldingProxy(t, w.fake.URL(), "POST", "/api/v3/repos/acme/warehouse/issues/1/comments", 1, loseAnswer)
	ob := w.outbox(w.newApp(proxy.URL + "/api/v3"))
	ctx := context.Background()
	require.NoError(t, ob.Reply(ctx, acct, w.vrepo, prNumber, "🚀 Applying `prod`", outbox.PriorityResult))
	require.NoError(t, ob.Drain(ctx))
	require.Len(t, w.repo.Comments(prNumber), 1, "the forge has it")
	require.Len(t, w.pending(), 1, "but the sender does not know")

	w.fake.Advance(backoff)
	require.NoError(t, ob.Drain(ctx))
	assert.Len(t, w.repo.Comments(prNumber), 1, "posted once")
	assert.Empty(t, w.pending())
	assert.Len(t, w.fake.RequestsMatching("POST", "/repos/acme/warehouse/issues/1/comments"), 1)
}

func TestAStatusWhoseCreateLostItsAnswerIsUpdatedNotCreatedAgain(t *testing.T) {
	w := newWorld(t)
	proxy := newHoldingProxy(t, w.fake.URL(), "POST", "/api/v3/repos/acme/warehouse/check-runs", 1, loseAnswer)
	ob := w.outbox(w.newApp(proxy.URL + "/api/v3"))
	ctx := context.Background()
	require.NoError(t, ob.PutStatus(ctx, acct, w.vrepo, w.status(planProd, vcs.StatusRunning, "plan:1"), outbox.PriorityProgress))
	require.NoError(t, ob.Drain(ctx))
	require.Len(t, w.repo.CheckRuns(), 1, "the forge created the check run")
	require.Len(t, w.pending(), 1, "but the sender has no ref for it")

	w.fake.Advance(backoff)
	require.NoError(t, ob.Drain(ctx))
	runs := w.repo.CheckRuns()
	require.Len(t, runs, 1, "the resumed send found the check run by commit, name and external id")
	assert.Equal(t, []string{"in_progress", "in_progress"}, runs[0].Statuses())
	assert.Len(t, w.fake.RequestsMatching("POST", "/repos/acme/warehouse/check-runs"), 1)
	assert.Empty(t, w.pending())
}

// Found by the chaos run (internal/server/chaos): the retry of a create whose answer was lost was dropped in
// favour of a newer state of its key, which then created a second check run and left the first queued.
func TestAStatusWhoseCreateLostItsAnswerAndThenChangedIsCreatedOnce(t *testing.T) {
	w := newWorld(t)
	proxy := newHoldingProxy(t, w.fake.URL(), "POST", "/api/v3/repos/acme/warehouse/check-runs", 1, loseAnswer)
	ob := w.outbox(w.newApp(proxy.URL + "/api/v3"))
	ctx := context.Background()
	// The plan ends while its queued state is being sent: the newer state waits behind the send.
	proxy.BeforeLosing = func() {
		require.NoError(t, ob.PutStatus(ctx, acct, w.vrepo, w.status(planProd, vcs.StatusSuccess, "plan:1"), outbox.PriorityResult))
	}
	require.NoError(t, ob.PutStatus(ctx, acct, w.vrepo, w.status(planProd, vcs.StatusQueued, "plan:1"), outbox.PriorityProgress))
	require.NoError(t, ob.Drain(ctx))
	w.fake.Advance(backoff)
	require.NoError(t, ob.Drain(ctx))
	runs := w.repo.CheckRuns()
	require.Len(t, runs, 1, "the newer state found the check run its key's lost create made")
	assert.Equal(t, "completed", runs[0].Status)
	assert.Empty(t, w.pending())
}

func TestASlottedStatusIsOneCheckRunWhateverItsExternalID(t *testing.T) {
	w := newWorld(t)
	ob := w.outbox(w.app)
	ctx := context.Background()
	const applyDev = "dagctl/apply: dev"
	require.NoError(t, ob.PutStatusSlot(ctx, acct, w.vrepo, w.status(applyDev, vcs.StatusBlocked, ""), "plan:1", outbox.PriorityProgress))
	require.NoError(t, ob.Drain(ctx))
	require.NoError(t, ob.PutStatusSlot(ctx, acct, w.vrepo, w.status(applyDev, vcs.StatusSuccess, "apply:5"), "plan:1", outbox.PriorityResult))
	require.NoError(t, ob.Drain(ctx))

	runs := w.repo.CheckRuns()
	require.Len(t, runs, 1, "the apply run completes the check run the blocked state created")
	assert.Equal(t, "success", runs[0].Conclusion)
	assert.Equal(t, "apply:5", runs[0].ExternalID)
	ref, err := ob.SlotRef(ctx, acct, w.vrepo, w.head, applyDev, "plan:1")
	require.NoError(t, err)
	assert.Equal(t, vcs.StatusRef(itoa(runs[0].ID)), ref)
}

func TestAnAdoptedRefIsWrittenThroughAndAKnownOneKept(t *testing.T) {
	w := newWorld(t)
	ob := w.outbox(w.app)
	ctx := context.Background()
	// A check run an earlier version created and remembered itself.
	id, err := w.app.CreateCheck(ctx, w.vrepo, ghadapter.Check{Name: planProd, HeadSHA: w.head, Status: ghadapter.CheckInProgress})
	require.NoError(t, err)
	require.NoError(t, ob.AdoptSlotRef(ctx, acct, w.vrepo, w.head, planProd, "plan:1", vcs.StatusRef(itoa(id))))
	require.NoError(t, ob.AdoptSlotRef(ctx, acct, w.vrepo, w.head, planProd, "plan:1", "999"), "a known ref is kept")
	require.NoError(t, ob.PutStatusSlot(ctx, acct, w.vrepo, w.status(planProd, vcs.StatusSuccess, "plan:1"), "plan:1", outbox.PriorityResult))
	require.NoError(t, ob.Drain(ctx))
	runs := w.repo.CheckRuns()
	require.Len(t, runs, 1)
	assert.Equal(t, id, runs[0].ID)
	assert.Equal(t, "success", runs[0].Conclusion)
}

func TestAnAccountWithoutAnIDIsAccepted(t *testing.T) {
	w := newWorld(t)
	ob := w.outbox(w.app)
	ctx := context.Background()
	oneToken := outbox.Account{Forge: "github"} // a forge with one configured token has no account id
	require.NoError(t, ob.Reply(ctx, oneToken, w.vrepo, prNumber, "hello", outbox.PriorityResult))
	require.NoError(t, ob.Drain(ctx))
	assert.Len(t, w.repo.Comments(prNumber), 1)
	idle, err := ob.Idle(ctx)
	require.NoError(t, err)
	assert.True(t, idle)
}

func TestRefsOfOldKeysArePruned(t *testing.T) {
	w := newWorld(t)
	ob := w.outbox(w.app)
	ctx := context.Background()
	require.NoError(t, ob.PutStatus(ctx, acct, w.vrepo, w.status(planProd, vcs.StatusRunning, "plan:1"), outbox.PriorityProgress))
	require.NoError(t, ob.Drain(ctx))
	w.fake.Advance(31 * 24 * time.Hour)
	n, err := w.store.PruneOutboxRefs(ctx, w.fake.Now().Add(-30*24*time.Hour))
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)
	// A write of a pruned key starts afresh: on GitHub a new check run.
	require.NoError(t, ob.PutStatus(ctx, acct, w.vrepo, w.status(planProd, vcs.StatusSuccess, "plan:1"), outbox.PriorityResult))
	require.NoError(t, ob.Drain(ctx))
	assert.Len(t, w.repo.CheckRuns(), 2)
}

func TestRunSendsWhatIsEnqueuedWhileItRuns(t *testing.T) {
	w := newWorld(t)
	ob := w.outbox(w.app)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ob.Run(ctx) }()

	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 3 {
				assert.NoError(t, ob.Reply(context.Background(), acct, w.vrepo, prNumber, fmt.Sprintf("reply %d.%d", i, j), outbox.PriorityOther))
			}
		}()
	}
	wg.Wait()
	require.Eventually(t, func() bool { return len(w.repo.Comments(prNumber)) == 9 && len(w.pending()) == 0 },
		time.Minute, 10*time.Millisecond, "every reply is sent without a Drain")
	cancel()
	require.NoError(t, <-done)
	assert.Equal(t, 1, w.fake.MaxConcurrentWrites(), "one account's writes go one at a time")
}

func TestReplyOverheadIsWhatAReplyGrowsBy(t *testing.T) {
	w := newWorld(t)
	ob := w.outbox(w.app)
	ctx := context.Background()
	require.NoError(t, ob.Reply(ctx, acct, w.vrepo, prNumber, "short", outbox.PriorityOther))
	require.NoError(t, ob.Drain(ctx))
	got := w.repo.Comments(prNumber)
	require.Len(t, got, 1)
	assert.Equal(t, len("short")+outbox.ReplyOverhead, len(got[0].Body))
}

func TestAStickyPartDeletedMeanwhileIsCreatedAgain(t *testing.T) {
	w := newWorld(t)
	ob := w.outbox(w.app)
	ctx := context.Background()
	require.NoError(t, ob.PutSticky(ctx, acct, w.vrepo, prNumber, []string{comments.Marker + "\nqueued"}, outbox.PriorityResult))
	require.NoError(t, ob.Drain(ctx))
	live := w.repo.Comments(prNumber)
	require.Len(t, live, 1)
	require.NoError(t, w.app.DeleteComment(ctx, w.vrepo, live[0].ID)) // someone deleted the bot's comment

	require.NoError(t, ob.PutSticky(ctx, acct, w.vrepo, prNumber, []string{comments.Marker + "\ndone"}, outbox.PriorityResult))
	require.NoError(t, ob.Drain(ctx))
	live = w.repo.Comments(prNumber)
	require.Len(t, live, 1)
	assert.Equal(t, comments.Marker+"\ndone", live[0].Body)
	assert.Empty(t, w.pending())
}
