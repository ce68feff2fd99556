package server

import (
	"crypto/subtle"
	"net/http"
	"strings"
)

// metricsHandler serves /metrics. The metrics carry no secret and no repository, PR or user name (their labels
// are bounded: forges, event kinds, reasons, outcomes), so it is open by default, like /healthz; with
// DAGCTL_METRICS_TOKEN it requires that bearer token, for an operator whose bot is reachable from the internet.
func (s *Server) metricsHandler() http.Handler {
	serve := s.metrics.Handler()
	token := s.cfg.MetricsToken.Reveal()
	if token == "" {
		return serve
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		given, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(given), []byte(token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="dagctl-bot metrics"`)
			http.Error(w, "a bearer token is required", http.StatusUnauthorized)
			return
		}
		serve.ServeHTTP(w, r)
	})
}
