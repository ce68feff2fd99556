package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/forgetest/e2e"
	"github.com/dagctl/dagctl-bot/internal/forgetest/githubfake"
	"github.com/dagctl/dagctl-bot/internal/server"
	"github.com/dagctl/dagctl-bot/internal/serverconfig"
	"github.com/dagctl/dagctl-bot/internal/vcs"
	ghadapter "github.com/dagctl/dagctl-bot/internal/vcs/github"
	"github.com/dagctl/dagctl-bot/internal/webhook"
)

// labForge is a forge registered by this test alone, the way GitLab's adapter will be: GitLab's delivery
// headers, its shared-token check and a parser of its merge request hooks. Its port is the real GitHub adapter
// over the world's fake (a stand-in for GitLab's API), so that the bot's whole path runs; nothing in intake,
// dispatch or the bot names it.
const (
	labForgeName  = "labforge"
	labForgeToken = "lab-token"
)

func labForge(t *testing.T, w *world) server.Forge {
	gh := w.GitHub()
	port, err := ghadapter.NewInstallation(ghadapter.Config{
		AppID: appID, PrivateKey: gh.PEM, APIURL: gh.Fake.APIURL() + "/", Now: gh.Fake.Now, Sleep: gh.Fake.Sleep,
	}, installationID)
	require.NoError(t, err)
	return server.Forge{
		Name: labForgeName,
		Intake: webhook.Source{
			EventHeader:     "X-Gitlab-Event",
			DeliveryHeaders: []string{"Idempotency-Key", "X-Gitlab-Event-UUID"},
			AuthHeader:      "X-Gitlab-Token",
			Verify:          webhook.VerifyToken,
			OrderingKey: func(body []byte) string {
				ev, err := parseMergeRequestHook("Merge Request Hook", body)
				if err != nil {
					return labForgeName + ":unparsable"
				}
				return ev.OrderingKey()
			},
		},
		Parse:  parseMergeRequestHook,
		Port:   port,
		Secret: []byte(labForgeToken),
	}
}

// parseMergeRequestHook reads the fields of a GitLab "Merge Request Hook" the bot needs.
func parseMergeRequestHook(event string, body []byte) (vcs.Event, error) {
	if event != "Merge Request Hook" {
		return vcs.Event{}, vcs.ErrIgnored
	}
	var hook struct {
		User    struct{ Username string }
		Project struct {
			PathWithNamespace string `json:"path_with_namespace"`
			GitHTTPURL        string `json:"git_http_url"`
			DefaultBranch     string `json:"default_branch"`
		}
		Attrs struct {
			IID             int    `json:"iid"`
			Action          string `json:"action"`
			Title           string `json:"title"`
			SourceBranch    string `json:"source_branch"`
			TargetBranch    string `json:"target_branch"`
			SourceProjectID int    `json:"source_project_id"`
			TargetProjectID int    `json:"target_project_id"`
			Source          struct {
				GitHTTPURL string `json:"git_http_url"`
			}
			LastCommit struct{ ID string } `json:"last_commit"`
		} `json:"object_attributes"`
	}
	if err := json.Unmarshal(body, &hook); err != nil {
		return vcs.Event{}, err
	}
	if hook.Attrs.Action != "open" {
		return vcs.Event{}, vcs.ErrIgnored
	}
	i := strings.LastIndex(hook.Project.PathWithNamespace, "/")
	repo := vcs.Repo{Forge: labForgeName, Owner: hook.Project.PathWithNamespace[:i], Name: hook.Project.PathWithNamespace[i+1:],
		CloneURL: hook.Project.GitHTTPURL, DefaultBranch: hook.Project.DefaultBranch}
	a := hook.Attrs
	return vcs.Event{Repo: repo, PullRequest: &vcs.PullRequestEvent{Action: vcs.PROpened, Sender: hook.User.Username,
		PR: vcs.PullRequest{Repo: repo, Number: a.IID, Title: a.Title, Author: hook.User.Username, HeadSHA: a.LastCommit.ID,
			HeadRef: a.SourceBranch, BaseRef: a.TargetBranch, HeadCloneURL: a.Source.GitHTTPURL, State: "open",
			Fork: a.SourceProjectID != a.TargetProjectID}}}, nil
}

// mergeRequestOpened is shared/payloads/gitlab/merge_request.open.json about the world's PR.
func mergeRequestOpened(t *testing.T, w *world, number int, branch, head, author string) []byte {
	shared, err := githubfake.SharedDir()
	require.NoError(t, err)
	raw, err := os.ReadFile(filepath.Join(shared, "payloads", "gitlab", "merge_request.open.json"))
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(raw, &doc))
	project := doc["project"].(map[string]any)
	project["path_with_namespace"], project["git_http_url"], project["default_branch"] = "acme/warehouse", w.GitHub().FakeRepo.CloneURL(), "main"
	attrs := doc["object_attributes"].(map[string]any)
	attrs["iid"], attrs["source_branch"], attrs["target_branch"] = number, branch, "main"
	attrs["last_commit"].(map[string]any)["id"] = head
	attrs["source"].(map[string]any)["git_http_url"] = w.GitHub().FakeRepo.CloneURL()
	doc["user"].(map[string]any)["username"] = author
	body, err := json.Marshal(doc)
	require.NoError(t, err)
	return body
}

// sendLab POSTs a body as GitLab sends a hook, and answers the status.
func sendLab(t *testing.T, url, event, token, key string, body []byte) int {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("X-Gitlab-Event", event)
	req.Header.Set("X-Gitlab-Token", token)
	req.Header.Set("X-Gitlab-Event-UUID", key+"-uuid")
	req.Header.Set("Idempotency-Key", key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// A forge registered in a test is served at /webhooks/{name} by the same intake (its token checked, its
// delivery ids deduped), its stored deliveries are parsed by its parser, and the bot plans its PR through its
// port, with no edit to intake, dispatch or the bot. GitHub's route is unchanged; an unregistered forge has none.
func TestAForgeRegisteredInATestIsServedEndToEnd(t *testing.T) {
	// GitHub-only: the stand-in forge's port is the GitHub adapter over GitHub's fake.
	w := newWorld(t, e2e.GitHub, worldOptions{configure: func(w *world, _ *serverconfig.Config, opts *server.Options) {
		opts.Forges = []server.Forge{labForge(t, w)}
	}})
	head := w.PR(1, "more-columns", "alice", nonBreaking)
	body := mergeRequestOpened(t, w, 1, "more-columns", head, "alice")
	url := w.http.URL + "/webhooks/" + labForgeName

	assert.Equal(t, http.StatusUnauthorized, sendLab(t, url, "Merge Request Hook", "not-the-token", "k1", body))
	assert.Equal(t, http.StatusAccepted, sendLab(t, url, "Merge Request Hook", labForgeToken, "k1", body))
	assert.Equal(t, http.StatusOK, sendLab(t, url, "Merge Request Hook", labForgeToken, "k1", body), "a retry of one event is one delivery")
	assert.Equal(t, http.StatusNotFound, sendLab(t, w.http.URL+"/webhooks/gitlab", "Merge Request Hook", labForgeToken, "k2", body),
		"no route for a forge that is not configured")
	stored, err := w.srv.Store().GetDelivery(context.Background(), labForgeName, "k1")
	require.NoError(t, err)
	assert.Equal(t, labForgeName+":acme/warehouse#1", stored.OrderingKey)
	w.settle()

	for _, env := range []string{"prod", "dev"} {
		check, ok := w.GitHub().FakeRepo.CheckRun("dagctl/plan: "+env, head)
		require.True(t, ok, "the plan of %s was reported through the forge's port", env)
		assert.Equal(t, "success", check.Conclusion, env)
	}
	plans, err := w.srv.Store().ListPlansByPR(context.Background(), labForgeName, "acme/warehouse", 1)
	require.NoError(t, err)
	assert.Len(t, plans, 2, "plans belong to the forge the delivery came from")
	got, err := w.srv.Store().GetDelivery(context.Background(), labForgeName, "k1")
	require.NoError(t, err)
	assert.Equal(t, db.DeliveryDone, got.Status)

	w.PR(2, "other", "bob", nonBreaking)
	d := w.deliver(w.PREvent(vcs.PROpened, 2))
	assert.Equal(t, http.StatusAccepted, d.Status, fmt.Sprintf("GitHub's route is unchanged: %s", d.Body))
}
