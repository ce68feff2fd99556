package githubfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"unicode/utf8"
)

// MaxCheckOutputChars is GitHub's limit on a check run's output.summary and output.text.
const MaxCheckOutputChars = 65535

const checkDocURL = "https://docs.github.com/rest/checks/runs#create-a-check-run"

var (
	checkStatuses    = map[string]bool{"queued": true, "in_progress": true, "completed": true}
	checkConclusions = map[string]bool{
		"action_required": true, "cancelled": true, "failure": true, "neutral": true, "success": true,
		"skipped": true, "stale": true, "timed_out": true,
	}
)

type checkRunInput struct {
	Name       *string `json:"name"`
	HeadSHA    *string `json:"head_sha"`
	DetailsURL *string `json:"details_url"`
	ExternalID *string `json:"external_id"`
	Status     *string `json:"status"`
	Conclusion *string `json:"conclusion"`
	Output     *struct {
		Title   *string `json:"title"`
		Summary *string `json:"summary"`
		Text    *string `json:"text"`
	} `json:"output"`
}

func invalidCheck(w http.ResponseWriter, message string) {
	writeError(w, http.StatusUnprocessableEntity, "Invalid request.\n\n"+message, checkDocURL)
}

// validate applies GitHub's rules to a create or update; it has answered 422 when ok is false.
func (in *checkRunInput) validate(w http.ResponseWriter, creating bool) bool {
	if creating && (in.Name == nil || *in.Name == "" || in.HeadSHA == nil || *in.HeadSHA == "") {
		invalidCheck(w, `"name", "head_sha" weren't supplied.`)
		return false
	}
	if in.Status != nil && !checkStatuses[*in.Status] {
		invalidCheck(w, fmt.Sprintf("%s is not a member of [\"queued\", \"in_progress\", \"completed\"].", *in.Status))
		return false
	}
	if in.Conclusion != nil && *in.Conclusion != "" && !checkConclusions[*in.Conclusion] {
		invalidCheck(w, fmt.Sprintf("%s is not a valid conclusion.", *in.Conclusion))
		return false
	}
	if in.Status != nil && *in.Status == "completed" && (in.Conclusion == nil || *in.Conclusion == "") {
		invalidCheck(w, `"conclusion" is required when "status" is "completed".`)
		return false
	}
	if o := in.Output; o != nil {
		if o.Title == nil || o.Summary == nil {
			invalidCheck(w, `"title", "summary" weren't supplied.`)
			return false
		}
		for _, s := range []*string{o.Summary, o.Text} {
			if s != nil && utf8.RuneCountInString(*s) > MaxCheckOutputChars {
				invalidCheck(w, fmt.Sprintf("Only %d characters are allowed; %d were supplied.",
					MaxCheckOutputChars, utf8.RuneCountInString(*s)))
				return false
			}
		}
	}
	return true
}

// apply changes a check run's state as GitHub does: a conclusion completes it. Callers hold f.mu.
func (f *Fake) apply(c *CheckRun, in *checkRunInput) {
	if in.Name != nil && *in.Name != "" {
		c.Name = *in.Name
	}
	if in.DetailsURL != nil {
		c.DetailsURL = *in.DetailsURL
	}
	if in.ExternalID != nil {
		c.ExternalID = *in.ExternalID
	}
	if in.Status != nil {
		c.Status = *in.Status
	}
	if in.Conclusion != nil && *in.Conclusion != "" {
		c.Conclusion = *in.Conclusion
		c.Status = "completed"
	}
	if c.Status != "completed" {
		c.Conclusion = ""
	}
	if o := in.Output; o != nil {
		c.Title, c.Summary = *o.Title, *o.Summary
		if o.Text != nil {
			c.Text = *o.Text
		}
	}
	if c.Status == "in_progress" && c.StartedAt.IsZero() {
		c.StartedAt = f.now
	}
	if c.Status == "completed" {
		c.CompletedAt = f.now
		if c.StartedAt.IsZero() {
			c.StartedAt = f.now
		}
	}
	c.At = f.now
	c.History = append(c.History, c.CheckRunState)
}

// checkRunJSON is a check run as GitHub answers it. Callers hold f.mu.
func (f *Fake) checkRunJSON(repo *Repo, c *CheckRun) map[string]any {
	prs := []map[string]any{}
	for _, pr := range repo.prsForSHA(c.HeadSHA) {
		prs = append(prs, map[string]any{
			"number": pr.Number,
			"head":   map[string]any{"ref": pr.HeadRef, "sha": pr.HeadSHA},
			"base":   map[string]any{"ref": pr.BaseRef, "sha": pr.BaseSHA},
		})
	}
	slug := "app"
	if app, ok := f.apps[c.AppID]; ok {
		slug = app.slug
	}
	id := strconv.FormatInt(c.ID, 10)
	return map[string]any{
		"id":           c.ID,
		"node_id":      "CR_" + id,
		"name":         c.Name,
		"head_sha":     c.HeadSHA,
		"status":       c.Status,
		"conclusion":   nilIfEmpty(c.Conclusion),
		"external_id":  c.ExternalID,
		"details_url":  c.DetailsURL,
		"url":          f.server.URL + apiPrefix + "/repos/" + repo.FullName() + "/check-runs/" + id,
		"html_url":     repo.HTMLURL() + "/runs/" + id,
		"started_at":   timestamp(c.StartedAt),
		"completed_at": timestamp(c.CompletedAt),
		"output": map[string]any{
			"title": nilIfEmpty(c.Title), "summary": nilIfEmpty(c.Summary), "text": nilIfEmpty(c.Text),
			"annotations_count": 0,
		},
		"app":           map[string]any{"id": c.AppID, "slug": slug},
		"pull_requests": prs,
	}
}

func (f *Fake) handleCreateCheckRun(w http.ResponseWriter, r *http.Request) {
	var in checkRunInput
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, "Problems parsing JSON", checkDocURL)
		return
	}
	f.mu.Lock()
	repo, _, ok := f.repoFor(w, r)
	gitDir := ""
	if ok {
		gitDir = repo.gitDir
	}
	f.mu.Unlock()
	if !ok || !in.validate(w, true) {
		return
	}
	if gitDir != "" {
		if _, err := resolveCommit(gitDir, *in.HeadSHA); err != nil {
			invalidCheck(w, "No commit found for SHA: "+*in.HeadSHA)
			return
		}
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	inst, ok := f.authInstallation(w, r)
	if !ok {
		return
	}
	c := &CheckRun{ID: f.newID(), HeadSHA: *in.HeadSHA, AppID: inst.AppID}
	if in.Status == nil {
		c.Status = "queued"
	}
	f.apply(c, &in)
	repo.checkRuns = append(repo.checkRuns, c)
	writeJSON(w, http.StatusCreated, f.checkRunJSON(repo, c))
}

// checkRunFor finds the check run in the request path. Callers hold f.mu. It has answered 404 when ok is false.
func checkRunFor(w http.ResponseWriter, r *http.Request, repo *Repo) (*CheckRun, bool) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	for _, c := range repo.checkRuns {
		if c.ID == id {
			return c, true
		}
	}
	notFound(w)
	return nil, false
}

func (f *Fake) handleUpdateCheckRun(w http.ResponseWriter, r *http.Request) {
	var in checkRunInput
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, "Problems parsing JSON", checkDocURL)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	repo, inst, ok := f.repoFor(w, r)
	if !ok {
		return
	}
	c, ok := checkRunFor(w, r, repo)
	if !ok {
		return
	}
	if c.AppID != inst.AppID {
		writeError(w, http.StatusForbidden, "Invalid app_id `"+strconv.FormatInt(inst.AppID, 10)+"` - check run can only be modified by the GitHub App that created it.", checkDocURL)
		return
	}
	if !in.validate(w, false) {
		return
	}
	f.apply(c, &in)
	writeJSON(w, http.StatusOK, f.checkRunJSON(repo, c))
}

func (f *Fake) handleGetCheckRun(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	repo, _, ok := f.repoFor(w, r)
	if !ok {
		return
	}
	if c, ok := checkRunFor(w, r, repo); ok {
		writeJSON(w, http.StatusOK, f.checkRunJSON(repo, c))
	}
}

func (f *Fake) handleListCheckRunsForRef(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	repo, _, ok := f.repoFor(w, r)
	gitDir := ""
	if ok {
		gitDir = repo.gitDir
	}
	f.mu.Unlock()
	if !ok {
		return
	}
	sha := r.PathValue("ref")
	if gitDir != "" {
		resolved, err := resolveCommit(gitDir, sha)
		if err != nil {
			writeError(w, http.StatusUnprocessableEntity, "No commit found for SHA: "+sha, checkDocURL)
			return
		}
		sha = resolved
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	q := r.URL.Query()
	var matching []*CheckRun
	latestByName := map[string]*CheckRun{}
	for _, c := range repo.checkRuns {
		if c.HeadSHA != sha || (q.Get("check_name") != "" && c.Name != q.Get("check_name")) ||
			(q.Get("status") != "" && c.Status != q.Get("status")) {
			continue
		}
		matching = append(matching, c)
		latestByName[c.Name] = c
	}
	if q.Get("filter") != "all" { // GitHub's default filter is "latest": the newest run per name
		var latest []*CheckRun
		for _, c := range matching {
			if latestByName[c.Name] == c {
				latest = append(latest, c)
			}
		}
		matching = latest
	}
	start, end := paginate(w, r, len(matching))
	runs := make([]map[string]any, 0, end-start)
	for _, c := range matching[start:end] {
		runs = append(runs, f.checkRunJSON(repo, c))
	}
	writeJSON(w, http.StatusOK, map[string]any{"total_count": len(matching), "check_runs": runs})
}
