package gitlabfake

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// MR is a merge request as a test sets it.
type MR struct {
	IID          int64
	Title        string
	Author       string
	SourceBranch string
	TargetBranch string
	// SourceProject is the fork the source branch lives in (nil: the target project itself).
	SourceProject *Project
	// HeadSHA is the source branch's head; BaseSHA the target branch's commit it was compared with.
	HeadSHA      string
	BaseSHA      string
	Draft        bool
	State        string // opened (default), closed, merged
	MergeCommit  string
	SquashCommit string
	HasConflicts bool
	// DetailedMergeStatus is GitLab's mergeability in words (mergeable, conflict, ci_must_pass, checking...);
	// "" shows "mergeable", or "conflict" when HasConflicts.
	DetailedMergeStatus string

	id        int64
	authorID  int64
	createdAt time.Time
	approvals []approvalState
	notes     []*Note
}

type approvalState struct {
	userID int64
	at     time.Time
}

// Note is a comment on a merge request.
type Note struct {
	ID        int64
	Author    string
	Body      string
	System    bool
	CreatedAt time.Time
	UpdatedAt time.Time
	// Edits are the bodies it had before, oldest first.
	Edits   []string
	Deleted bool
	Awards  []Award

	authorID int64
}

// Award is an award emoji on a note.
type Award struct {
	ID   int64
	Name string
	User string
}

// SetMR creates or replaces a merge request (IID 0: the next one) and returns its IID.
func (p *Project) SetMR(mr MR) int64 {
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	if mr.IID == 0 {
		p.nextIID++
		mr.IID = p.nextIID
	}
	p.nextIID = max(p.nextIID, mr.IID)
	if mr.State == "" {
		mr.State = "opened"
	}
	if mr.TargetBranch == "" {
		mr.TargetBranch = p.DefaultBranch
	}
	if have, ok := p.mrs[mr.IID]; ok {
		mr.id, mr.createdAt, mr.approvals, mr.notes = have.id, have.createdAt, have.approvals, have.notes
	} else {
		mr.id, mr.createdAt = p.f.newID(), p.f.stamp()
	}
	mr.authorID = p.f.user(mr.Author).ID
	p.mrs[mr.IID] = &mr
	p.keepHeadRef(&mr)
	return mr.IID
}

// keepHeadRef points refs/merge-requests/<iid>/head of the target project at the merge request's head, as GitLab
// does (fetching it from a fork), so that its commits are the target's too. Callers hold f.mu.
func (p *Project) keepHeadRef(mr *MR) {
	if mr.HeadSHA == "" {
		return
	}
	ref := "refs/merge-requests/" + strconv.FormatInt(mr.IID, 10) + "/head"
	if mr.SourceProject != nil && mr.SourceProject != p {
		if _, err := git(p.gitDir, "fetch", "--quiet", mr.SourceProject.gitDir, "+"+mr.HeadSHA+":"+ref); err == nil {
			return
		}
	}
	_, _ = git(p.gitDir, "update-ref", ref, mr.HeadSHA)
}

// MR is a merge request's current state.
func (p *Project) MR(iid int64) (MR, bool) {
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	mr, ok := p.mrs[iid]
	if !ok {
		return MR{}, false
	}
	return *mr, true
}

// Push moves a merge request's head to sha, as a push to its source branch does; the project's reset setting
// removes its approvals.
func (p *Project) Push(iid int64, sha string) {
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	mr := p.mrs[iid]
	mr.HeadSHA = sha
	p.keepHeadRef(mr)
	if p.resetApprovalsOnPush {
		mr.approvals = nil
	}
}

// Approve records user's approval of a merge request on the fake's clock and returns its time.
func (p *Project) Approve(iid int64, username string) time.Time {
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	mr, u := p.mrs[iid], p.f.user(username)
	for _, a := range mr.approvals {
		if a.userID == u.ID {
			return a.at
		}
	}
	at := p.f.stamp()
	mr.approvals = append(mr.approvals, approvalState{userID: u.ID, at: at})
	return at
}

// Unapprove removes user's approval.
func (p *Project) Unapprove(iid int64, username string) {
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	mr, u := p.mrs[iid], p.f.user(username)
	kept := mr.approvals[:0]
	for _, a := range mr.approvals {
		if a.userID != u.ID {
			kept = append(kept, a)
		}
	}
	mr.approvals = kept
}

// AddNote comments on a merge request as username (a person, or any account) and returns the note's id.
func (p *Project) AddNote(iid int64, username, body string) int64 {
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	return p.addNote(p.mrs[iid], p.f.user(username), body).ID
}

func (p *Project) addNote(mr *MR, u *User, body string) *Note {
	at := p.f.stamp()
	n := &Note{ID: p.f.newID(), Author: u.Username, Body: body, CreatedAt: at, UpdatedAt: at, authorID: u.ID}
	mr.notes = append(mr.notes, n)
	return n
}

// Notes are a merge request's notes (deleted ones included, marked), oldest first.
func (p *Project) Notes(iid int64) []Note {
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	var out []Note
	for _, n := range p.mrs[iid].notes {
		c := *n
		c.Edits = append([]string(nil), n.Edits...)
		c.Awards = append([]Award(nil), n.Awards...)
		out = append(out, c)
	}
	return out
}

func (f *Fake) mrRoutes() {
	m := f.api
	m.HandleFunc("GET /projects/{id}/merge_requests", f.handleListMRs)
	m.HandleFunc("GET /projects/{id}/merge_requests/{iid}", f.handleGetMR)
	m.HandleFunc("GET /projects/{id}/repository/commits/{sha}/merge_requests", f.handleCommitMRs)
	m.HandleFunc("GET /projects/{id}/merge_requests/{iid}/commits", f.handleMRCommits)
	m.HandleFunc("GET /projects/{id}/merge_requests/{iid}/diffs", f.handleMRDiffs)
	m.HandleFunc("GET /projects/{id}/merge_requests/{iid}/versions", f.handleMRVersions)
	m.HandleFunc("GET /projects/{id}/merge_requests/{iid}/approvals", f.handleApprovals)
	m.HandleFunc("GET /projects/{id}/merge_requests/{iid}/notes", f.handleListNotes)
	m.HandleFunc("POST /projects/{id}/merge_requests/{iid}/notes", f.handleCreateNote)
	m.HandleFunc("PUT /projects/{id}/merge_requests/{iid}/notes/{note}", f.handleUpdateNote)
	m.HandleFunc("DELETE /projects/{id}/merge_requests/{iid}/notes/{note}", f.handleDeleteNote)
	m.HandleFunc("GET /projects/{id}/merge_requests/{iid}/notes/{note}/award_emoji", f.handleListAwards)
	m.HandleFunc("POST /projects/{id}/merge_requests/{iid}/notes/{note}/award_emoji", f.handleCreateAward)
}

// mrFor is the request's merge request, or a 404 written. Callers hold f.mu.
func (f *Fake) mrFor(w http.ResponseWriter, r *http.Request) (*Project, *MR, bool) {
	p, ok := f.projectFor(w, r)
	if !ok {
		return nil, nil, false
	}
	iid, _ := strconv.ParseInt(r.PathValue("iid"), 10, 64)
	mr, ok := p.mrs[iid]
	if !ok {
		notFound(w, "Merge Request")
		return nil, nil, false
	}
	return p, mr, true
}

func (f *Fake) mrJSON(p *Project, mr *MR) map[string]any {
	source := p
	if mr.SourceProject != nil {
		source = mr.SourceProject
	}
	status := mr.DetailedMergeStatus
	if status == "" {
		status = "mergeable"
		if mr.HasConflicts {
			status = "conflict"
		}
	}
	mergeStatus := "can_be_merged"
	if mr.HasConflicts {
		mergeStatus = "cannot_be_merged"
	}
	changes := ""
	if n, err := changedFiles(p.gitDir, source, mr); err == nil {
		changes = strconv.Itoa(len(n))
		if len(n) > f.maxMRFiles {
			changes = strconv.Itoa(f.maxMRFiles) + "+"
		}
	}
	startSHA := mr.BaseSHA
	if sha, err := resolveCommit(p.gitDir, mr.TargetBranch); err == nil {
		startSHA = sha
	}
	return map[string]any{
		"id": mr.id, "iid": mr.IID, "project_id": p.ID, "title": mr.Title, "state": mr.State,
		"draft": mr.Draft, "work_in_progress": mr.Draft,
		"author": userJSON(f.users[mr.authorID]), "source_branch": mr.SourceBranch, "target_branch": mr.TargetBranch,
		"source_project_id": source.ID, "target_project_id": p.ID, "sha": mr.HeadSHA,
		"merge_commit_sha": nilIfEmpty(mr.MergeCommit), "squash_commit_sha": nilIfEmpty(mr.SquashCommit),
		"has_conflicts": mr.HasConflicts, "detailed_merge_status": status, "merge_status": mergeStatus,
		"changes_count": changes, "created_at": timestamp(mr.createdAt),
		"web_url":   p.WebURL() + "/-/merge_requests/" + strconv.FormatInt(mr.IID, 10),
		"diff_refs": map[string]any{"base_sha": mr.BaseSHA, "head_sha": mr.HeadSHA, "start_sha": startSHA},
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (f *Fake) handleListMRs(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.projectFor(w, r)
	if !ok {
		return
	}
	state := r.URL.Query().Get("state")
	var iids []int64
	for iid, mr := range p.mrs {
		if state == "" || state == "all" || mr.State == state {
			iids = append(iids, iid)
		}
	}
	sort.Slice(iids, func(i, j int) bool { return iids[i] > iids[j] }) // newest first, as GitLab
	var out []map[string]any
	for _, iid := range iids {
		out = append(out, f.mrJSON(p, p.mrs[iid]))
	}
	page(w, r, out)
}

// handleCommitMRs lists the merge requests whose commits include sha (base..head).
func (f *Fake) handleCommitMRs(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.projectFor(w, r)
	if !ok {
		return
	}
	sha := r.PathValue("sha")
	var iids []int64
	for iid, mr := range p.mrs {
		if mr.HeadSHA == sha || isAncestor(p.gitDir, sha, mr.HeadSHA) && !isAncestor(p.gitDir, sha, mr.BaseSHA) {
			iids = append(iids, iid)
		}
	}
	sort.Slice(iids, func(i, j int) bool { return iids[i] > iids[j] })
	out := []map[string]any{}
	for _, iid := range iids {
		out = append(out, f.mrJSON(p, p.mrs[iid]))
	}
	writeJSON(w, http.StatusOK, out)
}

func isAncestor(dir, a, b string) bool {
	_, err := git(dir, "merge-base", "--is-ancestor", a, b)
	return err == nil
}

func (f *Fake) handleGetMR(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, mr, ok := f.mrFor(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, f.mrJSON(p, mr))
}

// sourceOf is the project a merge request's commits live in. Callers hold f.mu.
func sourceOf(p *Project, mr *MR) *Project {
	if mr.SourceProject != nil {
		return mr.SourceProject
	}
	return p
}

func (f *Fake) handleMRCommits(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	p, mr, ok := f.mrFor(w, r)
	var dir, base, head string
	if ok {
		dir, base, head = sourceOf(p, mr).gitDir, mr.BaseSHA, mr.HeadSHA
	}
	f.mu.Unlock()
	if !ok {
		return
	}
	commits, err := gitCommits(dir, base, head)
	if err != nil {
		writeMessage(w, http.StatusInternalServerError, err.Error())
		return
	}
	// GitLab lists a merge request's commits newest first.
	for i, j := 0, len(commits)-1; i < j; i, j = i+1, j-1 {
		commits[i], commits[j] = commits[j], commits[i]
	}
	page(w, r, commits)
}

func (f *Fake) handleMRDiffs(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	p, mr, ok := f.mrFor(w, r)
	var source *Project
	var copyMR MR
	var limit int
	if ok {
		source, copyMR, limit = sourceOf(p, mr), *mr, f.maxMRFiles
	}
	f.mu.Unlock()
	if !ok {
		return
	}
	files, err := changedFiles(p.gitDir, source, &copyMR)
	if err != nil {
		writeMessage(w, http.StatusInternalServerError, err.Error())
		return
	}
	if len(files) > limit {
		files = files[:limit] // the diff GitLab stored stops at diff_max_files
	}
	page(w, r, files)
}

func (f *Fake) handleMRVersions(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, mr, ok := f.mrFor(w, r)
	if !ok {
		return
	}
	page(w, r, []map[string]any{{"id": mr.id, "head_commit_sha": mr.HeadSHA, "base_commit_sha": mr.BaseSHA,
		"start_commit_sha": mr.BaseSHA, "created_at": timestamp(mr.createdAt), "merge_request_id": mr.id,
		"state": "collected", "real_size": strconv.Itoa(len(p.mrs))}})
}

func (f *Fake) handleApprovals(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, mr, ok := f.mrFor(w, r)
	if !ok {
		return
	}
	approvedBy := []map[string]any{}
	for _, a := range mr.approvals {
		entry := map[string]any{"user": userJSON(f.users[a.userID])}
		if f.approvedAt {
			entry["approved_at"] = timestamp(a.at)
		}
		approvedBy = append(approvedBy, entry)
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": mr.id, "iid": mr.IID, "project_id": p.ID, "title": mr.Title,
		"state": mr.State, "approved": len(mr.approvals) > 0, "approvals_required": 0, "approvals_left": 0,
		"approved_by": approvedBy, "user_has_approved": false, "user_can_approve": true})
}

func noteJSON(f *Fake, mr *MR, n *Note) map[string]any {
	return map[string]any{"id": n.ID, "body": n.Body, "author": userJSON(f.users[n.authorID]), "system": n.System,
		"created_at": timestamp(n.CreatedAt), "updated_at": timestamp(n.UpdatedAt), "noteable_id": mr.id,
		"noteable_iid": mr.IID, "noteable_type": "MergeRequest"}
}

func (f *Fake) handleListNotes(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, mr, ok := f.mrFor(w, r)
	if !ok {
		return
	}
	var out []map[string]any
	for _, n := range mr.notes {
		if !n.Deleted {
			out = append(out, noteJSON(f, mr, n))
		}
	}
	if r.URL.Query().Get("sort") != "asc" { // GitLab's default order is newest first
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	}
	page(w, r, out)
}

// MaxNoteChars is the longest note body GitLab accepts (Gitlab::Database::MAX_TEXT_SIZE_LIMIT).
const MaxNoteChars = 1_000_000

func (f *Fake) handleCreateNote(w http.ResponseWriter, r *http.Request) {
	body, ok := formValue(w, r, "body")
	if !ok {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	p, mr, ok := f.mrFor(w, r)
	if !ok {
		return
	}
	if !validBody(w, body) {
		return
	}
	writeJSON(w, http.StatusCreated, noteJSON(f, mr, p.addNote(mr, caller(r), body)))
}

func validBody(w http.ResponseWriter, body string) bool {
	switch {
	case strings.TrimSpace(body) == "":
		writeMessage(w, http.StatusBadRequest, "400 Bad request - Note {:note=>[\"can't be blank\"]}")
		return false
	case len([]rune(body)) > MaxNoteChars:
		writeMessage(w, http.StatusBadRequest, "400 Bad request - Note {:note=>[\"is too long (maximum is 1000000 characters)\"]}")
		return false
	}
	return true
}

// noteFor is the request's note of the merge request, or a 404 written. Callers hold f.mu.
func (f *Fake) noteFor(w http.ResponseWriter, r *http.Request) (*MR, *Note, bool) {
	_, mr, ok := f.mrFor(w, r)
	if !ok {
		return nil, nil, false
	}
	id, _ := strconv.ParseInt(r.PathValue("note"), 10, 64)
	for _, n := range mr.notes {
		if n.ID == id && !n.Deleted {
			return mr, n, true
		}
	}
	notFound(w, "Note")
	return nil, nil, false
}

func (f *Fake) handleUpdateNote(w http.ResponseWriter, r *http.Request) {
	body, ok := formValue(w, r, "body")
	if !ok {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	mr, n, ok := f.noteFor(w, r)
	if !ok {
		return
	}
	if n.authorID != caller(r).ID { // only a note's author may edit it
		writeMessage(w, http.StatusForbidden, "403 Forbidden")
		return
	}
	if !validBody(w, body) {
		return
	}
	n.Edits = append(n.Edits, n.Body)
	n.Body, n.UpdatedAt = body, f.stamp()
	writeJSON(w, http.StatusOK, noteJSON(f, mr, n))
}

func (f *Fake) handleDeleteNote(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, n, ok := f.noteFor(w, r)
	if !ok {
		return
	}
	if n.authorID != caller(r).ID {
		writeMessage(w, http.StatusForbidden, "403 Forbidden")
		return
	}
	n.Deleted = true
	w.WriteHeader(http.StatusNoContent)
}

func awardJSON(f *Fake, n *Note, a Award) map[string]any {
	return map[string]any{"id": a.ID, "name": a.Name, "user": userJSON(f.userByName(a.User)),
		"awardable_id": n.ID, "awardable_type": "Note"}
}

func (f *Fake) handleListAwards(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, n, ok := f.noteFor(w, r)
	if !ok {
		return
	}
	var out []map[string]any
	for _, a := range n.Awards {
		out = append(out, awardJSON(f, n, a))
	}
	page(w, r, out)
}

func (f *Fake) handleCreateAward(w http.ResponseWriter, r *http.Request) {
	name, ok := formValue(w, r, "name")
	if !ok {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	_, n, ok := f.noteFor(w, r)
	if !ok {
		return
	}
	u := caller(r)
	for _, a := range n.Awards {
		if a.Name == name && a.User == u.Username {
			// GitLab refuses an emoji a user already awarded.
			writeMessage(w, http.StatusNotFound, "404 Award Emoji Name has already been taken Not Found")
			return
		}
	}
	a := Award{ID: f.newID(), Name: name, User: u.Username}
	n.Awards = append(n.Awards, a)
	writeJSON(w, http.StatusCreated, awardJSON(f, n, a))
}
