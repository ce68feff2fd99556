package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/bot"
	"github.com/dagctl/dagctl-bot/internal/bot/prstate"
	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/forgetest/e2e"
	"github.com/dagctl/dagctl-bot/internal/forgetest/githubworld"
	"github.com/dagctl/dagctl-bot/internal/forgetest/gitlabfake"
	"github.com/dagctl/dagctl-bot/internal/forgetest/gitlabworld"
	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/server"
	"github.com/dagctl/dagctl-bot/internal/serverconfig"
	"github.com/dagctl/dagctl-bot/internal/vcs"
	ghadapter "github.com/dagctl/dagctl-bot/internal/vcs/github"
	"github.com/dagctl/dagctl-bot/internal/web/auth"
)

// logText is what the test run's log says: a reader sees it, nobody else does.
const logText = "model dagctl_example.customer_totals: 42 rows backfilled"

// storedRun stores a finished plan run of the world's repository with a log, as a plan job leaves it, without
// running a job: the pages behind sign-in are what these tests are about. It returns the run's log link, as
// comments and checks carry it.
func (w *world) storedRun() (id int64, link string) {
	w.t.Helper()
	ctx := context.Background()
	repo := w.Repo()
	if repo.Forge == ghadapter.Forge {
		repo.Account = ghadapter.AccountOf(githubworld.InstallationID) // as the PR's webhook names it
	}
	pc, err := json.Marshal(prstate.PlanContext{PR: vcs.PullRequest{Repo: repo, Number: 1}})
	require.NoError(w.t, err)
	store := w.srv.Store()
	p, err := store.CreatePlan(ctx, db.Plan{Forge: repo.Forge, Repo: repo.FullName(), PR: 1, Project: "default",
		Environment: "prod", HeadSHA: w.Base, BaseSHA: w.Base, Context: pc})
	require.NoError(w.t, err)
	run, _, err := store.CreateRun(ctx, p.ID, jobs.KindPlan, "local")
	require.NoError(w.t, err)
	require.NoError(w.t, store.AppendRunLog(ctx, run.ID, []db.LogLine{{Stream: "stdout", Text: logText}}))
	code := 0
	_, err = store.FinishRun(ctx, run.ID, db.RunResult{Status: db.RunSucceeded, ExitCode: &code})
	require.NoError(w.t, err)
	key, err := store.SigningKey(ctx, "log-links")
	require.NoError(w.t, err)
	return run.ID, publicURL + "/runs/" + strconv.FormatInt(run.ID, 10) + "/" + bot.LogSignature(key, run.ID)
}

// browser is a person's browser: a cookie jar, reaching the bot at its public URL (the test server answers it)
// and the forge at the fake's. It keeps every answer the bot gave, to look for what must never be in one.
type browser struct {
	t      *testing.T
	client *http.Client
	jar    *cookiejar.Jar

	mu      sync.Mutex
	answers []string // each answer of the bot: its headers and body
	cookies []*http.Cookie
}

func (w *world) browser() *browser {
	jar, err := cookiejar.New(nil)
	require.NoError(w.t, err)
	b := &browser{t: w.t, jar: jar}
	bot, err := url.Parse(w.http.URL)
	require.NoError(w.t, err)
	b.client = &http.Client{Jar: jar, Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
		toBot := r.URL.Host == "bot.test"
		if toBot {
			r = r.Clone(r.Context())
			r.URL.Scheme, r.URL.Host = bot.Scheme, bot.Host
		}
		resp, err := http.DefaultTransport.RoundTrip(r)
		if err != nil || !toBot {
			return resp, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		var headers strings.Builder
		_ = resp.Header.Write(&headers)
		b.mu.Lock()
		b.answers = append(b.answers, headers.String()+"\n"+string(body))
		b.cookies = append(b.cookies, resp.Cookies()...)
		b.mu.Unlock()
		return resp, err
	})}
	return b
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// get fetches u following redirects, as a browser does; it returns the last answer and its body.
func (b *browser) get(u string) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.client.Get(u)
	require.NoError(b.t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(b.t, err)
	return resp, string(body)
}

// getOnce fetches u without following a redirect.
func (b *browser) getOnce(u string) (*http.Response, string) {
	b.t.Helper()
	c := *b.client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Get(u)
	require.NoError(b.t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(b.t, err)
	return resp, string(body)
}

// session is the browser's session cookie for the bot ("" without one).
func (b *browser) session() string {
	for _, c := range b.jar.Cookies(mustURL(b.t, publicURL+"/")) {
		if c.Name == auth.SessionCookie {
			return c.Value
		}
	}
	return ""
}

func (b *browser) setSession(value string) {
	b.jar.SetCookies(mustURL(b.t, publicURL+"/"), []*http.Cookie{{Name: auth.SessionCookie, Value: value, Path: "/", Secure: true}})
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	require.NoError(t, err)
	return u
}

// botSecrets are every credential the world's bot holds.
func botSecrets(w *world) []string {
	out := []string{githubworld.ClientSecret, githubworld.WebhookSecret, gitlabworld.OAuthSecret, gitlabworld.WebhookSecret}
	if gh, ok := w.World.World.(*githubworld.World); ok {
		out = append(out, string(gh.PEM))
	}
	if gl, ok := w.World.World.(*gitlabworld.World); ok {
		out = append(out, gl.Token, gl.CloneToken)
	}
	return out
}

func runPath(id int64) string { return "/runs/" + strconv.FormatInt(id, 10) }

func TestAReaderSignsInWithTheForgeAndSeesTheLogOthersDoNot(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{})
		id, link := w.storedRun()
		w.SetPermission("eve", vcs.PermissionNone)

		// Anonymous: the link leads to the run's page, which sends the browser to sign in, showing nothing.
		anon := w.browser()
		resp, _ := anon.getOnce(link + "?format=text")
		require.Equal(t, http.StatusFound, resp.StatusCode)
		assert.Equal(t, runPath(id)+"?format=text", resp.Header.Get("Location"))
		resp, body := anon.getOnce(publicURL + runPath(id) + "?format=text")
		require.Equal(t, http.StatusSeeOther, resp.StatusCode)
		assert.Equal(t, "/login?next="+url.QueryEscape(runPath(id)+"?format=text"), resp.Header.Get("Location"))
		assert.NotContains(t, body, logText)
		resp, _ = anon.getOnce(publicURL + "/runs/999999")
		assert.Equal(t, http.StatusSeeOther, resp.StatusCode, "a run that does not exist looks the same to a stranger")

		// dave reads the repository: the link takes him through the forge's sign-in and back to the log.
		w.SignIn("dave")
		dave := w.browser()
		resp, body = dave.get(link + "?format=text")
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
		assert.Equal(t, runPath(id), resp.Request.URL.Path, "back where the link led")
		assert.Contains(t, body, logText)
		var session *http.Cookie
		for _, c := range dave.cookies {
			if c.Name == auth.SessionCookie && c.Value != "" {
				session = c
			}
		}
		require.NotNil(t, session, "a session cookie was set")
		assert.True(t, session.HttpOnly)
		assert.True(t, session.Secure, "the public URL is https")
		assert.Equal(t, http.SameSiteLaxMode, session.SameSite)
		assert.Positive(t, session.MaxAge)
		assert.NotContains(t, session.Value, "dave", "the session is sealed")
		resp, body = dave.get(publicURL + runPath(id))
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Contains(t, body, logText, "the HTML page too, without signing in again")

		// eve is signed in but cannot read the repository: 403, and nothing of the log.
		w.SignIn("eve")
		eve := w.browser()
		resp, body = eve.get(link)
		assert.Equal(t, http.StatusForbidden, resp.StatusCode)
		assert.NotContains(t, body, logText)
		assert.NotContains(t, body, w.repoName())

		// Signing out ends the session.
		resp, _ = dave.get(publicURL + auth.LogoutPath)
		assert.Equal(t, http.StatusOK, resp.StatusCode, "GET shows the button only")
		require.NotEmpty(t, dave.session())
		resp, err := dave.client.PostForm(publicURL+auth.LogoutPath, nil)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Empty(t, dave.session())
		resp, _ = dave.getOnce(publicURL + runPath(id))
		assert.Equal(t, http.StatusSeeOther, resp.StatusCode)

		// Nothing the bot answered holds one of its credentials.
		for _, b := range []*browser{anon, dave, eve} {
			for _, answer := range b.answers {
				for _, secret := range botSecrets(w) {
					require.NotContains(t, answer, secret)
				}
			}
		}
	})
}

func TestAForgedOrTamperedSessionCookieIsRefused(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{})
		id, _ := w.storedRun()
		page := publicURL + runPath(id)
		w.SignIn("dave")
		dave := w.browser()
		resp, _ := dave.get(page)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		valid := dave.session()
		require.NotEmpty(t, valid)

		refused := func(value, why string) {
			t.Helper()
			b := w.browser()
			b.setSession(value)
			resp, body := b.getOnce(page)
			assert.Equal(t, http.StatusSeeOther, resp.StatusCode, why)
			assert.True(t, strings.HasPrefix(resp.Header.Get("Location"), "/login?"), why)
			assert.NotContains(t, body, logText, why)
		}
		for i := 0; i < len(valid); i += 7 {
			tampered := []byte(valid)
			tampered[i] ^= 0x01
			if string(tampered) != valid {
				refused(string(tampered), "byte "+strconv.Itoa(i)+" changed")
			}
		}
		refused(valid[:len(valid)-4], "cut short")
		refused("", "empty")

		// A session sealed with another key, saying whatever it likes (carol the admin).
		other, err := auth.NewSealer(bytes.Repeat([]byte{9}, 32))
		require.NoError(t, err)
		forged, err := other.Seal(auth.SessionCookie, map[string]any{"f": forge.Name, "i": 1, "l": "carol",
			"e": time.Now().Add(time.Hour).Unix()})
		require.NoError(t, err)
		refused(forged, "sealed with another key")
		// Plain JSON of a session, unsealed.
		refused(`{"f":"`+forge.Name+`","i":1,"l":"carol","e":9999999999}`, "not sealed at all")

		// The valid one still works.
		b := w.browser()
		b.setSession(valid)
		resp, _ = b.getOnce(page)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
	})
}

func TestASignInWhoseStateIsNotThisBrowsersIsRefused(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{})
		id, _ := w.storedRun()
		page := publicURL + runPath(id)
		w.SetPermission("eve", vcs.PermissionNone)

		// eve starts a sign-in and stops at the forge's answer: its callback URL holds her code and her state.
		w.SignIn("eve")
		eve := w.browser()
		resp, _ := eve.getOnce(publicURL + "/login?next=" + url.QueryEscape(runPath(id)))
		require.Equal(t, http.StatusFound, resp.StatusCode)
		authorize := resp.Header.Get("Location")
		q := mustURL(t, authorize).Query()
		assert.NotEmpty(t, q.Get("state"))
		assert.Equal(t, "S256", q.Get("code_challenge_method"), "PKCE")
		resp, _ = eve.getOnce(authorize)
		require.Equal(t, http.StatusFound, resp.StatusCode)
		callback := resp.Header.Get("Location")
		require.True(t, strings.HasPrefix(callback, publicURL+"/login/"+forge.Name+"/callback?"), callback)

		// dave's browser is made to open eve's callback (login CSRF): it has no sign-in of its own started...
		dave := w.browser()
		resp, body := dave.getOnce(callback)
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
		assert.Empty(t, dave.session())
		assert.NotContains(t, body, logText)
		// ...or one of its own, whose state is another.
		w.SignIn("dave")
		resp, _ = dave.getOnce(publicURL + "/login?next=" + url.QueryEscape(runPath(id)))
		require.Equal(t, http.StatusFound, resp.StatusCode)
		resp, _ = dave.getOnce(callback)
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
		assert.Empty(t, dave.session(), "not signed in as eve")
		// The callback with dave's state but eve's code: the code was issued for eve's PKCE challenge.
		resp, _ = dave.getOnce(publicURL + "/login?next=" + url.QueryEscape(runPath(id)))
		daveState := mustURL(t, resp.Header.Get("Location")).Query().Get("state")
		withDaveState := mustURL(t, callback)
		cq := withDaveState.Query()
		cq.Set("state", daveState)
		withDaveState.RawQuery = cq.Encode()
		resp, _ = dave.getOnce(withDaveState.String())
		assert.Equal(t, http.StatusBadGateway, resp.StatusCode, "the forge refuses the code without its verifier")
		assert.Empty(t, dave.session())

		// A callback used once does not sign in again, in a browser without the sign-in's cookie.
		replay := w.browser()
		resp, _ = replay.getOnce(callback)
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
		assert.Empty(t, replay.session())

		// eve signing in herself is eve, who cannot read the repository.
		w.SignIn("eve")
		resp, body = eve.get(page)
		assert.Equal(t, http.StatusForbidden, resp.StatusCode)
		assert.NotContains(t, body, logText)
		assert.NotEmpty(t, eve.session())

		// A next= of another site is not followed: the sign-in ends at the bot's home.
		w.SignIn("dave")
		resp, _ = dave.get(publicURL + "/login?next=" + url.QueryEscape("//evil.example/x"))
		assert.Equal(t, mustURL(t, w.http.URL).Host, resp.Request.URL.Host, "the bot, not evil.example")
		assert.Equal(t, "/", resp.Request.URL.Path)
		assert.NotEmpty(t, dave.session())
	})
}

func TestAnExpiredSessionSendsTheBrowserToSignInAgain(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		var mu sync.Mutex
		now := time.Unix(1_800_000_000, 0)
		clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		w := newWorld(t, forge, worldOptions{configure: func(_ *world, _ *serverconfig.Config, opts *server.Options) {
			opts.WebClock = clock
		}})
		id, _ := w.storedRun()
		page := publicURL + runPath(id)
		w.SignIn("dave")
		dave := w.browser()
		resp, _ := dave.get(page)
		require.Equal(t, http.StatusOK, resp.StatusCode)

		mu.Lock()
		now = now.Add(auth.DefaultSessionTTL - time.Second)
		mu.Unlock()
		resp, _ = dave.getOnce(page)
		assert.Equal(t, http.StatusOK, resp.StatusCode, "within the session's lifetime")

		mu.Lock()
		now = now.Add(time.Second)
		mu.Unlock()
		resp, body := dave.getOnce(page)
		assert.Equal(t, http.StatusSeeOther, resp.StatusCode, "the cookie is still in the jar; its sealed expiry has passed")
		assert.Equal(t, "/login?next="+url.QueryEscape(runPath(id)), resp.Header.Get("Location"))
		assert.NotContains(t, body, logText)

		resp, body = dave.get(page)
		assert.Equal(t, http.StatusOK, resp.StatusCode, "signing in again")
		assert.Contains(t, body, logText)
	})
}

func TestALogLinkWithAWrongSignatureIsNotFound(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{})
		id, link := w.storedRun()
		b := w.browser()
		resp, _ := b.getOnce(publicURL + runPath(id) + "/0123456789abcdef0123456789abcdef")
		assert.Equal(t, http.StatusNotFound, resp.StatusCode)
		resp, _ = b.getOnce(link)
		assert.Equal(t, http.StatusFound, resp.StatusCode)
	})
}

func TestAReaderWhoseAccessIsRemovedIsRefusedOnceTheCachedAnswerExpires(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		var mu sync.Mutex
		now := time.Unix(1_800_000_000, 0)
		advance := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }
		w := newWorld(t, forge, worldOptions{configure: func(_ *world, _ *serverconfig.Config, opts *server.Options) {
			opts.WebClock = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		}})
		id, _ := w.storedRun()
		page := publicURL + runPath(id)
		w.SignIn("dave")
		dave := w.browser()
		resp, _ := dave.get(page)
		require.Equal(t, http.StatusOK, resp.StatusCode)

		w.SetPermission("dave", vcs.PermissionNone)
		advance(auth.DefaultAllowTTL - time.Second)
		resp, _ = dave.getOnce(page)
		assert.Equal(t, http.StatusOK, resp.StatusCode, "the forge's answer is remembered for a few minutes")
		advance(time.Second)
		resp, body := dave.getOnce(page)
		assert.Equal(t, http.StatusForbidden, resp.StatusCode, "then the forge is asked again")
		assert.NotContains(t, body, logText)

		w.SetPermission("dave", vcs.PermissionRead)
		advance(auth.DefaultDenyTTL)
		resp, _ = dave.getOnce(page)
		assert.Equal(t, http.StatusOK, resp.StatusCode, "a refusal is remembered for less")
	})
}

func TestOnGitLabAnyoneSignedInReadsAPublicProjectsLog(t *testing.T) {
	w := newWorld(t, e2e.GitLab, worldOptions{})
	gl := w.World.World.(*gitlabworld.World)
	id, _ := w.storedRun()
	gl.Fake.AddUser(gitlabfake.User{Username: "frank"}) // no member of the project
	gl.Project.SetVisibility("public")
	w.SignIn("frank")
	resp, body := w.browser().get(publicURL + runPath(id))
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, body, logText)

	gl.Fake.AddUser(gitlabfake.User{Username: "grace"})
	gl.Project.SetVisibility("private")
	w.SignIn("grace")
	resp, body = w.browser().get(publicURL + runPath(id))
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.NotContains(t, body, logText)
}

// A session names its account by id: a login renamed and taken by another account reads nothing of the new
// holder's (GitHub answers the permission of whoever holds the login now).
func TestOnGitHubASessionOfARenamedLoginReadsNothingOfItsNewHolder(t *testing.T) {
	w := newWorld(t, e2e.GitHub, worldOptions{})
	gh := w.World.World.(*githubworld.World)
	id, _ := w.storedRun()
	w.SetPermission("dave", vcs.PermissionNone)
	w.SignIn("dave")
	old := w.browser()
	resp, _ := old.get(publicURL + "/login?next=/")
	require.NotEmpty(t, old.session(), resp.Status)

	gh.Fake.RenameUser("dave", "dave-old")
	w.SetPermission("dave", vcs.PermissionAdmin) // another account, now called dave
	resp, body := old.getOnce(publicURL + runPath(id))
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.NotContains(t, body, logText)

	w.SignIn("dave") // the new holder signs in as itself
	resp, body = w.browser().get(publicURL + runPath(id))
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, body, logText)
}

func TestTheHomePageShowsASignedInReaderTheRepositorysFailuresAndOthersCountsOnly(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{})
		id, _ := w.storedRun()
		// The stored run failed: the home page lists recent failures.
		ctx := context.Background()
		store := w.srv.Store()
		failed, _, err := store.CreateRun(ctx, mustPlanOf(t, store, id), jobs.KindPlan, "local")
		require.NoError(t, err)
		code := 1
		_, err = store.FinishRun(ctx, failed.ID, db.RunResult{Status: db.RunFailed, ExitCode: &code, Reason: "sqlmesh exited 1"})
		require.NoError(t, err)
		w.SetPermission("eve", vcs.PermissionNone)

		// Anonymous: counts only, no repository name.
		resp, body := w.browser().get(publicURL + "/")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.NotContains(t, body, w.repoName())

		// dave reads the repository: signed in through the forge, the home page names it with its failure.
		w.SignIn("dave")
		dave := w.browser()
		resp, _ = dave.get(publicURL + runPath(id)) // signs in on the way
		require.Equal(t, http.StatusOK, resp.StatusCode)
		resp, body = dave.get(publicURL + "/")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Contains(t, body, w.repoName())
		assert.Contains(t, body, "dave", "the page says who is signed in")

		// eve is signed in but cannot read it: its name is not shown to her.
		w.SignIn("eve")
		eve := w.browser()
		resp, _ = eve.get(publicURL + runPath(id))
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
		resp, body = eve.get(publicURL + "/")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.NotContains(t, body, w.repoName())
	})
}

// mustPlanOf is the plan of a stored run.
func mustPlanOf(t *testing.T, store *db.Store, runID int64) int64 {
	t.Helper()
	run, err := store.GetRun(context.Background(), runID)
	require.NoError(t, err)
	return run.PlanID
}
