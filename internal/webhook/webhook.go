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

// Observer is told what the intake did with each request: a verified delivery (Received, then Duplicate when
// the queue held it already) or a refusal with its reason. The metrics implement it; the intake does not know
// them.
type Observer interface {
	Received(forge, event string)
	Duplicate(forge string)
	Rejected(forge string, reason Rejection)
}

// Rejection is why the intake refused a request: a fixed set, so that it can be a metric's label.
type Rejection string

const (
	RejectMethod          Rejection = "method"          // not a POST (405)
	RejectNotSetUp        Rejection = "not_set_up"      // no webhook secret yet (503)
	RejectTooLarge        Rejection = "too_large"       // a body over MaxBodyBytes (413)
	RejectUnauthenticated Rejection = "unauthenticated" // no signature or token header (401)
	RejectBadRequest      Rejection = "bad_request"     // no event or delivery id header, or an unreadable body (400)
	RejectBusy            Rejection = "busy"            // no room in the body budget in time (503)
	RejectBadSignature    Rejection = "bad_signature"   // a signature or token that does not verify (401)
	RejectNotStored       Rejection = "not_stored"      // verified, but the store failed (500)
)

// observer is o, or one that is told nothing.
func observer(o Observer) Observer {
	if o == nil {
		return nobody{}
	}
	return o
}

type nobody struct{}

func (nobody) Received(string, string)    {}
func (nobody) Duplicate(string)           {}
func (nobody) Rejected(string, Rejection) {}
