package github_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/forgetest/githubfake"
)

// The app's deliveries are listed newest first across pages (by cursor) back to the time asked for, and a
// redelivery reaches the webhook URL with the delivery's GUID and body.
func TestRecentDeliveriesArePagedBackToSinceAndRedeliveredWithTheirGUID(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	up := true
	got := map[string]string{} // GUID → body the receiver took
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if !up {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		body, _ := io.ReadAll(r.Body)
		got[r.Header.Get("X-GitHub-Delivery")] = string(body)
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(receiver.Close)
	e.fake.SetHookURL(testAppID, receiver.URL)

	send := func(n int) githubfake.HookDelivery {
		h := http.Header{}
		guid := githubfake.NewDeliveryID()
		h.Set("X-GitHub-Delivery", guid)
		h.Set("X-GitHub-Event", "issue_comment")
		return e.fake.SendWebhook(testAppID, h, []byte(fmt.Sprintf(`{"action":"created","n":%d}`, n)))
	}
	old := send(0)
	e.fake.Advance(time.Hour)
	since := e.fake.Now()
	mu.Lock()
	up = false
	mu.Unlock()
	var failed []githubfake.HookDelivery
	for i := 1; i <= 150; i++ { // more than a page of 100
		failed = append(failed, send(i))
	}

	attempts, err := e.app.RecentDeliveries(e.ctx, since)
	require.NoError(t, err)
	require.Len(t, attempts, 150, "both pages, and not the delivery older than since")
	assert.Equal(t, failed[149].ID, attempts[0].ID, "newest first")
	for _, a := range attempts {
		assert.NotEqual(t, old.GUID, a.GUID)
		assert.Equal(t, 503, a.StatusCode)
	}

	mu.Lock()
	up = true
	delete(got, old.GUID) // taken when it was sent
	mu.Unlock()
	require.NoError(t, e.app.Redeliver(e.ctx, failed[7].ID))
	mu.Lock()
	assert.Equal(t, map[string]string{failed[7].GUID: `{"action":"created","n":8}`}, got)
	mu.Unlock()
	all := e.fake.HookDeliveries(testAppID)
	last := all[len(all)-1]
	assert.True(t, last.Redelivery)
	assert.Equal(t, failed[7].GUID, last.GUID)
	assert.True(t, last.OK())
}

// The reconcile's list: every open pull request across pages, with its head, and no closed one.
func TestOpenPullRequestsListsEveryOpenPRWithItsHead(t *testing.T) {
	e := newEnv(t)
	pr := e.openPR()
	for n := 2; n <= 120; n++ { // more than a page
		p := pr
		p.Number = n
		if n == 7 {
			p.State = "closed"
		}
		e.fr.SetPR(p)
	}
	open, err := e.app.OpenPullRequests(e.ctx, e.repo)
	require.NoError(t, err)
	require.Len(t, open, 119)
	seen := map[int]bool{}
	for _, p := range open {
		seen[p.Number] = true
		assert.Equal(t, pr.HeadSHA, p.HeadSHA)
		assert.Equal(t, "alice", p.Author)
	}
	assert.False(t, seen[7], "closed")
	assert.True(t, seen[1] && seen[120])
}
