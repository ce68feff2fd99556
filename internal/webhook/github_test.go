package webhook

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/forgetest/githubfake"
)

const secret = "webhook-secret"

func newIntake(t *testing.T, secretValue string) (*db.Store, *httptest.Server, *int) {
	t.Helper()
	store, srv, _, notified := newIntakeWith(t, secretValue, BodyLimits{})
	return store, srv, notified
}

// newIntakeWith serves the intake with the given body limits over a real store.
func newIntakeWith(t *testing.T, secretValue string, limits BodyLimits) (*db.Store, *httptest.Server, *GitHub, *int) {
	t.Helper()
	store, err := db.Open(filepath.Join(t.TempDir(), "dagctl.db"))
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	notified := 0
	var mu sync.Mutex
	h := &GitHub{
		Secret: func() []byte { return []byte(secretValue) },
		Queue:  store,
		Notify: func() { mu.Lock(); notified++; mu.Unlock() },
		Limits: limits,
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return store, srv, h, &notified
}

func TestSignedDeliveryIsQueuedWithItsPRKey(t *testing.T) {
	store, srv, notified := newIntake(t, secret)
	d := githubfake.LoadPayload(t, "pull_request.opened.json").SendT(t, srv.URL, secret)
	assert.Equal(t, http.StatusAccepted, d.Status)
	got, err := store.GetDelivery(context.Background(), "github", d.ID)
	require.NoError(t, err)
	assert.Equal(t, "pull_request", got.Event)
	assert.Equal(t, "github:Codertocat/Hello-World#2", got.OrderingKey)
	assert.Equal(t, 1, *notified)
}

func TestBadSignatureIsRejectedAndNothingStored(t *testing.T) {
	store, srv, _ := newIntake(t, secret)
	d := githubfake.LoadPayload(t, "pull_request.opened.json").SendT(t, srv.URL, "wrong-secret")
	assert.Equal(t, http.StatusUnauthorized, d.Status)
	_, err := store.GetDelivery(context.Background(), "github", d.ID)
	assert.ErrorIs(t, err, db.ErrNotFound)

	unsigned := githubfake.LoadPayload(t, "pull_request.opened.json").SendT(t, srv.URL, "")
	assert.Equal(t, http.StatusUnauthorized, unsigned.Status)
	_, err = store.GetDelivery(context.Background(), "github", unsigned.ID)
	assert.ErrorIs(t, err, db.ErrNotFound)
}

func TestNoSecretConfiguredAcceptsNothing(t *testing.T) {
	store, srv, _ := newIntake(t, "")
	d := githubfake.LoadPayload(t, "pull_request.opened.json").SendT(t, srv.URL, "")
	assert.Equal(t, http.StatusServiceUnavailable, d.Status)
	assert.Contains(t, d.Body, "not set up yet")
	_, err := store.GetDelivery(context.Background(), "github", d.ID)
	assert.ErrorIs(t, err, db.ErrNotFound)
}

func TestDuplicateDeliveryIsStoredOnce(t *testing.T) {
	store, srv, notified := newIntake(t, secret)
	p := githubfake.LoadPayload(t, "issue_comment.created.on-pr.json")
	first, err := p.SendAs(srv.URL, secret, "delivery-1")
	require.NoError(t, err)
	again, err := p.SendAs(srv.URL, secret, "delivery-1")
	require.NoError(t, err)
	assert.Equal(t, http.StatusAccepted, first.Status)
	assert.Equal(t, http.StatusOK, again.Status)
	assert.Equal(t, 1, *notified)
	got, err := store.GetDelivery(context.Background(), "github", "delivery-1")
	require.NoError(t, err)
	assert.Equal(t, db.DeliveryPending, got.Status)
}

func TestOrderingKeys(t *testing.T) {
	cases := map[string]string{
		"issue_comment.created.on-pr.json":    "#", // a PR comment is ordered with its PR
		"issue_comment.created.on-issue.json": "",  // a plain issue comment: the repository
		"push.branch.json":                    "",  // pushes: the repository
		"installation.created.json":           "github:installation/",
	}
	for file, want := range cases {
		p := githubfake.LoadPayload(t, file)
		key := gitHubOrderingKey(p.Bytes())
		switch {
		case want == "#":
			assert.Regexp(t, `^github:[^#]+#\d+$`, key, file)
		case want == "":
			assert.NotContains(t, key, "#", file)
			assert.True(t, strings.HasPrefix(key, "github:"), file)
		default:
			assert.True(t, strings.HasPrefix(key, want), "%s: %s", file, key)
		}
	}
}

func TestOversizedBodyIsRefused(t *testing.T) {
	_, srv, _ := newIntake(t, secret)
	req, err := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(strings.Repeat("x", MaxBodyBytes+1)))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
}
