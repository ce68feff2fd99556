package githubfake

import (
	"net/http"
	"strconv"
	"strings"
)

// MaxPRFiles is how many files GitHub lists for a pull request at most; a larger PR's list is cut there.
const MaxPRFiles = 3000

func (f *Fake) gitRoutes() {
	m := f.api
	m.HandleFunc("GET /repos/{owner}/{repo}/compare/{basehead}", f.handleCompare)
	m.HandleFunc("GET /repos/{owner}/{repo}/pulls/{number}/files", f.handleListPRFiles)
	m.HandleFunc("GET /repos/{owner}/{repo}/git/trees/{sha}", f.handleGetTree)
	m.HandleFunc("GET /repos/{owner}/{repo}/branches/{branch...}", f.handleGetBranch)
}

// handleGetBranch answers GET /branches/{branch} with the commit it points to.
func (f *Fake) handleGetBranch(w http.ResponseWriter, r *http.Request) {
	_, gitDir, ok := f.repoGit(w, r)
	if !ok {
		return
	}
	name := r.PathValue("branch")
	sha, err := git(gitDir, "rev-parse", "--verify", "--quiet", "refs/heads/"+name)
	if err != nil {
		writeError(w, http.StatusNotFound, "Branch not found", "https://docs.github.com/rest/branches/branches#get-a-branch")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": name, "commit": map[string]any{"sha": strings.TrimSpace(string(sha))}, "protected": false})
}

// repoGit is the repository's git directory, or a 404 written when it has none.
func (f *Fake) repoGit(w http.ResponseWriter, r *http.Request) (*Repo, string, bool) {
	f.mu.Lock()
	repo, _, ok := f.repoFor(w, r)
	var gitDir string
	if ok {
		gitDir = repo.gitDir
	}
	f.mu.Unlock()
	if ok && gitDir == "" {
		writeError(w, http.StatusNotFound, "This repository is empty.", "")
		return nil, "", false
	}
	return repo, gitDir, ok
}

// handleCompare answers GET /compare/{base}...{head} as GitHub does: the merge base, how far head is ahead of
// and behind base, and the status.
func (f *Fake) handleCompare(w http.ResponseWriter, r *http.Request) {
	_, gitDir, ok := f.repoGit(w, r)
	if !ok {
		return
	}
	baseRef, headRef, found := strings.Cut(r.PathValue("basehead"), "...")
	if !found {
		notFound(w)
		return
	}
	base, errB := resolveCommit(gitDir, baseRef)
	head, errH := resolveCommit(gitDir, headRef)
	if errB != nil || errH != nil {
		writeError(w, http.StatusNotFound, "Not Found", "https://docs.github.com/rest/commits/commits#compare-two-commits")
		return
	}
	mergeBase, err := git(gitDir, "merge-base", base, head)
	if err != nil {
		writeError(w, http.StatusNotFound, "No common ancestor between "+baseRef+" and "+headRef+".", "")
		return
	}
	count := func(rng string) int {
		out, err := git(gitDir, "rev-list", "--count", rng)
		if err != nil {
			return 0
		}
		n, _ := strconv.Atoi(strings.TrimSpace(string(out)))
		return n
	}
	ahead, behind := count(base+".."+head), count(head+".."+base)
	status := "identical"
	switch {
	case ahead > 0 && behind > 0:
		status = "diverged"
	case ahead > 0:
		status = "ahead"
	case behind > 0:
		status = "behind"
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"status": status, "ahead_by": ahead, "behind_by": behind, "total_commits": ahead,
		"base_commit":       map[string]any{"sha": base},
		"merge_base_commit": map[string]any{"sha": strings.TrimSpace(string(mergeBase))},
		"commits":           []any{}, "files": []any{},
	})
}

// handleListPRFiles lists the files a pull request changes (against the merge base with its base branch, as
// GitHub's three-dot diff), cut at GitHub's 3,000.
func (f *Fake) handleListPRFiles(w http.ResponseWriter, r *http.Request) {
	repo, gitDir, ok := f.repoGit(w, r)
	if !ok {
		return
	}
	f.mu.Lock()
	pr, ok := prFor(w, r, repo)
	var baseRef, head string
	if ok {
		baseRef, head = pr.BaseRef, pr.HeadSHA
	}
	f.mu.Unlock()
	if !ok {
		return
	}
	mergeBase, err := git(gitDir, "merge-base", baseRef, head)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error(), "")
		return
	}
	out, err := git(gitDir, "diff", "--no-renames", "--name-status", strings.TrimSpace(string(mergeBase)), head)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error(), "")
		return
	}
	var files []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		st, name, found := strings.Cut(line, "\t")
		if !found {
			continue
		}
		status := map[string]string{"A": "added", "D": "removed"}[st]
		if status == "" {
			status = "modified"
		}
		files = append(files, map[string]any{"filename": name, "status": status})
	}
	if len(files) > MaxPRFiles {
		files = files[:MaxPRFiles]
	}
	start, end := paginate(w, r, len(files))
	writeJSON(w, http.StatusOK, append([]map[string]any{}, files[start:end]...))
}

// handleGetTree answers GET /git/trees/{sha}[?recursive=1] for a commit or tree.
func (f *Fake) handleGetTree(w http.ResponseWriter, r *http.Request) {
	_, gitDir, ok := f.repoGit(w, r)
	if !ok {
		return
	}
	sha := r.PathValue("sha")
	tree, err := git(gitDir, "rev-parse", "--verify", "--quiet", sha+"^{tree}")
	if err != nil {
		notFound(w)
		return
	}
	args := []string{"ls-tree", "-l"}
	if v := r.URL.Query().Get("recursive"); v != "" && v != "0" && v != "false" {
		args = append(args, "-r", "-t")
	}
	out, err := git(gitDir, append(args, strings.TrimSpace(string(tree)))...)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error(), "")
		return
	}
	entries := []map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		meta, path, found := strings.Cut(line, "\t")
		fields := strings.Fields(meta)
		if !found || len(fields) != 4 {
			continue
		}
		e := map[string]any{"path": path, "mode": fields[0], "type": fields[1], "sha": fields[2]}
		if size, err := strconv.Atoi(fields[3]); err == nil {
			e["size"] = size
		}
		entries = append(entries, e)
	}
	writeJSON(w, http.StatusOK, map[string]any{"sha": strings.TrimSpace(string(tree)), "tree": entries, "truncated": false})
}
