package gitlabfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cgi"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

func (f *Fake) routes() {
	m := f.api
	m.HandleFunc("GET /version", f.handleVersion)
	m.HandleFunc("GET /user", f.handleCurrentUser)
	m.HandleFunc("GET /users", f.handleUsers)
	m.HandleFunc("GET /projects/{id}", f.handleGetProject)
	m.HandleFunc("GET /projects/{id}/members/all/{user}", f.handleProjectMember)
	m.HandleFunc("GET /groups/{id}/members/all/{user}", f.handleGroupMember)
	m.HandleFunc("POST /projects/{id}/statuses/{sha}", f.handlePostStatus)
	m.HandleFunc("GET /projects/{id}/repository/commits/{sha}/statuses", f.handleListStatuses)
	m.HandleFunc("GET /projects/{id}/repository/commits/{sha}", f.handleGetCommit)
	m.HandleFunc("GET /projects/{id}/repository/files/{path}/raw", f.handleRawFile)
	m.HandleFunc("GET /projects/{id}/repository/compare", f.handleCompare)
	m.HandleFunc("GET /projects/{id}/repository/merge_base", f.handleMergeBase)
	m.HandleFunc("GET /projects/{id}/repository/tree", f.handleTree)
	m.HandleFunc("GET /projects/{id}/repository/branches/{branch}", f.handleBranch)
	f.mrRoutes()
}

func (f *Fake) handleVersion(w http.ResponseWriter, _ *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"version": f.version, "revision": "fake"})
}

func (f *Fake) handleCurrentUser(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u := caller(r)
	out := userJSON(u)
	out["email"], out["public_email"] = u.Email, u.PublicEmail
	writeJSON(w, http.StatusOK, out)
}

// handleUsers answers GET /users?username= (exact) and ?search= (username, name or public email; any email for
// nobody here: the fake's callers are not admins).
func (f *Fake) handleUsers(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := r.URL.Query()
	var ids []int64
	for id := range f.users {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var out []map[string]any
	for _, id := range ids {
		u := f.users[id]
		switch {
		case q.Has("username"):
			if !strings.EqualFold(u.Username, q.Get("username")) {
				continue
			}
		case q.Has("search"):
			s := strings.ToLower(q.Get("search"))
			if !strings.Contains(strings.ToLower(u.Username), s) && !strings.Contains(strings.ToLower(u.Name), s) &&
				!(u.PublicEmail != "" && strings.EqualFold(u.PublicEmail, s)) {
				continue
			}
		}
		j := userJSON(u)
		j["public_email"] = u.PublicEmail
		out = append(out, j)
	}
	page(w, r, out)
}

func (f *Fake) projectJSON(p *Project) map[string]any {
	out := map[string]any{"id": p.ID, "path": p.Path, "name": p.Path, "path_with_namespace": p.FullPath(),
		"default_branch": p.DefaultBranch, "http_url_to_repo": p.CloneURL(), "web_url": p.WebURL(),
		"namespace": map[string]any{"full_path": p.Namespace, "path": lastSegment(p.Namespace), "kind": "group"}}
	out["visibility"] = "private"
	if p.visibility != "" {
		out["visibility"] = p.visibility
	}
	if up, ok := f.projects[p.forkedFrom]; ok {
		out["forked_from_project"] = map[string]any{"id": up.ID, "path_with_namespace": up.FullPath(),
			"http_url_to_repo": up.CloneURL()}
	}
	return out
}

func lastSegment(s string) string { return s[strings.LastIndex(s, "/")+1:] }

func (f *Fake) handleGetProject(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.projectFor(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, f.projectJSON(p))
}

func memberJSON(u *User, level int) map[string]any {
	out := userJSON(u)
	out["access_level"] = level
	return out
}

func (f *Fake) handleProjectMember(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.projectFor(w, r)
	if !ok {
		return
	}
	id, _ := strconv.ParseInt(r.PathValue("user"), 10, 64)
	u, level := f.users[id], p.level(id)
	if u == nil || level == 0 {
		notFound(w, "Member")
		return
	}
	writeJSON(w, http.StatusOK, memberJSON(u, level))
}

func (f *Fake) handleGroupMember(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var g *Group
	if n, err := strconv.ParseInt(r.PathValue("id"), 10, 64); err == nil {
		for _, have := range f.groups {
			if have.ID == n {
				g = have
			}
		}
	} else {
		g = f.groups[strings.ToLower(r.PathValue("id"))]
	}
	if g == nil || f.groupLevel(g.FullPath, caller(r).ID) == 0 {
		notFound(w, "Group")
		return
	}
	id, _ := strconv.ParseInt(r.PathValue("user"), 10, 64)
	u, level := f.users[id], f.groupLevel(g.FullPath, id)
	if u == nil || level == 0 {
		notFound(w, "Member")
		return
	}
	writeJSON(w, http.StatusOK, memberJSON(u, level))
}

// projectGit is the request's project's git directory (read under f.mu), or a 404 written.
func (f *Fake) projectGit(w http.ResponseWriter, r *http.Request) (*Project, string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.projectFor(w, r)
	if !ok {
		return nil, "", false
	}
	return p, p.gitDir, true
}

func (f *Fake) handleGetCommit(w http.ResponseWriter, r *http.Request) {
	_, dir, ok := f.projectGit(w, r)
	if !ok {
		return
	}
	sha, err := resolveCommit(dir, r.PathValue("sha"))
	if err != nil {
		notFound(w, "Commit")
		return
	}
	commits, err := gitCommits(dir, sha+"^!", "")
	if err != nil || len(commits) != 1 {
		notFound(w, "Commit")
		return
	}
	writeJSON(w, http.StatusOK, commits[0])
}

func (f *Fake) handleRawFile(w http.ResponseWriter, r *http.Request) {
	_, dir, ok := f.projectGit(w, r)
	if !ok {
		return
	}
	ref := r.URL.Query().Get("ref")
	if ref == "" {
		writeMessage(w, http.StatusBadRequest, "400 Bad request - ref is missing")
		return
	}
	out, err := git(dir, "cat-file", "blob", ref+":"+r.PathValue("path"))
	if err != nil {
		notFound(w, "File")
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write(out)
}

func (f *Fake) handleCompare(w http.ResponseWriter, r *http.Request) {
	_, dir, ok := f.projectGit(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	from, err1 := resolveCommit(dir, q.Get("from"))
	to, err2 := resolveCommit(dir, q.Get("to"))
	if err1 != nil || err2 != nil {
		notFound(w, "Ref")
		return
	}
	base := from
	if straight, _ := strconv.ParseBool(q.Get("straight")); !straight {
		mb, err := git(dir, "merge-base", from, to)
		if err != nil {
			writeJSON(w, http.StatusOK, map[string]any{"commit": nil, "commits": []any{}, "diffs": []any{},
				"compare_timeout": false, "compare_same_ref": false})
			return
		}
		base = strings.TrimSpace(string(mb))
	}
	commits, err := gitCommits(dir, base, to)
	if err != nil {
		writeMessage(w, http.StatusInternalServerError, err.Error())
		return
	}
	var last any
	if len(commits) > 0 {
		last = commits[len(commits)-1]
	}
	writeJSON(w, http.StatusOK, map[string]any{"commit": last, "commits": commits, "diffs": []any{},
		"compare_timeout": false, "compare_same_ref": from == to})
}

func (f *Fake) handleMergeBase(w http.ResponseWriter, r *http.Request) {
	_, dir, ok := f.projectGit(w, r)
	if !ok {
		return
	}
	refs := r.URL.Query()["refs[]"]
	if len(refs) < 2 {
		writeMessage(w, http.StatusBadRequest, "400 Bad request - Provide at least 2 refs")
		return
	}
	var shas []string
	for _, ref := range refs {
		sha, err := resolveCommit(dir, ref)
		if err != nil {
			notFound(w, "Commit")
			return
		}
		shas = append(shas, sha)
	}
	out, err := git(dir, append([]string{"merge-base"}, shas...)...)
	if err != nil {
		notFound(w, "Merge Base")
		return
	}
	commits, err := gitCommits(dir, strings.TrimSpace(string(out))+"^!", "")
	if err != nil || len(commits) != 1 {
		notFound(w, "Merge Base")
		return
	}
	writeJSON(w, http.StatusOK, commits[0])
}

func (f *Fake) handleTree(w http.ResponseWriter, r *http.Request) {
	p, dir, ok := f.projectGit(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	ref := q.Get("ref")
	if ref == "" {
		ref = p.DefaultBranch
	}
	args := []string{"ls-tree", "-z", "--full-tree"}
	if recursive, _ := strconv.ParseBool(q.Get("recursive")); recursive {
		args = append(args, "-r", "-t")
	}
	out, err := git(dir, append(args, ref)...)
	if err != nil {
		notFound(w, "Tree")
		return
	}
	var nodes []map[string]any
	for _, rec := range strings.Split(string(out), "\x00") {
		meta, name, found := strings.Cut(rec, "\t")
		if !found {
			continue
		}
		fields := strings.Fields(meta) // mode type id
		nodes = append(nodes, map[string]any{"id": fields[2], "name": lastSegment(name), "type": fields[1],
			"path": name, "mode": fields[0]})
	}
	page(w, r, nodes)
}

func (f *Fake) handleBranch(w http.ResponseWriter, r *http.Request) {
	_, dir, ok := f.projectGit(w, r)
	if !ok {
		return
	}
	name := r.PathValue("branch")
	sha, err := git(dir, "rev-parse", "--verify", "--quiet", "refs/heads/"+name)
	if err != nil {
		notFound(w, "Branch")
		return
	}
	commits, err := gitCommits(dir, strings.TrimSpace(string(sha))+"^!", "")
	if err != nil || len(commits) != 1 {
		notFound(w, "Branch")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": name, "commit": commits[0], "protected": false})
}

// branchContaining is a branch whose history has sha ("" for none), the default branch first, as GitLab picks a
// status's ref. Callers hold f.mu.
func (p *Project) branchContaining(sha string) string {
	out, err := git(p.gitDir, "branch", "--format=%(refname:short)", "--contains", sha)
	if err != nil {
		return ""
	}
	branches := strings.Fields(string(out))
	for _, b := range branches {
		if b == p.DefaultBranch {
			return b
		}
	}
	if len(branches) == 0 {
		return ""
	}
	return branches[0]
}

// changedFiles are a merge request's diffs (base..head), in path order. The head may live in a fork: its
// objects are read from there.
func changedFiles(_ string, source *Project, mr *MR) ([]map[string]any, error) {
	out, err := git(source.gitDir, "diff", "--no-renames", "--name-status", "-z", mr.BaseSHA, mr.HeadSHA)
	if err != nil {
		return nil, err
	}
	parts := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	var files []map[string]any
	for i := 0; i+1 < len(parts); i += 2 {
		status, name := parts[i], parts[i+1]
		files = append(files, map[string]any{"old_path": name, "new_path": name, "new_file": status == "A",
			"deleted_file": status == "D", "renamed_file": false, "diff": ""})
	}
	return files, nil
}

// gitCommit is a commit in GitLab's shape.
type gitCommit struct {
	ID             string   `json:"id"`
	ShortID        string   `json:"short_id"`
	Title          string   `json:"title"`
	Message        string   `json:"message"`
	AuthorName     string   `json:"author_name"`
	AuthorEmail    string   `json:"author_email"`
	AuthoredDate   string   `json:"authored_date"`
	CommitterName  string   `json:"committer_name"`
	CommitterEmail string   `json:"committer_email"`
	CommittedDate  string   `json:"committed_date"`
	CreatedAt      string   `json:"created_at"`
	ParentIDs      []string `json:"parent_ids"`
}

// gitCommits lists base..head oldest first; with head "" base is a revision range of its own.
func gitCommits(dir, base, head string) ([]gitCommit, error) {
	spec := base
	if head != "" {
		spec = head
		if base != "" {
			spec = base + ".." + head
		}
	}
	out, err := git(dir, "log", "--reverse", "--format=%H%x1f%an%x1f%ae%x1f%aI%x1f%cn%x1f%ce%x1f%cI%x1f%P%x1f%s%x1e", spec)
	if err != nil {
		return nil, err
	}
	var commits []gitCommit
	for _, rec := range strings.Split(string(out), "\x1e") {
		rec = strings.TrimSpace(rec)
		if rec == "" {
			continue
		}
		c := strings.Split(rec, "\x1f")
		commits = append(commits, gitCommit{ID: c[0], ShortID: c[0][:8], AuthorName: c[1], AuthorEmail: c[2],
			AuthoredDate: c[3], CommitterName: c[4], CommitterEmail: c[5], CommittedDate: c[6], CreatedAt: c[6],
			ParentIDs: strings.Fields(c[7]), Title: c[8], Message: c[8]})
	}
	if commits == nil {
		commits = []gitCommit{}
	}
	return commits, nil
}

func git(dir string, args ...string) ([]byte, error) {
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(cmd.Environ(), gitSafeEnv...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// gitSafeEnv lets git read repositories owned by another user and ignores the user's config.
var gitSafeEnv = []string{
	"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
	"GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=safe.directory", "GIT_CONFIG_VALUE_0=*",
}

func resolveCommit(dir, ref string) (string, error) {
	if ref == "" {
		return "", fmt.Errorf("no ref")
	}
	out, err := git(dir, "rev-parse", "--verify", "--quiet", ref+"^{commit}")
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

// formValues reads a request's parameters: the JSON body client-go sends, or a form.
func formValues(w http.ResponseWriter, r *http.Request) (map[string]string, bool) {
	out := map[string]string{}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		var raw map[string]any
		if err := json.NewDecoder(r.Body).Decode(&raw); err != nil {
			writeMessage(w, http.StatusBadRequest, "400 Bad request - "+err.Error())
			return nil, false
		}
		for k, v := range raw {
			switch v := v.(type) {
			case string:
				out[k] = v
			case nil:
			default:
				out[k] = fmt.Sprint(v)
			}
		}
		return out, true
	}
	if err := r.ParseForm(); err != nil {
		writeMessage(w, http.StatusBadRequest, "400 Bad request - "+err.Error())
		return nil, false
	}
	for k := range r.Form {
		out[k] = r.Form.Get(k)
	}
	return out, true
}

func formValue(w http.ResponseWriter, r *http.Request, key string) (string, bool) {
	form, ok := formValues(w, r)
	if !ok {
		return "", false
	}
	v, present := form[key]
	if !present {
		writeMessage(w, http.StatusBadRequest, "400 Bad request - "+key+" is missing")
		return "", false
	}
	return v, true
}

var (
	httpBackendOnce sync.Once
	httpBackendPath string
	httpBackendErr  error
)

func httpBackend() (string, error) {
	httpBackendOnce.Do(func() {
		out, err := exec.Command("git", "--exec-path").Output()
		if err != nil {
			httpBackendErr = err
			return
		}
		httpBackendPath = filepath.Join(strings.TrimSpace(string(out)), "git-http-backend")
	})
	return httpBackendPath, httpBackendErr
}

// CloneUser is the user name GitLab takes with an access token as a git password.
const CloneUser = "oauth2"

// serveGit serves git smart HTTP (clone and fetch) at /{full path}.git/... for `oauth2:<token>` of a user who
// can read the project (Reporter or more): any token scope that reads a repository (read_repository or api).
func (f *Fake) serveGit(w http.ResponseWriter, r *http.Request) {
	fullPath, rest, found := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), ".git/")
	if !found {
		http.NotFound(w, r)
		return
	}
	user, token, hasAuth := r.BasicAuth()
	f.mu.Lock()
	p := f.project(fullPath)
	t, valid := f.tokens[token]
	authorised := hasAuth && user == CloneUser && valid && p != nil &&
		(t.has(ScopeReadRepository) || t.has(ScopeAPI)) && p.level(t.userID) >= Reporter
	var gitDir string
	if p != nil {
		gitDir = p.gitDir
	}
	f.mu.Unlock()
	if !authorised {
		w.Header().Set("WWW-Authenticate", `Basic realm="GitLab"`)
		http.Error(w, "HTTP Basic: Access denied.", http.StatusUnauthorized)
		return
	}
	if strings.Contains(rest, "git-receive-pack") {
		http.Error(w, "Pushing to the fake is not supported: commit to the git directory instead.", http.StatusForbidden)
		return
	}
	backend, err := httpBackend()
	if err != nil {
		http.Error(w, "git http-backend not found: "+err.Error(), http.StatusInternalServerError)
		return
	}
	handler := &cgi.Handler{
		Path: backend,
		Root: "/" + fullPath + ".git",
		Env:  append([]string{"GIT_PROJECT_ROOT=" + gitDir, "GIT_HTTP_EXPORT_ALL=1"}, gitSafeEnv...),
	}
	handler.ServeHTTP(w, r)
}
