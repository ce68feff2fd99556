package jobs

import (
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLocalChecksOutACommitBehindTheBranchHead(t *testing.T) {
	repo := newGitRepo(t)
	first := commitFiles(t, repo, map[string]string{"project/version.txt": "one\n"}, "first")
	commitFiles(t, repo, map[string]string{"project/version.txt": "two\n"}, "second")
	l, workDir := newTestLocal(t, 0)

	res, rec := runJob(t, l, Spec{
		RunID:   "behind-head",
		Source:  Source{CloneURL: repo, SHA: first},
		Subdir:  "project",
		Command: []string{"sh", "-c", "cat version.txt; git rev-parse HEAD"},
		Env:     plainEnv(),
	})

	require.True(t, res.Succeeded(), "%+v: %s", res, rec.joined())
	assert.Equal(t, []string{"one", first}, rec.texts("stdout"))
	requireScratchRemoved(t, workDir)
}

func TestLocalFetchesACommitNoBranchPointsTo(t *testing.T) {
	for _, tc := range []struct {
		name          string
		serverAllows  bool // uploadpack.allowReachableSHA1InWant, as on GitHub and GitLab
		wantShallowed bool
	}{
		{name: "server serves any reachable commit", serverAllows: true, wantShallowed: true},
		{name: "server serves refs only", serverAllows: false, wantShallowed: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo := newGitRepo(t)
			commitFiles(t, repo, map[string]string{"version.txt": "main\n"}, "main")
			// A fork's pull request: its head is only reachable from refs/pull/7/head.
			runGit(t, repo, "checkout", "-q", "-b", "fork")
			prHead := commitFiles(t, repo, map[string]string{"version.txt": "pull request\n"}, "pr")
			runGit(t, repo, "update-ref", "refs/pull/7/head", prHead)
			runGit(t, repo, "checkout", "-q", "main")
			runGit(t, repo, "branch", "-q", "-D", "fork")
			if tc.serverAllows {
				runGit(t, repo, "config", "uploadpack.allowReachableSHA1InWant", "true")
			}
			l, workDir := newTestLocal(t, 0)

			res, rec := runJob(t, l, Spec{
				RunID:  "pr-head",
				Source: Source{CloneURL: repo, SHA: prHead},
				Command: []string{"sh", "-c",
					`cat version.txt; git rev-parse HEAD; if [ -f .git/shallow ]; then echo shallow; else echo full; fi`},
				Env: plainEnv(),
			})

			require.True(t, res.Succeeded(), "%+v: %s", res, rec.joined())
			want := "full"
			if tc.wantShallowed {
				want = "shallow" // only that one commit was fetched
			}
			assert.Equal(t, []string{"pull request", prHead, want}, rec.texts("stdout"))
			requireScratchRemoved(t, workDir)
		})
	}
}

func TestLocalFailsACheckoutOfAnUnknownCommit(t *testing.T) {
	repo := newGitRepo(t)
	commitFiles(t, repo, map[string]string{"a.txt": "a\n"}, "a")
	unknown := strings.Repeat("0123456789", 4)
	l, workDir := newTestLocal(t, 0)

	res, rec := runJob(t, l, Spec{
		RunID:   "unknown-sha",
		Source:  Source{CloneURL: repo, SHA: unknown},
		Command: []string{"sh", "-c", "echo must not run"},
		Env:     plainEnv(),
	})

	assert.Equal(t, ReasonCheckoutFailed, res.Reason)
	assert.False(t, res.Succeeded())
	assert.Empty(t, rec.texts("stdout"))
	assert.Contains(t, rec.joined(), unknown)
	requireScratchRemoved(t, workDir)
}

// gitHTTPServer serves bare repositories under root over smart HTTP with the real git-http-backend, and
// only to requests with the given basic-auth credentials, as GitHub does for installation tokens.
func gitHTTPServer(t *testing.T, root, user, password string) (*httptest.Server, func() []string) {
	t.Helper()
	backend := &cgi.Handler{
		Path:       filepath.Join(runGit(t, root, "--exec-path"), "git-http-backend"),
		Env:        []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_GLOBAL=/dev/null"},
		InheritEnv: []string{"PATH"},
	}
	var mu sync.Mutex
	var users []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		mu.Lock()
		users = append(users, u)
		mu.Unlock()
		if !ok || u != user || p != password {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), users...)
	}
}

func TestLocalClonesOverHTTPWithTheTokenAsBasicAuth(t *testing.T) {
	for _, tc := range []struct{ tokenUser, wantUser string }{
		{tokenUser: "", wantUser: "x-access-token"}, // GitHub installation tokens
		{tokenUser: "oauth2", wantUser: "oauth2"},   // GitLab
	} {
		t.Run(tc.wantUser, func(t *testing.T) {
			const token = "ghs_testinstallationtoken"
			repo := newGitRepo(t)
			sha := commitFiles(t, repo, map[string]string{"hello.txt": "over http\n"}, "hello")
			root := t.TempDir()
			runGit(t, root, "clone", "-q", "--bare", repo, filepath.Join(root, "repo.git"))
			srv, users := gitHTTPServer(t, root, tc.wantUser, token)
			l, workDir := newTestLocal(t, 0)

			res, rec := runJob(t, l, Spec{
				RunID:   "http-" + tc.wantUser,
				Source:  Source{CloneURL: srv.URL + "/repo.git", SHA: sha, Token: token, TokenUser: tc.tokenUser},
				Command: []string{"cat", "hello.txt"},
				Env:     plainEnv(),
			})

			require.True(t, res.Succeeded(), "%+v: %s", res, rec.joined())
			assert.Equal(t, []string{"over http"}, rec.texts("stdout"))
			assert.Contains(t, users(), tc.wantUser)
			requireScratchRemoved(t, workDir)
		})
	}
}

func TestLocalReportsARefusedCloneWithoutTheToken(t *testing.T) {
	const token = "ghs_wrongtokenvalue"
	repo := newGitRepo(t)
	sha := commitFiles(t, repo, map[string]string{"a.txt": "a\n"}, "a")
	root := t.TempDir()
	runGit(t, root, "clone", "-q", "--bare", repo, filepath.Join(root, "repo.git"))
	srv, _ := gitHTTPServer(t, root, "x-access-token", "the-right-token")
	l, workDir := newTestLocal(t, 0)
	// The URL carries the token too, as a careless caller might write it: it must not show either.
	cloneURL := strings.Replace(srv.URL, "http://", "http://x-access-token:"+token+"@", 1) + "/repo.git"

	res, rec := runJob(t, l, Spec{
		RunID:   "refused",
		Source:  Source{CloneURL: cloneURL, SHA: sha, Token: token},
		Command: []string{"true"},
		Env:     plainEnv(),
	})

	assert.Equal(t, ReasonCheckoutFailed, res.Reason)
	require.NotEmpty(t, rec.texts("stderr"))
	assert.NotContains(t, rec.joined(), token)
	assert.Contains(t, rec.joined(), "x-access-token:***@")
	requireScratchRemoved(t, workDir)
}
