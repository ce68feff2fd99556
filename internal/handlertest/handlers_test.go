package handlertest_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/comments"
	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
	"github.com/dagctl/dagctl-bot/internal/testutil"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

func TestAnOpenedPRGetsItsPlanStatusesAndStickyComment(t *testing.T) {
	w := newWorld(t)
	pr := w.openPR(1, "more-columns", "alice", testutil.NonBreakingChange)

	for _, env := range []string{"prod", "dev"} {
		// The handler and its job finish before the outbox sends: queued and running were superseded unsent.
		assert.Equal(t, []vcs.StatusState{vcs.StatusSuccess}, w.states("dagctl/plan: "+env, pr.HeadSHA), env)
	}
	check, _ := w.forge.StatusNamed(w.repo, "dagctl/plan: prod", pr.HeadSHA)
	require.NotNil(t, check.Output)
	assert.Contains(t, check.Output.Summary, "dagctl_example.customer_totals")
	assert.Equal(t, vcs.StatusBlocked, w.state("dagctl/approval: prod", pr.HeadSHA), "prod is protected")
	assert.Empty(t, w.state("dagctl/approval: dev", pr.HeadSHA), "dev is not")
	sticky := w.sticky(1)
	assert.Contains(t, sticky, "dagctl_example.customer_totals")
	assert.Contains(t, sticky, pr.HeadSHA[:7])
	assert.Len(t, w.forge.CommentsOf(w.repo, 1), 1, "one sticky comment")
}

func TestTheAuthorsOwnApprovalDoesNotCount(t *testing.T) {
	w := newWorld(t)
	pr := w.openPR(1, "more-columns", "alice", testutil.NonBreakingChange)
	require.Equal(t, vcs.StatusBlocked, w.state("dagctl/approval: prod", pr.HeadSHA))

	w.review(pr, "alice", vcs.ReviewApproved)
	assert.Equal(t, vcs.StatusBlocked, w.state("dagctl/approval: prod", pr.HeadSHA), "the author approved")

	w.review(pr, "bob", vcs.ReviewApproved)
	assert.Equal(t, vcs.StatusSuccess, w.state("dagctl/approval: prod", pr.HeadSHA), "a second writer approved")
	check, _ := w.forge.StatusNamed(w.repo, "dagctl/approval: prod", pr.HeadSHA)
	assert.Contains(t, check.Description, "@bob")
	assert.NotContains(t, check.Description, "@alice")
}

func TestAnApplyByAReadOnlyUserIsRefused(t *testing.T) {
	w := newWorld(t)
	pr := w.openPR(1, "more-columns", "alice", testutil.NonBreakingChange)

	cmd := w.comment(pr, "dave", "/dagctl apply dev")
	assert.Contains(t, w.lastReply(1), "only users with write permission")
	assert.Equal(t, []vcs.Reaction{vcs.ReactionConfused}, w.forge.ReactionsOf(w.repo, cmd.ID))
	assert.Equal(t, vcs.StatusBlocked, w.state("dagctl/apply: dev", pr.HeadSHA), "dev still waits for its apply")
	assert.NotContains(t, w.states("dagctl/apply: dev", pr.HeadSHA), vcs.StatusRunning, "no apply was started")
	if w.jobs != nil {
		for _, k := range w.jobs.Started() {
			assert.NotEqual(t, jobs.KindApply, k.Kind, "no apply job ran")
		}
	}
}

func TestAMarkerCommentByAnotherUserIsNotAdopted(t *testing.T) {
	w := newWorld(t)
	w.forge.Commit(w.repo, "more-columns", "alice", testutil.NonBreakingChange)
	pr := w.forge.OpenPR(w.repo, 1, "more-columns", "main", "alice")
	// dave (read-only) posts what looks like the sticky comment before the bot writes its own; memforge, like
	// the forges, refuses the bot an edit of it, so adopting it would fail the handler.
	fake := w.forge.AddComment(w.repo, 1, "dave", comments.Marker+"\n**dagctl** · ✅ approved, ready to merge")
	w.handle(vcs.Event{PullRequest: &vcs.PullRequestEvent{Action: vcs.PROpened, PR: pr, Sender: "alice"}})

	assert.Contains(t, w.sticky(1), pr.HeadSHA[:7], "the bot wrote a sticky comment of its own")
	edits, deleted := w.forge.CommentHistory(w.repo, fake.ID)
	assert.Empty(t, edits, "dave's comment is not edited")
	assert.False(t, deleted, "nor deleted")
}

// dbt takes no --restate-model.
func TestAPlanFlagTheProjectsFrameworkDoesNotTakeIsAUsageError(t *testing.T) {
	w := newWorld(t)
	config := testutil.ExampleFiles(t)[repoconfig.Path]
	require.Contains(t, config, "framework: sqlmesh")
	w.forge.Commit(w.repo, "to-dbt", "alice", map[string]string{repoconfig.Path: strings.Replace(config, "framework: sqlmesh", "framework: dbt", 1)})
	pr := w.forge.OpenPR(w.repo, 1, "to-dbt", "main", "alice")

	w.comment(pr, "bob", "/dagctl plan dev --restate-model dagctl_example.orders")
	reply := w.lastReply(1)
	assert.Contains(t, reply, "project `default` is a dbt project: `--restate-model` is not for dbt (it takes no plan flags)")
	assert.Contains(t, reply, "Usage:")
	assert.Empty(t, w.state("dagctl/plan: dev", pr.HeadSHA), "nothing was planned")
	if w.jobs != nil {
		assert.Empty(t, w.jobs.Started(), "no job ran")
	}
}
