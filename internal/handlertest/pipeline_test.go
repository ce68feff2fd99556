package handlertest_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/testutil"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// statusWrites counts every write the forge received of a status.
func (w *world) statusWrites() int {
	n := 0
	for _, st := range w.forge.Statuses(w.repo) {
		n += len(st.History)
	}
	return n
}

// pipeline delivers a pipeline event and answers what the bot's handler said.
func (w *world) pipeline(ev vcs.PipelineEvent) error {
	w.t.Helper()
	err := w.bot.Handle(context.Background(), vcs.Event{Repo: w.repo, Pipeline: &ev})
	w.bot.Wait()
	w.drainWrites()
	return err
}

// A pipeline that started for the PR's head after the bot's statuses gets them, as the bot last showed them: the
// blocked approval goes into it as it is, never anything the event says. A pipeline of a commit that is no
// open PR's head, of another merge request, or of a head the PR has left, gets nothing.
func TestAPipelineOfThePRsHeadGetsTheBotsStatusesAsShown(t *testing.T) {
	w := newWorld(t)
	w.forge.GitLabReviews(true)
	w.forge.GitLabPipelines()
	pr := w.openPR(1, "more-columns", "alice", testutil.NonBreakingChange)
	require.Equal(t, vcs.StatusBlocked, w.state("dagctl/approval: prod", pr.HeadSHA))
	shown, _ := w.forge.StatusNamed(w.repo, "dagctl/approval: prod", pr.HeadSHA)

	before := w.statusWrites()
	assert.ErrorIs(t, w.pipeline(vcs.PipelineEvent{SHA: w.forge.BranchSHA(w.repo, "main"), Ref: "main", Pipeline: "70", Status: "pending"}), vcs.ErrIgnored)
	assert.ErrorIs(t, w.pipeline(vcs.PipelineEvent{SHA: pr.HeadSHA, Ref: "refs/merge-requests/2/head", Pipeline: "71", Number: 2, Status: "pending"}), vcs.ErrIgnored,
		"another merge request's pipeline is not this one's head pipeline")
	assert.Equal(t, before, w.statusWrites(), "nothing written")

	require.NoError(t, w.pipeline(vcs.PipelineEvent{SHA: pr.HeadSHA, Ref: "refs/merge-requests/1/head", Pipeline: "77", Number: 1, Status: "success"}))
	approval, _ := w.forge.StatusNamed(w.repo, "dagctl/approval: prod", pr.HeadSHA)
	last := approval.History[len(approval.History)-1]
	assert.Equal(t, "77", last.Pipeline)
	assert.Equal(t, vcs.StatusBlocked, last.State, "the pipeline's success is not the approval's")
	assert.Equal(t, shown.Description, last.Description)
	for _, env := range []string{"prod", "dev"} {
		plan, _ := w.forge.StatusNamed(w.repo, "dagctl/plan: "+env, pr.HeadSHA)
		last := plan.History[len(plan.History)-1]
		assert.Equal(t, "77", last.Pipeline, env)
		assert.Equal(t, vcs.StatusSuccess, last.State, env)
	}
	written := w.statusWrites()

	// A branch pipeline (no merge request named) of the head gets them too.
	require.NoError(t, w.pipeline(vcs.PipelineEvent{SHA: pr.HeadSHA, Ref: "more-columns", Pipeline: "78", Status: "pending"}))
	assert.Greater(t, w.statusWrites(), written)

	pushed := w.pushEmptyCommit(pr)
	w.handle(vcs.Event{PullRequest: &vcs.PullRequestEvent{Action: vcs.PRPushed, PR: pushed, Sender: "alice"}})
	written = w.statusWrites()
	assert.ErrorIs(t, w.pipeline(vcs.PipelineEvent{SHA: pr.HeadSHA, Ref: "more-columns", Pipeline: "79", Status: "pending"}), vcs.ErrIgnored,
		"the old head is no longer the PR's")
	assert.Equal(t, written, w.statusWrites())
}
