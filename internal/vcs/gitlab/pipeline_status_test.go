package gitlab_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/forgetest/gitlabfake"
	"github.com/dagctl/dagctl-bot/internal/vcs"
	"github.com/dagctl/dagctl-bot/internal/vcs/gitlab"
)

// The hole: the bot's statuses joined the external pipeline their first write created; the team's CI pipeline
// for the same head starts later, becomes the merge request's head pipeline without them, and "Pipelines must
// succeed" lets the merge request merge while the approval is pending. Written into that pipeline again
// (vcs.Status.Pipeline), the approval holds it.
func TestAPendingApprovalHoldsTheTeamsPipelineThatStartedAfterIt(t *testing.T) {
	e := newEnv(t)
	iid, head := e.openMR(map[string]string{"models/a.sql": "select 1\n"})
	approval := vcs.Status{Name: "dagctl/approval: prod", CommitSHA: head, State: vcs.StatusBlocked, Description: "Waiting for approval: 1 of 1"}
	plan := vcs.Status{Name: "dagctl/plan: prod", CommitSHA: head, State: vcs.StatusSuccess, Description: "1 model changed"}
	planRef, err := e.forge.PutStatus(e.ctx, e.repo, plan, "")
	require.NoError(t, err)
	_, err = e.forge.PutStatus(e.ctx, e.repo, approval, "")
	require.NoError(t, err)
	external := e.project.HeadPipeline(int64(iid))
	allowed, why := e.project.MergeAllowedByPipeline(int64(iid))
	assert.False(t, allowed, "the approval holds the external pipeline: %s", why)

	e.project.SetMember("alice", gitlabfake.Developer)
	team := e.project.StartPipeline(gitlabfake.TeamPipeline{SHA: head, Ref: fmt.Sprintf("refs/merge-requests/%d/head", iid),
		Source: "merge_request_event", MR: int64(iid), User: "alice"})
	e.project.SetJob(team, "test", "success")
	require.Equal(t, team, e.project.HeadPipeline(int64(iid)))
	allowed, why = e.project.MergeAllowedByPipeline(int64(iid))
	require.True(t, allowed, "the hole this closes: the team's pipeline has none of the bot's statuses (%s)", why)

	pipeline := strconv.FormatInt(team, 10)
	for _, st := range []vcs.Status{plan, approval} {
		st.Pipeline = pipeline
		_, err := e.forge.PutStatus(e.ctx, e.repo, st, "")
		require.NoError(t, err, st.Name)
	}
	allowed, why = e.project.MergeAllowedByPipeline(int64(iid))
	assert.False(t, allowed, "the pending approval now holds the head pipeline")
	assert.Equal(t, fmt.Sprintf("head pipeline %d is pending", team), why)
	inTeam := map[string]gitlabfake.CommitStatus{}
	for _, s := range e.project.Statuses(head) {
		if s.PipelineID == team {
			inTeam[s.Name] = s
		}
	}
	assert.Equal(t, "pending", inTeam["dagctl/approval: prod"].Status)
	assert.Equal(t, "success", inTeam["dagctl/plan: prod"].Status)
	assert.Equal(t, "refs/merge-requests/1/head", inTeam["dagctl/approval: prod"].Ref, "the pipeline's ref, not a branch's")
	assert.Equal(t, "pending", e.project.PipelineStatus(external), "the older pipeline keeps what it had")

	// The plan's first status is still the one its ref names: when its result was posted does not move.
	id, _, _ := strings.Cut(string(planRef), "@")
	assert.NotEqual(t, strconv.FormatInt(inTeam["dagctl/plan: prod"].ID, 10), id)

	// Once approved, the bot's next write (no pipeline named) joins the newest pipeline: the team's.
	approval.State, approval.Description = vcs.StatusSuccess, "Approved by bob"
	_, err = e.forge.PutStatus(e.ctx, e.repo, approval, "")
	require.NoError(t, err)
	allowed, why = e.project.MergeAllowedByPipeline(int64(iid))
	assert.True(t, allowed, why)
}

// Each of the pipeline's hooks asks for the statuses again: what the pipeline shows already is not posted, so a
// final state does not start a second status there.
func TestWritingIntoAPipelineAgainPostsNothing(t *testing.T) {
	e := newEnv(t)
	iid, head := e.openMR(map[string]string{"models/a.sql": "select 1\n"})
	team := e.project.StartPipeline(gitlabfake.TeamPipeline{SHA: head, Ref: "change-1"})
	for _, st := range []vcs.Status{
		{Name: "dagctl/plan: prod", CommitSHA: head, State: vcs.StatusSuccess, Description: "done"},
		{Name: "dagctl/approval: prod", CommitSHA: head, State: vcs.StatusBlocked, Description: "Waiting"},
	} {
		st.Pipeline = strconv.FormatInt(team, 10)
		first, err := e.forge.PutStatus(e.ctx, e.repo, st, "")
		require.NoError(t, err)
		posts := len(e.fake.RequestsMatching("POST", "/projects/*/statuses/*"))
		again, err := e.forge.PutStatus(e.ctx, e.repo, st, first)
		require.NoError(t, err)
		assert.Equal(t, first, again, st.Name)
		assert.Equal(t, posts, len(e.fake.RequestsMatching("POST", "/projects/*/statuses/*")), "nothing posted again: %s", st.Name)
	}
	assert.Len(t, e.project.Statuses(head), 2)
	assert.Equal(t, team, e.project.HeadPipeline(int64(iid)))
}

// A pipeline that is not of the commit is GitLab's 404, which no retry changes; a pipeline id that is not one is
// refused before anything is sent.
func TestAStatusForAnotherCommitsPipelineIsRefused(t *testing.T) {
	e := newEnv(t)
	_, head := e.openMR(map[string]string{"models/a.sql": "select 1\n"})
	_, other := e.openMR(map[string]string{"models/b.sql": "select 2\n"})
	elsewhere := e.project.StartPipeline(gitlabfake.TeamPipeline{SHA: other, Ref: "change-2"})
	_, err := e.forge.PutStatus(e.ctx, e.repo, vcs.Status{Name: "dagctl/plan: prod", CommitSHA: head, State: vcs.StatusSuccess,
		Pipeline: strconv.FormatInt(elsewhere, 10)}, "")
	assert.ErrorIs(t, err, vcs.ErrNotFound)
	assert.Empty(t, e.project.Statuses(head), "nothing written elsewhere either")
	_, err = e.forge.PutStatus(e.ctx, e.repo, vcs.Status{Name: "dagctl/plan: prod", CommitSHA: head, State: vcs.StatusSuccess, Pipeline: "x"}, "")
	assert.ErrorIs(t, err, vcs.ErrInvalid)
}

// The fake's Pipeline Hook is one the adapter's parser reads as GitLab's.
func TestTheFakesPipelineHookParses(t *testing.T) {
	e := newEnv(t)
	iid, head := e.openMR(map[string]string{"models/a.sql": "select 1\n"})
	e.project.SetMember("alice", gitlabfake.Developer)
	team := e.project.StartPipeline(gitlabfake.TeamPipeline{SHA: head, Ref: "refs/merge-requests/1/head", Source: "merge_request_event",
		MR: int64(iid), User: "alice"})
	event, body := e.project.PipelineHook(team)
	ev, err := gitlab.WebhookParser(botUser)(event, body)
	require.NoError(t, err)
	require.NotNil(t, ev.Pipeline)
	assert.Equal(t, vcs.PipelineEvent{SHA: head, Ref: "refs/merge-requests/1/head", Pipeline: strconv.FormatInt(team, 10), Number: iid,
		Status: "pending"}, *ev.Pipeline)
	assert.Equal(t, "acme/data/warehouse", ev.Repo.FullName())

	// The external pipeline the bot's first status created is the bot's own: its hook is ignored.
	_, err = e.forge.PutStatus(e.ctx, e.repo, vcs.Status{Name: "dagctl/plan: dev", CommitSHA: e.git.SHA("main"), State: vcs.StatusRunning}, "")
	require.NoError(t, err)
	pipelines := e.project.Pipelines(e.git.SHA("main"))
	require.Len(t, pipelines, 1)
	event, body = e.project.PipelineHook(pipelines[0])
	_, err = gitlab.WebhookParser(botUser)(event, body)
	assert.ErrorIs(t, err, vcs.ErrIgnored)
}

// The pipeline named is the one written into, whichever pipeline of the commit is newest.
func TestAStatusJoinsThePipelineItNames(t *testing.T) {
	e := newEnv(t)
	_, head := e.openMR(map[string]string{"models/a.sql": "select 1\n"})
	named := e.project.StartPipeline(gitlabfake.TeamPipeline{SHA: head, Ref: "refs/merge-requests/1/head", Source: "merge_request_event", MR: 1})
	newest := e.project.StartPipeline(gitlabfake.TeamPipeline{SHA: head, Ref: "change-1"})
	_, err := e.forge.PutStatus(e.ctx, e.repo, vcs.Status{Name: "dagctl/approval: prod", CommitSHA: head, State: vcs.StatusBlocked,
		Description: "Waiting", Pipeline: strconv.FormatInt(named, 10)}, "")
	require.NoError(t, err)
	got := e.project.Statuses(head)
	require.Len(t, got, 1)
	assert.Equal(t, named, got[0].PipelineID)
	assert.NotEqual(t, newest, got[0].PipelineID)
	assert.Equal(t, "refs/merge-requests/1/head", got[0].Ref)
}
