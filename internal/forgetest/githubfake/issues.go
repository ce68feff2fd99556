package githubfake

import (
	"encoding/json"
	"net/http"
	"strconv"
	"unicode/utf8"
)

// MaxCommentChars is GitHub's limit on an issue comment body (see shared/forge-limits.md).
const MaxCommentChars = 65536

const commentDocURL = "https://docs.github.com/rest/issues/comments#create-an-issue-comment"

// commentJSON is an issue comment as GitHub answers it. Callers hold f.mu.
func (f *Fake) commentJSON(repo *Repo, c *Comment) map[string]any {
	id := strconv.FormatInt(c.ID, 10)
	return map[string]any{
		"id":                 c.ID,
		"node_id":            "IC_" + id,
		"url":                f.server.URL + apiPrefix + "/repos/" + repo.FullName() + "/issues/comments/" + id,
		"html_url":           repo.HTMLURL() + "/pull/" + strconv.Itoa(c.Number) + "#issuecomment-" + id,
		"issue_url":          f.server.URL + apiPrefix + "/repos/" + repo.FullName() + "/issues/" + strconv.Itoa(c.Number),
		"body":               c.Body,
		"user":               f.userJSON(c.User, c.Bot),
		"created_at":         timestamp(c.CreatedAt),
		"updated_at":         timestamp(c.UpdatedAt),
		"author_association": "NONE",
	}
}

func (f *Fake) handleListComments(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	repo, _, ok := f.repoFor(w, r)
	if !ok {
		return
	}
	pr, ok := prFor(w, r, repo)
	if !ok {
		return
	}
	var live []*Comment
	for _, c := range repo.comments {
		if c.Number == pr.Number && !c.Deleted {
			live = append(live, c)
		}
	}
	start, end := paginate(w, r, len(live))
	out := make([]map[string]any, 0, end-start)
	for _, c := range live[start:end] {
		out = append(out, f.commentJSON(repo, c))
	}
	writeJSON(w, http.StatusOK, out)
}

// commentBody reads {"body": ...} and enforces GitHub's rules on it; it has answered 422 when ok is false.
func commentBody(w http.ResponseWriter, r *http.Request) (string, bool) {
	var in struct {
		Body *string `json:"body"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, "Problems parsing JSON", commentDocURL)
		return "", false
	}
	switch {
	case in.Body == nil || *in.Body == "":
		validationFailed(w, commentDocURL, map[string]any{
			"resource": "IssueComment", "code": "missing_field", "field": "body",
		})
		return "", false
	case utf8.RuneCountInString(*in.Body) > MaxCommentChars:
		validationFailed(w, commentDocURL, map[string]any{
			"resource": "IssueComment", "code": "unprocessable", "field": "data",
			"message": "Body is too long (maximum is 65536 characters)",
		})
		return "", false
	}
	return *in.Body, true
}

func (f *Fake) handleCreateComment(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	repo, inst, ok := f.repoFor(w, r)
	if !ok {
		return
	}
	pr, ok := prFor(w, r, repo)
	if !ok {
		return
	}
	body, ok := commentBody(w, r)
	if !ok {
		return
	}
	c := repo.addComment(pr.Number, f.appSlugFor(inst)+"[bot]", true, body)
	w.Header().Set("Location", f.commentJSON(repo, c)["url"].(string))
	writeJSON(w, http.StatusCreated, f.commentJSON(repo, c))
}

// commentFor finds the comment in the request path. Callers hold f.mu. It has answered 404 when ok is false.
func commentFor(w http.ResponseWriter, r *http.Request, repo *Repo) (*Comment, bool) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	c := repo.findComment(id, false)
	if c == nil {
		notFound(w)
		return nil, false
	}
	return c, true
}

func (f *Fake) handleGetComment(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	repo, _, ok := f.repoFor(w, r)
	if !ok {
		return
	}
	if c, ok := commentFor(w, r, repo); ok {
		writeJSON(w, http.StatusOK, f.commentJSON(repo, c))
	}
}

func (f *Fake) handleUpdateComment(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	repo, inst, ok := f.repoFor(w, r)
	if !ok {
		return
	}
	c, ok := commentFor(w, r, repo)
	if !ok {
		return
	}
	if !c.Bot || c.User != f.appSlugFor(inst)+"[bot]" {
		writeError(w, http.StatusForbidden, "Resource not accessible by integration", commentDocURL)
		return
	}
	body, ok := commentBody(w, r)
	if !ok {
		return
	}
	c.History = append(c.History, c.Body)
	c.Body = body
	c.UpdatedAt = f.now
	writeJSON(w, http.StatusOK, f.commentJSON(repo, c))
}

func (f *Fake) handleDeleteComment(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	repo, _, ok := f.repoFor(w, r)
	if !ok {
		return
	}
	c, ok := commentFor(w, r, repo)
	if !ok {
		return
	}
	c.Deleted = true
	w.WriteHeader(http.StatusNoContent)
}

var reactionContents = map[string]bool{
	"+1": true, "-1": true, "laugh": true, "confused": true, "heart": true, "hooray": true, "rocket": true, "eyes": true,
}

func (f *Fake) reactionJSON(rc Reaction) map[string]any {
	return map[string]any{
		"id": rc.ID, "node_id": "REA_" + strconv.FormatInt(rc.ID, 10), "content": rc.Content,
		"user": f.userJSON(rc.User, true), "created_at": timestamp(f.now),
	}
}

func (f *Fake) handleCreateReaction(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	repo, inst, ok := f.repoFor(w, r)
	if !ok {
		return
	}
	c, ok := commentFor(w, r, repo)
	if !ok {
		return
	}
	var in struct {
		Content string `json:"content"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || !reactionContents[in.Content] {
		validationFailed(w, "https://docs.github.com/rest/reactions/reactions#create-reaction-for-an-issue-comment",
			map[string]any{"resource": "Reaction", "code": "invalid", "field": "content"})
		return
	}
	user := f.appSlugFor(inst) + "[bot]"
	for _, existing := range repo.reactions[c.ID] {
		if existing.User == user && existing.Content == in.Content {
			writeJSON(w, http.StatusOK, f.reactionJSON(existing)) // GitHub answers 200 for an existing reaction
			return
		}
	}
	rc := Reaction{ID: f.newID(), User: user, Content: in.Content}
	repo.reactions[c.ID] = append(repo.reactions[c.ID], rc)
	writeJSON(w, http.StatusCreated, f.reactionJSON(rc))
}

func (f *Fake) handleListReactions(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	repo, _, ok := f.repoFor(w, r)
	if !ok {
		return
	}
	c, ok := commentFor(w, r, repo)
	if !ok {
		return
	}
	all := repo.reactions[c.ID]
	start, end := paginate(w, r, len(all))
	out := make([]map[string]any, 0, end-start)
	for _, rc := range all[start:end] {
		out = append(out, f.reactionJSON(rc))
	}
	writeJSON(w, http.StatusOK, out)
}
