package githubfake

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func (f *Fake) routes() {
	m := f.api
	m.HandleFunc("GET /app", f.handleGetApp)
	m.HandleFunc("GET /user", f.handleCurrentUser)
	m.HandleFunc("POST /app/installations/{id}/access_tokens", f.handleAccessToken)
	m.HandleFunc("GET /app/installations/{id}", f.handleGetInstallation)
	m.HandleFunc("POST /app-manifests/{code}/conversions", f.handleManifestConversion)
	m.HandleFunc("GET /app/hook/deliveries", f.handleListHookDeliveries)
	m.HandleFunc("POST /app/hook/deliveries/{id}/attempts", f.handleRedeliverHookDelivery)

	m.HandleFunc("GET /repos/{owner}/{repo}/pulls", f.handleListPRs)
	m.HandleFunc("GET /repos/{owner}/{repo}/pulls/{number}", f.handleGetPR)
	m.HandleFunc("GET /repos/{owner}/{repo}/pulls/{number}/reviews", f.handleListReviews)
	m.HandleFunc("GET /repos/{owner}/{repo}/pulls/{number}/commits", f.handleListPRCommits)

	// Issue numbers and "comments" share a path segment, which ServeMux patterns cannot tell apart.
	m.HandleFunc("/repos/{owner}/{repo}/issues/{rest...}", f.routeIssues)

	m.HandleFunc("POST /repos/{owner}/{repo}/check-runs", f.handleCreateCheckRun)
	m.HandleFunc("PATCH /repos/{owner}/{repo}/check-runs/{id}", f.handleUpdateCheckRun)
	m.HandleFunc("GET /repos/{owner}/{repo}/check-runs/{id}", f.handleGetCheckRun)
	m.HandleFunc("GET /repos/{owner}/{repo}/commits/{ref}/check-runs", f.handleListCheckRunsForRef)

	m.HandleFunc("GET /repos/{owner}/{repo}/collaborators/{user}/permission", f.handlePermission)
	m.HandleFunc("GET /orgs/{org}/teams/{slug}/memberships/{user}", f.handleTeamMembership)
	m.HandleFunc("GET /repos/{owner}/{repo}/contents/{path...}", f.handleContents)
	m.HandleFunc("GET /repos/{owner}/{repo}/contents", f.handleContents)
	f.gitRoutes()
	m.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { notFound(w) })
}

func (f *Fake) routeIssues(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(r.PathValue("rest"), "/")
	route := func(handlers map[string]http.HandlerFunc) {
		if h, ok := handlers[r.Method]; ok {
			h(w, r)
			return
		}
		writeError(w, http.StatusMethodNotAllowed, "Method Not Allowed", "")
	}
	switch {
	case len(parts) == 2 && parts[0] != "comments" && parts[1] == "comments":
		r.SetPathValue("number", parts[0])
		route(map[string]http.HandlerFunc{http.MethodGet: f.handleListComments, http.MethodPost: f.handleCreateComment})
	case len(parts) == 2 && parts[0] == "comments":
		r.SetPathValue("id", parts[1])
		route(map[string]http.HandlerFunc{
			http.MethodGet: f.handleGetComment, http.MethodPatch: f.handleUpdateComment,
			http.MethodDelete: f.handleDeleteComment,
		})
	case len(parts) == 3 && parts[0] == "comments" && parts[2] == "reactions":
		r.SetPathValue("id", parts[1])
		route(map[string]http.HandlerFunc{http.MethodGet: f.handleListReactions, http.MethodPost: f.handleCreateReaction})
	default:
		notFound(w)
	}
}

// jwtMaxLifetime is GitHub's limit on an app JWT's exp - iat.
const jwtMaxLifetime = 10 * time.Minute

// jwtClockLeeway tolerates the usual back-dating of iat (ghinstallation signs iat = now - 30 s).
const jwtClockLeeway = time.Minute

// appFromJWT verifies the RS256 app JWT in the Authorization header against the registered app's public key,
// and its iat/exp against the wall clock (the bot signs with the wall clock).
func (f *Fake) appFromJWT(r *http.Request) (*appState, error) {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return nil, errors.New("a JSON web token is required")
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, errors.New("a JSON web token could not be decoded")
	}
	var header struct {
		Alg string `json:"alg"`
	}
	var claims struct {
		Iss json.RawMessage `json:"iss"`
		Iat int64           `json:"iat"`
		Exp int64           `json:"exp"`
	}
	if err := decodeJWTPart(parts[0], &header); err != nil {
		return nil, err
	}
	if err := decodeJWTPart(parts[1], &claims); err != nil {
		return nil, err
	}
	if header.Alg != "RS256" {
		return nil, fmt.Errorf("'alg' must be RS256, got %q", header.Alg)
	}
	appID, err := strconv.ParseInt(strings.Trim(string(claims.Iss), `"`), 10, 64)
	if err != nil {
		return nil, errors.New("'Issuer' claim ('iss') must be an Integer")
	}
	f.mu.Lock()
	app, ok := f.apps[appID]
	f.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("integration %d not found", appID)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, errors.New("a JSON web token could not be decoded")
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(app.key, crypto.SHA256, digest[:], sig); err != nil {
		return nil, errors.New("a JSON web token could not be decoded")
	}
	wall := time.Now()
	iat, exp := time.Unix(claims.Iat, 0), time.Unix(claims.Exp, 0)
	switch {
	case claims.Exp == 0 || !exp.After(wall):
		return nil, errors.New("'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires")
	case exp.Sub(iat) > jwtMaxLifetime:
		return nil, errors.New("'Expiration time' claim ('exp') is too far in the future")
	case iat.After(wall.Add(jwtClockLeeway)):
		return nil, errors.New("'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued")
	}
	return app, nil
}

func decodeJWTPart(part string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		return errors.New("a JSON web token could not be decoded")
	}
	if err := json.Unmarshal(b, v); err != nil {
		return errors.New("a JSON web token could not be decoded")
	}
	return nil
}

func (f *Fake) handleAccessToken(w http.ResponseWriter, r *http.Request) {
	app, err := f.appFromJWT(r)
	if err != nil {
		writeError(w, http.StatusUnauthorized, err.Error(), "https://docs.github.com/rest")
		return
	}
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	f.mu.Lock()
	defer f.mu.Unlock()
	inst, ok := f.installations[id]
	if !ok || inst.AppID != app.id {
		notFound(w)
		return
	}
	if inst.Suspended {
		writeError(w, http.StatusForbidden, "This installation has been suspended", "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app")
		return
	}
	// Installation tokens are not 40 characters: GitHub is moving to ghs_<appid>_<jwt>-like tokens.
	token := fmt.Sprintf("ghs_%d_%s", app.id, randomAlnum(36))
	expiresAt := f.now.Add(f.tokenTTL)
	f.tokens[token] = &tokenState{token: token, installationID: id, expiresAt: expiresAt}
	rateHeaders(w, f.now)
	writeJSON(w, http.StatusCreated, map[string]any{
		"token":                token,
		"expires_at":           timestamp(expiresAt),
		"permissions":          installationPermissions,
		"repository_selection": inst.selection(),
	})
}

var installationPermissions = map[string]string{
	"checks": "write", "contents": "read", "issues": "write", "pull_requests": "write", "metadata": "read",
	"members": "read",
}

func (inst *installationState) selection() string {
	if len(inst.Repos) == 0 {
		return "all"
	}
	return "selected"
}

// handleGetApp is GET /app: the authenticated app (app JWT only). The slug names the app's bot user,
// "<slug>[bot]", which authors everything the app's installations write.
func (f *Fake) handleGetApp(w http.ResponseWriter, r *http.Request) {
	app, err := f.appFromJWT(r)
	if err != nil {
		writeError(w, http.StatusUnauthorized, err.Error(), "https://docs.github.com/rest/apps/apps#get-the-authenticated-app")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	installations := 0
	for _, inst := range f.installations {
		if inst.AppID == app.id {
			installations++
		}
	}
	rateHeaders(w, f.now)
	writeJSON(w, http.StatusOK, map[string]any{
		"id":                  app.id,
		"slug":                app.slug,
		"node_id":             "A_" + strconv.FormatInt(app.id, 10),
		"name":                app.slug,
		"description":         "",
		"external_url":        "https://example.com",
		"html_url":            f.server.URL + "/apps/" + app.slug,
		"permissions":         installationPermissions,
		"events":              []string{"pull_request", "pull_request_review", "issue_comment", "push", "check_run", "check_suite"},
		"installations_count": installations,
	})
}

func (f *Fake) handleGetInstallation(w http.ResponseWriter, r *http.Request) {
	app, err := f.appFromJWT(r)
	if err != nil {
		writeError(w, http.StatusUnauthorized, err.Error(), "https://docs.github.com/rest")
		return
	}
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	f.mu.Lock()
	defer f.mu.Unlock()
	inst, ok := f.installations[id]
	if !ok || inst.AppID != app.id {
		notFound(w)
		return
	}
	var suspendedAt any
	if inst.Suspended {
		suspendedAt = timestamp(f.now)
	}
	rateHeaders(w, f.now)
	writeJSON(w, http.StatusOK, map[string]any{
		"id":                   inst.ID,
		"account":              f.userJSON(inst.Account, false),
		"app_id":               app.id,
		"app_slug":             app.slug,
		"target_type":          "Organization",
		"repository_selection": inst.selection(),
		"permissions":          installationPermissions,
		"events":               []string{"pull_request", "pull_request_review", "issue_comment", "push", "check_run", "check_suite"},
		"created_at":           timestamp(inst.createdAt),
		"updated_at":           timestamp(inst.createdAt),
		"suspended_at":         suspendedAt,
	})
}

func (f *Fake) handleManifestConversion(w http.ResponseWriter, r *http.Request) {
	code := r.PathValue("code")
	f.mu.Lock()
	defer f.mu.Unlock()
	app, ok := f.manifestCodes[code]
	if !ok {
		notFound(w)
		return
	}
	delete(f.manifestCodes, code) // a code is redeemable once
	if key, err := publicKeyFromPEM(app.PEM); err == nil {
		f.apps[app.ID] = &appState{id: app.ID, slug: app.Slug, key: key}
	}
	writeJSON(w, http.StatusCreated, map[string]any{
		"id":             app.ID,
		"slug":           app.Slug,
		"node_id":        "A_" + strconv.FormatInt(app.ID, 10),
		"owner":          f.userJSON(app.Owner, false),
		"name":           app.Name,
		"description":    "",
		"external_url":   "https://example.com",
		"html_url":       f.server.URL + "/apps/" + app.Slug,
		"created_at":     timestamp(f.now),
		"updated_at":     timestamp(f.now),
		"client_id":      app.ClientID,
		"client_secret":  app.ClientSecret,
		"webhook_secret": app.WebhookSecret,
		"pem":            app.PEM,
	})
}

func publicKeyFromPEM(s string) (*rsa.PublicKey, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return &k.PublicKey, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("not an RSA key")
	}
	return &rk.PublicKey, nil
}

// GenerateAppKey makes an RSA key for a test app: the PEM the bot is configured with and the public key to give
// AddApp.
func GenerateAppKey() (privatePEM []byte, public *rsa.PublicKey, err error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	privatePEM = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	return privatePEM, &key.PublicKey, nil
}

// NewApp generates a key for a test app, registers the app and returns the private key PEM the bot is
// configured with.
func (f *Fake) NewApp(t testing.TB, id int64, slug string) []byte {
	t.Helper()
	privatePEM, public, err := GenerateAppKey()
	if err != nil {
		t.Fatal(err)
	}
	f.AddApp(id, slug, public)
	return privatePEM
}

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func randomAlnum(n int) string {
	b := make([]byte, n)
	for i := range b {
		v, err := rand.Int(rand.Reader, big.NewInt(int64(len(alnum))))
		if err != nil {
			panic(err)
		}
		b[i] = alnum[v.Int64()]
	}
	return string(b)
}

// authInstallation checks the installation token of a request for a repository endpoint and returns the
// installation; it has answered 401 (bad token) or 404 (repository not covered) when ok is false.
func (f *Fake) authInstallation(w http.ResponseWriter, r *http.Request) (inst *installationState, ok bool) {
	h := r.Header.Get("Authorization")
	token, found := strings.CutPrefix(h, "token ")
	if !found {
		token, found = strings.CutPrefix(h, "Bearer ")
	}
	if !found {
		writeError(w, http.StatusUnauthorized, "Requires authentication", "https://docs.github.com/rest")
		return nil, false
	}
	inst, ok = f.tokenInstallation(token)
	if !ok {
		writeError(w, http.StatusUnauthorized, "Bad credentials", "https://docs.github.com/rest")
		return nil, false
	}
	return inst, true
}

// repoFor authenticates the request and finds the repository in its path. Callers hold f.mu. It has answered
// when ok is false.
func (f *Fake) repoFor(w http.ResponseWriter, r *http.Request) (repo *Repo, inst *installationState, ok bool) {
	inst, ok = f.authInstallation(w, r)
	if !ok {
		return nil, nil, false
	}
	full := r.PathValue("owner") + "/" + r.PathValue("repo")
	repo, found := f.repos[strings.ToLower(full)]
	if !found || !inst.covers(full) {
		notFound(w) // GitHub hides repositories the token cannot see
		return nil, nil, false
	}
	rateHeaders(w, f.now)
	return repo, inst, true
}

// appSlugFor is the slug of the app an installation belongs to. Callers hold f.mu.
func (f *Fake) appSlugFor(inst *installationState) string {
	if app, ok := f.apps[inst.AppID]; ok {
		return app.slug
	}
	return "app"
}

// userJSON is GitHub's simple user object. Callers hold f.mu.
func (f *Fake) userJSON(login string, bot bool) map[string]any {
	if login == "" {
		return nil
	}
	typ := "User"
	if bot {
		typ = "Bot"
	}
	return map[string]any{
		"login":    login,
		"id":       f.userID(login),
		"node_id":  "U_" + login,
		"type":     typ,
		"html_url": f.server.URL + "/" + login,
	}
}
