package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	dagctl "github.com/dagctl/dagctl-bot"
	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/forgetest"
	"github.com/dagctl/dagctl-bot/internal/forgetest/e2e"
	"github.com/dagctl/dagctl-bot/internal/forgetest/githubfake"
	"github.com/dagctl/dagctl-bot/internal/forgetest/githubworld"
	"github.com/dagctl/dagctl-bot/internal/server"
	"github.com/dagctl/dagctl-bot/internal/serverconfig"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// The manifest flow (/setup), GET /app and installations are GitHub App notions: the tests of this file run
// against GitHub's world only.

// The app of every world, as githubworld installs it.
const (
	appID          = githubworld.AppID
	installationID = githubworld.InstallationID
	webhookSecret  = githubworld.WebhookSecret
)

// The app GitHub creates in the manifest flow, and its installation on acme.
const (
	manifestAppID          = 4242
	manifestInstallationID = 77
	manifestCode           = "one-time-manifest-code"
	manifestWebhookSecret  = "whsec-from-the-manifest-flow"
	manifestClientSecret   = "client-secret-from-the-manifest-flow"
)

// lockedBuffer collects the bot's log output across restarts.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// settingsFromEnv configures the bot the way `dagctl-bot serve` does: from DAGCTL_* environment variables, read
// by serverconfig. env adds to (or overrides) the world's own settings; GitHub App settings are left out unless
// env names them, so the bot starts without an app. Its log goes to logs as well as to the world's log.
func settingsFromEnv(t *testing.T, logs *lockedBuffer, env func() map[string]string) func(*world, *serverconfig.Config, *server.Options) {
	return func(w *world, cfg *serverconfig.Config, opts *server.Options) {
		vars := map[string]string{
			"PATH":                    os.Getenv("PATH"),
			serverconfig.EnvDB:        cfg.DB,
			serverconfig.EnvWorkDir:   cfg.WorkDir,
			serverconfig.EnvPublicURL: publicURL,
			serverconfig.EnvSQLMesh:   cfg.SQLMesh,
			serverconfig.EnvJobEnv:    "EXAMPLE_DUCKDB_PATH",
			serverconfig.EnvLogLevel:  "debug",
			serverconfig.EnvJobUIDs:   jobUIDsSetting(cfg.JobUsers),
		}
		if cfg.JobUsers.Group != 0 {
			vars[serverconfig.EnvJobGroup] = strconv.FormatUint(uint64(cfg.JobUsers.Group), 10)
		}
		for k, v := range env() {
			vars[k] = v
		}
		if vars[serverconfig.EnvGitHubAppID] != "" {
			vars[serverconfig.EnvGitHubAPIURL] = w.GitHub().Fake.APIURL() + "/"
		}
		loaded, err := serverconfig.Load(nil, func(name string) string { return vars[name] })
		require.NoError(t, err)
		// serverconfig demands the app's credentials as soon as DAGCTL_GITHUB_API_URL is set, so an app-less
		// bot gets the fake's API URL here.
		loaded.GitHub.APIURL = w.GitHub().Fake.APIURL() + "/"
		*cfg = loaded
		opts.Manifest = dagctl.AppManifest
		opts.Log = slog.New(slog.NewTextHandler(io.MultiWriter(logs, w.logLines), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
}

// page GETs a path of the bot.
func page(t *testing.T, w *world, path string) (status int, body string) {
	t.Helper()
	resp, err := w.http.Client().Get(w.http.URL + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

var (
	formActionRE    = regexp.MustCompile(`<form action="([^"]+)" method="post">`)
	manifestInputRE = regexp.MustCompile(`<input type="hidden" name="manifest" value="([^"]*)">`)
	setupCodeRE     = regexp.MustCompile(`/setup\?setup_code=([A-Za-z0-9]+)`)
)

// setupCodes are the setup codes the bot printed to its log, in order.
func setupCodes(logs *lockedBuffer) []string {
	var codes []string
	for _, m := range setupCodeRE.FindAllStringSubmatch(logs.String(), -1) {
		codes = append(codes, m[1])
	}
	return codes
}

// setupCode is the one setup code the bot printed to its log.
func setupCode(t *testing.T, logs *lockedBuffer) string {
	t.Helper()
	codes := setupCodes(logs)
	require.Len(t, codes, 1, "setup codes in the bot's log:\n%s", logs.String())
	return codes[0]
}

// setupForm opens /setup and returns where its form posts and the manifest it posts.
func setupForm(t *testing.T, w *world, query string) (action string, manifest map[string]any) {
	t.Helper()
	status, body := page(t, w, "/setup"+query)
	require.Equal(t, http.StatusOK, status, body)
	m := formActionRE.FindStringSubmatch(body)
	require.NotNil(t, m, "no form in /setup:\n%s", body)
	in := manifestInputRE.FindStringSubmatch(body)
	require.NotNil(t, in, "no manifest field in /setup:\n%s", body)
	require.NoError(t, json.Unmarshal([]byte(html.UnescapeString(in[1])), &manifest))
	return html.UnescapeString(m[1]), manifest
}

func TestManifestFlowCreatesTheAppAndTheBotServesAsIt(t *testing.T) {
	ctx := context.Background()
	logs := &lockedBuffer{}
	env := map[string]string{} // the bot's DAGCTL_GITHUB_* variables; none at first
	w := newWorld(t, e2e.GitHub, worldOptions{configure: settingsFromEnv(t, logs, func() map[string]string { return env })})
	gh := w.GitHub()
	hook := func() string { return w.http.URL + "/webhooks/github" } // a restart serves on a new port

	// The app GitHub will create, installed on acme.
	keyPEM, _, err := githubfake.GenerateAppKey()
	require.NoError(t, err)
	gh.Fake.AddManifestCode(manifestCode, githubfake.ManifestApp{
		ID: manifestAppID, Slug: "dagctl-bot-acme", Name: "dagctl-bot", Owner: "acme", PEM: string(keyPEM),
		WebhookSecret: manifestWebhookSecret, ClientID: "Iv1.manifest", ClientSecret: manifestClientSecret,
	})
	gh.Fake.AddInstallation(githubfake.Installation{ID: manifestInstallationID, AppID: manifestAppID, Account: "acme"})

	// Without an app, webhooks are refused and nothing is stored.
	head1 := w.PR(1, "first", "alice", nonBreaking)
	for _, secret := range []string{"", manifestWebhookSecret} {
		d := ghPREvent(w, 1, head1, "alice").Installation(manifestInstallationID).SendT(t, hook(), secret)
		assert.Equal(t, http.StatusServiceUnavailable, d.Status)
		assert.Contains(t, d.Body, "not set up")
		_, err := w.srv.Store().GetDelivery(ctx, "github", d.ID)
		assert.ErrorIs(t, err, db.ErrNotFound, "a refused delivery is not stored")
	}
	w.settle()
	assert.Empty(t, w.Statuses())

	// /setup is a stranger's to claim only with the one-time code the bot printed to its log.
	code := setupCode(t, logs)
	for _, query := range []string{"", "?org=acme", "?setup_code=", "?setup_code=wrong", "?setup_code=" + code[:len(code)-1],
		"?setup_code=" + strings.ToLower(code) + "x"} {
		status, body := page(t, w, "/setup"+query)
		assert.Equal(t, http.StatusForbidden, status, query)
		assert.Contains(t, body, "setup code", query)
		assert.Contains(t, body, "log", query, "the refusal says where the code is")
		assert.NotContains(t, body, code, query)
		assert.NotContains(t, body, "<form", query)
	}

	// /setup posts the manifest, its URLs filled in from the public URL, to GitHub (here the fake, which looks
	// like GitHub Enterprise Server: its web URL is derived from the API URL).
	action, manifest := setupForm(t, w, "?setup_code="+code)
	require.True(t, strings.HasPrefix(action, gh.Fake.URL()+"/settings/apps/new?state="), action)
	state := strings.TrimPrefix(action, gh.Fake.URL()+"/settings/apps/new?state=")
	require.NotEmpty(t, state)
	assert.Equal(t, "dagctl-bot", manifest["name"])
	assert.Equal(t, publicURL, manifest["url"])
	assert.Equal(t, map[string]any{"url": publicURL + "/webhooks/github", "active": true}, manifest["hook_attributes"])
	assert.Equal(t, publicURL+"/setup/callback", manifest["redirect_url"])
	assert.Equal(t, publicURL+"/setup/installed", manifest["setup_url"])
	assert.Equal(t, []any{publicURL + "/login/github/callback"}, manifest["callback_urls"], "where sign-in comes back")
	assert.Equal(t, false, manifest["public"])
	assert.Equal(t, map[string]any{
		"checks": "write", "pull_requests": "write", "issues": "write", "contents": "read", "metadata": "read", "members": "read",
	}, manifest["default_permissions"])
	assert.ElementsMatch(t, []any{"pull_request", "pull_request_review", "issue_comment", "push", "check_run"}, manifest["default_events"])
	orgAction, _ := setupForm(t, w, "?setup_code="+code+"&org=acme")
	assert.True(t, strings.HasPrefix(orgAction, gh.Fake.URL()+"/organizations/acme/settings/apps/new?state="), orgAction)

	// A callback with a state the bot did not hand out is refused before the code is redeemed.
	status, body := page(t, w, "/setup/callback?code="+manifestCode+"&state=forged")
	assert.Equal(t, http.StatusBadRequest, status, body)
	assert.Empty(t, gh.Fake.RequestsMatching("POST", "/app-manifests/*/conversions"))
	_, err = w.srv.Store().AppCredentials(ctx, "github")
	assert.ErrorIs(t, err, db.ErrNotFound)

	// GitHub redirects back with the code and the state: the bot redeems the code and stores the app.
	status, body = page(t, w, "/setup/callback?code="+manifestCode+"&state="+state)
	require.Equal(t, http.StatusOK, status, body)
	assert.Contains(t, body, "dagctl-bot-acme")
	assert.Contains(t, body, gh.Fake.URL()+"/apps/dagctl-bot-acme/installations/new")
	assert.NotContains(t, body, manifestWebhookSecret)
	assert.NotContains(t, body, "PRIVATE KEY")
	conversions := gh.Fake.RequestsMatching("POST", "/app-manifests/"+manifestCode+"/conversions")
	require.Len(t, conversions, 1)
	assert.Equal(t, http.StatusCreated, conversions[0].Status)
	creds, err := w.srv.Store().AppCredentials(ctx, "github")
	require.NoError(t, err)
	assert.Equal(t, int64(manifestAppID), creds.AppID)
	assert.Equal(t, "dagctl-bot-acme", creds.Slug)
	assert.Equal(t, string(keyPEM), creds.PrivateKeyPEM)
	assert.Equal(t, manifestWebhookSecret, creds.WebhookSecret)
	assert.Equal(t, manifestClientSecret, creds.ClientSecret)

	// At once, without a restart: deliveries signed with the new secret are accepted, others are not, and the
	// PR is planned as the new app (its key signs the JWT the fake checks against the app's public key).
	bad := ghPREvent(w, 1, head1, "alice").Installation(manifestInstallationID).SendT(t, hook(), "not-the-secret")
	assert.Equal(t, http.StatusUnauthorized, bad.Status)
	d := ghPREvent(w, 1, head1, "alice").Installation(manifestInstallationID).SendT(t, hook(), manifestWebhookSecret)
	assert.Equal(t, http.StatusAccepted, d.Status)
	w.settle()
	assertPlanned(t, w, head1)
	assertTokensOnlyFor(t, w, manifestInstallationID)

	// People sign in to the log with the app's client the manifest flow stored: no setting, no restart.
	gh.Fake.OAuth().AddClient("Iv1.manifest", manifestClientSecret, publicURL+"/login/github/callback")
	check, ok := w.Status("dagctl/plan: prod", head1)
	require.True(t, ok, "checks: %v", w.Statuses())
	w.SignIn("dave")
	resp, log := w.browser().get(check.DetailsURL)
	require.Equal(t, http.StatusOK, resp.StatusCode, log)
	assert.Contains(t, log, "dagctl_example.customer_totals")

	// Once configured, /setup creates no second app, the code is used up, and no new one is printed.
	status, _ = page(t, w, "/setup")
	assert.Equal(t, http.StatusConflict, status)
	status, body = page(t, w, "/setup?setup_code="+code)
	assert.Equal(t, http.StatusConflict, status)
	assert.NotContains(t, body, "<form")
	status, _ = page(t, w, "/setup/callback?code=another&state="+state)
	assert.Equal(t, http.StatusConflict, status)

	// After a restart the stored credentials are used.
	w.stop()
	w.start()
	head2 := w.PR(2, "second", "bob", nonBreaking)
	d = ghPREvent(w, 2, head2, "bob").Installation(manifestInstallationID).SendT(t, hook(), manifestWebhookSecret)
	assert.Equal(t, http.StatusAccepted, d.Status)
	w.settle()
	assertPlanned(t, w, head2)
	assertTokensOnlyFor(t, w, manifestInstallationID)
	status, _ = page(t, w, "/setup")
	assert.Equal(t, http.StatusConflict, status)
	assert.Equal(t, []string{code}, setupCodes(logs), "a configured bot prints no setup code")

	// Settings win over stored credentials: with DAGCTL_GITHUB_* set, the bot is the configured app.
	w.stop()
	env = map[string]string{
		serverconfig.EnvGitHubAppID:         strconv.Itoa(appID),
		serverconfig.EnvGitHubPrivateKey:    string(gh.PEM),
		serverconfig.EnvGitHubWebhookSecret: webhookSecret,
	}
	w.start()
	gh.Fake.ResetRequests()
	head3 := w.PR(3, "third", "carol", nonBreaking)
	stale := ghPREvent(w, 3, head3, "carol").Installation(installationID).SendT(t, hook(), manifestWebhookSecret)
	assert.Equal(t, http.StatusUnauthorized, stale.Status, "the stored secret no longer verifies")
	d = ghPREvent(w, 3, head3, "carol").Installation(installationID).SendT(t, hook(), webhookSecret)
	assert.Equal(t, http.StatusAccepted, d.Status)
	w.settle()
	assertPlanned(t, w, head3)
	assertTokensOnlyFor(t, w, installationID)
	w.stop()

	// No secret of either app ever reached the bot's log (named, not printed, when one did).
	out := logs.String()
	require.Contains(t, out, "GitHub App created through the manifest flow", "the log was captured")
	var leaked []string
	for name, secret := range map[string]string{
		"manifest webhook secret": manifestWebhookSecret, "manifest client secret": manifestClientSecret,
		"settings webhook secret": webhookSecret,
	} {
		if strings.Contains(out, secret) {
			leaked = append(leaked, name)
		}
	}
	for name, key := range map[string][]byte{"manifest app key": keyPEM, "settings app key": gh.PEM} {
		for i, line := range pemBody(key) {
			if strings.Contains(out, line) {
				leaked = append(leaked, fmt.Sprintf("%s (line %d)", name, i+1))
				break
			}
		}
	}
	assert.Empty(t, leaked, "secrets in the bot's log")
}

// ghPREvent is a pull_request payload for PR number at head, by author, as GitHub sends it (the PR need not
// exist on the fake).
func ghPREvent(w *world, number int, head, author string) *githubfake.Payload {
	return githubfake.LoadPayload(w.t, "pull_request.opened.json").Installation(installationID).Repo(w.GitHub().FakeRepo).
		PullRequest(number, head, w.Base).Set("action", "opened").Set("pull_request.base.ref", "main").
		Set("pull_request.user.login", author).Set("sender.login", author)
}

// sendGitHub signs and delivers a GitHub payload and waits for what it started.
func (w *world) sendGitHub(p *githubfake.Payload) forgetest.Delivery {
	w.t.Helper()
	return w.send(w.GitHub().Webhook(p))
}

// assertPlanned checks that both plan checks of head ended successfully.
func assertPlanned(t *testing.T, w *world, head string) {
	t.Helper()
	for _, env := range []string{"prod", "dev"} {
		check, ok := w.Status("dagctl/plan: "+env, head)
		if assert.True(t, ok, "no %s check on %s; checks: %v", env, head, w.Statuses()) {
			assert.Equal(t, vcs.StatusSuccess, check.State, env)
		}
	}
}

// assertTokensOnlyFor checks that installation tokens were requested, with an app JWT the fake accepted, and
// only for the given installation.
func assertTokensOnlyFor(t *testing.T, w *world, installation int64) {
	t.Helper()
	var ours int
	for _, r := range w.GitHub().Fake.RequestsMatching("POST", "/app/installations/*/access_tokens") {
		assert.Equal(t, "/app/installations/"+strconv.FormatInt(installation, 10)+"/access_tokens", r.Path)
		assert.Equal(t, "jwt", r.Auth)
		assert.Equal(t, http.StatusCreated, r.Status, "the fake verified the JWT with the app's public key")
		ours++
	}
	assert.Positive(t, ours, "the bot asked for an installation token")
}

// pemBody is the base64 lines of a PEM block.
func pemBody(key []byte) []string {
	var lines []string
	for _, l := range strings.Split(string(key), "\n") {
		if l != "" && !strings.HasPrefix(l, "-----") {
			lines = append(lines, l)
		}
	}
	return lines
}

func TestCallbackWithAnUnknownCodeStoresNothing(t *testing.T) {
	logs := &lockedBuffer{}
	w := newWorld(t, e2e.GitHub, worldOptions{configure: settingsFromEnv(t, logs, func() map[string]string { return nil })})
	gh := w.GitHub()
	code := setupCode(t, logs)
	action, _ := setupForm(t, w, "?setup_code="+code)
	state := action[strings.Index(action, "state=")+len("state="):]

	status, body := page(t, w, "/setup/callback?code=never-issued&state="+state)
	assert.Equal(t, http.StatusBadGateway, status, body)
	_, err := w.srv.Store().AppCredentials(context.Background(), "github")
	assert.ErrorIs(t, err, db.ErrNotFound)
	// Still not set up: webhooks are refused, and /setup offers the form again, to the same code.
	d := ghPREvent(w, 1, w.Base, "alice").SendT(t, w.http.URL+"/webhooks/github", webhookSecret)
	assert.Equal(t, http.StatusServiceUnavailable, d.Status)
	setupForm(t, w, "?setup_code="+code)
	// The state was used up by the failed attempt.
	gh.Fake.AddManifestCode("later", githubfake.ManifestApp{ID: 5, Slug: "x", PEM: string(gh.PEM), WebhookSecret: "s"})
	status, _ = page(t, w, "/setup/callback?code=later&state="+state)
	assert.Equal(t, http.StatusBadRequest, status)
}

// installationPayload is a real installation or installation_repositories payload, pointed at acme's
// installation.
func installationPayload(t *testing.T, file, action string) *githubfake.Payload {
	return githubfake.LoadPayload(t, file).Installation(installationID).Set("action", action).
		Set("installation.account.login", "acme").Set("sender.login", "carol")
}

// repoList is an installation payload's list of repositories.
func repoList(names ...string) []any {
	var out []any
	for i, n := range names {
		out = append(out, map[string]any{"id": 9000 + i, "node_id": "R_" + n, "name": n, "full_name": "acme/" + n, "private": true})
	}
	return out
}

func repoNames(t *testing.T, w *world) []string {
	t.Helper()
	repos, err := w.srv.Store().ListInstallationRepos(context.Background(), "github", strconv.Itoa(installationID))
	require.NoError(t, err)
	var names []string
	for _, r := range repos {
		names = append(names, r.FullName)
	}
	return names
}

func TestInstallationEventsKeepTheStoreCurrentAndSuspensionStopsPlans(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, e2e.GitHub, worldOptions{})
	store := w.srv.Store()

	d := w.sendGitHub(installationPayload(t, "installation.created.json", "created").Set("repositories", repoList("warehouse")))
	require.Equal(t, http.StatusAccepted, d.Status)
	inst, err := store.GetInstallation(ctx, "github", strconv.Itoa(installationID))
	require.NoError(t, err)
	assert.Equal(t, "acme", inst.Owner)
	assert.False(t, inst.Suspended)
	assert.Equal(t, []string{"acme/warehouse"}, repoNames(t, w))

	w.sendGitHub(installationPayload(t, "installation_repositories.added.json", "added").
		Set("repositories_added", repoList("lake", "marts")).Set("repositories_removed", []any{}))
	assert.Equal(t, []string{"acme/lake", "acme/marts", "acme/warehouse"}, repoNames(t, w))
	w.sendGitHub(installationPayload(t, "installation_repositories.removed.json", "removed").
		Set("repositories_added", []any{}).Set("repositories_removed", repoList("lake")))
	assert.Equal(t, []string{"acme/marts", "acme/warehouse"}, repoNames(t, w))

	// Suspended: the installation's repositories are not served. (The fake still hands out tokens, so only the
	// bot's own rule keeps it from planning.)
	w.sendGitHub(installationPayload(t, "installation.suspend.json", "suspend"))
	inst, err = store.GetInstallation(ctx, "github", strconv.Itoa(installationID))
	require.NoError(t, err)
	assert.True(t, inst.Suspended)
	repo, err := store.GetRepo(ctx, "github", "acme/warehouse")
	require.NoError(t, err)
	assert.True(t, repo.Suspended)

	head := w.PR(1, "x", "alice", nonBreaking)
	d = w.send(w.PREvent(vcs.PROpened, 1))
	assert.Equal(t, http.StatusAccepted, d.Status)
	got, err := store.GetDelivery(ctx, "github", d.ID)
	require.NoError(t, err)
	assert.Equal(t, db.DeliveryDone, got.Status, "ignored, not failed or retried")
	assert.Empty(t, w.Statuses(), "no checks for a suspended installation")
	assert.Empty(t, w.Comments(1))
	w.comment(1, "bob", "/dagctl plan")
	assert.Empty(t, w.Statuses(), "commands are ignored too")
	assert.Empty(t, w.Reactions(w.Comments(1)[0].ID))

	// Unsuspended: served again.
	w.sendGitHub(installationPayload(t, "installation.suspend.json", "unsuspend").Set("installation.suspended_at", nil).
		Set("installation.suspended_by", nil))
	inst, err = store.GetInstallation(ctx, "github", strconv.Itoa(installationID))
	require.NoError(t, err)
	assert.False(t, inst.Suspended)
	assert.Equal(t, []string{"acme/marts", "acme/warehouse"}, repoNames(t, w), "unsuspending keeps the repositories")
	w.send(w.PREvent(vcs.PRReopened, 1))
	assertPlanned(t, w, head)

	// Uninstalled: the installation and its repositories are gone.
	w.sendGitHub(installationPayload(t, "installation.deleted.json", "deleted").Set("repositories", repoList("marts", "warehouse")))
	_, err = store.GetInstallation(ctx, "github", strconv.Itoa(installationID))
	assert.ErrorIs(t, err, db.ErrNotFound)
	all, err := store.ListRepos(ctx)
	require.NoError(t, err)
	assert.Empty(t, all)
}

// jobUIDsSetting is the DAGCTL_JOB_UIDS value of the world's job users.
func jobUIDsSetting(u serverconfig.JobUsers) string {
	if u.Mode == serverconfig.JobUsersRange {
		return fmt.Sprintf("%d-%d", u.First, u.Last)
	}
	return string(u.Mode)
}
