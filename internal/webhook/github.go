package webhook

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"sync"

	ghadapter "github.com/dagctl/dagctl-bot/internal/vcs/github"
)

// GitHubSource is GitHub's part of the intake: X-GitHub-Event, X-GitHub-Delivery, and X-Hub-Signature-256
// checked by the adapter's rule (sha256 only, constant time, through go-github).
func GitHubSource(secret func() []byte) Source {
	return Source{
		Forge:           ghadapter.Forge,
		EventHeader:     ghadapter.EventHeader,
		DeliveryHeaders: []string{ghadapter.DeliveryHeader},
		AuthHeader:      ghadapter.SignatureHeader,
		Secret:          secret,
		SetupHint:       "see /setup",
		Verify: func(secret []byte, signature string, body []byte) error {
			return ghadapter.VerifySignature(string(secret), signature, body)
		},
		OrderingKey: gitHubOrderingKey,
	}
}

// GitHub receives GitHub App webhooks alone: an Intake with GitHub's source (the benches and the intake's own
// tests serve it so).
type GitHub struct {
	// Secret returns the webhook secret; empty means the app is not set up yet and nothing is accepted.
	Secret func() []byte
	Queue  Queue
	// Notify is called after a new delivery is stored, to wake the dispatcher. Optional.
	Notify func()
	Log    *slog.Logger
	// Limits bound the bodies read at once (zero: DefaultBodyLimits).
	Limits BodyLimits

	once    sync.Once
	intake  *Intake
	handler http.Handler
}

func (h *GitHub) init() {
	h.once.Do(func() {
		h.intake = &Intake{Queue: h.Queue, Notify: h.Notify, Log: h.Log, Limits: h.Limits}
		h.handler = h.intake.For(GitHubSource(h.Secret))
	})
}

// Stats is what the intake holds right now.
func (h *GitHub) Stats() IntakeStats {
	h.init()
	return h.intake.Stats()
}

func (h *GitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.init()
	h.handler.ServeHTTP(w, r)
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
