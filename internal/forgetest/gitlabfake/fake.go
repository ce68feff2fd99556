// Package gitlabfake is a stateful fake of GitLab's REST API v4 and git smart HTTP, served over HTTP with
// net/http/httptest, for tests of the GitLab adapter and of the bot. It speaks the shapes
// gitlab.com/gitlab-org/api/client-go uses and keeps what was done: users and their tokens, groups and projects
// with members' access levels, merge requests with their notes, award emoji and approvals, commit statuses in
// the pipelines they joined. Repositories are real git directories; clones need `oauth2:<token>`.
//
// The fake has its own clock: it starts at the wall-clock time the fake was created and moves only when a test
// advances it (Advance, or Sleep injected into the code under test). Every time GitLab would stamp (a status's
// started and finished times, an approval, a note) is on it.
package gitlabfake

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dagctl/dagctl-bot/internal/forgetest/oauthfake"
)

// apiPrefix is where GitLab serves its REST API.
const apiPrefix = "/api/v4"

// Access levels of project and group members, as GitLab numbers them.
const (
	Guest      = 10
	Planner    = 15
	Reporter   = 20
	Developer  = 30
	Maintainer = 40
	Owner      = 50
)

// Fake is a fake GitLab. All methods are safe for concurrent use.
type Fake struct {
	server *httptest.Server
	api    *http.ServeMux

	mu       sync.Mutex
	now      time.Time
	nextID   int64
	version  string
	users    map[int64]*User
	tokens   map[string]*tokenState
	groups   map[string]*Group // by lower-case full path
	projects map[int64]*Project
	// approvedAt: the approvals API shows each approval's approved_at (GitLab versions differ).
	approvedAt bool
	maxMRFiles int

	oauth    *oauthfake.Server
	failures []*failureRule
	random   randomFailures
	requests []Request
}

// DefaultMaxMRFiles is how many files GitLab keeps in a merge request's diff before it stops (the
// diff_max_files application setting, 1,000 by default); a larger one has changes_count "1000+".
const DefaultMaxMRFiles = 1000

// New starts a fake GitLab that is closed when the test ends.
func New(t testing.TB) *Fake {
	t.Helper()
	f := &Fake{
		now:        time.Now().UTC().Truncate(time.Second),
		nextID:     100,
		version:    "17.6.0",
		users:      map[int64]*User{},
		tokens:     map[string]*tokenState{},
		groups:     map[string]*Group{},
		projects:   map[int64]*Project{},
		maxMRFiles: DefaultMaxMRFiles,
	}
	f.oauth = oauthfake.New("gloas-", f.Now)
	f.api = http.NewServeMux()
	f.routes()
	f.server = httptest.NewServer(http.HandlerFunc(f.serveHTTP))
	t.Cleanup(f.server.Close)
	return f
}

// URL is the server's root: the bot's DAGCTL_GITLAB_URL; clone URLs live here (URL/group/project.git).
func (f *Fake) URL() string { return f.server.URL }

// APIURL is the REST API's base URL.
func (f *Fake) APIURL() string { return f.server.URL + apiPrefix }

// Client is an HTTP client for the fake's server.
func (f *Fake) Client() *http.Client { return f.server.Client() }

// Now is the fake's clock.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Advance moves the fake's clock forward.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

// Sleep advances the fake's clock by d instead of waiting.
func (f *Fake) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.Advance(d)
	return nil
}

// SetVersion sets what GET /version answers.
func (f *Fake) SetVersion(v string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.version = v
}

// ShowApprovedAt makes the approvals API show each approval's approved_at, as newer GitLab versions do; by
// default it does not.
func (f *Fake) ShowApprovedAt(show bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.approvedAt = show
}

// SetMaxMRFiles sets how many files a merge request's diff keeps (DefaultMaxMRFiles).
func (f *Fake) SetMaxMRFiles(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.maxMRFiles = n
}

func (f *Fake) newID() int64 {
	f.nextID++
	return f.nextID
}

// Request is one request the fake received.
type Request struct {
	Method string
	// Path is the escaped API path without /api/v4 ("/projects/g%2Fp/merge_requests/1"), or the URL path of a
	// git request.
	Path  string
	Query url.Values
	API   bool
	// User is the username the request authenticated as ("" for none or a bad token).
	User   string
	Status int
	Time   time.Time
}

// Requests returns every request received so far, in arrival order.
func (f *Fake) Requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Request(nil), f.requests...)
}

// RequestsMatching returns the requests whose method equals method ("" for any) and whose path matches pattern
// (path.Match syntax over the escaped path).
func (f *Fake) RequestsMatching(method, pattern string) []Request {
	var out []Request
	for _, r := range f.Requests() {
		if matches(method, pattern, r.Method, r.Path) {
			out = append(out, r)
		}
	}
	return out
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
	// RetryAfter is sent as Retry-After (whole seconds) when positive.
	RetryAfter time.Duration
	// ResetIn is sent as RateLimit-Reset (epoch seconds, from the fake's now) when positive.
	ResetIn time.Duration
	Message string
}

// RateLimit is GitLab's 429: "Retry later", with RateLimit-Reset and Retry-After.
func RateLimit(resetIn time.Duration) Failure {
	return Failure{Status: http.StatusTooManyRequests, RetryAfter: resetIn, ResetIn: resetIn, Message: "Retry later"}
}

// badGateway is what a proxy in front of GitLab answers when it does not.
var badGateway = Failure{Status: http.StatusBadGateway, Message: "502 Bad Gateway"}

// RandomFailures fail a share of API calls with 502, from a seeded source. The zero value fails nothing.
type RandomFailures struct {
	Share float64
	// AfterHandling is the share of failing writes handled first, their answer lost.
	AfterHandling float64
	Seed          int64
}

type randomFailures struct {
	RandomFailures
	rng    *rand.Rand
	failed int
}

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

// FailRandomly fails a share of the API calls from now on, besides FailNext's.
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
	until           time.Time
	failure         Failure
}

// FailNext makes the next n API requests of method ("" for any) whose escaped path (without /api/v4) matches
// pattern answer with failure.
func (f *Fake) FailNext(method, pattern string, n int, failure Failure) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures = append(f.failures, &failureRule{method: method, pattern: pattern, remaining: n, failure: failure})
}

// Outage makes every request (API and git) answer with failure for d of the fake's clock.
func (f *Fake) Outage(d time.Duration, failure Failure) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures = append(f.failures, &failureRule{until: f.now.Add(d), failure: failure})
}

func (f *Fake) takeFailure(method, p string, isAPI bool) (Failure, bool) {
	for _, rule := range f.failures {
		if !rule.until.IsZero() {
			if f.now.Before(rule.until) {
				return rule.failure, true
			}
			continue
		}
		if isAPI && rule.remaining > 0 && matches(rule.method, rule.pattern, method, p) {
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

type ctxKey struct{}

// caller is the user a request authenticated as, set by serveHTTP.
func caller(r *http.Request) *User {
	u, _ := r.Context().Value(ctxKey{}).(*User)
	return u
}

func (f *Fake) serveHTTP(w http.ResponseWriter, r *http.Request) {
	escaped := r.URL.EscapedPath()
	isAPI := escaped == apiPrefix || strings.HasPrefix(escaped, apiPrefix+"/")
	p := escaped
	if isAPI {
		p = strings.TrimPrefix(p, apiPrefix)
	}
	write := isAPI && r.Method != http.MethodGet && r.Method != http.MethodHead

	f.mu.Lock()
	user, scopeOK := f.apiUser(r)
	index := len(f.requests)
	req := Request{Method: r.Method, Path: p, Query: r.URL.Query(), API: isAPI, Time: f.now}
	if user != nil {
		req.User = user.Username
	}
	f.requests = append(f.requests, req)
	failure, failing := f.takeFailure(r.Method, p, isAPI)
	now := f.now
	failBefore, failAfter := false, false
	if isAPI && !failing {
		failBefore, failAfter = f.random.draw(write)
	}
	f.mu.Unlock()

	rec := &statusRecorder{ResponseWriter: w}
	defer func() {
		f.mu.Lock()
		f.requests[index].Status = rec.status
		f.mu.Unlock()
	}()
	if !isAPI {
		switch {
		case failing:
			writeFailure(rec, failure, now)
		case r.Method == http.MethodGet && escaped == "/oauth/authorize":
			f.oauth.Authorize(rec, r)
		case r.Method == http.MethodPost && escaped == "/oauth/token":
			f.oauth.Token(rec, r)
		default:
			f.serveGit(rec, r)
		}
		return
	}
	switch {
	case failing:
		writeFailure(rec, failure, now)
		return
	case failBefore:
		writeFailure(rec, badGateway, now)
		return
	}
	if user == nil && p != "/version" || user != nil && !scopeOK {
		if user != nil {
			writeJSON(rec, http.StatusForbidden, map[string]any{"error": "insufficient_scope",
				"error_description": "The request requires higher privileges than provided by the access token.",
				"scope":             "api read_api"})
			return
		}
		writeMessage(rec, http.StatusUnauthorized, "401 Unauthorized")
		return
	}
	r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, user))
	if failAfter {
		f.api.ServeHTTP(httptest.NewRecorder(), stripPrefix(r))
		writeFailure(rec, badGateway, now)
		return
	}
	f.api.ServeHTTP(rec, stripPrefix(r))
}

// stripPrefix is r with /api/v4 taken off its path (escaped and not).
func stripPrefix(r *http.Request) *http.Request {
	r2 := r.Clone(r.Context())
	r2.URL.Path = strings.TrimPrefix(r.URL.Path, apiPrefix)
	if r.URL.RawPath != "" {
		r2.URL.RawPath = strings.TrimPrefix(r.URL.RawPath, apiPrefix)
	}
	return r2
}

func writeFailure(w http.ResponseWriter, failure Failure, now time.Time) {
	h := w.Header()
	if failure.ResetIn > 0 {
		reset := now.Add(failure.ResetIn)
		h.Set("RateLimit-Observed", "601")
		h.Set("RateLimit-Remaining", "0")
		h.Set("RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
		h.Set("RateLimit-ResetTime", reset.UTC().Format(http.TimeFormat))
	}
	if failure.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int(failure.RetryAfter/time.Second)))
	}
	if failure.Status == http.StatusTooManyRequests {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(failure.Status)
		_, _ = fmt.Fprintln(w, failure.Message)
		return
	}
	writeMessage(w, failure.Status, failure.Message)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// writeMessage is GitLab's error shape: {"message": "404 Project Not Found"}.
func writeMessage(w http.ResponseWriter, status int, message string) {
	writeJSON(w, status, map[string]any{"message": message})
}

func notFound(w http.ResponseWriter, what string) {
	writeMessage(w, http.StatusNotFound, "404 "+what+" Not Found")
}

func timestamp(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// paginate applies GitLab's page/per_page (default 20, at most 100) to n items, sets X-Page, X-Per-Page,
// X-Next-Page, X-Prev-Page, X-Total, X-Total-Pages and Link, and returns the slice bounds.
func paginate(w http.ResponseWriter, r *http.Request, n int) (start, end int) {
	q := r.URL.Query()
	perPage := 20
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
	h := w.Header()
	h.Set("X-Page", strconv.Itoa(page))
	h.Set("X-Per-Page", strconv.Itoa(perPage))
	h.Set("X-Total", strconv.Itoa(n))
	h.Set("X-Total-Pages", strconv.Itoa(last))
	next, prev := "", ""
	if page < last {
		next = strconv.Itoa(page + 1)
	}
	if page > 1 {
		prev = strconv.Itoa(page - 1)
	}
	h.Set("X-Next-Page", next)
	h.Set("X-Prev-Page", prev)
	link := func(p int, rel string) string {
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(p))
		q.Set("per_page", strconv.Itoa(perPage))
		return fmt.Sprintf(`<http://%s%s%s?%s>; rel="%s"`, r.Host, apiPrefix, r.URL.EscapedPath(), q.Encode(), rel)
	}
	links := []string{link(1, "first"), link(last, "last")}
	if next != "" {
		links = append(links, link(page+1, "next"))
	}
	if prev != "" {
		links = append(links, link(page-1, "prev"))
	}
	h.Set("Link", strings.Join(links, ", "))
	return start, end
}

// page writes one page of items as JSON.
func page[T any](w http.ResponseWriter, r *http.Request, items []T) {
	start, end := paginate(w, r, len(items))
	out := items[start:end]
	if out == nil {
		out = []T{}
	}
	writeJSON(w, http.StatusOK, out)
}
