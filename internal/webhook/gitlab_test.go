package webhook

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/forgetest/githubfake"
	"github.com/dagctl/dagctl-bot/internal/vcs"
	"github.com/dagctl/dagctl-bot/internal/vcs/gitlab"
)

const gitLabToken = "gl-webhook-token"

func gitLabIntake(t *testing.T, token string) (*db.Store, string) {
	t.Helper()
	store, err := db.Open(filepath.Join(t.TempDir(), "dagctl.db"))
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	in := &Intake{Queue: store}
	srv := httptest.NewServer(in.For(GitLabSource(func() []byte { return []byte(token) })))
	t.Cleanup(srv.Close)
	return store, srv.URL
}

func gitLabPayload(t *testing.T, name string) []byte {
	shared, err := githubfake.SharedDir()
	require.NoError(t, err)
	body, err := os.ReadFile(filepath.Join(shared, "payloads", "gitlab", name))
	require.NoError(t, err)
	return body
}

// postGitLab sends a body as GitLab does; headers with an empty value are left out.
func postGitLab(t *testing.T, url string, headers map[string]string, body []byte) (int, string) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	for k, v := range headers {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	text, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(text)
}

func gitLabHeaders(event, token, idempotency, uuid string) map[string]string {
	return map[string]string{"X-Gitlab-Event": event, "X-Gitlab-Token": token, "Idempotency-Key": idempotency,
		"X-Gitlab-Event-UUID": uuid, "User-Agent": "GitLab/17.5.0"}
}

func TestGitLabDeliveryIsQueuedUnderItsMergeRequest(t *testing.T) {
	store, url := gitLabIntake(t, gitLabToken)
	status, _ := postGitLab(t, url, gitLabHeaders("Merge Request Hook", gitLabToken, "idem-1", "uuid-1"), gitLabPayload(t, "merge_request.open.json"))
	assert.Equal(t, http.StatusAccepted, status)
	d, err := store.GetDelivery(context.Background(), "gitlab", "idem-1")
	require.NoError(t, err, "Idempotency-Key is the delivery id when sent")
	assert.Equal(t, "Merge Request Hook", d.Event)
	assert.Equal(t, "gitlab:gitlabhq/gitlab-test#1", d.OrderingKey)

	status, _ = postGitLab(t, url, gitLabHeaders("Note Hook", gitLabToken, "", "uuid-2"), gitLabPayload(t, "note.merge_request.json"))
	assert.Equal(t, http.StatusAccepted, status)
	d, err = store.GetDelivery(context.Background(), "gitlab", "uuid-2")
	require.NoError(t, err, "before GitLab 17.4 the event's UUID is the delivery id")
	assert.Equal(t, "gitlab:gitlab-org/gitlab-test#1", d.OrderingKey, "a note is ordered with its merge request")
}

// A wrong, missing or differently cased token is refused with 401 before anything is stored.
func TestGitLabBadTokenIsRefusedAndNothingStored(t *testing.T) {
	store, url := gitLabIntake(t, gitLabToken)
	body := gitLabPayload(t, "merge_request.open.json")
	for i, token := range []string{"", "wrong", strings.ToUpper(gitLabToken), gitLabToken + "x", gitLabToken[:len(gitLabToken)-1]} {
		id := "bad-" + string(rune('a'+i))
		status, text := postGitLab(t, url, gitLabHeaders("Merge Request Hook", token, id, ""), body)
		assert.Equal(t, http.StatusUnauthorized, status, "token %q", token)
		assert.Contains(t, text, "X-Gitlab-Token")
		_, err := store.GetDelivery(context.Background(), "gitlab", id)
		assert.ErrorIs(t, err, db.ErrNotFound)
	}
}

func TestGitLabWithoutASecretAcceptsNothing(t *testing.T) {
	store, url := gitLabIntake(t, "")
	status, text := postGitLab(t, url, gitLabHeaders("Merge Request Hook", "", "x", ""), gitLabPayload(t, "merge_request.open.json"))
	assert.Equal(t, http.StatusServiceUnavailable, status)
	assert.Contains(t, text, "DAGCTL_GITLAB_WEBHOOK_SECRET")
	_, err := store.GetDelivery(context.Background(), "gitlab", "x")
	assert.ErrorIs(t, err, db.ErrNotFound)
}

// GitLab retries an event with the same Idempotency-Key: it is stored once.
func TestGitLabRetriedDeliveryIsStoredOnce(t *testing.T) {
	store, url := gitLabIntake(t, gitLabToken)
	body := gitLabPayload(t, "merge_request.update.new-commit.json")
	first, _ := postGitLab(t, url, gitLabHeaders("Merge Request Hook", gitLabToken, "idem-7", "uuid-7"), body)
	again, text := postGitLab(t, url, gitLabHeaders("Merge Request Hook", gitLabToken, "idem-7", "uuid-7"), body)
	assert.Equal(t, http.StatusAccepted, first)
	assert.Equal(t, http.StatusOK, again)
	assert.Contains(t, text, "duplicate")
	pending, err := store.ListDeliveries(context.Background(), false)
	require.NoError(t, err)
	assert.Len(t, pending, 1)
}

// An event the bot does not handle is acknowledged (GitLab disables hooks that keep failing) and its parser
// ignores it; a body over the cap is refused unread.
func TestGitLabUnknownEventIsAcknowledgedAndIgnored(t *testing.T) {
	store, url := gitLabIntake(t, gitLabToken)
	body := []byte(`{"object_kind":"build","project":{"path_with_namespace":"acme/warehouse"}}`)
	status, _ := postGitLab(t, url, gitLabHeaders("Job Hook", gitLabToken, "idem-p", ""), body)
	assert.Equal(t, http.StatusAccepted, status)
	d, err := store.GetDelivery(context.Background(), "gitlab", "idem-p")
	require.NoError(t, err)
	_, err = gitlab.ParseWebhook(d.Event, d.Body)
	assert.ErrorIs(t, err, vcs.ErrIgnored)

	req, err := http.NewRequest(http.MethodPost, url, io.LimitReader(zeros{}, MaxBodyBytes+1))
	require.NoError(t, err)
	for k, v := range gitLabHeaders("Merge Request Hook", gitLabToken, "big", "") {
		req.Header.Set(k, v)
	}
	req.ContentLength = MaxBodyBytes + 1
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		resp.Body.Close()
		assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	}
	_, err = store.GetDelivery(context.Background(), "gitlab", "big")
	assert.ErrorIs(t, err, db.ErrNotFound)
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
