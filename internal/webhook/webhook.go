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

// Queue stores verified deliveries durably. Enqueue reports false for a (forge, delivery id) it already holds;
// deliveries with one ordering key (one PR, or one repository) are processed in order.
type Queue interface {
	Enqueue(ctx context.Context, forge, deliveryID, event, orderingKey string, body []byte) (inserted bool, err error)
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
