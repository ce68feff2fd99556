package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	dagctl "github.com/dagctl/dagctl-bot"
	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/forgetest/githubfake"
	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/server"
	"github.com/dagctl/dagctl-bot/internal/serverconfig"
	"github.com/dagctl/dagctl-bot/internal/testutil"
	"github.com/dagctl/dagctl-bot/internal/web"
)

// The home page over HTTP on a real store. These tests start no forge's world: the page reads the forge set and
// the store only.

// webBot is a bot serving its pages only (not started: no dispatcher, no recovery).
type webBot struct {
	srv  *server.Server
	http *httptest.Server
	logs *lockedBuffer
}

func newWebBot(t *testing.T, cfg func(*serverconfig.Config), opts server.Options) *webBot {
	t.Helper()
	testutil.CheckNoLeakedGoroutines(t)
	dir := t.TempDir()
	c := serverconfig.Config{
		DB:        filepath.Join(dir, "bot", "dagctl.db"),
		Executor:  serverconfig.ExecutorLocal,
		PublicURL: "http://bot.test",
		SQLMesh:   testutil.SQLMesh(t),
		WorkDir:   filepath.Join(dir, "work"),
		JobUsers:  serverconfig.JobUsers{Mode: serverconfig.JobUsersOff},
	}
	if cfg != nil {
		cfg(&c)
	}
	b := &webBot{logs: &lockedBuffer{}}
	opts.Log = slog.New(slog.NewTextHandler(b.logs, nil))
	srv, err := server.New(context.Background(), c, opts)
	require.NoError(t, err)
	b.srv = srv
	b.http = httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		b.http.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Close(ctx)
	})
	return b
}

// get answers path as a visitor; user, when set, is the test's stand-in for a signed-in user.
func (b *webBot) get(t *testing.T, path, user string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.http.URL+path, nil)
	require.NoError(t, err)
	if user != "" {
		req.Header.Set("X-Test-User", user)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

func TestAnUnconfiguredBotsHomePageSaysWhatToDoNext(t *testing.T) {
	b := newWebBot(t, nil, server.Options{Manifest: dagctl.AppManifest})

	status, body := b.get(t, "/", "")
	assert.Equal(t, http.StatusOK, status)
	assert.Contains(t, body, "with no forge yet")
	assert.Contains(t, body, "Create the GitHub App")
	for _, setting := range []string{"DAGCTL_GITHUB_APP_ID", "DAGCTL_GITHUB_PRIVATE_KEY", "DAGCTL_GITHUB_WEBHOOK_SECRET",
		"DAGCTL_GITLAB_TOKEN", "DAGCTL_GITLAB_WEBHOOK_SECRET", "DAGCTL_GITLAB_URL"} {
		assert.Contains(t, body, "<code>"+setting+"</code>")
	}
	// The setup code is what proves the visitor of /setup runs the bot: it is in the log, never on a page.
	code := regexp.MustCompile(`setup_code=([A-Za-z0-9_-]+)`).FindStringSubmatch(b.logs.String())
	require.NotNil(t, code, "the log prints the setup link:\n%s", b.logs.String())
	assert.NotContains(t, body, code[1])

	status, body = b.get(t, "/no/such/page", "")
	assert.Equal(t, http.StatusNotFound, status)
	assert.Contains(t, body, "dagctl-bot has no page here.")
	status, body = b.get(t, "/assets/style.css", "")
	assert.Equal(t, http.StatusOK, status)
	assert.Contains(t, body, "prefers-color-scheme: dark")
	status, _ = b.get(t, "/healthz", "")
	assert.Equal(t, http.StatusOK, status, "the other routes are unchanged")
}

// testViewer is the test's stand-in for sign-in: the user named by a request header, who may read readable.
type testViewer struct {
	login    string
	readable map[string]bool
}

func (v testViewer) Login() string { return v.login }
func (v testViewer) MayRead(_ context.Context, r web.RepoRef) bool {
	return v.login != "" && v.readable[r.Key()]
}

func TestAConfiguredBotsHomePageShowsARepositorysRunsOnlyToItsReaders(t *testing.T) {
	key, _, err := githubfake.GenerateAppKey()
	require.NoError(t, err)
	const secret = "whsec-home-page-test"
	readers := map[string][]string{"alice": {"github:acme/warehouse"}, "bob": {"github:beta/lake"}}
	b := newWebBot(t, func(c *serverconfig.Config) {
		c.GitHub = serverconfig.GitHub{AppID: 42, PrivateKey: serverconfig.Secret(key), WebhookSecret: secret}
	}, server.Options{Viewer: func(r *http.Request) web.Viewer {
		v := testViewer{login: r.Header.Get("X-Test-User"), readable: map[string]bool{}}
		for _, repo := range readers[v.login] {
			v.readable[repo] = true
		}
		return v
	}})

	ctx := context.Background()
	store := b.srv.Store()
	require.NoError(t, store.UpsertInstallation(ctx, db.Installation{Forge: "github", Account: "7", Owner: "acme"}))
	require.NoError(t, store.UpsertRepo(ctx, db.Repo{Forge: "github", FullName: "acme/warehouse", Account: "7"}))
	warehouse, err := store.CreatePlan(ctx, db.Plan{Forge: "github", Repo: "acme/warehouse", PR: 12, Project: "sqlmesh",
		Environment: "prod", HeadSHA: "abc", BaseSHA: "base", TriggerUser: "alice"})
	require.NoError(t, err)
	lake, err := store.CreatePlan(ctx, db.Plan{Forge: "github", Repo: "beta/lake", PR: 3, Project: "marts",
		Environment: "dev", HeadSHA: "def", BaseSHA: "base", TriggerUser: "bob"})
	require.NoError(t, err)
	failed, _, err := store.CreateRun(ctx, warehouse.ID, jobs.KindPlan, "local")
	require.NoError(t, err)
	_, err = store.StartRun(ctx, failed.ID, "job-1")
	require.NoError(t, err)
	_, err = store.FinishRun(ctx, failed.ID, db.RunResult{Status: db.RunFailed, Reason: "the forge answered 401 to " + secret})
	require.NoError(t, err)
	require.NoError(t, store.AppendRunLog(ctx, failed.ID, []db.LogLine{{Stream: "stderr", Text: "model db.orders failed"}}))
	running, _, err := store.CreateRun(ctx, lake.ID, jobs.KindApply, "local")
	require.NoError(t, err)
	_, err = store.StartRun(ctx, running.ID, "job-2")
	require.NoError(t, err)
	_, err = store.Enqueue(ctx, "github", "dead-1", "pull_request", "github:acme/warehouse#12", []byte(`{}`))
	require.NoError(t, err)
	d, ok, err := store.Claim(ctx, "w")
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, store.GiveUp(ctx, d.ID, "w", "gave up"))

	// Anonymous: counts, and not a name.
	status, body := b.get(t, "/", "")
	assert.Equal(t, http.StatusOK, status)
	assert.Contains(t, body, "Serving github.")
	assert.Contains(t, body, `<span class="n">2</span> repositories`)
	assert.Contains(t, body, `<span class="n">1</span> running`)
	assert.Contains(t, body, `<span class="n">1</span> failed in 7 days`)
	assert.Contains(t, body, `<span class="n">1</span> dead deliveries`)
	for _, hidden := range []string{"acme", "warehouse", "lake", "/runs/", "dead-1", "401"} {
		assert.NotContains(t, body, hidden)
	}

	// alice reads the warehouse: its failure with its reason masked, its log link, its dead delivery.
	_, body = b.get(t, "/", "alice")
	assert.Contains(t, body, "Signed in as alice.")
	assert.Contains(t, body, "github:acme/warehouse")
	assert.Contains(t, body, "dead-1")
	assert.Contains(t, body, "the forge answered 401 to")
	assert.NotContains(t, body, secret, "the bot's secrets are masked in what a page shows")
	assert.NotContains(t, body, "lake")
	link := regexp.MustCompile(`href="(/runs/\d+/[^"]+)"`).FindStringSubmatch(body)
	require.NotNil(t, link, body)
	// The link is the run's log link, behind the forge's sign-in (web_test.go signs in and reads it); this
	// test's viewer is a stand-in, so it is asked to sign in and is shown nothing of the log.
	status, log := b.get(t, link[1], "alice")
	assert.Equal(t, http.StatusOK, status)
	assert.Contains(t, log, "Sign in to dagctl")
	assert.NotContains(t, log, "model db.orders failed")

	// bob reads the lake, whose only run is running.
	_, body = b.get(t, "/", "bob")
	assert.Contains(t, body, "apply #")
	assert.Contains(t, body, "github:beta/lake")
	assert.NotContains(t, body, "warehouse")
	assert.True(t, strings.Contains(body, "PR #3, marts/dev"), body)
}
