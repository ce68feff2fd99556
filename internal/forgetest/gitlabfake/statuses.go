package gitlabfake

import (
	"encoding/json"
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
	iid      int64
	sha, ref string
	source   string // "external" for one the statuses API created, "push" for one a test added
	// mr is the merge request a merge request pipeline runs for (0: a branch's pipeline).
	mr int64
	// user started it: the statuses' author for an external one, whoever pushed or pressed "Run pipeline".
	user *User
	// jobs are the pipeline's own CI jobs by name (the team's), with their status; the bot's statuses are
	// external jobs beside them.
	jobs      map[string]string
	createdAt time.Time
}

// AddPipeline adds a pipeline (as a push's CI would) of sha on ref, which later statuses join.
func (p *Project) AddPipeline(sha, ref string) int64 {
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	return p.addPipeline(&pipeline{sha: sha, ref: ref, source: "push"})
}

func (p *Project) addPipeline(pl *pipeline) int64 {
	pl.id, pl.createdAt = p.f.newID(), p.f.stamp()
	for _, have := range p.pipelines {
		pl.iid = max(pl.iid, have.iid)
	}
	pl.iid++
	p.pipelines = append(p.pipelines, pl)
	return pl.id
}

// TeamPipeline is the team's own CI pipeline that StartPipeline starts.
type TeamPipeline struct {
	SHA, Ref string
	// Source is GitLab's: "merge_request_event" (a merge request pipeline, of MR, on
	// refs/merge-requests/<iid>/head), "push" (a branch's), "web" ("Run pipeline"); "" is push.
	Source string
	MR     int64
	// User started it.
	User string
	// Jobs are its jobs by name and status (created, pending, running, success, failed, ...); none: one job
	// "test", pending.
	Jobs map[string]string
}

// StartPipeline starts the team's own pipeline, created after whatever the commit had: it becomes the newest
// pipeline of its commit, which is the merge request's head pipeline when the commit is its head.
func (p *Project) StartPipeline(tp TeamPipeline) int64 {
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	pl := &pipeline{sha: tp.SHA, ref: tp.Ref, source: tp.Source, mr: tp.MR, user: p.f.userByName(tp.User), jobs: map[string]string{}}
	if pl.source == "" {
		pl.source = "push"
	}
	for name, status := range tp.Jobs {
		pl.jobs[name] = status
	}
	if len(pl.jobs) == 0 {
		pl.jobs["test"] = "pending"
	}
	return p.addPipeline(pl)
}

// SetJob sets the status of one of the pipeline's own jobs (the team's CI ran it).
func (p *Project) SetJob(pipelineID int64, name, status string) {
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	for _, pl := range p.pipelines {
		if pl.id == pipelineID {
			pl.jobs[name] = status
			return
		}
	}
	panic(fmt.Sprintf("gitlabfake: no pipeline %d", pipelineID))
}

// PipelineStatus is the pipeline's composite status, as GitLab computes it from its latest jobs (its own and the
// external commit statuses, retried ones left out): any job still to run keeps it pending or running, a failed
// one fails it, a canceled one cancels it, only success and skipped make it success (all skipped: skipped).
// "" when there is no such pipeline.
func (p *Project) PipelineStatus(pipelineID int64) string {
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	for _, pl := range p.pipelines {
		if pl.id == pipelineID {
			return p.pipelineStatus(pl)
		}
	}
	return ""
}

func (p *Project) pipelineStatus(pl *pipeline) string {
	seen := map[string]bool{}
	for _, status := range pl.jobs {
		seen[status] = true
	}
	for _, s := range p.statuses {
		if s.PipelineID == pl.id && !s.Retried {
			seen[s.Status] = true
		}
	}
	switch {
	case len(seen) == 0:
		return "created"
	case seen["running"]:
		return "running"
	case seen["pending"], seen["created"], seen["preparing"], seen["waiting_for_resource"]:
		return "pending"
	case seen["manual"]:
		return "manual"
	case seen["scheduled"]:
		return "scheduled"
	case seen["failed"]:
		return "failed"
	case seen["canceled"]:
		return "canceled"
	case seen["success"]:
		return "success"
	}
	return "skipped"
}

// HeadPipeline is the merge request's head pipeline: the newest pipeline of its head commit (0: none).
func (p *Project) HeadPipeline(iid int64) int64 {
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	if pl := p.headPipeline(iid); pl != nil {
		return pl.id
	}
	return 0
}

func (p *Project) headPipeline(iid int64) *pipeline {
	mr := p.mrs[iid]
	if mr == nil {
		return nil
	}
	var newest *pipeline
	for _, pl := range p.pipelines {
		if pl.sha == mr.HeadSHA && (newest == nil || pl.id > newest.id) {
			newest = pl
		}
	}
	return newest
}

// MergeAllowedByPipeline says whether "Pipelines must succeed" lets the merge request merge: its head pipeline
// exists and succeeded. The reason says what holds it.
func (p *Project) MergeAllowedByPipeline(iid int64) (bool, string) {
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	pl := p.headPipeline(iid)
	if pl == nil {
		return false, "no pipeline for the head commit"
	}
	if status := p.pipelineStatus(pl); status != "success" {
		return false, fmt.Sprintf("head pipeline %d is %s", pl.id, status)
	}
	return true, fmt.Sprintf("head pipeline %d succeeded", pl.id)
}

// PipelineHook is the Pipeline Hook GitLab sends for the pipeline now (X-Gitlab-Event and body), in the shape
// of GitLab's (client-go's PipelineEvent): its id, ref, sha, source and composite status, its merge request for
// a merge request pipeline, the user who started it and the project.
func (p *Project) PipelineHook(pipelineID int64) (event string, body []byte) {
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	var pl *pipeline
	for _, have := range p.pipelines {
		if have.id == pipelineID {
			pl = have
		}
	}
	if pl == nil {
		panic(fmt.Sprintf("gitlabfake: no pipeline %d", pipelineID))
	}
	var builds []map[string]any
	for name, status := range pl.jobs {
		builds = append(builds, map[string]any{"name": name, "stage": "test", "status": status})
	}
	doc := map[string]any{
		"object_kind": "pipeline",
		"object_attributes": map[string]any{"id": pl.id, "iid": pl.iid, "ref": pl.ref, "tag": false, "sha": pl.sha,
			"before_sha": pl.sha, "source": pl.source, "status": p.pipelineStatus(pl), "stages": []string{"test"},
			"created_at": pl.createdAt.UTC().Format("2006-01-02 15:04:05 UTC"), "finished_at": nil,
			"url": fmt.Sprintf("%s/-/pipelines/%d", p.WebURL(), pl.id)},
		"project": map[string]any{"id": p.ID, "name": p.Path, "web_url": p.WebURL(), "git_http_url": p.CloneURL(),
			"http_url": p.CloneURL(), "path_with_namespace": p.FullPath(), "default_branch": p.DefaultBranch,
			"namespace": p.Namespace},
		"commit": map[string]any{"id": pl.sha},
		"builds": builds,
		"user":   userJSON(pl.user),
	}
	if mr := p.mrs[pl.mr]; mr != nil {
		doc["merge_request"] = map[string]any{"id": mr.id, "iid": mr.IID, "title": mr.Title, "source_branch": mr.SourceBranch,
			"target_branch": mr.TargetBranch, "source_project_id": sourceOf(p, mr).ID, "target_project_id": p.ID,
			"state": mr.State, "url": fmt.Sprintf("%s/-/merge_requests/%d", p.WebURL(), mr.IID)}
	}
	b, err := json.Marshal(doc)
	if err != nil {
		panic(err)
	}
	return "Pipeline Hook", b
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
	// GitLab's first matching pipeline: the newest of the commit, of the ref if one is given, the one named by
	// pipeline_id if one is (which must be of that commit and ref).
	var matching *pipeline
	var pipelineID int64
	if v, ok := form["pipeline_id"]; ok {
		if pipelineID, err = strconv.ParseInt(v, 10, 64); err != nil {
			writeMessage(w, http.StatusBadRequest, "400 Bad request - pipeline_id is invalid")
			return
		}
	}
	for _, have := range p.pipelines {
		if have.sha == sha && (form["ref"] == "" || have.ref == form["ref"]) && (pipelineID == 0 || have.id == pipelineID) {
			matching = have
		}
	}
	// GitLab's ref: the one given, else the matching pipeline's, else a branch that contains the commit.
	ref := form["ref"]
	if ref == "" && matching != nil {
		ref = matching.ref
	}
	if ref == "" {
		ref = p.branchContaining(sha)
	}
	if ref == "" {
		notFound(w, "References for commit")
		return
	}
	if pipelineID != 0 && matching == nil {
		notFound(w, "Pipeline for pipeline_id, sha and ref")
		return
	}

	// The status joins the matching pipeline, else an external one GitLab creates.
	pl := matching
	if pl == nil {
		pl = &pipeline{sha: sha, ref: ref, source: "external", user: u}
		p.addPipeline(pl)
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
