package server

import (
	"net/http"
	"time"
)

// HTTPLimits are the connection limits of the bot's HTTP server. Zero fields take the defaults.
type HTTPLimits struct {
	// ReadHeaderTimeout closes a connection whose request headers have not arrived in time.
	ReadHeaderTimeout time.Duration
}

// DefaultHTTPLimits are the limits `dagctl-bot serve` uses.
var DefaultHTTPLimits = HTTPLimits{
	ReadHeaderTimeout: 10 * time.Second,
}

func (l HTTPLimits) withDefaults() HTTPLimits {
	if l.ReadHeaderTimeout <= 0 {
		l.ReadHeaderTimeout = DefaultHTTPLimits.ReadHeaderTimeout
	}
	return l
}

// NewHTTPServer is the bot's http.Server on addr, with its limits; `serve`, the end-to-end tests and the intake
// benchmark all serve through it.
func NewHTTPServer(addr string, handler http.Handler, limits HTTPLimits) *http.Server {
	limits = limits.withDefaults()
	return &http.Server{
		Addr:              addr,
		Handler:           handler,
		ReadHeaderTimeout: limits.ReadHeaderTimeout,
	}
}
