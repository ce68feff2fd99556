package server_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/forgetest/gitlabfake"
)

// The team's own pipeline for a merge request's head, created after the bot's statuses, becomes the head
// pipeline without them: its Pipeline Hook makes the bot write them into it, so a pending approval holds the
// merge under "Pipelines must succeed". A hook of a commit that is no merge request's head, or of the bot's own
// external pipeline, writes nothing.
func TestTheTeamsLaterPipelineCarriesThePendingApproval(t *testing.T) {
	w := newGitLabAlone(t, true)
	iid, head, hook := w.openMR("x", "alice", nonBreaking)
	status, _ := w.post("/webhooks/gitlab", glDelivery{event: "Merge Request Hook", token: glHookSecret, uuid: "open", body: hook.body(t)})
	require.Equal(t, http.StatusAccepted, status)
	w.settle()
	approval, ok := w.planStatus(head, "dagctl/approval: prod")
	require.True(t, ok, "prod is protected: its approval waits")
	require.Equal(t, "pending", approval.Status)
	external := w.project.HeadPipeline(iid)

	// The bot's own external pipeline: its hook is ignored.
	before := len(w.project.Statuses(head))
	event, body := w.project.PipelineHook(external)
	status, _ = w.post("/webhooks/gitlab", glDelivery{event: event, token: glHookSecret, uuid: "own", body: body})
	require.Equal(t, http.StatusAccepted, status)
	// A pipeline of a commit that is no merge request's head (main's).
	mainPipeline := w.project.StartPipeline(gitlabfake.TeamPipeline{SHA: w.base, Ref: "main", User: "alice"})
	event, body = w.project.PipelineHook(mainPipeline)
	status, _ = w.post("/webhooks/gitlab", glDelivery{event: event, token: glHookSecret, uuid: "main", body: body})
	require.Equal(t, http.StatusAccepted, status)
	w.settle()
	assert.Len(t, w.project.Statuses(head), before, "nothing written")
	assert.Empty(t, w.project.Statuses(w.base), "nothing written")

	team := w.project.StartPipeline(gitlabfake.TeamPipeline{SHA: head, Ref: fmt.Sprintf("refs/merge-requests/%d/head", iid),
		Source: "merge_request_event", MR: iid, User: "alice", Jobs: map[string]string{"test": "success"}})
	require.Equal(t, team, w.project.HeadPipeline(iid))
	allowed, _ := w.project.MergeAllowedByPipeline(iid)
	require.True(t, allowed, "the hole: the team's pipeline has none of the bot's statuses yet")

	event, body = w.project.PipelineHook(team)
	status, _ = w.post("/webhooks/gitlab", glDelivery{event: event, token: glHookSecret, uuid: "team", body: body})
	require.Equal(t, http.StatusAccepted, status)
	w.settle()
	allowed, why := w.project.MergeAllowedByPipeline(iid)
	assert.False(t, allowed, "the pending approval holds the head pipeline: %s", why)
	var inTeam []string
	for _, s := range w.project.Statuses(head) {
		if s.PipelineID == team && !s.Retried {
			inTeam = append(inTeam, s.Name+"="+s.Status)
		}
	}
	assert.Contains(t, inTeam, "dagctl/approval: prod=pending")
	assert.Contains(t, inTeam, "dagctl/plan: prod=success")
}
