package webhook

import (
	"crypto/subtle"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
)

// Source is what one forge contributes to the intake: how its deliveries prove where they come from, which
// headers name the event and the delivery, and how deliveries are ordered. Adding a forge is adding a Source;
// the intake's rules (size cap, body budget, verify before storing, dedupe, 202) are the same for all.
type Source struct {
	// Forge names the forge in the queue and in the route /webhooks/{Forge}.
	Forge string
	// EventHeader names the header with the event's kind (GitHub: X-GitHub-Event).
	EventHeader string
	// DeliveryHeaders name the headers with the delivery's unique id, the first present wins (GitLab:
	// Idempotency-Key, then X-Gitlab-Event-UUID). A redelivery carries the same id, so the queue dedupes on it.
	DeliveryHeaders []string
	// AuthHeader carries the delivery's proof: an HMAC of the body (GitHub) or the shared token (GitLab).
	AuthHeader string
	// Secret returns the webhook secret; empty means the forge is not set up yet and nothing is accepted. It is
	// a function because a forge can be set up while the server runs (GitHub's /setup).
	Secret func() []byte
	// SetupHint tells an operator where the secret comes from, in the answer to deliveries sent before it is set.
	SetupHint string
	// Verify checks the AuthHeader's value against the raw body with the secret, in constant time.
	Verify func(secret []byte, auth string, body []byte) error
	// OrderingKey groups deliveries that must be handled in order, as vcs.Event.OrderingKey spells them.
	OrderingKey func(body []byte) string
}

func (s Source) deliveryID(h http.Header) string {
	for _, name := range s.DeliveryHeaders {
		if id := h.Get(name); id != "" {
			return id
		}
	}
	return ""
}

// Intake receives every forge's webhooks: one handler per Source, all under one body budget, so that a flood
// to one forge's route cannot get past the budget through another's.
type Intake struct {
	Queue Queue
	// Notify is called after a new delivery is stored, to wake the dispatcher. Optional.
	Notify func()
	Log    *slog.Logger
	// Limits bound the bodies read at once (zero: DefaultBodyLimits).
	Limits BodyLimits
	// Observer is told what became of each request (the metrics). Optional.
	Observer Observer

	once      sync.Once
	admission *admission
}

// Stats is what the intake holds right now.
func (in *Intake) Stats() IntakeStats { return in.admit().snapshot() }

func (in *Intake) admit() *admission {
	in.once.Do(func() { in.admission = newAdmission(in.Limits) })
	return in.admission
}

// For is the handler of one forge's deliveries (POST /webhooks/{forge}).
func (in *Intake) For(src Source) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { in.serve(src, w, r) })
}

// serve refuses, in order, everything that can be refused before the body is read (reading is what costs
// memory), then reads the body within the budget, verifies it and stores it. Its length is its steps.
func (in *Intake) serve(src Source, w http.ResponseWriter, r *http.Request) {
	log := logger(in.Log).With("forge", src.Forge)
	obs := observer(in.Observer)
	if r.Method != http.MethodPost {
		obs.Rejected(src.Forge, RejectMethod)
		reply(w, http.StatusMethodNotAllowed, "webhooks are POSTed")
		return
	}
	secret := src.Secret()
	if len(secret) == 0 {
		// Never accept unverified deliveries: without a secret anyone could drive the bot.
		obs.Rejected(src.Forge, RejectNotSetUp)
		reply(w, http.StatusServiceUnavailable, "dagctl-bot is not set up yet: no webhook secret is configured"+hint(src.SetupHint))
		return
	}
	if r.ContentLength > MaxBodyBytes {
		obs.Rejected(src.Forge, RejectTooLarge)
		reply(w, http.StatusRequestEntityTooLarge, "payload too large")
		return
	}
	badAuth := "missing or invalid " + src.AuthHeader
	event, id, auth := r.Header.Get(src.EventHeader), src.deliveryID(r.Header), r.Header.Get(src.AuthHeader)
	if auth == "" {
		obs.Rejected(src.Forge, RejectUnauthenticated)
		reply(w, http.StatusUnauthorized, badAuth)
		return
	}
	if event == "" || id == "" {
		obs.Rejected(src.Forge, RejectBadRequest)
		reply(w, http.StatusBadRequest, "missing "+src.EventHeader+" or "+strings.Join(src.DeliveryHeaders, " or "))
		return
	}
	release, ok := in.admit().admit(r.Context(), r.ContentLength)
	if !ok {
		log.Warn("webhook refused: the intake is full", "delivery", id, "content_length", r.ContentLength)
		obs.Rejected(src.Forge, RejectBusy)
		w.Header().Set("Retry-After", "10")
		reply(w, http.StatusServiceUnavailable, "the intake is busy; redeliver this delivery")
		return
	}
	defer release()
	body, err := readBody(w, r)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			obs.Rejected(src.Forge, RejectTooLarge)
			reply(w, http.StatusRequestEntityTooLarge, "payload too large")
			return
		}
		obs.Rejected(src.Forge, RejectBadRequest)
		reply(w, http.StatusBadRequest, "cannot read body")
		return
	}
	if err := src.Verify(secret, auth, body); err != nil {
		log.Warn("webhook rejected", "delivery", id, "reason", err)
		obs.Rejected(src.Forge, RejectBadSignature)
		reply(w, http.StatusUnauthorized, badAuth)
		return
	}
	in.store(w, r, log, obs, src, id, event, body)
}

// store queues a verified delivery once and wakes the dispatcher.
func (in *Intake) store(w http.ResponseWriter, r *http.Request, log *slog.Logger, obs Observer, src Source, id, event string, body []byte) {
	// Only a verified delivery names its event in a label: its event is the forge's word, from a fixed set.
	obs.Received(src.Forge, event)
	key := src.OrderingKey(body)
	inserted, err := in.Queue.Enqueue(r.Context(), src.Forge, id, event, key, body)
	if err != nil {
		log.Error("webhook not stored", "delivery", id, "event", event, "err", err)
		obs.Rejected(src.Forge, RejectNotStored)
		reply(w, http.StatusInternalServerError, "could not store the delivery; redeliver it")
		return
	}
	if !inserted {
		log.Info("duplicate delivery ignored", "delivery", id, "event", event)
		obs.Duplicate(src.Forge)
		reply(w, http.StatusOK, "duplicate delivery, already queued")
		return
	}
	log.Info("delivery queued", "delivery", id, "event", event, "key", key)
	if in.Notify != nil {
		in.Notify()
	}
	reply(w, http.StatusAccepted, "queued")
}

// ErrInvalidToken is VerifyToken's refusal.
var ErrInvalidToken = errors.New("webhook: invalid token")

// VerifyToken is the verifier of forges that send the shared secret itself (GitLab's X-Gitlab-Token): no body
// signature, so only the token is compared, in constant time.
func VerifyToken(secret []byte, token string, _ []byte) error {
	if len(secret) == 0 || subtle.ConstantTimeCompare(secret, []byte(token)) != 1 {
		return ErrInvalidToken
	}
	return nil
}

func hint(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

// readBody reads the whole body: into a buffer of the declared length when there is one (admission charged
// exactly that), else growing up to the cap.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength < 0 {
		return io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	}
	body := make([]byte, r.ContentLength)
	if _, err := io.ReadFull(r.Body, body); err != nil {
		return nil, err
	}
	return body, nil
}
