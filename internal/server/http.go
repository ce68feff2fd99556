package server

import (
	"net/http"
	"time"
)

// HTTPLimits are the connection limits of the bot's HTTP server: anyone can connect to it, so a slow or
// oversized sender must not hold a connection or memory for long. Zero fields take the defaults.
type HTTPLimits struct {
	// ReadHeaderTimeout closes a connection whose request headers have not arrived in time.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included. A webhook may wait up to 8 s for room in the
	// intake (webhook.BodyLimits) and still has 12 s for a 25 MB body; GitHub itself gives up after 10 s.
	ReadTimeout time.Duration
	// WriteTimeout bounds a request from its headers to the end of the answer (a run's log page is the
	// largest answer).
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection nobody uses.
	IdleTimeout time.Duration
	// MaxHeaderBytes caps request headers (GitHub's are about 1 KB); larger ones get 431.
	MaxHeaderBytes int
}

// DefaultHTTPLimits are the limits `dagctl-bot serve` uses.
var DefaultHTTPLimits = HTTPLimits{
	ReadHeaderTimeout: 10 * time.Second,
	ReadTimeout:       20 * time.Second,
	WriteTimeout:      60 * time.Second,
	IdleTimeout:       60 * time.Second,
	MaxHeaderBytes:    64 << 10,
}

func (l HTTPLimits) withDefaults() HTTPLimits {
	d := DefaultHTTPLimits
	if l.ReadHeaderTimeout <= 0 {
		l.ReadHeaderTimeout = d.ReadHeaderTimeout
	}
	if l.ReadTimeout <= 0 {
		l.ReadTimeout = d.ReadTimeout
	}
	if l.WriteTimeout <= 0 {
		l.WriteTimeout = d.WriteTimeout
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = d.IdleTimeout
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = d.MaxHeaderBytes
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
		ReadTimeout:       limits.ReadTimeout,
		WriteTimeout:      limits.WriteTimeout,
		IdleTimeout:       limits.IdleTimeout,
		MaxHeaderBytes:    limits.MaxHeaderBytes,
	}
}
