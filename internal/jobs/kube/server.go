package kube

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dagctl/dagctl-bot/internal/jobs"
)

// Report endpoints, relative to Config.PublicURL. Mount Handler so that these paths reach it.
const (
	reportLinesPath  = "/jobs/{id}/lines"
	reportResultPath = "/jobs/{id}/result"
	inputsPath       = "/jobs/{id}/inputs"
	maxReportBody    = 4 << 20
)

// inputsBody is what GET /jobs/{id}/inputs answers: the job's Spec.Inputs by name ([]byte as base64).
type inputsBody struct {
	Files map[string][]byte `json:"files"`
}

// resultBodyLimit bounds a result's body: a small result, and room for the run's artifacts in base64.
func resultBodyLimit(artifacts int) int64 {
	return 64<<10 + int64(artifacts)*(int64(base64.StdEncoding.EncodedLen(jobs.MaxArtifactBytes))+8<<10)
}

// maxInputsBody bounds the inputs answer the runner reads: the inputs' cap in base64, and room for the names.
var maxInputsBody = int64(base64.StdEncoding.EncodedLen(jobs.MaxInputBytes)) + 1<<20

// linesBatch is a batch of output lines; Seq numbers the first line, so a resent batch is recognised.
type linesBatch struct {
	Seq   int64      `json:"seq"`
	Lines []wireLine `json:"lines"`
}

type wireLine struct {
	Stream string `json:"stream"`
	Text   string `json:"text"`
}

// Handler serves the Pods' reports: POST /jobs/{run-id}/lines and /jobs/{run-id}/result, each authenticated
// with the run's token (RunToken) as a bearer token. A run that is not followed yet (the bot just restarted and
// has not attached) answers 503, so the Pod keeps its lines and retries; a finished run answers 410, so it stops.
func (e *Executor) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+reportLinesPath, func(w http.ResponseWriter, r *http.Request) {
		h, ok := e.authorize(w, r)
		if !ok {
			return
		}
		var batch linesBatch
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxReportBody)).Decode(&batch); err != nil || batch.Seq < 0 {
			http.Error(w, "bad lines batch", http.StatusBadRequest)
			return
		}
		lines := make([]jobs.Line, len(batch.Lines))
		for i, l := range batch.Lines {
			lines[i] = jobs.Line{Stream: l.Stream, Text: l.Text}
		}
		h.lines(batch.Seq, lines)
		w.WriteHeader(http.StatusNoContent)
	})
	// The Pod's init container fetches the job's inputs here, authenticated as its reports are: a manifest can
	// be larger than the 1 MiB a ConfigMap or Secret holds. A process that attached to the run after a restart
	// does not have them (409): the Pod fails with ReasonInputsLost.
	mux.HandleFunc("GET "+inputsPath, func(w http.ResponseWriter, r *http.Request) {
		h, ok := e.authorize(w, r)
		if !ok {
			return
		}
		inputs, known := h.inputsOf()
		if !known {
			http.Error(w, "this process of the bot does not have the run's inputs (it restarted since the run started)", http.StatusConflict)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(inputsBody{Files: inputs})
	})
	mux.HandleFunc("POST "+reportResultPath, func(w http.ResponseWriter, r *http.Request) {
		h, ok := e.authorize(w, r)
		if !ok {
			return
		}
		var res wireResult
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, resultBodyLimit(h.collectCount()))).Decode(&res); err != nil {
			http.Error(w, "bad result", http.StatusBadRequest)
			return
		}
		kept := h.report(jobs.Result{ExitCode: res.ExitCode, Reason: res.Reason, Duration: time.Duration(res.DurationMS) * time.Millisecond,
			Artifacts: res.Artifacts, ArtifactErrors: res.ArtifactErrors})
		// Kept before the Pod is told: once answered, it reports to no later process of the bot.
		if store := e.artifactStore(); store != nil && kept != nil {
			if err := store.KeepArtifacts(r.Context(), h.runID, kept.Artifacts, kept.ArtifactErrors); err != nil {
				e.cfg.Logger.Warn("keeping a job's artifacts", "run", h.runID, "err", err)
				w.Header().Set("Retry-After", "2")
				http.Error(w, "the result could not be kept", http.StatusServiceUnavailable)
				return
			}
		}
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

func (e *Executor) authorize(w http.ResponseWriter, r *http.Request) (*handle, bool) {
	runID := r.PathValue("id")
	token, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !found || !validToken(e.cfg.TokenKey, runID, token) {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return nil, false
	}
	h, finished := e.lookup(runID)
	switch {
	case h != nil:
		return h, true
	case finished:
		http.Error(w, "run already finished", http.StatusGone)
	default:
		w.Header().Set("Retry-After", "2")
		http.Error(w, "run not followed (yet)", http.StatusServiceUnavailable)
	}
	return nil, false
}

func pathEscape(runID string) string { return url.PathEscape(runID) }
