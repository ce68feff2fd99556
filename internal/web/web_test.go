package web

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func pages(t *testing.T) *Pages {
	t.Helper()
	p, err := NewPages(slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	return p
}

func render(t *testing.T, p *Pages, status int, name string, data any) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	p.Render(rec, status, name, data)
	return rec
}

func TestTheAnonymousHomePageShowsCountsAndNoRepository(t *testing.T) {
	rec := render(t, pages(t), http.StatusOK, "home", BuildHome(homeFacts(), Access{}))
	assert.Equal(t, http.StatusOK, rec.Code)
	body := rec.Body.String()
	for _, secretish := range []string{"acme", "warehouse", "lake", "/runs/", "sig7", "d-3", "502 from GitHub", "exit status 1"} {
		assert.NotContains(t, body, secretish)
	}
	assert.Contains(t, body, `<span class="n">5</span> running`)
	assert.Contains(t, body, `<span class="n">1</span> failed in 7 days`)
	assert.Contains(t, body, `<span class="n">2</span> dead deliveries`)
	assert.Contains(t, body, "Sign in to see repositories, jobs and logs.")
}

func TestTheHomePageOfAReaderLinksTheLogsOfItsRepositoryAndEscapesWhatItShows(t *testing.T) {
	facts := homeFacts()
	facts.Failures[0].Reason = `<script>alert("x")</script>`
	facts.Dead[0].DeliveryID = `"><img src=x onerror=alert(1)>`
	rec := render(t, pages(t), http.StatusOK, "home", BuildHome(facts, AccessTo("alice", warehouse)))
	body := rec.Body.String()
	assert.Contains(t, body, "Signed in as alice.")
	assert.Contains(t, body, `<a href="/runs/7/sig7">log</a>`)
	assert.Contains(t, body, "github:acme/warehouse")
	assert.NotContains(t, body, "lake", "a repository alice may not read")
	assert.NotContains(t, body, "/runs/9/")
	assert.NotContains(t, body, "<script>")
	assert.NotContains(t, body, "<img")
	assert.Contains(t, body, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;")
	assert.Contains(t, body, "And 4 more not shown.")
}

func TestTheUnconfiguredHomePageSaysWhatToDoNext(t *testing.T) {
	setup := Setup{
		GitHubSettings: []Setting{{Name: "DAGCTL_GITHUB_APP_ID", Required: true, What: "the app's id"}},
		GitLabSettings: []Setting{{Name: "DAGCTL_GITLAB_TOKEN", Required: true, What: "an api token"},
			{Name: "DAGCTL_GITLAB_CLONE_TOKEN", What: "a read_repository token"}},
	}
	for _, manifest := range []bool{true, false} {
		setup.ManifestFlow = manifest
		body := render(t, pages(t), http.StatusOK, "home", BuildHome(HomeFacts{Now: now, Setup: setup}, Access{})).Body.String()
		assert.Contains(t, body, "with no forge yet")
		assert.Contains(t, body, "<code>DAGCTL_GITHUB_APP_ID</code>: the app&#39;s id")
		assert.Contains(t, body, "<code>DAGCTL_GITLAB_TOKEN</code>: an api token")
		assert.Contains(t, body, "<code>DAGCTL_GITLAB_CLONE_TOKEN</code> (optional): a read_repository token")
		assert.Equal(t, manifest, strings.Contains(body, "Create the GitHub App"), "the manifest flow is offered only where /setup serves it")
		assert.NotContains(t, body, "running</a>", "no counts before there is a forge")
	}
}

func TestPagesAreServedWithTheirHeadersAndFailClosed(t *testing.T) {
	p := pages(t)
	rec := httptest.NewRecorder()
	p.Error(rec, http.StatusForbidden, "No access", `<b>you</b> may not`)
	assert.Equal(t, http.StatusForbidden, rec.Code)
	assert.Equal(t, "text/html; charset=utf-8", rec.Header().Get("Content-Type"))
	assert.Contains(t, rec.Header().Get("Content-Security-Policy"), "default-src 'none'")
	assert.Equal(t, "nosniff", rec.Header().Get("X-Content-Type-Options"))
	assert.Contains(t, rec.Body.String(), "<title>No access · dagctl-bot</title>")
	assert.Contains(t, rec.Body.String(), "&lt;b&gt;you&lt;/b&gt; may not")

	rec = httptest.NewRecorder()
	p.NotFound(rec, httptest.NewRequest(http.MethodGet, "/nowhere", nil))
	assert.Equal(t, http.StatusNotFound, rec.Code)
	assert.Contains(t, rec.Body.String(), "dagctl-bot has no page here.")

	// A page that does not exist, or data a page cannot render, is a 500 with no half page.
	rec = render(t, p, http.StatusOK, "no-such-page", nil)
	assert.Equal(t, http.StatusInternalServerError, rec.Code)
	rec = render(t, p, http.StatusOK, "home", struct{ Nothing int }{})
	assert.Equal(t, http.StatusInternalServerError, rec.Code)
	assert.NotContains(t, rec.Body.String(), "<html")
}

func TestTheStyleSheetIsServed(t *testing.T) {
	rec := httptest.NewRecorder()
	Assets().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, AssetsPath+"style.css", nil))
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "text/css; charset=utf-8", rec.Header().Get("Content-Type"))
	assert.Contains(t, rec.Body.String(), "prefers-color-scheme: dark")
}
