// Package oauthfake is the OAuth 2 authorization server of the fake forges (githubfake, gitlabfake): an
// authorize endpoint that approves at once for the user a test signed in as and sends the browser back with a
// code, and a token endpoint that checks the client's id and secret, the code, its redirect_uri and the PKCE
// verifier, as the real forges do. Tokens it issues name the user for the fake's /user endpoint.
package oauthfake

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// CodeTTL is how long an authorization code may be redeemed (GitHub: 10 minutes).
const CodeTTL = 10 * time.Minute

// Server is one forge's OAuth. All methods are safe for concurrent use.
type Server struct {
	// TokenPrefix starts every token issued ("ghu_", "glpat-oauth-").
	TokenPrefix string
	// Now is the forge's clock, which codes expire on.
	Now func() time.Time

	mu       sync.Mutex
	clients  map[string]client
	signedIn string
	codes    map[string]*grant
	tokens   map[string]Token
	// Exchanges counts token requests, answered or refused.
	exchanges int
}

type client struct {
	secret    string
	callbacks []string
}

type grant struct {
	clientID, user, redirectURI, challenge, scope string
	expires                                       time.Time
	used                                          bool
}

// Token is an access token the server issued.
type Token struct {
	User  string
	Scope string
}

// New makes an OAuth server on the forge's clock.
func New(prefix string, now func() time.Time) *Server {
	return &Server{TokenPrefix: prefix, Now: now, clients: map[string]client{}, codes: map[string]*grant{}, tokens: map[string]Token{}}
}

// AddClient registers an OAuth client (a GitHub App's client id, a GitLab application id) with its secret and
// the callback URLs it may send codes to.
func (s *Server) AddClient(id, secret string, callbacks ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[id] = client{secret: secret, callbacks: callbacks}
}

// SignIn is the user the browser is signed in to the forge as: the authorize page approves for them ("": none,
// and the page asks to sign in).
func (s *Server) SignIn(user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.signedIn = user
}

// TokenUser is the user and scope of a token the server issued.
func (s *Server) TokenUser(token string) (Token, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[token]
	return t, ok
}

// Exchanges is how many token requests the server received.
func (s *Server) Exchanges() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.exchanges
}

// Authorize is GET authorize?client_id&redirect_uri&state&code_challenge&code_challenge_method=S256&scope.
func (s *Server) Authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	now := s.Now() // before s.mu: the forge's clock has a lock of its own, taken before s.mu elsewhere
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[q.Get("client_id")]
	if !ok {
		http.Error(w, "unknown client_id", http.StatusNotFound)
		return
	}
	redirect := q.Get("redirect_uri")
	if !allowed(c.callbacks, redirect) {
		// The real forges show an error page and never redirect to an unregistered URL.
		http.Error(w, "the redirect_uri is not a callback URL of the client", http.StatusBadRequest)
		return
	}
	if q.Get("code_challenge") != "" && q.Get("code_challenge_method") != "S256" {
		http.Error(w, "code_challenge_method must be S256", http.StatusBadRequest)
		return
	}
	if s.signedIn == "" {
		http.Error(w, "sign in to the forge first", http.StatusUnauthorized)
		return
	}
	code := random(10)
	s.codes[code] = &grant{clientID: q.Get("client_id"), user: s.signedIn, redirectURI: redirect,
		challenge: q.Get("code_challenge"), scope: q.Get("scope"), expires: now.Add(CodeTTL)}
	back, _ := url.Parse(redirect)
	bq := back.Query()
	bq.Set("code", code)
	if state := q.Get("state"); state != "" {
		bq.Set("state", state)
	}
	back.RawQuery = bq.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

// Token is POST token (form: client_id, client_secret, code, redirect_uri, code_verifier, grant_type). Refusals
// are OAuth's JSON errors: 400 with error, as GitLab answers (GitHub answers 200; golang.org/x/oauth2 reads
// both).
func (s *Server) Token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, "invalid_request")
		return
	}
	id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok {
		id, secret = u, p
	}
	now := s.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.exchanges++
	c, ok := s.clients[id]
	if !ok || subtle.ConstantTimeCompare([]byte(c.secret), []byte(secret)) != 1 {
		oauthError(w, "invalid_client")
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != "" && gt != "authorization_code" {
		oauthError(w, "unsupported_grant_type")
		return
	}
	g, ok := s.codes[r.PostForm.Get("code")]
	if !ok || g.used || g.clientID != id || !now.Before(g.expires) {
		oauthError(w, "invalid_grant")
		return
	}
	g.used = true // redeemable once, whatever the answer
	if g.redirectURI != r.PostForm.Get("redirect_uri") {
		oauthError(w, "invalid_grant")
		return
	}
	if g.challenge != "" {
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		if base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
			oauthError(w, "invalid_grant")
			return
		}
	}
	token := s.TokenPrefix + random(18)
	s.tokens[token] = Token{User: g.user, Scope: g.scope}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": token, "token_type": "bearer", "scope": g.scope})
}

func allowed(callbacks []string, redirect string) bool {
	for _, c := range callbacks {
		if c == redirect {
			return true
		}
	}
	return false
}

func oauthError(w http.ResponseWriter, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code})
}

func random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
