package server_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/comments"
	"github.com/dagctl/dagctl-bot/internal/forgetest/githubfake"
	"github.com/dagctl/dagctl-bot/internal/server"
	"github.com/dagctl/dagctl-bot/internal/serverconfig"
	"github.com/dagctl/dagctl-bot/internal/testutil"
)

const (
	appID          = 42
	installationID = 7
	webhookSecret  = "s3cret-webhook"
	publicURL      = "https://bot.test"
	// executionTime fixes sqlmesh's "now", so that backfill intervals are the same on every run.
	executionTime = "2024-01-15"
)

// world is one end-to-end test's world: a fake GitHub with a repository holding examples/sqlmesh, the team's
// sqlmesh state in a DuckDB file, and dagctl-bot serving webhooks over HTTP.
type world struct {
	t        *testing.T
	fake     *githubfake.Fake
	git      *githubfake.GitRepo
	repo     *githubfake.Repo
	pem      []byte
	state    string // the DuckDB file with data and sqlmesh state
	dbPath   string
	workDir  string
	base     string // main's commit
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

func newWorld(t *testing.T, opts worldOptions) *world {
	t.Helper()
	w := &world{t: t, opts: opts, fake: githubfake.New(t)}
	w.pem = w.fake.NewApp(t, appID, "dagctl-bot")
	w.fake.AddInstallation(githubfake.Installation{ID: installationID, AppID: appID, Account: "acme"})
	w.git = githubfake.NewGitRepo(t, "main")
	w.base = w.git.Commit("main", w.mainFiles(), "the example project")
	w.repo = w.fake.AddRepo("acme", "warehouse", w.git.Dir, "main")
	for user, role := range map[string]string{"alice": "write", "bob": "write", "carol": "admin", "dave": "read"} {
		w.repo.SetPermission(user, role)
	}
	dir := t.TempDir()
	w.state = filepath.Join(dir, "state.duckdb")
	w.dbPath = filepath.Join(dir, "dagctl.db")
	w.workDir = filepath.Join(dir, "work")
	if opts.seedProd {
		w.applyProd()
	}
	w.start()
	return w
}

// mainFiles are the files on main: the example and the test's own.
func (w *world) mainFiles() map[string]string {
	files := testutil.ExampleFiles(w.t)
	for name, content := range w.opts.baseFiles {
		files[name] = content
	}
	return files
}

// applyProd applies main's project to prod with the real sqlmesh, as the team's earlier deploys would have.
func (w *world) applyProd() {
	w.t.Helper()
	w.deployOutsideTheBot(nil)
}

// deployOutsideTheBot applies main plus some changes to prod with the real sqlmesh, as a deploy the bot does not
// know about would.
func (w *world) deployOutsideTheBot(changes map[string]string) {
	w.t.Helper()
	dir := w.t.TempDir()
	files := w.mainFiles()
	for k, v := range changes {
		files[k] = v
	}
	for name, content := range files {
		full := filepath.Join(dir, filepath.FromSlash(name))
		require.NoError(w.t, os.MkdirAll(filepath.Dir(full), 0o755))
		require.NoError(w.t, os.WriteFile(full, []byte(content), 0o644))
	}
	cmd := exec.Command(testutil.SQLMesh(w.t), "plan", "prod", "--auto-apply", "--no-prompts", "--execution-time", executionTime)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "EXAMPLE_DUCKDB_PATH="+w.state, "SQLMESH__DISABLE_ANONYMIZED_ANALYTICS=1")
	out, err := cmd.CombinedOutput()
	require.NoError(w.t, err, "deploying to prod: %s", out)
}

// start starts dagctl-bot on the world's database (again, after stop: a restart).
func (w *world) start() {
	w.t.Helper()
	cfg := serverconfig.Config{
		DB:       w.dbPath,
		Executor: serverconfig.ExecutorLocal,
		GitHub: serverconfig.GitHub{
			AppID: appID, PrivateKey: serverconfig.Secret(w.pem), WebhookSecret: webhookSecret,
			APIURL: w.fake.APIURL() + "/",
		},
		PublicURL: publicURL,
		SQLMesh:   testutil.SQLMesh(w.t),
		WorkDir:   w.workDir,
		JobEnv:    []string{"EXAMPLE_DUCKDB_PATH"},
	}
	w.logLines = &strings.Builder{}
	opts := server.Options{
		Log:           slog.New(slog.NewTextHandler(w.logLines, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:           w.fake.Now,
		Sleep:         w.fake.Sleep,
		ExecutionTime: executionTime,
		Environ:       append(os.Environ(), "EXAMPLE_DUCKDB_PATH="+w.state),
		// The example's DuckDB file takes one writer at a time; a warehouse would not need this.
		MaxJobs: 1,
	}
	if w.opts.configure != nil {
		w.opts.configure(w, &cfg, &opts)
	}
	srv, err := server.New(context.Background(), cfg, opts)
	require.NoError(w.t, err)
	w.srv = srv
	w.http = httptest.NewServer(srv.Handler())
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

// pr makes a PR from a branch with the given changes on top of main, and returns its head SHA.
func (w *world) pr(number int, branch, author string, files map[string]string) string {
	w.t.Helper()
	w.git.Git("checkout", "--quiet", "main")
	head := w.git.Commit(branch, files, "change on "+branch)
	w.repo.SetPR(githubfake.PR{Number: number, Title: "Change " + branch, Author: author, HeadRef: branch, HeadSHA: head, BaseRef: "main", BaseSHA: w.base})
	return head
}

// prEvent is a pull_request payload for the PR.
func (w *world) prEvent(action string, number int, head, author string) *githubfake.Payload {
	return githubfake.LoadPayload(w.t, "pull_request.opened.json").Installation(installationID).Repo(w.repo).
		PullRequest(number, head, w.base).Set("action", action).Set("pull_request.base.ref", "main").
		Set("pull_request.user.login", author).Set("sender.login", author)
}

// commentEvent is an issue_comment payload: a new comment on the PR.
func (w *world) commentEvent(number int, head, user, body string) *githubfake.Payload {
	id := w.repo.AddComment(number, user, body)
	return githubfake.LoadPayload(w.t, "issue_comment.created.on-pr.json").Installation(installationID).Repo(w.repo).
		PullRequest(number, head, w.base).Set("comment.id", id).Set("comment.body", body).
		Set("comment.user.login", user).Set("comment.user.type", "User").Set("sender.login", user)
}

// sticky is the PR's sticky comment (all parts joined), or "".
func (w *world) sticky(number int) string {
	var parts []string
	for _, c := range w.repo.Comments(number) {
		if _, ok := comments.MarkerPart(c.Body); ok && !c.Deleted {
			parts = append(parts, c.Body)
		}
	}
	return strings.Join(parts, "\n")
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
	id := w.repo.AddReview(number, githubfake.Review{User: user, State: state, CommitID: head})
	w.send(githubfake.LoadPayload(w.t, "pull_request_review.submitted.json").Installation(installationID).Repo(w.repo).
		PullRequest(number, head, w.base).Set("review.id", id).Set("review.state", strings.ToLower(state)).
		Set("review.user.login", user).Set("review.commit_id", head).Set("sender.login", user))
	return id
}

// dismiss dismisses a review and sends the event.
func (w *world) dismiss(number int, head string, id int64) {
	w.t.Helper()
	w.repo.DismissReview(number, id)
	w.send(githubfake.LoadPayload(w.t, "pull_request_review.dismissed.json").Installation(installationID).Repo(w.repo).
		PullRequest(number, head, w.base).Set("review.id", id).Set("review.commit_id", head))
}

// merge merges the PR's branch into main with a merge commit and returns the merge commit.
func (w *world) merge(number int, branch, head, author string) string {
	w.t.Helper()
	w.git.Git("checkout", "--quiet", "main")
	w.git.Git("merge", "--quiet", "--no-ff", "-m", "Merge "+branch, branch)
	sha := w.git.SHA("HEAD")
	w.repo.SetPR(githubfake.PR{Number: number, Author: author, HeadRef: branch, HeadSHA: head, BaseRef: "main", BaseSHA: w.base,
		State: "closed", Merged: true, MergeCommitSHA: sha})
	return sha
}

// comment sends a new PR comment and waits for what it started.
func (w *world) comment(number int, head, user, body string) *githubfake.Payload {
	w.t.Helper()
	p := w.commentEvent(number, head, user, body)
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
