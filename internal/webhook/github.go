package webhook

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"

	ghadapter "github.com/dagctl/dagctl-bot/internal/vcs/github"
)

// GitHub receives GitHub App webhooks at POST /webhooks/github.
type GitHub struct {
	// Secret returns the webhook secret; empty means the app is not set up yet and nothing is accepted. It is a
	// function because the manifest flow (/setup) can set the secret while the server runs.
	Secret func() []byte
	Queue  Queue
	// Notify is called after a new delivery is stored, to wake the dispatcher. Optional.
	Notify func()
	Log    *slog.Logger
	// Limits bound the bodies read at once (zero: DefaultBodyLimits).
	Limits BodyLimits

	once      sync.Once
	admission *admission
}

// Stats is what the intake holds right now.
func (h *GitHub) Stats() IntakeStats { return h.admit().snapshot() }

func (h *GitHub) admit() *admission {
	h.once.Do(func() { h.admission = newAdmission(h.Limits) })
	return h.admission
}

func (h *GitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	log := logger(h.Log)
	if r.Method != http.MethodPost {
		reply(w, http.StatusMethodNotAllowed, "webhooks are POSTed")
		return
	}
	secret := h.Secret()
	if len(secret) == 0 {
		// Never accept unsigned deliveries: without a secret anyone could drive the bot.
		reply(w, http.StatusServiceUnavailable, "dagctl-bot is not set up yet: no webhook secret is configured (see /setup)")
		return
	}
	// Everything that can be refused without the body is refused before it is read: reading is what costs memory.
	if r.ContentLength > MaxBodyBytes {
		reply(w, http.StatusRequestEntityTooLarge, "payload too large")
		return
	}
	event, id, signature := r.Header.Get(ghadapter.EventHeader), r.Header.Get(ghadapter.DeliveryHeader), r.Header.Get(ghadapter.SignatureHeader)
	if signature == "" {
		reply(w, http.StatusUnauthorized, "missing or invalid X-Hub-Signature-256")
		return
	}
	if event == "" || id == "" {
		reply(w, http.StatusBadRequest, "missing X-GitHub-Event or X-GitHub-Delivery")
		return
	}
	release, ok := h.admit().admit(r.Context(), r.ContentLength)
	if !ok {
		log.Warn("webhook refused: the intake is full", "delivery", id, "content_length", r.ContentLength)
		w.Header().Set("Retry-After", "10")
		reply(w, http.StatusServiceUnavailable, "the intake is busy; redeliver this delivery")
		return
	}
	defer release()
	body, err := readBody(w, r)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			reply(w, http.StatusRequestEntityTooLarge, "payload too large")
			return
		}
		reply(w, http.StatusBadRequest, "cannot read body")
		return
	}
	// The adapter holds GitHub's signature rule (sha256 only, constant time, through go-github).
	if err := ghadapter.VerifySignature(string(secret), signature, body); err != nil {
		log.Warn("webhook rejected", "delivery", id, "reason", err)
		reply(w, http.StatusUnauthorized, "missing or invalid X-Hub-Signature-256")
		return
	}
	key := gitHubOrderingKey(body)
	inserted, err := h.Queue.Enqueue(r.Context(), "github", id, event, key, body)
	if err != nil {
		log.Error("webhook not stored", "delivery", id, "event", event, "err", err)
		reply(w, http.StatusInternalServerError, "could not store the delivery; redeliver it")
		return
	}
	if !inserted {
		log.Info("duplicate delivery ignored", "delivery", id, "event", event)
		reply(w, http.StatusOK, "duplicate delivery, already queued")
		return
	}
	log.Info("delivery queued", "delivery", id, "event", event, "key", key)
	if h.Notify != nil {
		h.Notify()
	}
	reply(w, http.StatusAccepted, "queued")
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

// gitHubOrderingKey puts every event about one pull request under one key ("github:owner/repo#12") and other
// events under the repository's key, matching vcs.Event.OrderingKey. It reads only the few fields it needs.
func gitHubOrderingKey(body []byte) string {
	var p struct {
		Number     int `json:"number"`
		Repository struct {
			FullName string `json:"full_name"`
		} `json:"repository"`
		PullRequest *struct {
			Number int `json:"number"`
		} `json:"pull_request"`
		Issue *struct {
			Number      int              `json:"number"`
			PullRequest *json.RawMessage `json:"pull_request"`
		} `json:"issue"`
		CheckRun *struct {
			PullRequests []struct {
				Number int `json:"number"`
			} `json:"pull_requests"`
		} `json:"check_run"`
		Installation *struct {
			ID int64 `json:"id"`
		} `json:"installation"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return "github:unparsable"
	}
	if p.Repository.FullName == "" {
		if p.Installation != nil {
			return "github:installation/" + strconv.FormatInt(p.Installation.ID, 10)
		}
		return "github:app"
	}
	key := "github:" + p.Repository.FullName
	number := 0
	switch {
	case p.PullRequest != nil:
		number = p.PullRequest.Number
	case p.Issue != nil && p.Issue.PullRequest != nil:
		number = p.Issue.Number
	case p.CheckRun != nil && len(p.CheckRun.PullRequests) > 0:
		number = p.CheckRun.PullRequests[0].Number
	}
	if number > 0 {
		return key + "#" + strconv.Itoa(number)
	}
	return key
}
