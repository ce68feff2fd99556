package github

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Rate-limit handling, in one place (see shared/forge-limits.md, "Secondary rate limits"): GitHub answers 403
// or 429. Honour retry-after; else, when x-ratelimit-remaining is 0, wait until x-ratelimit-reset; else wait a
// minute, doubling on each further try, and give up after a bounded number of tries. A 403 without any
// rate-limit signal is a permission error and is not retried.
const (
	// DefaultMaxRetries bounds the retries of one request after rate-limit answers.
	DefaultMaxRetries = 4
	// DefaultMaxWait is the longest single wait; a longer one (an hourly quota far from reset) gives up at once,
	// so the caller can retry the work later instead of blocking a worker.
	DefaultMaxWait = 15 * time.Minute
	// unsignalledBackoff is the first wait when GitHub gives no retry-after and no exhausted quota.
	unsignalledBackoff = time.Minute
	// resetSkew is added to x-ratelimit-reset against clock differences between the bot and GitHub.
	resetSkew = time.Second
	// DefaultMinWriteInterval spaces content-creating requests of one installation, as GitHub recommends (at
	// least one second between POST, PATCH, PUT and DELETE requests).
	DefaultMinWriteInterval = time.Second
)

// resetHeader carries, from the transport to mapError, when a rate limit it gave up on resets (unix nanoseconds).
const resetHeader = "X-Dagctl-Rate-Limit-Reset"

// rateLimitReset is the reset the transport stamped on a rate-limit answer (zero without one).
func rateLimitReset(resp *http.Response) time.Time {
	if resp == nil {
		return time.Time{}
	}
	n, err := strconv.ParseInt(resp.Header.Get(resetHeader), 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// rateLimitTransport retries requests that GitHub answered with a rate limit.
type rateLimitTransport struct {
	next       http.RoundTripper
	now        func() time.Time
	sleep      func(ctx context.Context, d time.Duration) error
	maxRetries int
	maxWait    time.Duration
}

func (t *rateLimitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		try := req
		if attempt > 0 {
			var err error
			if try, err = rewind(req); err != nil {
				return nil, err
			}
		}
		resp, err := t.next.RoundTrip(try)
		if err != nil {
			return nil, err
		}
		wait, limited := t.rateLimitWait(resp, attempt)
		if !limited || attempt >= t.maxRetries || wait > t.maxWait || !replayable(req) {
			if limited {
				// mapError turns it into vcs.RateLimited with this reset, read on the transport's clock.
				resp.Header.Set(resetHeader, strconv.FormatInt(t.now().Add(wait).UnixNano(), 10))
			}
			return resp, nil // the caller sees the rate-limit answer and maps it to vcs.ErrRateLimited
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err := t.sleep(req.Context(), wait); err != nil {
			return nil, err
		}
	}
}

// rateLimitWait tells whether resp is a rate-limit answer and how long to wait before trying again.
func (t *rateLimitTransport) rateLimitWait(resp *http.Response, attempt int) (time.Duration, bool) {
	if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusTooManyRequests {
		return 0, false
	}
	if v := resp.Header.Get("Retry-After"); v != "" {
		if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && secs >= 0 {
			return time.Duration(secs) * time.Second, true
		}
		if at, err := http.ParseTime(v); err == nil {
			return max(at.Sub(t.now()), 0), true
		}
	}
	if resp.Header.Get("X-RateLimit-Remaining") == "0" {
		if reset, err := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64); err == nil {
			return max(time.Unix(reset, 0).Sub(t.now()), 0) + resetSkew, true
		}
	}
	if isRateLimited(resp.StatusCode, resp.Header, peekErrorText(resp)) {
		return unsignalledBackoff << attempt, true
	}
	return 0, false // a 403 without rate-limit signals: a permission error
}

// isRateLimited is the one test of "this answer is a rate limit" (the transport waits on it, mapError reports
// it as vcs.ErrRateLimited): 429; or 403 with retry-after, an exhausted quota, or GitHub's message about a
// (secondary) rate limit, which may come without any header.
func isRateLimited(status int, header http.Header, errorText string) bool {
	switch status {
	case http.StatusTooManyRequests:
		return true
	case http.StatusForbidden:
		text := strings.ToLower(errorText)
		return header.Get("Retry-After") != "" || header.Get("X-RateLimit-Remaining") == "0" ||
			strings.Contains(text, "rate limit") || strings.Contains(text, "rate-limit") || strings.Contains(text, "abuse")
	}
	return false
}

// peekErrorText reads an error answer's message and documentation_url, leaving the body readable.
func peekErrorText(resp *http.Response) string {
	head, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(head), resp.Body), resp.Body}
	if err != nil {
		return ""
	}
	var answer struct {
		Message          string `json:"message"`
		DocumentationURL string `json:"documentation_url"`
	}
	_ = json.Unmarshal(head, &answer)
	return answer.Message + " " + answer.DocumentationURL
}

func replayable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// rewind is a copy of req with a fresh body, to send it again.
func rewind(req *http.Request) (*http.Request, error) {
	again := req.Clone(req.Context())
	if req.Body != nil && req.Body != http.NoBody {
		if req.GetBody == nil {
			return nil, errors.New("github: cannot resend a request whose body cannot be replayed")
		}
		body, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		again.Body = body
	}
	return again, nil
}

// writeSerializer sends one installation's content-creating requests one at a time, spaced by interval, because
// GitHub's secondary limits punish concurrent and bursty writes.
type writeSerializer struct {
	next     http.RoundTripper
	now      func() time.Time
	sleep    func(ctx context.Context, d time.Duration) error
	interval time.Duration

	mu        sync.Mutex
	lastWrite time.Time
}

func isWrite(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPatch, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

func (s *writeSerializer) RoundTrip(req *http.Request) (*http.Response, error) {
	if !isWrite(req.Method) {
		return s.next.RoundTrip(req)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.interval > 0 && !s.lastWrite.IsZero() {
		if wait := s.lastWrite.Add(s.interval).Sub(s.now()); wait > 0 {
			if err := s.sleep(req.Context(), wait); err != nil {
				return nil, err
			}
		}
	}
	resp, err := s.next.RoundTrip(req)
	s.lastWrite = s.now()
	return resp, err
}

func sleepContext(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
