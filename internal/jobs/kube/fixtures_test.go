package kube

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/dagctl/dagctl-bot/internal/jobs/kube/kubetest"
)

const testRunnerPath = "/usr/local/bin/dagctl-bot"

var testTokenKey = []byte("test-token-key-0123456789abcdef")

// newNamespace gives each test its own namespace.
func newNamespace(t *testing.T) string {
	t.Helper()
	ns, err := testClient.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "t-"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	return ns.Name
}

// startNode plays the node for the namespace: its Pods run through the real RunInPod.
func startNode(t *testing.T, ns string) *kubetest.Node {
	t.Helper()
	return kubetest.StartNode(t, testClient, ns, kubetest.NodeConfig{
		Run: RunInPod, TerminationLogEnv: EnvTerminationLog, RunIDAnnotation: AnnotationRunID,
	})
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 60*time.Second, 50*time.Millisecond, what)
}

// bot is the bot's HTTP endpoint as the Pods see it: a fixed URL in front of whichever executor is current, and
// 502 while there is none (the bot is down, the ingress answers).
type bot struct {
	server  *httptest.Server
	current atomic.Pointer[Executor]
}

func newBot(t *testing.T) *bot {
	b := &bot{}
	b.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e := b.current.Load()
		if e == nil {
			http.Error(w, "bot down", http.StatusBadGateway)
			return
		}
		e.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(b.server.Close)
	return b
}

func testConfig(ns, publicURL string) Config {
	return Config{
		Namespace:   ns,
		Image:       "ghcr.io/dagctl/sqlmesh:0.236.4",
		RunnerImage: "ghcr.io/dagctl/dagctl-bot:test",
		RunnerPath:  testRunnerPath,
		PublicURL:   publicURL,
		TokenKey:    testTokenKey,
		Logger:      slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
}

// startExecutor starts an executor (a bot process) with that client and makes it the bot's current one.
func (b *bot) startExecutor(t *testing.T, client kubernetes.Interface, cfg Config) *Executor {
	t.Helper()
	e, err := New(context.Background(), client, cfg)
	require.NoError(t, err)
	b.current.Store(e)
	t.Cleanup(e.Close)
	return e
}

// stop takes the bot down, as a restart does.
func (b *bot) stop(e *Executor) {
	b.current.CompareAndSwap(e, nil)
	e.Close()
}

// gitRepo is a repository served over smart HTTP by git-http-backend, behind a token check like a forge's.
type gitRepo struct {
	URL   string
	SHA   string // the commit to check out; not the tip of any branch
	Later string // the branch's tip, after SHA
	Token string
}

func newGitRepo(t *testing.T) gitRepo {
	t.Helper()
	dir := t.TempDir()
	work, root := filepath.Join(dir, "work"), filepath.Join(dir, "srv")
	git := func(wd string, args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir = wd
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
			"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "git %v: %s", args, out)
		return strings.TrimSpace(string(out))
	}
	require.NoError(t, os.MkdirAll(filepath.Join(work, "project"), 0o755))
	git(work, "init", "-q", "-b", "main")
	require.NoError(t, os.WriteFile(filepath.Join(work, "project", "model.sql"), []byte("select 1 as pr_head\n"), 0o644))
	git(work, "add", ".")
	git(work, "commit", "-q", "-m", "the PR head")
	sha := git(work, "rev-parse", "HEAD")
	require.NoError(t, os.WriteFile(filepath.Join(work, "project", "model.sql"), []byte("select 2 as later\n"), 0o644))
	git(work, "commit", "-q", "-am", "a later commit")
	later := git(work, "rev-parse", "HEAD")
	require.NoError(t, os.MkdirAll(root, 0o755))
	git(root, "clone", "-q", "--bare", work, "repo.git")
	git(filepath.Join(root, "repo.git"), "config", "uploadpack.allowReachableSHA1InWant", "true")

	token := "ghs_" + randomHex(t)
	backend := &cgi.Handler{
		Path: filepath.Join(git(dir, "--exec-path"), "git-http-backend"),
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1"},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if !ok || user != jobs.DefaultTokenUser || pass != token {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "bad credentials", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return gitRepo{URL: srv.URL + "/repo.git", SHA: sha, Later: later, Token: token}
}

func randomHex(t *testing.T) string {
	b := make([]byte, 12)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

// lineSink collects a job's output.
type lineSink struct {
	mu    sync.Mutex
	lines []jobs.Line
}

func (s *lineSink) sink(l jobs.Line) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lines = append(s.lines, l)
}

func (s *lineSink) texts() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, l := range s.lines {
		out = append(out, l.Text)
	}
	return out
}

func (s *lineSink) has(text string) bool {
	for _, l := range s.texts() {
		if l == text {
			return true
		}
	}
	return false
}

func planSpec(repo gitRepo, runID string, command ...string) jobs.Spec {
	return jobs.Spec{
		RunID: runID,
		Kind:  jobs.KindPlan,
		Labels: map[string]string{
			"repo": "acme/warehouse", "pr": "42", "sha": repo.SHA, "environment": "prod",
		},
		Source:  jobs.Source{CloneURL: repo.URL, SHA: repo.SHA, Token: repo.Token},
		Subdir:  "project",
		Command: command,
		Env:     map[string]string{"LANG": "C.UTF-8", "FOO": "bar"},
	}
}
