package recovery_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/forgetest/githubfake"
	"github.com/dagctl/dagctl-bot/internal/recovery"
	ghadapter "github.com/dagctl/dagctl-bot/internal/vcs/github"
)

// Over the GitHub adapter and a real store: a failed delivery the intake stored anyway (its answer came too
// late) is not asked for; one it does not have is, once it failed; a delivery whose attempts are used up is not.
func TestTheRedelivererAsksOnlyForFailedDeliveriesTheBotDoesNotHave(t *testing.T) {
	const appID = 42
	fake := githubfake.New(t)
	pem := fake.NewApp(t, appID, "dagctl-bot")
	var status atomic.Int32
	status.Store(http.StatusServiceUnavailable)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(int(status.Load())) }))
	t.Cleanup(receiver.Close)
	fake.SetHookURL(appID, receiver.URL)
	send := func() githubfake.HookDelivery {
		h := http.Header{}
		h.Set("X-GitHub-Delivery", githubfake.NewDeliveryID())
		h.Set("X-GitHub-Event", "ping")
		return fake.SendWebhook(appID, h, []byte(`{}`))
	}
	storedAnyway, missed := send(), send()

	store, err := db.Open(filepath.Join(t.TempDir(), "dagctl.db"))
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	ctx := context.Background()
	_, err = store.Enqueue(ctx, ghadapter.Forge, storedAnyway.GUID, "ping", "", []byte(`{}`))
	require.NoError(t, err)
	app, err := ghadapter.NewApp(ghadapter.Config{AppID: appID, PrivateKey: pem, APIURL: fake.APIURL(), Now: fake.Now, Sleep: fake.Sleep})
	require.NoError(t, err)
	r := &recovery.Redeliverer{
		Forge: ghadapter.Forge, Source: func() (recovery.Redelivery, bool) { return app, true },
		Stored: func(ctx context.Context, forge, guid string) (bool, error) {
			_, err := store.GetDelivery(ctx, forge, guid)
			return err == nil, nil
		},
		Now: fake.Now, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}

	// The bot still fails: each round asks again, until the delivery has had its attempts.
	for round := 1; round <= 4; round++ {
		asked, err := r.Once(ctx)
		require.NoError(t, err)
		want := 1
		if round == 4 {
			want = 0 // the first attempt and three redeliveries: used up
		}
		assert.Equal(t, want, asked, "round %d", round)
	}
	var guids []string
	for _, d := range fake.HookDeliveries(appID) {
		if d.Redelivery {
			guids = append(guids, d.GUID)
		}
	}
	assert.Equal(t, []string{missed.GUID, missed.GUID, missed.GUID}, guids, "never the one the bot stored")

	// A delivery the bot takes when it is asked for is asked for once.
	late := send()
	require.False(t, late.OK())
	status.Store(http.StatusAccepted)
	asked, err := r.Once(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, asked)
	asked, err = r.Once(ctx)
	require.NoError(t, err)
	assert.Zero(t, asked, "its redelivery was taken")
}
