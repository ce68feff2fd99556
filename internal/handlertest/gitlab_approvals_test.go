package handlertest_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/approval"
	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/testutil"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// GitLab's approvals name no commit; where the API gives approved_at, that time binds the approval to the plan.
func TestAGitLabApprovalWithTheAPIsTimeCountsAfterThePlansResult(t *testing.T) {
	w := newWorld(t)
	w.forge.GitLabReviews(true)
	pr := w.openPR(1, "more-columns", "alice", testutil.NonBreakingChange)
	require.Equal(t, vcs.StatusBlocked, w.state("dagctl/approval: prod", pr.HeadSHA))

	w.review(pr, "alice", vcs.ReviewApproved)
	assert.Equal(t, vcs.StatusBlocked, w.state("dagctl/approval: prod", pr.HeadSHA), "the author's approval does not count")

	w.review(pr, "bob", vcs.ReviewApproved)
	assert.Equal(t, vcs.StatusSuccess, w.state("dagctl/approval: prod", pr.HeadSHA), "bob approved after the result")
	check, _ := w.forge.StatusNamed(w.repo, "dagctl/approval: prod", pr.HeadSHA)
	assert.Contains(t, check.Description, "@bob")
	assert.NotContains(t, check.Description, "@alice")
}

// An approval dated before the plan's result was posted approved something else.
func TestAGitLabApprovalGivenBeforeThePlansResultDoesNotCount(t *testing.T) {
	w := newWorld(t)
	w.forge.GitLabReviews(true)
	w.forge.Commit(w.repo, "more-columns", "alice", testutil.NonBreakingChange)
	pr := w.forge.OpenPR(w.repo, 1, "more-columns", "main", "alice")
	w.forge.Review(w.repo, 1, "bob", vcs.ReviewApproved, "") // before any plan
	w.handle(vcs.Event{PullRequest: &vcs.PullRequestEvent{Action: vcs.PROpened, PR: pr, Sender: "alice"}})

	assert.Equal(t, vcs.StatusBlocked, w.state("dagctl/approval: prod", pr.HeadSHA))
	check, _ := w.forge.StatusNamed(w.repo, "dagctl/approval: prod", pr.HeadSHA)
	require.NotNil(t, check.Output)
	assert.Contains(t, check.Output.Summary, "bob approved before plan")
}

// The API lists an approver but gives no time, and no event dated it: it does not count, and the status says why.
func TestAGitLabApprovalWithNoKnownTimeDoesNotCountAndTheStatusSaysWhy(t *testing.T) {
	w := newWorld(t)
	w.forge.GitLabReviews(false)
	pr := w.openPR(1, "more-columns", "alice", testutil.NonBreakingChange)

	w.forge.Review(w.repo, pr.Number, "bob", vcs.ReviewApproved, "") // its hook never reached the bot
	w.gitLabHook(pr, "dave", vcs.ReviewDismissed, w.forge.Now())     // another hook makes the bot evaluate again
	assert.Equal(t, vcs.StatusBlocked, w.state("dagctl/approval: prod", pr.HeadSHA))
	check, _ := w.forge.StatusNamed(w.repo, "dagctl/approval: prod", pr.HeadSHA)
	require.NotNil(t, check.Output)
	assert.Contains(t, check.Output.Summary, "bob "+approval.NoKnownTime)
}

// A push voids an approval even where the project keeps approvals on push: the API still lists bob, dated before
// the new head's plan was posted, so it counts for none of the new head's plans.
func TestAGitLabApprovalThenAPushIsVoidForTheNewHead(t *testing.T) {
	w := newWorld(t)
	w.forge.GitLabReviews(true)
	pr := w.openPR(1, "more-columns", "alice", testutil.NonBreakingChange)
	w.review(pr, "bob", vcs.ReviewApproved)
	require.Equal(t, vcs.StatusSuccess, w.state("dagctl/approval: prod", pr.HeadSHA))

	pushed := w.pushEmptyCommit(pr) // the same files: the same plan, which a GitHub review of the old commit would not approve either
	w.handle(vcs.Event{PullRequest: &vcs.PullRequestEvent{Action: vcs.PRPushed, PR: pushed, Sender: "alice"}})

	require.NotEqual(t, pr.HeadSHA, pushed.HeadSHA)
	assert.Equal(t, vcs.StatusBlocked, w.state("dagctl/approval: prod", pushed.HeadSHA), "bob's approval was of the older head")
	check, _ := w.forge.StatusNamed(w.repo, "dagctl/approval: prod", pushed.HeadSHA)
	require.NotNil(t, check.Output)
	assert.Contains(t, check.Output.Summary, "bob approved before plan")
}

// gitLabHook delivers GitLab's Merge Request Hook of an approval (or, dismissed, its withdrawal) by user at the
// forge's time at: no commit, as GitLab's hooks name none.
func (w *world) gitLabHook(pr vcs.PullRequest, user string, state vcs.ReviewState, at time.Time) {
	w.t.Helper()
	action := "submitted"
	if state == vcs.ReviewDismissed {
		action = "dismissed"
	}
	w.handle(vcs.Event{Review: &vcs.ReviewEvent{Action: action, PR: pr, Review: vcs.Review{User: user, State: state, SubmittedAt: at}}})
}

// gitLabApprove is user approving on the forge (its approvals API lists them, with no time) and its hook.
func (w *world) gitLabApprove(pr vcs.PullRequest, user string) time.Time {
	w.t.Helper()
	rv := w.forge.Review(w.repo, pr.Number, user, vcs.ReviewApproved, "")
	w.gitLabHook(pr, user, vcs.ReviewApproved, rv.SubmittedAt)
	return rv.SubmittedAt
}

// gitLabUnapprove is user withdrawing their approval on the forge (the API lists them no more) and its hook.
func (w *world) gitLabUnapprove(pr vcs.PullRequest, user string) {
	w.t.Helper()
	w.gitLabHook(pr, user, vcs.ReviewDismissed, w.forge.Unapprove(w.repo, pr.Number, user))
}

func (w *world) storedReviewEvents(pr vcs.PullRequest) []db.ReviewEvent {
	w.t.Helper()
	events, err := w.store.ReviewEvents(context.Background(), w.repo.Forge, w.repo.FullName(), pr.Number)
	require.NoError(w.t, err)
	return events
}

func (w *world) approvalSummary(sha string) string {
	w.t.Helper()
	check, ok := w.forge.StatusNamed(w.repo, "dagctl/approval: prod", sha)
	require.True(w.t, ok)
	require.NotNil(w.t, check.Output)
	return check.Output.Summary
}

// Without approved_at, the approval's hook dates it: one whose hook came after the plan's result counts; the
// author's own never does.
func TestAGitLabApprovalDatedByItsHookCountsAfterThePlansResult(t *testing.T) {
	w := newWorld(t)
	w.forge.GitLabReviews(false)
	pr := w.openPR(1, "more-columns", "alice", testutil.NonBreakingChange)
	require.Equal(t, vcs.StatusBlocked, w.state("dagctl/approval: prod", pr.HeadSHA))

	w.gitLabApprove(pr, "alice")
	assert.Equal(t, vcs.StatusBlocked, w.state("dagctl/approval: prod", pr.HeadSHA), "the author's approval does not count")
	assert.Contains(t, w.approvalSummary(pr.HeadSHA), "alice is the PR author")

	w.gitLabApprove(pr, "bob")
	assert.Equal(t, vcs.StatusSuccess, w.state("dagctl/approval: prod", pr.HeadSHA), "bob's hook came after the result")
	check, _ := w.forge.StatusNamed(w.repo, "dagctl/approval: prod", pr.HeadSHA)
	assert.Contains(t, check.Description, "@bob")
	assert.NotContains(t, check.Description, "@alice")
}

// An approval whose hook came before the plan's result approved something else, though the API lists it.
func TestAGitLabApprovalWhoseHookCameBeforeThePlansResultDoesNotCount(t *testing.T) {
	w := newWorld(t)
	w.forge.GitLabReviews(false)
	w.forge.Commit(w.repo, "more-columns", "alice", testutil.NonBreakingChange)
	pr := w.forge.OpenPR(w.repo, 1, "more-columns", "main", "alice")
	w.gitLabApprove(pr, "bob") // before any plan: stored, nothing to evaluate
	require.Len(t, w.storedReviewEvents(pr), 1)
	w.handle(vcs.Event{PullRequest: &vcs.PullRequestEvent{Action: vcs.PROpened, PR: pr, Sender: "alice"}})

	assert.Equal(t, vcs.StatusBlocked, w.state("dagctl/approval: prod", pr.HeadSHA))
	assert.Contains(t, w.approvalSummary(pr.HeadSHA), "bob approved before plan")
}

// The project keeps approvals on push (memforge resets none), so the API still lists bob after the push; his
// hook came before the new head's plan, so he approved the old head only. Approving again counts.
func TestAGitLabApprovalDatedByItsHookIsVoidAfterAPush(t *testing.T) {
	w := newWorld(t)
	w.forge.GitLabReviews(false)
	pr := w.openPR(1, "more-columns", "alice", testutil.NonBreakingChange)
	w.gitLabApprove(pr, "bob")
	require.Equal(t, vcs.StatusSuccess, w.state("dagctl/approval: prod", pr.HeadSHA))

	pushed := w.pushEmptyCommit(pr)
	w.handle(vcs.Event{PullRequest: &vcs.PullRequestEvent{Action: vcs.PRPushed, PR: pushed, Sender: "alice"}})
	require.NotEqual(t, pr.HeadSHA, pushed.HeadSHA)
	reviews, err := w.forge.Reviews(context.Background(), w.repo, pr.Number)
	require.NoError(t, err)
	require.Len(t, reviews, 1, "the API still lists bob")
	assert.Equal(t, vcs.StatusBlocked, w.state("dagctl/approval: prod", pushed.HeadSHA), "bob's approval was of the older head")
	assert.Contains(t, w.approvalSummary(pushed.HeadSHA), "bob approved before plan")

	w.gitLabUnapprove(pushed, "bob")
	w.gitLabApprove(pushed, "bob")
	assert.Equal(t, vcs.StatusSuccess, w.state("dagctl/approval: prod", pushed.HeadSHA), "approved again after the new plan")
}

// An unapproval hook voids the approval though the API (eventually consistent) still lists it; a redelivery of
// the older approval hook does not revive it.
func TestAGitLabUnapprovalVoidsTheApprovalTheAPIStillLists(t *testing.T) {
	w := newWorld(t)
	w.forge.GitLabReviews(false)
	pr := w.openPR(1, "more-columns", "alice", testutil.NonBreakingChange)
	approvedAt := w.gitLabApprove(pr, "bob")
	require.Equal(t, vcs.StatusSuccess, w.state("dagctl/approval: prod", pr.HeadSHA))

	w.forge.Advance(time.Second)
	w.gitLabHook(pr, "bob", vcs.ReviewDismissed, w.forge.Now()) // the API has not caught up: it lists bob
	assert.Equal(t, vcs.StatusBlocked, w.state("dagctl/approval: prod", pr.HeadSHA), "the withdrawal wins")
	assert.Contains(t, w.approvalSummary(pr.HeadSHA), "bob review was dismissed")

	w.gitLabHook(pr, "bob", vcs.ReviewApproved, approvedAt) // GitLab retries the old hook
	assert.Equal(t, vcs.StatusBlocked, w.state("dagctl/approval: prod", pr.HeadSHA), "a redelivery revives nothing")
	assert.Len(t, w.storedReviewEvents(pr), 2)
}

// A redelivered approval hook is stored once and counts once.
func TestARedeliveredGitLabApprovalHookIsStoredOnce(t *testing.T) {
	w := newWorld(t)
	w.forge.GitLabReviews(false)
	pr := w.openPR(1, "more-columns", "alice", testutil.NonBreakingChange)
	at := w.gitLabApprove(pr, "bob")
	w.gitLabHook(pr, "bob", vcs.ReviewApproved, at)

	events := w.storedReviewEvents(pr)
	require.Len(t, events, 1)
	assert.Equal(t, db.ReviewEvent{Forge: w.repo.Forge, Repo: w.repo.FullName(), PR: 1, User: "bob", Approved: true, At: at,
		ReceivedAt: events[0].ReceivedAt}, events[0])
	assert.Equal(t, vcs.StatusSuccess, w.state("dagctl/approval: prod", pr.HeadSHA))
}

// The API decides who approves: a hook of a user it does not list counts nothing, a comment saying "approved"
// is no event, and the bot's own approval hook is not stored.
func TestAGitLabHookOfAUserTheAPIDoesNotListCountsNothing(t *testing.T) {
	w := newWorld(t)
	w.forge.GitLabReviews(false)
	pr := w.openPR(1, "more-columns", "alice", testutil.NonBreakingChange)

	w.gitLabHook(pr, "carol", vcs.ReviewApproved, w.forge.Now().Add(time.Second)) // an admin, but the API lists no one
	assert.Equal(t, vcs.StatusBlocked, w.state("dagctl/approval: prod", pr.HeadSHA))
	check, _ := w.forge.StatusNamed(w.repo, "dagctl/approval: prod", pr.HeadSHA)
	assert.NotContains(t, check.Description, "carol")

	w.comment(pr, "carol", "approved\n/approve")
	w.handle(vcs.Event{Review: &vcs.ReviewEvent{Action: "submitted", PR: pr,
		Review: vcs.Review{User: "dagctl-bot", State: vcs.ReviewApproved, SubmittedAt: w.forge.Now(), ByBot: true}}})
	events := w.storedReviewEvents(pr)
	require.Len(t, events, 1, "only carol's hook")
	assert.Equal(t, "carol", events[0].User)
	assert.Equal(t, vcs.StatusBlocked, w.state("dagctl/approval: prod", pr.HeadSHA))
}

// GitLab's merge request hooks carry no base commit: the plan takes it from the forge's PR, since an apply on
// merge compares the content from where the PR forked.
func TestAPlanOfAnEventWithoutItsBaseTakesTheForgesBase(t *testing.T) {
	w := newWorld(t)
	w.forge.Commit(w.repo, "more-columns", "alice", testutil.NonBreakingChange)
	pr := w.forge.OpenPR(w.repo, 1, "more-columns", "main", "alice")
	require.NotEmpty(t, pr.BaseSHA)
	hook := pr
	hook.BaseSHA, hook.Author = "", ""
	w.handle(vcs.Event{PullRequest: &vcs.PullRequestEvent{Action: vcs.PROpened, PR: hook, Sender: "alice"}})

	plans, err := w.store.ListPlansByPR(context.Background(), w.repo.Forge, w.repo.FullName(), 1)
	require.NoError(t, err)
	require.NotEmpty(t, plans)
	for _, p := range plans {
		assert.Equal(t, pr.BaseSHA, p.BaseSHA, p.Environment)
	}
}
