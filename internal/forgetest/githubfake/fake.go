// Package githubfake is a stateful fake of the GitHub REST API and git smart HTTP, served over HTTP with
// net/http/httptest, for end-to-end tests of the bot. It speaks the shapes go-github uses, keeps everything the
// bot wrote (comments with their edit history, check runs with every state they went through, reactions), and
// lets tests drive it: register apps, installations, repositories backed by real git directories, pull requests,
// reviews and permissions; inject rate-limit and permission failures; inspect every request.
//
// The fake looks like GitHub Enterprise Server: the REST API lives under /api/v3 (APIURL) and repositories are
// cloned from /{owner}/{repo}.git at the server root (URL). Installation tokens expire on the fake's own clock,
// which starts at the wall-clock time the fake was created and moves only when a test advances it (Advance, or
// Sleep when injected into the bot as its sleep function). App JWTs are signed by the bot with the wall clock, so
// they are checked against the wall clock.
package githubfake

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dagctl/dagctl-bot/internal/forgetest/oauthfake"
)

// apiPrefix is where GitHub Enterprise Server serves its REST API.
const apiPrefix = "/api/v3"

// DefaultTokenTTL is how long GitHub's installation access tokens live.
const DefaultTokenTTL = time.Hour

// Fake is a fake GitHub. All methods are safe for concurrent use.
type Fake struct {
	server *httptest.Server
	api    *http.ServeMux

	mu       sync.Mutex
	now      time.Time
	tokenTTL time.Duration
	nextID   int64

	apps          map[int64]*appState
	installations map[int64]*installationState
	tokens        map[string]*tokenState
	repos         map[string]*Repo // by lower-case "owner/name"
	users         map[string]int64 // login → id
	emails        map[string]string
	teams         map[string]map[string]string // "org/slug" → login → state
	manifestCodes map[string]ManifestApp
	failures      []*failureRule
	random        randomFailures
	requests      []Request
	hooks         map[int64]*hookState // by app id: its webhook URL and the deliveries made to it

	oauth *oauthfake.Server

	latency           time.Duration
	writesInFlight    int
	maxWritesInFlight int
}

// New starts a fake GitHub that is closed when the test ends.
func New(t testing.TB) *Fake {
	t.Helper()
	f := &Fake{
		now:           time.Now().UTC().Truncate(time.Second),
		tokenTTL:      DefaultTokenTTL,
		nextID:        1000,
		apps:          map[int64]*appState{},
		installations: map[int64]*installationState{},
		tokens:        map[string]*tokenState{},
		repos:         map[string]*Repo{},
		users:         map[string]int64{},
		emails:        map[string]string{},
		teams:         map[string]map[string]string{},
		manifestCodes: map[string]ManifestApp{},
	}
	f.oauth = oauthfake.New("ghu_", f.Now)
	f.api = http.NewServeMux()
	f.routes()
	f.server = httptest.NewServer(http.HandlerFunc(f.serveHTTP))
	t.Cleanup(f.server.Close)
	return f
}

// URL is the server's root: clone URLs live here (URL/owner/repo.git).
func (f *Fake) URL() string { return f.server.URL }

// APIURL is the REST API's base URL, as given to the bot in DAGCTL_GITHUB_API_URL.
func (f *Fake) APIURL() string { return f.server.URL + apiPrefix }

// Client is an HTTP client for the fake's server.
func (f *Fake) Client() *http.Client { return f.server.Client() }

// Close stops the server (New already arranges it at the end of the test).
func (f *Fake) Close() { f.server.Close() }

// Now is the fake's clock.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Advance moves the fake's clock forward: tokens expire, rate-limit resets pass.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

// Sleep advances the fake's clock by d instead of waiting, so a bot whose sleep is this function waits in fake
// time: request times then show the waits.
func (f *Fake) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.Advance(d)
	return nil
}

// SetTokenTTL sets the lifetime of tokens issued from now on (GitHub: one hour).
func (f *Fake) SetTokenTTL(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokenTTL = d
}

func (f *Fake) newID() int64 {
	f.nextID++
	return f.nextID
}

// userID gives every login a stable id, as GitHub accounts have. Callers hold f.mu.
func (f *Fake) userID(login string) int64 {
	key := strings.ToLower(login)
	if id, ok := f.users[key]; ok {
		return id
	}
	id := f.newID()
	f.users[key] = id
	return id
}

// SetLatency delays every answer by d of real time, so that tests can observe requests in flight together.
func (f *Fake) SetLatency(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.latency = d
}

// MaxConcurrentWrites is the largest number of API writes (POST, PATCH, PUT, DELETE) that were in flight at
// once.
func (f *Fake) MaxConcurrentWrites() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maxWritesInFlight
}

// Request is one request the fake received.
type Request struct {
	Method string
	// Path is the API path without the /api/v3 prefix for REST calls ("/repos/o/r/pulls/1"), and the URL path
	// for git smart HTTP ("/o/r.git/info/refs").
	Path   string
	Query  url.Values
	API    bool
	Status int
	// Time is on the fake's clock, when the request arrived.
	Time time.Time
	// Auth is "jwt", "token", "basic" or "" (none).
	Auth string
}

// Requests returns every request received so far, in arrival order.
func (f *Fake) Requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Request(nil), f.requests...)
}

// RequestsMatching returns the requests whose method equals method ("" for any) and whose path matches pattern
// (path.Match syntax: "/repos/acme/*/issues/*/comments").
func (f *Fake) RequestsMatching(method, pattern string) []Request {
	var out []Request
	for _, r := range f.Requests() {
		if matches(method, pattern, r.Method, r.Path) {
			out = append(out, r)
		}
	}
	return out
}

// ResetRequests forgets the recorded requests.
func (f *Fake) ResetRequests() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = nil
}

func matches(method, pattern, gotMethod, gotPath string) bool {
	if method != "" && !strings.EqualFold(method, gotMethod) {
		return false
	}
	ok, err := path.Match(pattern, gotPath)
	return err == nil && ok
}

// Failure is an error answer the fake gives instead of handling a request.
type Failure struct {
	Status int
	// RetryAfter is sent as the retry-after header (whole seconds) when positive.
	RetryAfter time.Duration
	// Exhausted sends x-ratelimit-remaining: 0 and x-ratelimit-reset at ResetIn from the fake's now.
	Exhausted bool
	ResetIn   time.Duration
	Message   string
	DocURL    string
}

// SecondaryRateLimit is GitHub's answer to too many content-creating or concurrent requests: 403 with a
// message naming the secondary rate limit, and retry-after when retryAfter is positive (GitHub does not always
// send it).
func SecondaryRateLimit(retryAfter time.Duration) Failure {
	return Failure{
		Status:     http.StatusForbidden,
		RetryAfter: retryAfter,
		Message: "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. " +
			"If you reach out to GitHub Support for help, please include the request ID 0000:0000:0000000:0000000:00000000.",
		DocURL: "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
	}
}

// PrimaryRateLimit is the answer when the hourly quota is used up: status (403 or 429) with
// x-ratelimit-remaining: 0 and x-ratelimit-reset resetIn from the fake's now.
func PrimaryRateLimit(status int, resetIn time.Duration) Failure {
	return Failure{
		Status:    status,
		Exhausted: true,
		ResetIn:   resetIn,
		Message:   "API rate limit exceeded for installation. If you reach out to GitHub Support for help, please include the request ID 0000:0000.",
		DocURL:    "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-rate-limits",
	}
}

// PermissionDenied is a 403 without any rate-limit signal: the app lacks a permission.
func PermissionDenied() Failure {
	return Failure{
		Status:  http.StatusForbidden,
		Message: "Resource not accessible by integration",
		DocURL:  "https://docs.github.com/rest",
	}
}

// badGateway is what a proxy in front of the API answers when the API does not.
var badGateway = Failure{Status: http.StatusBadGateway, Message: "Server Error"}

// RandomFailures fail a share of API calls with 502 Bad Gateway, drawn from a seeded source so that a run can
// be repeated. The zero value fails nothing.
type RandomFailures struct {
	// Share of API calls that fail.
	Share float64
	// AfterHandling is the share of failing writes (not GET or HEAD) that are handled first, their answer
	// lost: the caller cannot tell whether the write happened.
	AfterHandling float64
	Seed          int64
}

type randomFailures struct {
	RandomFailures
	rng    *rand.Rand
	failed int
}

// draw decides one call's fate. Callers hold f.mu.
func (r *randomFailures) draw(write bool) (before, after bool) {
	if r.Share <= 0 || r.rng.Float64() >= r.Share {
		return false, false
	}
	r.failed++
	if write && r.rng.Float64() < r.AfterHandling {
		return false, true
	}
	return true, false
}

// FailRandomly fails a share of the API calls from now on (the zero RandomFailures: none), besides FailNext's.
func (f *Fake) FailRandomly(r RandomFailures) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.random = randomFailures{RandomFailures: r, rng: rand.New(rand.NewSource(r.Seed))}
}

// RandomlyFailed is how many calls FailRandomly's current setting failed.
func (f *Fake) RandomlyFailed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.random.failed
}

type failureRule struct {
	method, pattern string
	remaining       int
	until           time.Time // an outage: every match fails while the fake's clock is before it
	failure         Failure
}

// FailNext makes the next n requests whose method equals method ("" for any) and whose path matches pattern
// (path.Match syntax, API paths without /api/v3) answer with failure.
func (f *Fake) FailNext(method, pattern string, n int, failure Failure) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures = append(f.failures, &failureRule{method: method, pattern: pattern, remaining: n, failure: failure})
}

// Outage makes every request (API, token endpoint and git alike) answer with failure for d of the fake's clock:
// the forge is down, and comes back by itself.
func (f *Fake) Outage(d time.Duration, failure Failure) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures = append(f.failures, &failureRule{until: f.now.Add(d), failure: failure})
}

// takeFailure consumes one matching injected failure. Callers hold f.mu.
func (f *Fake) takeFailure(method, p string) (Failure, bool) {
	for _, rule := range f.failures {
		if !rule.until.IsZero() {
			if f.now.Before(rule.until) {
				return rule.failure, true
			}
			continue
		}
		if rule.remaining > 0 && matches(rule.method, rule.pattern, method, p) {
			rule.remaining--
			return rule.failure, true
		}
	}
	return Failure{}, false
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (f *Fake) serveHTTP(w http.ResponseWriter, r *http.Request) {
	isAPI := r.URL.Path == apiPrefix || strings.HasPrefix(r.URL.Path, apiPrefix+"/")
	p := r.URL.Path
	if isAPI {
		p = strings.TrimPrefix(p, apiPrefix)
	}
	f.mu.Lock()
	index := len(f.requests)
	f.requests = append(f.requests, Request{
		Method: r.Method, Path: p, Query: r.URL.Query(), API: isAPI, Time: f.now, Auth: authKind(r),
	})
	failure, failing := f.takeFailure(r.Method, p)
	now, latency := f.now, f.latency
	write := isAPI && r.Method != http.MethodGet && r.Method != http.MethodHead
	failBefore, failAfter := false, false
	if isAPI && !failing {
		failBefore, failAfter = f.random.draw(write)
	}
	if write {
		f.writesInFlight++
		f.maxWritesInFlight = max(f.maxWritesInFlight, f.writesInFlight)
	}
	f.mu.Unlock()
	if write {
		defer func() {
			f.mu.Lock()
			f.writesInFlight--
			f.mu.Unlock()
		}()
	}
	if latency > 0 {
		time.Sleep(latency) // real time: lets tests observe concurrent requests
	}

	rec := &statusRecorder{ResponseWriter: w}
	defer func() {
		f.mu.Lock()
		f.requests[index].Status = rec.status
		f.mu.Unlock()
	}()

	switch {
	case failing:
		writeFailure(rec, failure, now)
	case failBefore:
		writeFailure(rec, badGateway, now)
	case failAfter:
		// Handled, and its answer lost on the way back, as when a proxy in front of GitHub times out.
		http.StripPrefix(apiPrefix, f.api).ServeHTTP(httptest.NewRecorder(), r)
		writeFailure(rec, badGateway, now)
	case r.Method == http.MethodGet && r.URL.Path == "/login/oauth/authorize":
		f.oauth.Authorize(rec, r)
	case r.Method == http.MethodPost && r.URL.Path == "/login/oauth/access_token":
		f.oauth.Token(rec, r)
	case isAPI:
		rec.Header().Set("X-GitHub-Media-Type", "github.v3; format=json")
		http.StripPrefix(apiPrefix, f.api).ServeHTTP(rec, r)
	default:
		f.serveGit(rec, r)
	}
}

func authKind(r *http.Request) string {
	h := r.Header.Get("Authorization")
	switch {
	case h == "":
		return ""
	case strings.HasPrefix(h, "Basic "):
		return "basic"
	case strings.HasPrefix(h, "Bearer ") && strings.Count(strings.TrimPrefix(h, "Bearer "), ".") == 2:
		return "jwt"
	default:
		return "token"
	}
}

func writeFailure(w http.ResponseWriter, failure Failure, now time.Time) {
	h := w.Header()
	h.Set("X-RateLimit-Limit", "5000")
	h.Set("X-RateLimit-Resource", "core")
	if failure.Exhausted {
		h.Set("X-RateLimit-Remaining", "0")
		h.Set("X-RateLimit-Used", "5000")
		h.Set("X-RateLimit-Reset", strconv.FormatInt(now.Add(failure.ResetIn).Unix(), 10))
	} else {
		h.Set("X-RateLimit-Remaining", "4321")
		h.Set("X-RateLimit-Used", "679")
		h.Set("X-RateLimit-Reset", strconv.FormatInt(now.Add(time.Hour).Unix(), 10))
	}
	if failure.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int(failure.RetryAfter/time.Second)))
	}
	writeJSON(w, failure.Status, map[string]any{
		"message":           failure.Message,
		"documentation_url": failure.DocURL,
		"status":            strconv.Itoa(failure.Status),
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, message, docURL string) {
	if docURL == "" {
		docURL = "https://docs.github.com/rest"
	}
	writeJSON(w, status, map[string]any{
		"message": message, "documentation_url": docURL, "status": strconv.Itoa(status),
	})
}

func notFound(w http.ResponseWriter) { writeError(w, http.StatusNotFound, "Not Found", "") }

// validationFailed is GitHub's 422 with field errors.
func validationFailed(w http.ResponseWriter, docURL string, errs ...map[string]any) {
	writeJSON(w, http.StatusUnprocessableEntity, map[string]any{
		"message": "Validation Failed", "errors": errs, "documentation_url": docURL, "status": "422",
	})
}

// rateHeaders are the primary-limit headers GitHub sends on every API answer.
func rateHeaders(w http.ResponseWriter, now time.Time) {
	h := w.Header()
	h.Set("X-RateLimit-Limit", "5000")
	h.Set("X-RateLimit-Remaining", "4999")
	h.Set("X-RateLimit-Used", "1")
	h.Set("X-RateLimit-Reset", strconv.FormatInt(now.Add(time.Hour).Unix(), 10))
	h.Set("X-RateLimit-Resource", "core")
}

func timestamp(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339)
}

// paginate applies GitHub's page/per_page parameters (default 30, at most 100) to n items, sets the Link header
// and returns the slice bounds.
func paginate(w http.ResponseWriter, r *http.Request, n int) (start, end int) {
	q := r.URL.Query()
	perPage := 30
	if v, err := strconv.Atoi(q.Get("per_page")); err == nil && v > 0 {
		perPage = min(v, 100)
	}
	page := 1
	if v, err := strconv.Atoi(q.Get("page")); err == nil && v > 0 {
		page = v
	}
	last := max((n+perPage-1)/perPage, 1)
	start = min((page-1)*perPage, n)
	end = min(start+perPage, n)

	link := func(p int, rel string) string {
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(p))
		q.Set("per_page", strconv.Itoa(perPage))
		return fmt.Sprintf(`<http://%s%s%s?%s>; rel="%s"`, r.Host, apiPrefix, r.URL.Path, q.Encode(), rel)
	}
	var links []string
	if page < last {
		links = append(links, link(page+1, "next"), link(last, "last"))
	}
	if page > 1 {
		links = append(links, link(1, "first"), link(page-1, "prev"))
	}
	if len(links) > 0 {
		w.Header().Set("Link", strings.Join(links, ", "))
	}
	return start, end
}

// appState is a registered GitHub App.
type appState struct {
	id   int64
	slug string
	key  *rsa.PublicKey
}

// AddApp registers a GitHub App whose JWTs are verified with key.
func (f *Fake) AddApp(id int64, slug string, key *rsa.PublicKey) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.apps[id] = &appState{id: id, slug: slug, key: key}
}

// Installation is an installation of an app on an account.
type Installation struct {
	ID      int64
	AppID   int64
	Account string
	// Repos are the "owner/name" repositories the installation may access; empty means all of Account's.
	Repos     []string
	Suspended bool
}

type installationState struct {
	Installation
	createdAt time.Time
}

// AddInstallation registers (or replaces) an installation.
func (f *Fake) AddInstallation(inst Installation) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.installations[inst.ID] = &installationState{Installation: inst, createdAt: f.now}
	f.userID(inst.Account)
}

// SuspendInstallation suspends or unsuspends an installation: a suspended one gets no tokens and its tokens stop
// working.
func (f *Fake) SuspendInstallation(id int64, suspended bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if inst, ok := f.installations[id]; ok {
		inst.Suspended = suspended
	}
}

func (inst *installationState) covers(fullName string) bool {
	if len(inst.Repos) == 0 {
		owner, _, _ := strings.Cut(fullName, "/")
		return strings.EqualFold(owner, inst.Account)
	}
	for _, r := range inst.Repos {
		if strings.EqualFold(r, fullName) {
			return true
		}
	}
	return false
}

type tokenState struct {
	token          string
	installationID int64
	expiresAt      time.Time
}

// Token is an installation access token the fake issued.
type Token struct {
	Token          string
	InstallationID int64
	ExpiresAt      time.Time
}

// Tokens returns the tokens issued so far, oldest first.
func (f *Fake) Tokens() []Token {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Token
	for _, t := range f.tokens {
		out = append(out, Token{Token: t.token, InstallationID: t.installationID, ExpiresAt: t.expiresAt})
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].ExpiresAt.Equal(out[j].ExpiresAt) {
			return out[i].ExpiresAt.Before(out[j].ExpiresAt)
		}
		return out[i].Token < out[j].Token
	})
	return out
}

// tokenInstallation checks an installation token: it must be one the fake issued, unexpired on the fake's clock,
// of an installation that is not suspended. Callers hold f.mu.
func (f *Fake) tokenInstallation(token string) (*installationState, bool) {
	t, ok := f.tokens[token]
	if !ok || !f.now.Before(t.expiresAt) {
		return nil, false
	}
	inst, ok := f.installations[t.installationID]
	if !ok || inst.Suspended {
		return nil, false
	}
	return inst, true
}

// MapEmail links a commit email to an account, as GitHub does for verified emails (for pull request commits).
func (f *Fake) MapEmail(email, login string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.emails[strings.ToLower(email)] = login
}

// SetTeamMember sets user's membership of org/slug: state "active" or "pending"; "" removes it.
func (f *Fake) SetTeamMember(org, slug, user, state string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := strings.ToLower(org + "/" + slug)
	if f.teams[key] == nil {
		f.teams[key] = map[string]string{}
	}
	if state == "" {
		delete(f.teams[key], strings.ToLower(user))
		return
	}
	f.teams[key][strings.ToLower(user)] = state
}

// ManifestApp is the app GitHub creates when a manifest flow completes.
type ManifestApp struct {
	ID            int64
	Slug          string
	Name          string
	Owner         string
	PEM           string
	WebhookSecret string
	ClientID      string
	ClientSecret  string
}

// AddManifestCode makes code redeemable once at POST /app-manifests/{code}/conversions. Redeeming it registers
// the app with the public half of its PEM.
func (f *Fake) AddManifestCode(code string, app ManifestApp) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.manifestCodes[code] = app
}
