package browsertest_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
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
	"github.com/dagctl/dagctl-bot/internal/web/browsertest"
)

// serve runs the real server (not started: its pages read the forge set and the store) and returns its URL.
func serve(t *testing.T, cfg func(*serverconfig.Config), opts server.Options) (*server.Server, string) {
	t.Helper()
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
	opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := server.New(context.Background(), c, opts)
	require.NoError(t, err)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Close(ctx)
	})
	return srv, ts.URL
}

const (
	white    = "rgb(255, 255, 255)"
	darkGrey = "rgb(13, 17, 23)"
)

func TestTheUnconfiguredHomePageInABrowserLightDarkAndOnAPhone(t *testing.T) {
	browser := browsertest.New(t)
	_, url := serve(t, nil, server.Options{Manifest: dagctl.AppManifest})

	light := browser.Tab(browsertest.Desktop, nil)
	light.Open(url + "/")
	assert.Equal(t, "Home · dagctl-bot", light.Title())
	text := light.Text()
	assert.Contains(t, text, "dagctl-bot is running, with no forge yet")
	assert.Contains(t, text, "Create the GitHub App through /setup")
	assert.Contains(t, text, "DAGCTL_GITLAB_TOKEN: an api token of the bot's GitLab user")
	assert.Equal(t, white, light.BackgroundColor("body"), "the style sheet is loaded and light by default")
	assert.Equal(t, 0, light.Overflow())
	assertPNG(t, light.Screenshot("home-unconfigured"))

	dark := browser.Tab(browsertest.Screen{Width: 1280, Height: 800, Dark: true}, nil)
	dark.Open(url + "/")
	assert.Equal(t, darkGrey, dark.BackgroundColor("body"), "prefers-color-scheme: dark")
	assert.NotEqual(t, light.BackgroundColor(".card"), dark.BackgroundColor(".card"))
	assert.Equal(t, text, dark.Text(), "the same page in the dark")
	assertPNG(t, dark.Screenshot("home-unconfigured-dark"))

	phone := browser.Tab(browsertest.Phone, nil)
	phone.Open(url + "/")
	assert.Equal(t, 0, phone.Overflow(), "nothing scrolls sideways on a phone")
	assert.Equal(t, 375, browsertest.Eval[int](phone, `document.documentElement.clientWidth`), "the viewport is the phone's")
	assertPNG(t, phone.Screenshot("home-unconfigured-phone"))

	missing := browser.Tab(browsertest.Desktop, nil)
	missing.Open(url + "/no/such/page")
	assert.Contains(t, missing.Text(), "dagctl-bot has no page here.")
}

// reader is the test's stand-in for sign-in: the X-Test-User header's user, who may read acme's repositories.
type reader struct{ login string }

func (r reader) Login() string { return r.login }
func (r reader) MayRead(_ context.Context, repo web.RepoRef) bool {
	return r.login != "" && strings.HasPrefix(repo.FullName, "acme/")
}

func TestAConfiguredHomePageInABrowserShowsLongContentWithinAPhonesWidth(t *testing.T) {
	browser := browsertest.New(t)
	key, _, err := githubfake.GenerateAppKey()
	require.NoError(t, err)
	srv, url := serve(t, func(c *serverconfig.Config) {
		c.GitHub = serverconfig.GitHub{AppID: 42, PrivateKey: serverconfig.Secret(key), WebhookSecret: "whsec-browser"}
	}, server.Options{Viewer: func(r *http.Request) web.Viewer { return reader{login: r.Header.Get("X-Test-User")} }})

	// What makes a phone scroll sideways: a long repository path, and a failure's reason of one long word.
	ctx := context.Background()
	store := srv.Store()
	repo := "acme/" + strings.Repeat("a-very-long-repository-name-", 4) + "warehouse"
	p, err := store.CreatePlan(ctx, db.Plan{Forge: "github", Repo: repo, PR: 12, Project: "sqlmesh", Environment: "prod",
		HeadSHA: strings.Repeat("f", 40), BaseSHA: "base", TriggerUser: "alice"})
	require.NoError(t, err)
	for i := range 3 {
		r, _, err := store.CreateRun(ctx, p.ID, jobs.KindPlan, "local")
		require.NoError(t, err)
		_, err = store.StartRun(ctx, r.ID, "job")
		require.NoError(t, err)
		if i > 0 {
			_, err = store.FinishRun(ctx, r.ID, db.RunResult{Status: db.RunFailed,
				Reason: "sqlmesh: " + strings.Repeat("Error:cannot_resolve_model_reference_", 8)})
			require.NoError(t, err)
		}
	}

	anonymous := browser.Tab(browsertest.Phone, nil)
	anonymous.Open(url + "/")
	text := anonymous.Text()
	assert.Contains(t, text, "Sign in to see repositories, jobs and logs.")
	assert.NotContains(t, text, "acme")
	assert.Equal(t, 0, anonymous.Overflow())

	for _, screen := range []struct {
		name   string
		screen browsertest.Screen
	}{
		{"home-signed-in", browsertest.Desktop},
		{"home-signed-in-phone", browsertest.Phone},
		{"home-signed-in-phone-dark", browsertest.Screen{Width: 375, Height: 667, Mobile: true, Dark: true}},
	} {
		tab := browser.Tab(screen.screen, map[string]string{"X-Test-User": "alice"})
		tab.Open(url + "/")
		text := tab.Text()
		assert.Contains(t, text, "Signed in as alice.", screen.name)
		assert.Contains(t, text, "github:"+repo, screen.name)
		assert.Contains(t, text, "cannot_resolve_model_reference", screen.name)
		assert.Equal(t, 0, tab.Overflow(), "%s: nothing scrolls sideways", screen.name)
		links := browsertest.Eval[int](tab, `document.querySelectorAll('a[href^="/runs/"]').length`)
		assert.Equal(t, 3, links, "%s: a log link for each run", screen.name)
		assertPNG(t, tab.Screenshot(screen.name))
	}
}

func assertPNG(t *testing.T, img []byte) {
	t.Helper()
	assert.True(t, bytes.HasPrefix(img, []byte("\x89PNG\r\n\x1a\n")), "a PNG")
}
