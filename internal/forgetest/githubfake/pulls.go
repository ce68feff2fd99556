package githubfake

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// repoJSON is the repository object embedded in pull requests. Callers hold f.mu.
func (f *Fake) repoJSON(fullName string) map[string]any {
	owner, name, _ := strings.Cut(fullName, "/")
	out := map[string]any{
		"name":      name,
		"full_name": fullName,
		"owner":     f.userJSON(owner, false),
		"private":   true,
		"clone_url": f.server.URL + "/" + fullName + ".git",
		"html_url":  f.server.URL + "/" + fullName,
		"url":       f.server.URL + apiPrefix + "/repos/" + fullName,
	}
	if repo, ok := f.repos[strings.ToLower(fullName)]; ok {
		out["id"] = repo.id
		out["default_branch"] = repo.defaultBranch
	}
	return out
}

// prJSON is a pull request as GET /repos/{o}/{r}/pulls/{n} answers it. Callers hold f.mu.
func (f *Fake) prJSON(repo *Repo, pr *PR) map[string]any {
	headRepo := pr.HeadRepo
	if headRepo == "" {
		headRepo = repo.FullName()
	}
	headOwner, _, _ := strings.Cut(headRepo, "/")
	var mergedAt, closedAt any
	if pr.Merged {
		mergedAt = timestamp(f.now)
	}
	if pr.State == "closed" {
		closedAt = timestamp(f.now)
	}
	var mergeable any
	if pr.Mergeable != nil {
		mergeable = *pr.Mergeable
	}
	return map[string]any{
		"url":              f.server.URL + apiPrefix + "/repos/" + repo.FullName() + "/pulls/" + strconv.Itoa(pr.Number),
		"id":               int64(pr.Number) + repo.id*100000,
		"number":           pr.Number,
		"state":            pr.State,
		"title":            pr.Title,
		"body":             pr.Body,
		"user":             f.userJSON(pr.Author, false),
		"draft":            pr.Draft,
		"merged":           pr.Merged,
		"mergeable":        mergeable,
		"merge_commit_sha": nilIfEmpty(pr.MergeCommitSHA),
		"merged_at":        mergedAt,
		"closed_at":        closedAt,
		"html_url":         repo.HTMLURL() + "/pull/" + strconv.Itoa(pr.Number),
		"head": map[string]any{
			"label": headOwner + ":" + pr.HeadRef, "ref": pr.HeadRef, "sha": pr.HeadSHA,
			"user": f.userJSON(headOwner, false), "repo": f.repoJSON(headRepo),
		},
		"base": map[string]any{
			"label": repo.owner + ":" + pr.BaseRef, "ref": pr.BaseRef, "sha": pr.BaseSHA,
			"user": f.userJSON(repo.owner, false), "repo": f.repoJSON(repo.FullName()),
		},
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// prFor finds the pull request in the request path. Callers hold f.mu. It has answered 404 when ok is false.
func prFor(w http.ResponseWriter, r *http.Request, repo *Repo) (*PR, bool) {
	number, _ := strconv.Atoi(r.PathValue("number"))
	pr, ok := repo.prs[number]
	if !ok {
		notFound(w)
	}
	return pr, ok
}

func (f *Fake) handleGetPR(w http.ResponseWriter, r *http.Request) {
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
	writeJSON(w, http.StatusOK, f.prJSON(repo, pr))
}

func (f *Fake) handleListReviews(w http.ResponseWriter, r *http.Request) {
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
	reviews := repo.reviews[pr.Number]
	start, end := paginate(w, r, len(reviews))
	out := make([]map[string]any, 0, end-start)
	for _, rv := range reviews[start:end] {
		var submitted any
		if rv.State != "PENDING" {
			submitted = timestamp(rv.SubmittedAt)
		}
		out = append(out, map[string]any{
			"id":                 rv.ID,
			"node_id":            "PRR_" + strconv.FormatInt(rv.ID, 10),
			"user":               f.userJSON(rv.User, false),
			"body":               rv.Body,
			"state":              rv.State,
			"commit_id":          rv.CommitID,
			"submitted_at":       submitted,
			"author_association": "MEMBER",
			"html_url":           repo.HTMLURL() + "/pull/" + strconv.Itoa(pr.Number) + "#pullrequestreview-" + strconv.FormatInt(rv.ID, 10),
		})
	}
	writeJSON(w, http.StatusOK, out)
}

func (f *Fake) handleListPRCommits(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	repo, _, ok := f.repoFor(w, r)
	if !ok {
		f.mu.Unlock()
		return
	}
	pr, ok := prFor(w, r, repo)
	if !ok {
		f.mu.Unlock()
		return
	}
	commits := append([]Commit(nil), pr.Commits...)
	gitDir, base, head := repo.gitDir, pr.BaseSHA, pr.HeadSHA
	f.mu.Unlock()

	if commits == nil && gitDir != "" {
		var err error
		if commits, err = gitCommits(gitDir, base, head); err != nil {
			writeError(w, http.StatusInternalServerError, err.Error(), "")
			return
		}
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	start, end := paginate(w, r, len(commits))
	out := make([]map[string]any, 0, end-start)
	for _, c := range commits[start:end] {
		date := c.Date
		if date.IsZero() {
			date = f.now
		}
		committerName, committerEmail := c.CommitterName, c.CommitterEmail
		if committerEmail == "" {
			committerName, committerEmail = c.AuthorName, c.AuthorEmail
		}
		out = append(out, map[string]any{
			"sha": c.SHA,
			"commit": map[string]any{
				"author":    map[string]any{"name": c.AuthorName, "email": c.AuthorEmail, "date": timestamp(date)},
				"committer": map[string]any{"name": committerName, "email": committerEmail, "date": timestamp(date)},
				"message":   c.Message,
			},
			"author":    f.userJSON(f.emails[strings.ToLower(c.AuthorEmail)], false),
			"committer": f.userJSON(f.emails[strings.ToLower(committerEmail)], false),
		})
	}
	writeJSON(w, http.StatusOK, out)
}

// gitCommits lists the commits in head that are not in base, oldest first, as GitHub's PR commits endpoint does.
func gitCommits(gitDir, base, head string) ([]Commit, error) {
	rangeSpec := head
	if base != "" {
		rangeSpec = base + ".." + head
	}
	out, err := git(gitDir, "log", "--reverse", "--format=%H%x1f%an%x1f%ae%x1f%cn%x1f%ce%x1f%aI%x1f%s%x1e", rangeSpec)
	if err != nil {
		return nil, err
	}
	var commits []Commit
	for _, rec := range strings.Split(string(out), "\x1e") {
		rec = strings.TrimSpace(rec)
		if rec == "" {
			continue
		}
		fields := strings.Split(rec, "\x1f")
		if len(fields) != 7 {
			continue
		}
		date, _ := time.Parse(time.RFC3339, fields[5])
		commits = append(commits, Commit{
			SHA: fields[0], AuthorName: fields[1], AuthorEmail: fields[2], CommitterName: fields[3],
			CommitterEmail: fields[4], Date: date, Message: fields[6],
		})
	}
	return commits, nil
}

// handleListPRs lists a repository's pull requests (GET /repos/{owner}/{repo}/pulls): state open (GitHub's
// default), closed or all, by number, paginated by page and per_page (at most 100) with a Link header.
func (f *Fake) handleListPRs(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	repo, _, ok := f.repoFor(w, r)
	if !ok {
		return
	}
	state := r.URL.Query().Get("state")
	if state == "" {
		state = "open"
	}
	var numbers []int
	for n, pr := range repo.prs {
		open := pr.State == "" || pr.State == "open"
		if state == "all" || (state == "open") == open {
			numbers = append(numbers, n)
		}
	}
	sort.Sort(sort.Reverse(sort.IntSlice(numbers))) // GitHub's default sort: newest first
	perPage, page := 30, 1
	if n, err := strconv.Atoi(r.URL.Query().Get("per_page")); err == nil && n > 0 {
		perPage = min(n, 100)
	}
	if n, err := strconv.Atoi(r.URL.Query().Get("page")); err == nil && n > 0 {
		page = n
	}
	start := min((page-1)*perPage, len(numbers))
	end := min(start+perPage, len(numbers))
	out := []map[string]any{}
	for _, n := range numbers[start:end] {
		out = append(out, f.prJSON(repo, repo.prs[n]))
	}
	if end < len(numbers) {
		next := fmt.Sprintf("%s%s/repos/%s/pulls?state=%s&per_page=%d&page=%d", f.server.URL, apiPrefix, repo.FullName(), state, perPage, page+1)
		w.Header().Set("Link", "<"+next+`>; rel="next"`)
	}
	writeJSON(w, http.StatusOK, out)
}
