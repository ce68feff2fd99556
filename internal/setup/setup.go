// Package setup runs GitHub's app manifest flow so that a newcomer creates the dagctl-bot app in one click:
// /setup posts app-manifest.yml (URLs filled in) to GitHub, GitHub redirects back to /setup/callback with a
// code, and the bot exchanges the code for the app's id, private key and webhook secret and stores them.
//
// Whoever finishes the flow owns the bot (its app, its webhook secret), so it starts only with a one-time setup
// code that the bot prints to its log: a stranger who finds /setup on an unconfigured bot cannot claim it.
package setup

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"
)

// Credentials are what GitHub returns for a new app.
type Credentials struct {
	AppID         int64
	Slug          string
	PrivateKeyPEM string
	WebhookSecret string
	ClientID      string
	ClientSecret  string
	HTMLURL       string
}

// Handler serves /setup, /setup/callback and /setup/installed.
type Handler struct {
	PublicURL string // DAGCTL_PUBLIC_URL, where GitHub reaches the bot
	WebURL    string // GitHub's web URL, e.g. https://github.com/ (GitHub Enterprise: the server's URL)
	Manifest  []byte // app-manifest.yml
	// Configured reports whether the app is set up already; then /setup refuses to create another one.
	Configured func() bool
	// Exchange trades the callback's code for the app's credentials (POST /app-manifests/{code}/conversions).
	Exchange func(ctx context.Context, code string) (Credentials, error)
	// Save stores the credentials and makes them active (the webhook secret starts verifying deliveries).
	Save func(ctx context.Context, c Credentials) error
	Log  *slog.Logger
	// SetupCode (NewCode) is required, as the setup_code parameter, to start the flow; it is forgotten once an app
	// is set up. Empty: the flow cannot be started.
	SetupCode string

	mu     sync.Mutex
	states map[string]time.Time // CSRF states handed to GitHub, with their expiry
}

// CodeParam is the parameter of /setup that carries the setup code.
const CodeParam = "setup_code"

// NewCode is a fresh setup code: 128 random bits, in letters and digits so that it fits in a URL as it is.
func NewCode() string { return rand.Text() }

// SetupPath is where the holder of code starts the flow.
func SetupPath(code string) string { return "/setup?" + CodeParam + "=" + url.QueryEscape(code) }

// codeMatches compares in constant time, so that timing does not reveal the code.
func (h *Handler) codeMatches(given string) bool {
	h.mu.Lock()
	want := h.SetupCode
	h.mu.Unlock()
	return want != "" && subtle.ConstantTimeCompare([]byte(given), []byte(want)) == 1
}

// forgetCode makes the code useless once an app is set up.
func (h *Handler) forgetCode() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.SetupCode = ""
}

const stateTTL = 30 * time.Minute

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/setup", "/setup/":
		h.start(w, r)
	case "/setup/callback":
		h.callback(w, r)
	case "/setup/installed":
		page(w, http.StatusOK, "dagctl-bot is installed", "<p>The app is installed. Open a pull request that changes a model to see its plan.</p>")
	default:
		http.NotFound(w, r)
	}
}

// ManifestJSON renders the manifest with the public URL filled in, as GitHub's manifest flow expects it.
func ManifestJSON(manifestYAML []byte, publicURL string) ([]byte, error) {
	publicURL = strings.TrimRight(publicURL, "/")
	var m map[string]any
	if err := yaml.Unmarshal([]byte(strings.ReplaceAll(string(manifestYAML), "${PUBLIC_URL}", publicURL)), &m); err != nil {
		return nil, fmt.Errorf("app-manifest.yml: %w", err)
	}
	return json.Marshal(m)
}

func (h *Handler) start(w http.ResponseWriter, r *http.Request) {
	if h.Configured() {
		page(w, http.StatusConflict, "dagctl-bot is already set up",
			"<p>An app is configured (by settings or an earlier setup). Remove it from the settings to create another.</p>")
		return
	}
	code := r.FormValue(CodeParam)
	if !h.codeMatches(code) {
		page(w, http.StatusForbidden, "The setup code is missing or wrong",
			`<p>Creating the app needs the one-time setup code. dagctl-bot printed it to its log when it started without a
GitHub App: find the log line with "setup code" and open the link it shows (<code>/setup?setup_code=…</code>).
Restarting the bot prints a new code.</p>`)
		return
	}
	if h.PublicURL == "" {
		page(w, http.StatusServiceUnavailable, "Set DAGCTL_PUBLIC_URL first",
			"<p>GitHub must reach the bot: set DAGCTL_PUBLIC_URL to the bot's public address and restart.</p>")
		return
	}
	manifest, err := ManifestJSON(h.Manifest, h.PublicURL)
	if err != nil {
		page(w, http.StatusInternalServerError, "Broken manifest", template.HTMLEscapeString(err.Error()))
		return
	}
	state := h.newState()
	target := strings.TrimRight(h.WebURL, "/") + "/settings/apps/new"
	if org := r.URL.Query().Get("org"); org != "" {
		target = strings.TrimRight(h.WebURL, "/") + "/organizations/" + url.PathEscape(org) + "/settings/apps/new"
	}
	body := fmt.Sprintf(`<p>Create the dagctl-bot GitHub App from its manifest. GitHub will ask you to confirm, then send you back here.</p>
<form action="%s?state=%s" method="post">
<input type="hidden" name="manifest" value="%s">
<button type="submit">Create the GitHub App</button>
</form>
<p>For an organization, open <code>%s&amp;org=NAME</code>.</p>`,
		template.HTMLEscapeString(target), url.QueryEscape(state), template.HTMLEscapeString(string(manifest)),
		template.HTMLEscapeString(SetupPath(code)))
	page(w, http.StatusOK, "Set up dagctl-bot", body)
}

func (h *Handler) callback(w http.ResponseWriter, r *http.Request) {
	if h.Configured() {
		page(w, http.StatusConflict, "dagctl-bot is already set up", "<p>Nothing was changed.</p>")
		return
	}
	code, state := r.URL.Query().Get("code"), r.URL.Query().Get("state")
	if code == "" || !h.takeState(state) {
		page(w, http.StatusBadRequest, "Setup link expired", `<p>Start again at /setup, with the setup code from the bot's log.</p>`)
		return
	}
	creds, err := h.Exchange(r.Context(), code)
	if err != nil {
		h.log().Error("manifest code exchange failed", "err", err)
		page(w, http.StatusBadGateway, "GitHub did not create the app", "<p>"+template.HTMLEscapeString(err.Error())+"</p>")
		return
	}
	if err := h.Save(r.Context(), creds); err != nil {
		h.log().Error("saving app credentials failed", "err", err)
		page(w, http.StatusInternalServerError, "Could not store the app's credentials", "<p>See the bot's log.</p>")
		return
	}
	h.forgetCode()
	h.log().Info("GitHub App created through the manifest flow", "app_id", creds.AppID, "slug", creds.Slug)
	install := strings.TrimRight(h.WebURL, "/") + "/apps/" + url.PathEscape(creds.Slug) + "/installations/new"
	page(w, http.StatusOK, "dagctl-bot app created",
		fmt.Sprintf(`<p>App <b>%s</b> (id %d) is created and its credentials are stored.</p><p><a href="%s">Install it on your repositories</a>.</p>`,
			template.HTMLEscapeString(creds.Slug), creds.AppID, template.HTMLEscapeString(install)))
}

func (h *Handler) newState() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	s := hex.EncodeToString(b)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.states == nil {
		h.states = map[string]time.Time{}
	}
	now := time.Now()
	for k, exp := range h.states {
		if now.After(exp) {
			delete(h.states, k)
		}
	}
	h.states[s] = now.Add(stateTTL)
	return s
}

func (h *Handler) takeState(s string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	exp, ok := h.states[s]
	delete(h.states, s)
	return ok && time.Now().Before(exp)
}

func (h *Handler) log() *slog.Logger {
	if h.Log == nil {
		return slog.Default()
	}
	return h.Log
}

func page(w http.ResponseWriter, status int, title, body string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<!doctype html><html><head><meta charset=utf-8><title>%s</title></head><body><h1>%s</h1>%s</body></html>\n",
		template.HTMLEscapeString(title), template.HTMLEscapeString(title), body)
}
