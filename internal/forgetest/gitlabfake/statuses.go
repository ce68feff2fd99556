package gitlabfake

import (
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// CommitStatus is one external job GitLab keeps for POST /projects/:id/statuses/:sha.
type CommitStatus struct {
	ID          int64
	SHA         string
	Ref         string
	Name        string
	Status      string // pending, running, success, failed, canceled, skipped
	Description string
	TargetURL   string
	PipelineID  int64
	Author      string
	CreatedAt   time.Time
	StartedAt   time.Time
	FinishedAt  time.Time
	// Retried: a newer status of the same pipeline and name replaced it; the list shows it only with all=true.
	Retried bool
	// History is every state the status was set to, in order (GitLab keeps only the last; a test reads the way there).
	History []string

	authorID int64
}

type pipeline struct {
	id       int64
	sha, ref string
	source   string // "external" for one the statuses API created, "push" for one a test added
}

// AddPipeline adds a pipeline (as a push's CI would) of sha on ref, which later statuses join.
func (p *Project) AddPipeline(sha, ref string) int64 {
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	pl := &pipeline{id: p.f.newID(), sha: sha, ref: ref, source: "push"}
	p.pipelines = append(p.pipelines, pl)
	return pl.id
}

// Statuses are the statuses of a commit, oldest first (retried ones included, marked).
func (p *Project) Statuses(sha string) []CommitStatus {
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	var out []CommitStatus
	for _, s := range p.statuses {
		if s.SHA == sha {
			out = append(out, *s)
		}
	}
	return out
}

// AllStatuses are every commit's statuses, oldest first (retried ones included, marked).
func (p *Project) AllStatuses() []CommitStatus {
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	out := make([]CommitStatus, 0, len(p.statuses))
	for _, s := range p.statuses {
		c := *s
		c.History = append([]string(nil), s.History...)
		out = append(out, c)
	}
	return out
}

// Pipelines are the pipeline ids of a commit, oldest first.
func (p *Project) Pipelines(sha string) []int64 {
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	var out []int64
	for _, pl := range p.pipelines {
		if pl.sha == sha {
			out = append(out, pl.id)
		}
	}
	return out
}

var statusEvents = map[string]bool{"pending": true, "running": true, "success": true, "failed": true, "canceled": true, "skipped": true}

// transitions are the state machine GitLab's commit statuses follow (from → allowed targets); only pending and
// running ones are found again by a later POST, so a final status is followed by a new one.
var transitions = map[string]map[string]bool{
	"created": {"pending": true, "running": true, "success": true, "failed": true, "canceled": true, "skipped": true},
	"pending": {"running": true, "success": true, "failed": true, "canceled": true, "skipped": true},
	"running": {"success": true, "failed": true, "canceled": true, "skipped": true},
}

// eventName is the state machine event GitLab names in its refusal.
var eventName = map[string]string{"pending": "enqueue", "running": "run", "success": "succeed", "failed": "drop",
	"canceled": "cancel", "skipped": "skip"}

func (f *Fake) handlePostStatus(w http.ResponseWriter, r *http.Request) {
	form, ok := formValues(w, r)
	if !ok {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.projectFor(w, r)
	if !ok {
		return
	}
	u := caller(r)
	if p.level(u.ID) < Developer {
		writeMessage(w, http.StatusForbidden, "403 Forbidden")
		return
	}
	sha, err := resolveCommit(p.gitDir, r.PathValue("sha"))
	if err != nil || sha != r.PathValue("sha") {
		notFound(w, "Commit")
		return
	}
	state := form["state"]
	if state == "" {
		writeMessage(w, http.StatusBadRequest, "400 Bad request - state is missing")
		return
	}
	if !statusEvents[state] {
		writeMessage(w, http.StatusBadRequest, "400 Bad request - state does not have a valid value")
		return
	}
	name := form["name"]
	if name == "" {
		name = form["context"]
	}
	if name == "" {
		name = "default"
	}
	if len([]rune(form["description"])) > 255 {
		writeMessage(w, http.StatusBadRequest, "400 Bad request - description is too long (maximum is 255 characters)")
		return
	}
	// GitLab's ref: the one given, else the newest pipeline's of the commit, else a branch that contains it.
	ref := form["ref"]
	for i := len(p.pipelines) - 1; ref == "" && i >= 0; i-- {
		if p.pipelines[i].sha == sha {
			ref = p.pipelines[i].ref
		}
	}
	if ref == "" {
		ref = p.branchContaining(sha)
	}
	if ref == "" {
		notFound(w, "References for commit")
		return
	}

	// The newest pipeline of the commit and ref, else an external one.
	var pl *pipeline
	for _, have := range p.pipelines {
		if have.sha == sha && have.ref == ref {
			pl = have
		}
	}
	if pl == nil {
		pl = &pipeline{id: f.newID(), sha: sha, ref: ref, source: "external"}
		p.pipelines = append(p.pipelines, pl)
	}
	// The running or pending status of that pipeline, name, ref and user, else a new one.
	var st *CommitStatus
	for _, have := range p.statuses {
		if have.PipelineID == pl.id && have.Name == name && have.Ref == ref && have.authorID == u.ID &&
			!have.Retried && (have.Status == "pending" || have.Status == "running") {
			st = have
		}
	}
	now := f.stamp()
	from := "created"
	if st != nil {
		from = st.Status
	}
	if !transitions[from][state] {
		writeMessage(w, http.StatusBadRequest, fmt.Sprintf("Cannot transition status via :%s from :%s (Reason(s): Transition halted)", eventName[state], from))
		return
	}
	if st == nil {
		st = &CommitStatus{ID: f.newID(), SHA: sha, Ref: ref, Name: name, PipelineID: pl.id, Author: u.Username,
			authorID: u.ID, CreatedAt: now}
		for _, old := range p.statuses {
			if old.PipelineID == pl.id && old.Name == name {
				old.Retried = true
			}
		}
		p.statuses = append(p.statuses, st)
	}
	if v, ok := form["description"]; ok {
		st.Description = v
	}
	if v, ok := form["target_url"]; ok {
		st.TargetURL = v
	}
	st.Status = state
	st.History = append(st.History, state)
	switch state {
	case "running":
		st.StartedAt = now
	case "success", "failed", "canceled":
		if st.StartedAt.IsZero() && from != "created" {
			st.StartedAt = now
		}
		st.FinishedAt = now
	}
	writeJSON(w, http.StatusCreated, f.statusJSON(st))
}

func (f *Fake) statusJSON(s *CommitStatus) map[string]any {
	return map[string]any{"id": s.ID, "sha": s.SHA, "ref": s.Ref, "status": s.Status, "name": s.Name,
		"description": nilIfEmpty(s.Description), "target_url": nilIfEmpty(s.TargetURL), "pipeline_id": s.PipelineID,
		"allow_failure": false, "coverage": nil, "author": userJSON(f.users[s.authorID]),
		"created_at": timestamp(s.CreatedAt), "started_at": timestamp(s.StartedAt), "finished_at": timestamp(s.FinishedAt)}
}

func (f *Fake) handleListStatuses(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.projectFor(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	all, _ := strconv.ParseBool(q.Get("all"))
	var out []map[string]any
	for _, s := range p.statuses {
		if s.SHA != r.PathValue("sha") || (!all && s.Retried) {
			continue
		}
		if name := q.Get("name"); name != "" && s.Name != name {
			continue
		}
		if ref := q.Get("ref"); ref != "" && s.Ref != ref {
			continue
		}
		out = append(out, f.statusJSON(s))
	}
	page(w, r, out)
}
