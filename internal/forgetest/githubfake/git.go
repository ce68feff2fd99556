package githubfake

import (
	"net/http"
	"net/http/cgi"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

var (
	httpBackendOnce sync.Once
	httpBackendPath string
	httpBackendErr  error
)

// httpBackend finds git's smart HTTP CGI program.
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

// cloneUser is the user name GitHub expects with an installation token used as a git password.
const cloneUser = "x-access-token"

// serveGit serves git smart HTTP (clone and fetch) at /{owner}/{repo}.git/... through git http-backend, for
// clients that authenticate with an installation token as GitHub requires: user x-access-token, password the
// token.
func (f *Fake) serveGit(w http.ResponseWriter, r *http.Request) {
	parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 3)
	if len(parts) < 3 {
		http.NotFound(w, r)
		return
	}
	owner, repoPart := parts[0], parts[1]
	name := strings.TrimSuffix(repoPart, ".git")

	user, token, hasAuth := r.BasicAuth()
	f.mu.Lock()
	repo, found := f.repos[strings.ToLower(owner+"/"+name)]
	inst, valid := f.tokenInstallation(token)
	authorised := hasAuth && user == cloneUser && valid && found && inst.covers(repo.FullName())
	gitDir := ""
	if found {
		gitDir = repo.gitDir
	}
	f.mu.Unlock()

	if !authorised {
		// GitHub asks for credentials rather than revealing whether a private repository exists.
		w.Header().Set("WWW-Authenticate", `Basic realm="GitHub"`)
		http.Error(w, "Invalid username or token. Password authentication is not supported for Git operations.", http.StatusUnauthorized)
		return
	}
	if gitDir == "" {
		http.Error(w, "Repository not found.", http.StatusNotFound)
		return
	}
	if strings.Contains(parts[2], "git-receive-pack") {
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
		Root: "/" + owner + "/" + repoPart,
		Env:  append([]string{"GIT_PROJECT_ROOT=" + gitDir, "GIT_HTTP_EXPORT_ALL=1"}, gitSafeEnv...),
	}
	handler.ServeHTTP(w, r)
}
