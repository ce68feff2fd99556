package server_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/forgetest"
	"github.com/dagctl/dagctl-bot/internal/forgetest/e2e"
	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/server"
	"github.com/dagctl/dagctl-bot/internal/serverconfig"
	"github.com/dagctl/dagctl-bot/internal/testutil"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

const (
	publicURL = "https://bot.test"
	// executionTime fixes sqlmesh's "now", so that backfill intervals are the same on every run.
	executionTime = e2e.ExecutionTime
)

// world is one end-to-end test's world: a fake forge with a repository holding examples/sqlmesh, the team's
// sqlmesh state in a DuckDB file, and dagctl-bot serving webhooks over HTTP.
type world struct {
	*e2e.World
	t        *testing.T
	dbPath   string
	workDir  string
	srv      *server.Server
	http     *httptest.Server
	stopped  bool
	opts     worldOptions
	logLines *strings.Builder
}

type worldOptions struct {
	// seedProd applies main to prod before the test, so that PRs show changes against a real prod.
	seedProd bool
	// baseFiles are added to the example on main.
	baseFiles map[string]string
	// holdWrites starts the bot without its outbox sender: writes stay in the outbox (settle would wait for
	// them forever; drive the dispatcher and jobs directly).
	holdWrites bool
	// configure changes the bot's settings and options before each start (and restart).
	configure func(w *world, cfg *serverconfig.Config, opts *server.Options)
}

// The uids of this package's jobs: a block of 22000-22899 no other test process on the machine uses (no other
// package's tests use the range), and the group they share the state in.
var (
	worldFirstUID  = uint32(testutil.UIDBlock(22000, 100, 9))
	worldLastUID   = worldFirstUID + 99
	worldJobsGroup = uint32(22999)
)

// isolatedJobs reports whether the world's jobs run as users of their own, as a bot running as root does.
func isolatedJobs() bool { return jobs.CanSwitchUsers() == nil }

// forEachForge runs a scenario once per fake forge, as a subtest named after it.
func forEachForge(t *testing.T, scenario func(t *testing.T, forge e2e.Kind)) {
	for _, f := range e2e.Forges {
		t.Run(f.Name, func(t *testing.T) { scenario(t, f) })
	}
}

func forgeSelected(forge e2e.Kind) bool {
	for _, f := range e2e.Forges {
		if f.Name == forge.Name {
			return true
		}
	}
	return false
}

func newWorld(t *testing.T, forge e2e.Kind, opts worldOptions) *world {
	t.Helper()
	if !forgeSelected(forge) { // a scenario of one forge's alone runs where that forge is chosen
		t.Skipf("%s is not among %s=%q", forge.Name, e2e.ForgesEnv, os.Getenv(e2e.ForgesEnv))
	}
	testutil.CheckNoLeakedGoroutines(t) // first: it runs after every cleanup of the world
	w := &world{t: t, opts: opts, World: e2e.NewWorld(t, forge, opts.baseFiles)}
	// As in production: the database in a directory of its own, the jobs' work directory outside it.
	dir := testutil.TempDirForJobUsers(t)
	w.dbPath = filepath.Join(dir, "bot", "dagctl.db")
	w.workDir = filepath.Join(dir, "work")
	if isolatedJobs() {
		w.ShareState(worldJobsGroup)
	}
	if opts.seedProd {
		w.DeployToProd(nil)
	}
	w.start()
	return w
}

// start starts dagctl-bot on the world's database (again, after stop: a restart).
func (w *world) start() {
	w.t.Helper()
	cfg := serverconfig.Config{
		DB:        w.dbPath,
		Executor:  serverconfig.ExecutorLocal,
		PublicURL: publicURL,
		SQLMesh:   testutil.SQLMesh(w.t),
		WorkDir:   w.workDir,
		JobEnv:    []string{"EXAMPLE_DUCKDB_PATH"},
		JobUsers:  serverconfig.JobUsers{Mode: serverconfig.JobUsersOff},
	}
	w.Configure(&cfg)
	if isolatedJobs() {
		cfg.SQLMesh = testutil.SQLMeshForJobUsers(w.t)
		cfg.JobUsers = serverconfig.JobUsers{Mode: serverconfig.JobUsersRange, First: worldFirstUID, Last: worldLastUID, Group: worldJobsGroup}
	}
	w.logLines = &strings.Builder{}
	opts := server.Options{
		Log:           slog.New(slog.NewTextHandler(w.logLines, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:           w.Now,
		Sleep:         w.Sleep,
		ExecutionTime: executionTime,
		Environ:       append(os.Environ(), "EXAMPLE_DUCKDB_PATH="+w.State),
		// The example's DuckDB file takes one writer at a time; a warehouse would not need this.
		MaxJobs: 1,
	}
	if w.opts.configure != nil {
		w.opts.configure(w, &cfg, &opts)
	}
	srv, err := server.New(context.Background(), cfg, opts)
	require.NoError(w.t, err)
	w.srv = srv
	// Served with the limits `dagctl-bot serve` has, so every end-to-end test runs under them.
	w.http = httptest.NewUnstartedServer(srv.Handler())
	w.http.Config = server.NewHTTPServer("", srv.Handler(), server.DefaultHTTPLimits)
	w.http.Start()
	require.NoError(w.t, srv.Recover(context.Background()))
	if !w.opts.holdWrites {
		srv.StartSending(context.Background()) // as Start does; the test drives the dispatcher itself
	}
	w.stopped = false
	w.t.Cleanup(w.stop)
}

// stop shuts the bot down cleanly.
func (w *world) stop() {
	if w.stopped {
		return
	}
	w.stopped = true
	w.http.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = w.srv.Close(ctx)
	if w.t.Failed() {
		w.t.Logf("bot log:\n%s", w.logLines.String())
	}
}

// restartNow stops the bot the way a deploy does, without waiting for running jobs, and starts it again.
func (w *world) restartNow() {
	w.t.Helper()
	w.stopped = true
	w.http.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_ = w.srv.Close(ctx)
	w.start()
}

// crash stops the bot as a crash would: nothing is reported after it.
func (w *world) crash() {
	w.stopped = true
	w.http.Close()
	w.srv.Crash()
}

// killLeavingJobs stops the bot as SIGKILL would: its local jobs' processes live on.
func (w *world) killLeavingJobs() {
	w.stopped = true
	w.http.Close()
	w.srv.KillLeavingJobs()
}

// send delivers a webhook and waits until the bot has handled it and every job it started has been reported.
func (w *world) send(wh forgetest.Webhook) forgetest.Delivery {
	w.t.Helper()
	d := w.deliver(wh)
	w.settle()
	return d
}

// deliver sends a webhook and returns the bot's answer at once: the bot handles it when drained.
func (w *world) deliver(wh forgetest.Webhook) forgetest.Delivery {
	w.t.Helper()
	d, err := wh.Send(w.http.URL)
	require.NoError(w.t, err, "sending %s webhook", wh.Event)
	return d
}

// settle handles queued deliveries, waits for their jobs and sends the outbox's writes, until nothing is left.
func (w *world) settle() {
	w.t.Helper()
	ctx := context.Background()
	for {
		n := w.srv.Drain(ctx)
		w.srv.WaitJobs()
		require.NoError(w.t, w.srv.WaitWrites(ctx))
		if n == 0 {
			return
		}
	}
}

var (
	logLinkRE = regexp.MustCompile(regexp.QuoteMeta(publicURL) + `/runs/\d+/[0-9a-f]+`)
)

// assertLifecycle checks that a plan status went queued → running → final in that order, each state written
// once, ending final. The outbox sends only the newest state of a status, so a queued or running state
// superseded before its turn is never sent: either may be missing, never out of order or repeated.
func assertLifecycle(t *testing.T, history []vcs.StatusState, final vcs.StatusState, msg string) {
	t.Helper()
	order := []vcs.StatusState{vcs.StatusQueued, vcs.StatusRunning, final}
	next := 0
	for _, st := range history {
		for next < len(order) && order[next] != st {
			next++
		}
		if !assert.Less(t, next, len(order), "%s: %v is not queued → running → %s", msg, history, final) {
			return
		}
		next++
	}
	assert.Equal(t, len(order), next, "%s: %v does not end %s", msg, history, final)
}

// assertState checks that a status shows the state the core wrote, as its forge can show it: GitLab shows
// blocked as pending (queued) and neutral as success, GitHub every state as it is.
func (w *world) assertState(want, got vcs.StatusState, msgAndArgs ...any) bool {
	w.t.Helper()
	return assert.Equal(w.t, w.Shown(want), got, msgAndArgs...)
}

// requireState is assertState, ending the test when it fails.
func (w *world) requireState(want, got vcs.StatusState, msgAndArgs ...any) {
	w.t.Helper()
	require.Equal(w.t, w.Shown(want), got, msgAndArgs...)
}

// shownText is what a person reads about a status: its title and output where the forge shows output, else
// its title and the PR's comments, where the bot writes the rest (GitLab: a status has a description alone).
func (w *world) shownText(s forgetest.Status, number int) string {
	if w.Can(forgetest.StatusOutput) {
		return s.Title + "\n" + s.Summary + "\n" + s.Text
	}
	parts := []string{s.Title}
	for _, c := range w.Comments(number) {
		if c.ByBot {
			parts = append(parts, c.Body)
		}
	}
	return strings.Join(parts, "\n")
}

// skipUnless skips a step (or the rest of the scenario) where the forge lacks what it needs.
func (w *world) skipUnless(c forgetest.Capability) {
	w.t.Helper()
	if !w.Can(c) {
		w.t.Skipf("%s has no %s", w.Name(), c)
	}
}

// normalize replaces what changes between runs (commit SHAs, signed log links) with placeholders.
func (w *world) normalize(s string, shas map[string]string) string {
	for sha, name := range shas {
		s = strings.ReplaceAll(s, sha, "<"+name+">")
		s = strings.ReplaceAll(s, sha[:7], "<"+name+"7>")
	}
	return logLinkRE.ReplaceAllString(s, publicURL+"/runs/<id>/<sig>")
}

// review adds a review by user of the commit head to the PR and sends its webhook.
func (w *world) review(number int, head, user string, state vcs.ReviewState) int64 {
	w.t.Helper()
	id := w.AddReview(number, user, state, head)
	w.send(w.ReviewEvent(number, id))
	return id
}

// dismiss dismisses a review and sends the webhook.
func (w *world) dismiss(number int, id int64) {
	w.t.Helper()
	w.DismissReview(number, id)
	w.send(w.ReviewDismissedEvent(number, id))
}

// merge merges the PR's branch into main with a merge commit and returns the merge commit (no webhook).
func (w *world) merge(number int) string {
	w.t.Helper()
	return w.MergePR(number)
}

// comment adds a comment by user to the PR, sends its webhook, waits for what it started and returns its id.
func (w *world) comment(number int, user, body string) int64 {
	w.t.Helper()
	id := w.AddComment(number, user, body)
	w.send(w.CommentEvent(number, id))
	return id
}

// commentLater adds a comment and delivers its webhook without waiting for the bot to handle it.
func (w *world) commentLater(number int, user, body string) int64 {
	w.t.Helper()
	id := w.AddComment(number, user, body)
	w.deliver(w.CommentEvent(number, id))
	return id
}

// close closes the PR on the forge, sends the webhook and waits for what it started.
func (w *world) close(number int) {
	w.t.Helper()
	w.UpdatePR(number, func(pr *forgetest.PR) { pr.Closed = true })
	w.send(w.PREvent(vcs.PRClosed, number))
}

// forge is the forge's name, as the store keys what it holds; repoName the repository's full name.
func (w *world) forge() string    { return w.Name() }
func (w *world) repoName() string { return w.Repo().FullName() }

// prodByComment is the example's config with prod applied by `/dagctl apply` too.
const prodByComment = `version: 1
projects:
  - path: .
    framework: sqlmesh
environments:
  - name: prod
    protected: true
    required_approvals: 1
    apply_on: [comment, merge]
  - name: dev
    apply_on: [comment]
job:
  timeout: 15m
  env:
    PYTHONWARNINGS: "ignore::FutureWarning,ignore::UserWarning"
  pass_env: [EXAMPLE_DUCKDB_PATH]
`
