package gitlab_test

import (
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/vcs"
	"github.com/dagctl/dagctl-bot/internal/vcs/gitlab"
)

// pipelineHook is GitLab's real Pipeline Hook (testdata/pipeline.json, from client-go's fixtures) of a
// pipeline in acme/data/warehouse on head, started by user from source.
func pipelineHook(t *testing.T, source, status, user string) *hook {
	t.Helper()
	raw, err := os.ReadFile("testdata/pipeline.json")
	require.NoError(t, err)
	h := &hook{event: "Pipeline Hook"}
	require.NoError(t, json.Unmarshal(raw, &h.doc))
	return h.project().set("object_attributes.id", 4711).set("object_attributes.sha", head).
		set("object_attributes.ref", "refs/merge-requests/3/head").set("object_attributes.source", source).
		set("object_attributes.status", status).set("merge_request.iid", 3).set("user.username", user)
}

func TestPipelineHooks(t *testing.T) {
	parse := gitlab.WebhookParser("dagctl-bot")
	t.Run("the team's merge request pipeline says where the bot's statuses must go, and nothing else", func(t *testing.T) {
		for _, status := range []string{"created", "pending", "running", "success"} {
			h := pipelineHook(t, "merge_request_event", status, "alice")
			ev, err := parse(h.event, h.body())
			require.NoError(t, err, status)
			require.NotNil(t, ev.Pipeline, status)
			assert.Equal(t, vcs.PipelineEvent{SHA: head, Ref: "refs/merge-requests/3/head", Pipeline: "4711", Number: 3, Status: status}, *ev.Pipeline)
			assert.Equal(t, vcs.Repo{Forge: "gitlab", Owner: "acme/data", Name: "warehouse", CloneURL: cloneURL, DefaultBranch: "main"}, ev.Repo)
			assert.Equal(t, "gitlab:acme/data/warehouse#3", ev.OrderingKey())
			assert.Equal(t, ev.OrderingKey(), gitlab.OrderingKey(h.body()))
		}
	})
	t.Run("a branch pipeline names no merge request and is ordered with the project", func(t *testing.T) {
		h := pipelineHook(t, "push", "pending", "alice").set("object_attributes.ref", "more-columns").set("merge_request", nil)
		ev, err := parse(h.event, h.body())
		require.NoError(t, err)
		require.NotNil(t, ev.Pipeline)
		assert.Equal(t, 0, ev.Pipeline.Number)
		assert.Equal(t, "more-columns", ev.Pipeline.Ref)
		assert.Equal(t, "gitlab:acme/data/warehouse", ev.OrderingKey())
		assert.Equal(t, ev.OrderingKey(), gitlab.OrderingKey(h.body()))
	})
	t.Run("the external pipeline the bot's own statuses created is ignored", func(t *testing.T) {
		h := pipelineHook(t, "external", "pending", "DagCtl-Bot")
		_, err := parse(h.event, h.body())
		assert.ErrorIs(t, err, vcs.ErrIgnored)
		// Without the bot's user every external pipeline is taken for the bot's.
		_, err = gitlab.ParseWebhook(h.event, pipelineHook(t, "external", "pending", "other-tool").body())
		assert.ErrorIs(t, err, vcs.ErrIgnored)
		// Another tool's external pipeline can be the head pipeline: the bot's statuses must join it.
		ev, err := parse(h.event, pipelineHook(t, "external", "pending", "other-tool").body())
		require.NoError(t, err)
		assert.Equal(t, "4711", ev.Pipeline.Pipeline)
	})
	t.Run("a tag's pipeline is ignored", func(t *testing.T) {
		h := pipelineHook(t, "push", "pending", "alice").set("object_attributes.tag", true)
		_, err := parse(h.event, h.body())
		assert.ErrorIs(t, err, vcs.ErrIgnored)
	})
	t.Run("a pipeline without a full commit or an id is an error naming the field", func(t *testing.T) {
		_, err := parse("Pipeline Hook", pipelineHook(t, "push", "pending", "alice").set("object_attributes.sha", "bcbb5ec").body())
		require.Error(t, err)
		assert.False(t, errors.Is(err, vcs.ErrIgnored))
		assert.Contains(t, err.Error(), "object_attributes.sha")
		_, err = parse("Pipeline Hook", pipelineHook(t, "push", "pending", "alice").set("object_attributes.id", 0).body())
		require.Error(t, err)
		assert.Contains(t, err.Error(), "object_attributes.id")
	})
}
