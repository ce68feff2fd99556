// Package webhook is the bot's intake: it verifies a forge's webhook delivery, stores it in the durable queue and
// answers at once. It never plans: GitHub waits 10 s for an answer and never redelivers on its own, so all work
// happens later, in the dispatcher that drains the queue.
package webhook

import (
	"context"
	"log/slog"
	"net/http"
)

// MaxBodyBytes caps a delivery's body. GitHub does not deliver payloads over 25 MB at all
// (../shared/forge-limits.md, "Payload cap"), so nothing legitimate is larger.
const MaxBodyBytes = 25 << 20

// Delivery is one verified webhook delivery, as stored in the queue.
type Delivery struct {
	Forge       string // "github", "gitlab"
	ID          string // the forge's delivery id; duplicates are dropped on it
	Event       string // the forge's event name, e.g. "pull_request"
	OrderingKey string // deliveries with one key are processed in order (one PR, or one repo)
	Body        []byte
}

// Queue stores deliveries durably. Enqueue reports false for a delivery id it already holds.
type Queue interface {
	Enqueue(ctx context.Context, d Delivery) (inserted bool, err error)
}

// reply writes a short plain-text answer.
func reply(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(msg + "\n"))
}

func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.Default()
	}
	return l
}
