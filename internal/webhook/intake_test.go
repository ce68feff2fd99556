package webhook

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/forgetest/githubfake"
)

// tokenSource is a forge that sends its shared secret as a header (GitLab's way), with a delivery id that falls
// back from one header to another.
func tokenSource(token string) Source {
	return Source{
		Forge: "tokenforge", EventHeader: "X-Gitlab-Event", DeliveryHeaders: []string{"Idempotency-Key", "X-Gitlab-Event-UUID"},
		AuthHeader: "X-Gitlab-Token", Secret: func() []byte { return []byte(token) }, Verify: VerifyToken,
		OrderingKey: func([]byte) string { return "tokenforge:group/project!1" },
	}
}

// One intake serves two forges side by side: each by its own headers and verifier, each delivery stored under
// its own forge.
func TestOneIntakeServesEachForgeByItsOwnRules(t *testing.T) {
	store, err := db.Open(filepath.Join(t.TempDir(), "dagctl.db"))
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	in := &Intake{Queue: store}
	mux := http.NewServeMux()
	mux.Handle("/webhooks/github", in.For(GitHubSource(func() []byte { return []byte(secret) })))
	mux.Handle("/webhooks/tokenforge", in.For(tokenSource("lab-token")))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	post := func(headers map[string]string) int {
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/webhooks/tokenforge", bytes.NewReader([]byte(`{"object_kind":"merge_request"}`)))
		require.NoError(t, err)
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	event := "Merge Request Hook"
	assert.Equal(t, http.StatusUnauthorized, post(map[string]string{"X-Gitlab-Event": event, "Idempotency-Key": "a"}))
	assert.Equal(t, http.StatusUnauthorized, post(map[string]string{"X-Gitlab-Event": event, "Idempotency-Key": "a", "X-Gitlab-Token": "lab-tokeN"}))
	assert.Equal(t, http.StatusBadRequest, post(map[string]string{"X-Gitlab-Event": event, "X-Gitlab-Token": "lab-token"}))
	assert.Equal(t, http.StatusAccepted, post(map[string]string{"X-Gitlab-Event": event, "X-Gitlab-Event-UUID": "uuid-1", "X-Gitlab-Token": "lab-token"}),
		"without Idempotency-Key the event's UUID is the delivery id")
	assert.Equal(t, http.StatusOK, post(map[string]string{"X-Gitlab-Event": event, "X-Gitlab-Event-UUID": "uuid-1", "X-Gitlab-Token": "lab-token"}))
	d, err := store.GetDelivery(context.Background(), "tokenforge", "uuid-1")
	require.NoError(t, err)
	assert.Equal(t, "tokenforge:group/project!1", d.OrderingKey)
	assert.Equal(t, event, d.Event)

	// GitHub's signature is not a token, and GitHub's secret opens nothing of the other forge's.
	gh := githubfake.LoadPayload(t, "pull_request.opened.json").SendT(t, srv.URL+"/webhooks/github", secret)
	assert.Equal(t, http.StatusAccepted, gh.Status)
	_, err = store.GetDelivery(context.Background(), "github", gh.ID)
	require.NoError(t, err)
	assert.Equal(t, http.StatusUnauthorized, post(map[string]string{"X-Gitlab-Event": event, "Idempotency-Key": "b", "X-Gitlab-Token": secret}))
}
