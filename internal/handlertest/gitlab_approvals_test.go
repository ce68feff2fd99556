package handlertest_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/approval"
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

	w.review(pr, "bob", vcs.ReviewApproved)
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
