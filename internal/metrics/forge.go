package metrics

import (
	"net/http"
	"strconv"
	"strings"
)

// Transport is next, observed: every request to forge's API counted by the class of its answer, and the rate
// limit left as the answers say (GitHub: X-RateLimit-Remaining; GitLab: RateLimit-Remaining). It goes below the
// adapters' own transports (GitHub's rate-limit waits and write spacing), so each attempt counts. nil next is
// http.DefaultTransport.
func (m *Metrics) Transport(forge string, next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return &observedTransport{next: next, m: m, forge: forge}
}

type observedTransport struct {
	next  http.RoundTripper
	m     *Metrics
	forge string
}

func (t *observedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		t.m.forgeCalls.WithLabelValues(t.forge, "error").Inc()
		return resp, err
	}
	t.m.forgeCalls.WithLabelValues(t.forge, StatusClass(resp.StatusCode)).Inc()
	for _, h := range []string{"X-RateLimit-Remaining", "RateLimit-Remaining"} {
		if v := resp.Header.Get(h); v != "" {
			if n, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && n >= 0 {
				t.m.forgeRateLimitRemain.WithLabelValues(t.forge).Set(n)
			}
			break
		}
	}
	return resp, nil
}

// StatusClass is the status_class label of an HTTP status: 429 on its own (a rate limit), else its hundreds.
func StatusClass(code int) string {
	switch {
	case code == http.StatusTooManyRequests:
		return "429"
	case code >= 200 && code < 300:
		return "2xx"
	case code >= 300 && code < 400:
		return "3xx"
	case code >= 400 && code < 500:
		return "4xx"
	case code >= 500 && code < 600:
		return "5xx"
	}
	return "other"
}
