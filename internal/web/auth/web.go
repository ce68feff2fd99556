package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// Cookie names; each is also the purpose its value is sealed for.
const (
	SessionCookie = "dagctl_session"
	LoginCookie   = "dagctl_login"
)

// Paths the web sign-in serves.
const (
	LoginPath  = "/login"
	LogoutPath = "/logout"
)

// CallbackPath is where a forge sends the browser back: /login/{forge}/callback.
func CallbackPath(forge string) string { return LoginPath + "/" + forge + "/callback" }

// Lifetimes.
const (
	DefaultSessionTTL = 12 * time.Hour
	// LoginTTL is how long a started sign-in may take at the forge.
	LoginTTL = 10 * time.Minute
)

// Web is sign-in and sessions. Its handlers are plain http.Handlers; the server mounts them.
type Web struct {
	Sealer *Sealer
	// Secure marks cookies Secure (the bot's public URL is https).
	Secure     bool
	SessionTTL time.Duration
	Now        func() time.Time
	// HTTPClient talks to the forges (nil: http.DefaultClient).
	HTTPClient *http.Client
	Log        *slog.Logger

	mu        sync.RWMutex
	providers []Provider
}

// SetProviders sets the forges people may sign in with (the server sets them again when /setup creates the
// GitHub App).
func (w *Web) SetProviders(ps ...Provider) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.providers = append([]Provider(nil), ps...)
}

// Providers are the forges people may sign in with.
func (w *Web) Providers() []Provider {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return append([]Provider(nil), w.providers...)
}

type session struct {
	User
	Expires int64 `json:"e"` // unix seconds
}

type pendingLogin struct {
	Forge    string `json:"f"`
	State    string `json:"s"`
	Verifier string `json:"v"`
	Next     string `json:"n"`
	Expires  int64  `json:"e"`
}

func (w *Web) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

func (w *Web) log() *slog.Logger {
	if w.Log != nil {
		return w.Log
	}
	return slog.Default()
}

func (w *Web) provider(name string) (Provider, bool) {
	for _, p := range w.Providers() {
		if p.Name == name {
			return p, true
		}
	}
	return Provider{}, false
}

// CurrentUser is the signed-in user of the request: a session cookie the bot sealed and that has not expired.
func (w *Web) CurrentUser(r *http.Request) (User, bool) {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return User{}, false
	}
	var s session
	if w.Sealer.Open(SessionCookie, c.Value, &s) != nil || s.ID == 0 || s.Forge == "" {
		return User{}, false
	}
	if !w.now().Before(time.Unix(s.Expires, 0)) {
		return User{}, false
	}
	return s.User, true
}

// SafeNext is where a sign-in may return to: a path of this site ("/runs/5?format=text"), never another site
// ("//evil", "https://evil", "/\evil") nor the sign-in itself; anything else is "/".
func SafeNext(next string) string {
	if next == "" || next[0] != '/' || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n\t") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	if u.Path == LoginPath || strings.HasPrefix(u.Path, LoginPath+"/") || u.Path == LogoutPath {
		return "/"
	}
	return next
}

// Login is GET /login?next=PATH[&forge=NAME]: with one forge (or forge named) it sends the browser to the
// forge's authorize page with a fresh state and PKCE challenge, both kept in a sealed cookie for LoginTTL; with
// several it lists them.
func (w *Web) Login(rw http.ResponseWriter, r *http.Request) {
	next := SafeNext(r.URL.Query().Get("next"))
	name := r.URL.Query().Get("forge")
	providers := w.Providers()
	if name == "" && len(providers) == 1 {
		name = providers[0].Name
	}
	if name == "" {
		w.chooseForge(rw, providers, next)
		return
	}
	p, ok := w.provider(name)
	if !ok {
		http.Error(rw, "sign-in with that forge is not configured", http.StatusNotFound)
		return
	}
	state, err := randomToken()
	if err != nil {
		http.Error(rw, "cannot start the sign-in", http.StatusInternalServerError)
		return
	}
	verifier := oauth2.GenerateVerifier()
	expires := w.now().Add(LoginTTL)
	sealed, err := w.Sealer.Seal(LoginCookie, pendingLogin{Forge: p.Name, State: state, Verifier: verifier, Next: next, Expires: expires.Unix()})
	if err != nil {
		http.Error(rw, "cannot start the sign-in", http.StatusInternalServerError)
		return
	}
	http.SetCookie(rw, w.cookie(LoginCookie, sealed, LoginPath, expires))
	rw.Header().Set("Cache-Control", "no-store")
	http.Redirect(rw, r, p.OAuth.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)), http.StatusFound)
}

// Callback is GET /login/{forge}/callback: the state must be the one sealed in this browser's login cookie
// (else a stranger's code could sign the browser in as the stranger: login CSRF); the code is exchanged with
// the PKCE verifier, the forge asked who the token's user is, and a session cookie set.
func (w *Web) Callback(forge string) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Cache-Control", "no-store")
		p, ok := w.provider(forge)
		if !ok {
			http.NotFound(rw, r)
			return
		}
		var pending pendingLogin
		c, err := r.Cookie(LoginCookie)
		if err != nil || w.Sealer.Open(LoginCookie, c.Value, &pending) != nil || pending.Forge != forge ||
			!w.now().Before(time.Unix(pending.Expires, 0)) {
			w.refuse(rw, http.StatusBadRequest, "This sign-in was not started here, or took too long: sign in again.", pending.Next)
			return
		}
		q := r.URL.Query()
		state := q.Get("state")
		if state == "" || subtle.ConstantTimeCompare([]byte(state), []byte(pending.State)) != 1 {
			w.log().Warn("web sign-in refused: the state does not match this browser's", "forge", forge)
			w.refuse(rw, http.StatusBadRequest, "This sign-in was not started here: sign in again.", pending.Next)
			return
		}
		// The state is used: a second callback with it must not sign in again.
		http.SetCookie(rw, w.cookie(LoginCookie, "", LoginPath, time.Unix(0, 0)))
		if e := q.Get("error"); e != "" {
			w.refuse(rw, http.StatusForbidden, p.Title+" did not sign you in ("+e+").", pending.Next)
			return
		}
		code := q.Get("code")
		if code == "" {
			w.refuse(rw, http.StatusBadRequest, p.Title+" sent no code: sign in again.", pending.Next)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		user, err := p.identify(ctx, w.HTTPClient, code, pending.Verifier)
		if err != nil {
			w.log().Warn("web sign-in failed", "forge", forge, "err", err)
			w.refuse(rw, http.StatusBadGateway, "Signing in with "+p.Title+" failed: sign in again.", pending.Next)
			return
		}
		if err := w.startSession(rw, user); err != nil {
			http.Error(rw, "cannot start the session", http.StatusInternalServerError)
			return
		}
		w.log().Info("web sign-in", "forge", user.Forge, "user", user.Login, "id", user.ID)
		http.Redirect(rw, r, SafeNext(pending.Next), http.StatusSeeOther)
	})
}

func (w *Web) startSession(rw http.ResponseWriter, u User) error {
	ttl := w.SessionTTL
	if ttl <= 0 {
		ttl = DefaultSessionTTL
	}
	expires := w.now().Add(ttl)
	sealed, err := w.Sealer.Seal(SessionCookie, session{User: u, Expires: expires.Unix()})
	if err != nil {
		return err
	}
	http.SetCookie(rw, w.cookie(SessionCookie, sealed, "/", expires))
	return nil
}

// Logout is POST /logout (the session cookie is cleared, then home); GET shows the button, so that a link or
// an image elsewhere cannot sign anyone out.
func (w *Web) Logout(rw http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		page(rw, http.StatusOK, "Sign out", template.HTML(`<form method="post" action="`+LogoutPath+`"><button type="submit">Sign out</button></form>`))
		return
	}
	http.SetCookie(rw, w.cookie(SessionCookie, "", "/", time.Unix(0, 0)))
	http.Redirect(rw, r, "/", http.StatusSeeOther)
}

// RequireRead lets a request through only for a signed-in user who may read the repository repoOf names. With
// no session, a GET is sent to sign in and back; a repository repoOf does not find is 404; a user without read
// access gets 403 and nothing of the page. The repository is looked up only after the session is checked, so
// that anonymous visitors learn nothing of what exists.
func (w *Web) RequireRead(access *Access, repoOf func(*http.Request) (vcs.Repo, bool), next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Cache-Control", "private, no-store")
		user, ok := w.CurrentUser(r)
		if !ok {
			w.SendToLogin(rw, r)
			return
		}
		repo, found := repoOf(r)
		if !found {
			http.NotFound(rw, r)
			return
		}
		d, err := access.MayRead(r.Context(), user, repo)
		if err != nil {
			w.log().Warn("checking web read access", "forge", repo.Forge, "repo", repo.FullName(), "user", user.Login, "err", err)
			http.Error(rw, "Cannot check your access with the forge right now; try again in a minute.", http.StatusServiceUnavailable)
			return
		}
		if !d.Allowed {
			w.log().Info("web read refused", "forge", repo.Forge, "repo", repo.FullName(), "user", user.Login, "reason", d.Reason)
			page(rw, http.StatusForbidden, "No access", template.HTML(
				`<p>Your account has no read access to this page's repository.</p><form method="post" action="`+LogoutPath+
					`"><button type="submit">Sign in with another account</button></form>`))
			return
		}
		next.ServeHTTP(rw, r.WithContext(withUser(r.Context(), user)))
	})
}

// SendToLogin answers a request that needs a session: a GET or HEAD is redirected to sign in and come back,
// anything else is 401.
func (w *Web) SendToLogin(rw http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(rw, "sign in first", http.StatusUnauthorized)
		return
	}
	http.Redirect(rw, r, LoginPath+"?next="+url.QueryEscape(SafeNext(r.URL.RequestURI())), http.StatusSeeOther)
}

type userKey struct{}

func withUser(ctx context.Context, u User) context.Context {
	return context.WithValue(ctx, userKey{}, u)
}

// UserOf is the user RequireRead let through.
func UserOf(ctx context.Context) (User, bool) {
	u, ok := ctx.Value(userKey{}).(User)
	return u, ok
}

func (w *Web) cookie(name, value, path string, expires time.Time) *http.Cookie {
	c := &http.Cookie{Name: name, Value: value, Path: path, HttpOnly: true, Secure: w.Secure, SameSite: http.SameSiteLaxMode}
	if value == "" {
		c.MaxAge = -1
	} else {
		c.Expires = expires
		if d := expires.Sub(w.now()); d > 0 {
			c.MaxAge = int(d / time.Second)
		}
	}
	return c
}

func (w *Web) chooseForge(rw http.ResponseWriter, providers []Provider, next string) {
	var b strings.Builder
	b.WriteString("<ul>")
	for _, p := range providers {
		href := LoginPath + "?forge=" + url.QueryEscape(p.Name) + "&next=" + url.QueryEscape(next)
		b.WriteString(`<li><a href="` + template.HTMLEscapeString(href) + `">Sign in with ` + template.HTMLEscapeString(p.Title) + "</a></li>")
	}
	b.WriteString("</ul>")
	if len(providers) == 0 {
		b.Reset()
		b.WriteString("<p>Sign-in is not configured: see docs/operations.md, Signing in.</p>")
	}
	page(rw, http.StatusOK, "Sign in to dagctl", template.HTML(b.String()))
}

func (w *Web) refuse(rw http.ResponseWriter, status int, msg, next string) {
	href := LoginPath + "?next=" + url.QueryEscape(SafeNext(next))
	page(rw, status, "Not signed in", template.HTML("<p>"+template.HTMLEscapeString(msg)+`</p><p><a href="`+
		template.HTMLEscapeString(href)+`">Sign in</a></p>`))
}

// page writes a minimal HTML page; body is trusted markup built here.
func page(rw http.ResponseWriter, status int, title string, body template.HTML) {
	rw.Header().Set("Content-Type", "text/html; charset=utf-8")
	rw.WriteHeader(status)
	_ = pageTemplate.Execute(rw, struct {
		Title string
		Body  template.HTML
	}{title, body})
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html><html><head><meta charset=utf-8>` +
	`<meta name=viewport content="width=device-width, initial-scale=1"><title>{{.Title}}</title></head>` +
	`<body><h1>{{.Title}}</h1>{{.Body}}</body></html>
`))

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
