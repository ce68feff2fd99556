package server

import (
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/dagctl/dagctl-bot/internal/db"
)

// runLog serves a run's full log at /runs/{id}, behind sign-in and the read rule of the run's repository
// (mountWeb); the links check runs and comments carry (/runs/{id}/{signature}) lead here. The log is redacted
// when stored. ?format=text serves plain text.
func (s *Server) runLog(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(mux.Vars(r)["id"], 10, 64)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	run, err := s.store.GetRun(r.Context(), id)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	if !run.LogPrunedAt.IsZero() {
		s.prunedLog(w, r, run)
		return
	}
	lines, err := s.store.RunLog(r.Context(), id)
	if err != nil {
		http.Error(w, "cannot read the log", http.StatusInternalServerError)
		return
	}
	if r.URL.Query().Get("format") == "text" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		for _, l := range lines {
			fmt.Fprintln(w, l.Text)
		}
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	title := fmt.Sprintf("dagctl run %d (%s, %s)", run.ID, run.Kind, run.Status)
	fmt.Fprintf(w, "<!doctype html><html><head><meta charset=utf-8><title>%s</title>", template.HTMLEscapeString(title))
	if !run.Status.Final() {
		fmt.Fprint(w, `<meta http-equiv="refresh" content="3">`)
	}
	fmt.Fprintf(w, "</head><body><h1>%s</h1><pre>", template.HTMLEscapeString(title))
	for _, l := range lines {
		fmt.Fprintln(w, template.HTMLEscapeString(l.Text))
	}
	fmt.Fprint(w, "</pre></body></html>\n")
}

// prunedLog answers for a run whose log retention deleted (DAGCTL_RETAIN_RUN_LOGS): the link stays valid and says
// so, rather than showing an empty log or an error.
func (s *Server) prunedLog(w http.ResponseWriter, r *http.Request, run db.Run) {
	msg := fmt.Sprintf("The log of run %d was pruned on %s: logs are kept for %s after a run ends.",
		run.ID, run.LogPrunedAt.Format("2006-01-02"), humanDuration(s.cfg.Retention.RunLogs))
	if r.URL.Query().Get("format") == "text" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, msg)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	title := fmt.Sprintf("dagctl run %d (%s, %s)", run.ID, run.Kind, run.Status)
	fmt.Fprintf(w, "<!doctype html><html><head><meta charset=utf-8><title>%s</title></head><body><h1>%s</h1><p>%s</p></body></html>\n",
		template.HTMLEscapeString(title), template.HTMLEscapeString(title), template.HTMLEscapeString(msg))
}

// humanDuration says a retention in days when it is whole days ("90 days"), else as Go writes it.
func humanDuration(d time.Duration) string {
	const day = 24 * time.Hour
	if d > 0 && d%day == 0 {
		return fmt.Sprintf("%d days", d/day)
	}
	return d.String()
}
