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

	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/forgetest/e2e"
	"github.com/dagctl/dagctl-bot/internal/forgetest/githubfake"
	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/server"
	"github.com/dagctl/dagctl-bot/internal/serverconfig"
	"github.com/dagctl/dagctl-bot/internal/testutil"
)

const (
	appID          = e2e.AppID
	installationID = e2e.InstallationID
	webhookSecret  = e2e.WebhookSecret
	publicURL      = "https://bot.test"
	// executionTime fixes sqlmesh's "now", so that backfill intervals are the same on every run.
	executionTime = e2e.ExecutionTime
)

// world is one end-to-end test's world: a fake GitHub with a repository holding examples/sqlmesh, the team's
// sqlmesh state in a DuckDB file, and dagctl-bot serving webhooks over HTTP.
type world struct {
	*e2e.Forge
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
	// configure changes the bot's settings and options before each start (and restart).
	configure func(w *world, cfg *serverconfig.Config, opts *server.Options)
}

// The uids of this package's jobs (no other package's tests use them), and the group they share the state in.
const (
	worldFirstUID  = 22000
	worldLastUID   = 22099
	worldJobsGroup = 22999
)

// isolatedJobs reports whether the world's jobs run as users of their own, as a bot running as root does.
func isolatedJobs() bool { return jobs.CanSwitchUsers() == nil }

func newWorld(t *testing.T, opts worldOptions) *world {
	t.Helper()
	w := &world{t: t, opts: opts, Forge: e2e.NewForge(t, opts.baseFiles)}
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
		DB:       w.dbPath,
		Executor: serverconfig.ExecutorLocal,
		GitHub: serverconfig.GitHub{
			AppID: appID, PrivateKey: serverconfig.Secret(w.PEM), WebhookSecret: webhookSecret,
			APIURL: w.Fake.APIURL() + "/",
		},
		PublicURL: publicURL,
		SQLMesh:   testutil.SQLMesh(w.t),
		WorkDir:   w.workDir,
		JobEnv:    []string{"EXAMPLE_DUCKDB_PATH"},
		JobUsers:  serverconfig.JobUsers{Mode: serverconfig.JobUsersOff},
	}
	if isolatedJobs() {
		cfg.SQLMesh = testutil.SQLMeshForJobUsers(w.t)
		cfg.JobUsers = serverconfig.JobUsers{Mode: serverconfig.JobUsersRange, First: worldFirstUID, Last: worldLastUID, Group: worldJobsGroup}
	}
	w.logLines = &strings.Builder{}
	opts := server.Options{
		Log:           slog.New(slog.NewTextHandler(w.logLines, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:           w.Fake.Now,
		Sleep:         w.Fake.Sleep,
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

// send delivers a webhook and waits until the bot has handled it and every job it started has been reported.
func (w *world) send(p *githubfake.Payload) githubfake.Delivery {
	w.t.Helper()
	d := p.SendT(w.t, w.http.URL+"/webhooks/github", webhookSecret)
	w.settle()
	return d
}

// settle handles queued deliveries and waits for their jobs, until nothing is left.
func (w *world) settle() {
	w.t.Helper()
	ctx := context.Background()
	for {
		n := w.srv.Drain(ctx)
		w.srv.WaitJobs()
		if n == 0 {
			return
		}
	}
}

var (
	logLinkRE = regexp.MustCompile(regexp.QuoteMeta(publicURL) + `/runs/\d+/[0-9a-f]+`)
)

// normalize replaces what changes between runs (commit SHAs, signed log links) with placeholders.
func (w *world) normalize(s string, shas map[string]string) string {
	for sha, name := range shas {
		s = strings.ReplaceAll(s, sha, "<"+name+">")
		s = strings.ReplaceAll(s, sha[:7], "<"+name+"7>")
	}
	return logLinkRE.ReplaceAllString(s, publicURL+"/runs/<id>/<sig>")
}

// review adds a review by user to the PR on the fake and sends the pull_request_review event.
func (w *world) review(number int, head, user, state string) int64 {
	w.t.Helper()
	id := w.Repo.AddReview(number, githubfake.Review{User: user, State: state, CommitID: head})
	w.send(githubfake.LoadPayload(w.t, "pull_request_review.submitted.json").Installation(installationID).Repo(w.Repo).
		PullRequest(number, head, w.Base).Set("review.id", id).Set("review.state", strings.ToLower(state)).
		Set("review.user.login", user).Set("review.commit_id", head).Set("sender.login", user))
	return id
}

// dismiss dismisses a review and sends the event.
func (w *world) dismiss(number int, head string, id int64) {
	w.t.Helper()
	w.Repo.DismissReview(number, id)
	w.send(githubfake.LoadPayload(w.t, "pull_request_review.dismissed.json").Installation(installationID).Repo(w.Repo).
		PullRequest(number, head, w.Base).Set("review.id", id).Set("review.commit_id", head))
}

// merge merges the PR's branch into main with a merge commit and returns the merge commit.
func (w *world) merge(number int, branch, head, author string) string {
	w.t.Helper()
	w.Git.Git("checkout", "--quiet", "main")
	w.Git.Git("merge", "--quiet", "--no-ff", "-m", "Merge "+branch, branch)
	sha := w.Git.SHA("HEAD")
	w.Repo.SetPR(githubfake.PR{Number: number, Author: author, HeadRef: branch, HeadSHA: head, BaseRef: "main", BaseSHA: w.Base,
		State: "closed", Merged: true, MergeCommitSHA: sha})
	return sha
}

// comment sends a new PR comment and waits for what it started.
func (w *world) comment(number int, head, user, body string) *githubfake.Payload {
	w.t.Helper()
	p := w.CommentEvent(number, head, user, body)
	w.send(p)
	return p
}

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
