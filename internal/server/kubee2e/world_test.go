// Package kubee2e_test runs the whole bot with the Kubernetes executor against a real control plane: webhooks in,
// Jobs created by the bot, their Pods run by a test node through the real `dagctl-bot job-run` and the real
// sqlmesh, results posted back to the bot's /jobs endpoints, checks and the sticky comment on a fake GitHub.
// It is its own package so that the main end-to-end suite does not start a control plane.
package kubee2e_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dagctl/dagctl-bot/internal/forgetest"
	"github.com/dagctl/dagctl-bot/internal/forgetest/e2e"
	"github.com/dagctl/dagctl-bot/internal/forgetest/githubworld"
	"github.com/dagctl/dagctl-bot/internal/jobs/kube"
	"github.com/dagctl/dagctl-bot/internal/jobs/kube/kubetest"
	"github.com/dagctl/dagctl-bot/internal/server"
	"github.com/dagctl/dagctl-bot/internal/serverconfig"
	"github.com/dagctl/dagctl-bot/internal/testutil"
)

var cluster *kubetest.Env

func TestMain(m *testing.M) {
	os.Exit(kubetest.Main(m, func(env *kubetest.Env) { cluster = env }))
}

const (
	// publicURL is the bot's address in links (log links); Pods report to the test server's own address.
	publicURL     = "https://bot.test"
	executionTime = e2e.ExecutionTime
)

// botAppSecret is the bot's own Secret, with its GitHub App credentials (the chart's app Secret).
const botAppSecret = "dagctl-bot"

// tokenKey signs the Pods' report tokens; it is the same for every bot process, as the setting must be.
var tokenKey = []byte("kubee2e-report-token-key-0123456789")

// world is one test's world: a fake forge holding examples/sqlmesh, prod applied to a DuckDB file, a namespace
// with a node running its Pods, and the bot behind a fixed address (an ingress: 502 while the bot is down).
type world struct {
	*e2e.World
	t       *testing.T
	dbPath  string
	ns      string
	ingress *httptest.Server
	node    *kubetest.Node
	current atomic.Pointer[http.Handler]
	srv     *server.Server
	stopped bool
	log     *lockedLog
}

// newWorld makes a world whose main holds the example with the files of baseFiles added or replaced. The bot's
// own Secret holds a GitHub App's credentials, so the suite runs on GitHub's world (the scenarios themselves
// speak only forgetest.World).
func newWorld(t *testing.T, baseFiles map[string]string) *world {
	t.Helper()
	w := &world{t: t, World: e2e.NewWorld(t, e2e.GitHub, baseFiles)}
	gh := w.GitHub()
	w.dbPath = filepath.Join(t.TempDir(), "dagctl.db")
	w.DeployToProd(nil)

	w.ingress = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		h := w.current.Load()
		if h == nil {
			http.Error(rw, "bot down", http.StatusBadGateway)
			return
		}
		(*h).ServeHTTP(rw, r)
	}))
	t.Cleanup(w.ingress.Close)
	w.ns = cluster.Namespace(t)
	// The bot's app credentials live beside its Jobs, as with the chart's defaults (one namespace).
	_, err := cluster.Client.CoreV1().Secrets(w.ns).Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: botAppSecret},
		StringData: map[string]string{"DAGCTL_GITHUB_PRIVATE_KEY": string(gh.PEM), "DAGCTL_GITHUB_WEBHOOK_SECRET": githubworld.WebhookSecret},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	// The node's images: the job image has the pinned sqlmesh's python first on PATH, as a sqlmesh image would.
	w.node = kubetest.StartNode(t, cluster.Client, w.ns, kubetest.NodeConfig{
		Run: kube.RunInPod, TerminationLogEnv: kube.EnvTerminationLog, RunIDAnnotation: kube.AnnotationRunID,
		ImageEnv: []string{"PATH=" + filepath.Dir(testutil.SQLMesh(t)) + ":" + os.Getenv("PATH")},
	})
	w.start()
	return w
}

// start starts a bot process on the world's database, with a Kubernetes executor of its own (again after stop:
// a restart), and puts it behind the ingress.
func (w *world) start() {
	w.t.Helper()
	w.log = &lockedLog{}
	log := slog.New(slog.NewTextHandler(w.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	executor, err := kube.New(context.Background(), cluster.Client, kube.Config{
		Namespace:   w.ns,
		Image:       "ghcr.io/dagctl/sqlmesh:test", // the node runs the command locally
		RunnerImage: "ghcr.io/dagctl/dagctl-bot:test",
		RunnerPath:  "/usr/local/bin/dagctl-bot",
		PublicURL:   w.ingress.URL,
		TokenKey:    tokenKey,
		BotSecrets:  []string{botAppSecret}, // as the chart sets DAGCTL_K8S_BOT_SECRETS
		Logger:      log,
	})
	require.NoError(w.t, err)
	cfg := serverconfig.Config{
		DB:        w.dbPath,
		Executor:  serverconfig.ExecutorKubernetes,
		PublicURL: publicURL,
		SQLMesh:   testutil.SQLMesh(w.t),
		JobEnv:    []string{"EXAMPLE_DUCKDB_PATH"},
	}
	w.Configure(&cfg)
	srv, err := server.New(context.Background(), cfg, server.Options{
		Log:           log,
		Now:           w.Now,
		Sleep:         w.Sleep,
		ExecutionTime: executionTime,
		Executor:      executor,
		Environ:       append(os.Environ(), "EXAMPLE_DUCKDB_PATH="+w.State),
		MaxJobs:       1, // the example's DuckDB file takes one writer at a time
	})
	if err != nil {
		executor.Close()
		require.NoError(w.t, err)
	}
	w.srv, w.stopped = srv, false
	handler := srv.Handler()
	w.current.Store(&handler)
	require.NoError(w.t, srv.Start(context.Background()))
	w.t.Cleanup(w.stop)
}

// stop shuts the bot down cleanly.
func (w *world) stop() { w.close(time.Minute) }

// close takes the bot away from the ingress and closes it, waiting up to grace for running jobs.
func (w *world) close(grace time.Duration) {
	if w.stopped {
		return
	}
	w.stopped = true
	w.current.Store(nil)
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	_ = w.srv.Close(ctx)
	if w.t.Failed() {
		w.t.Logf("bot log:\n%s", w.log.String())
	}
}

// send delivers a webhook to the bot.
func (w *world) send(wh forgetest.Webhook) forgetest.Delivery {
	w.t.Helper()
	d, err := wh.Send(w.ingress.URL)
	require.NoError(w.t, err, "sending %s webhook", wh.Event)
	return d
}

// waitForCheck waits until the status of the commit satisfies ok.
func (w *world) waitForCheck(name, sha string, ok func(forgetest.Status) bool) {
	w.t.Helper()
	require.Eventually(w.t, func() bool {
		c, found := w.Status(name, sha)
		return found && ok(c)
	}, 5*time.Minute, 50*time.Millisecond, "status %q of %s", name, sha)
}

func completed(c forgetest.Status) bool { return c.State.Final() }

// waitJobs waits until every job started so far has been reported and the outbox has sent what they wrote.
func (w *world) waitJobs() {
	w.t.Helper()
	w.srv.WaitJobs()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(w.t, w.srv.WaitWrites(ctx))
}

// lockedLog is the bot's log, written by its goroutines (the executor's informer among them) while the test
// reads it.
type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
