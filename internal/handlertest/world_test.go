package handlertest_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/bot"
	"github.com/dagctl/dagctl-bot/internal/comments"
	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/forgetest/memforge"
	"github.com/dagctl/dagctl-bot/internal/framework"
	"github.com/dagctl/dagctl-bot/internal/framework/dbt"
	"github.com/dagctl/dagctl-bot/internal/framework/sqlmesh"
	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/jobs/replay"
	"github.com/dagctl/dagctl-bot/internal/outbox"
	"github.com/dagctl/dagctl-bot/internal/retry"
	"github.com/dagctl/dagctl-bot/internal/testutil"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// captureEnv, set, records the captures again with the real sqlmesh and dbt instead of replaying them.
const captureEnv = "DAGCTL_REPLAY_CAPTURE"

// executionTime fixes sqlmesh's "now" (it is part of the jobs' arguments, so of the captures' keys).
const executionTime = "2024-01-15"

var capturesDir = filepath.Join("testdata", "replay")

// world is one handler test's world: memforge holding acme/warehouse with the example project on main, a bot
// on a SQLite store in a temporary directory, and jobs replayed (or, capturing, run for real and recorded).
type world struct {
	t     *testing.T
	forge *memforge.Forge
	repo  vcs.Repo
	store *db.Store
	bot   *bot.Bot
	out   *outbox.Outbox
	jobs  *replay.Executor // nil while capturing
	// opts are the bot's options, for a test that starts another bot on the same store (a restart).
	opts bot.Options
}

// newWorld sets the world up; the bot runs sqlmesh and the frameworks given.
func newWorld(t *testing.T, frameworks ...framework.Framework) *world {
	t.Helper()
	testutil.CheckNoLeakedGoroutines(t) // first: it runs after every cleanup of the world
	w := &world{t: t, forge: memforge.New()}
	w.repo = w.forge.AddRepo("acme", "warehouse", "main", "carol", testutil.ExampleFiles(t))
	for user, p := range map[string]vcs.Permission{"alice": vcs.PermissionWrite, "bob": vcs.PermissionWrite,
		"carol": vcs.PermissionAdmin, "dave": vcs.PermissionRead} {
		w.forge.SetPermission(w.repo, user, p)
	}
	store, err := db.Open(filepath.Join(t.TempDir(), "dagctl.db"), db.WithClock(w.forge.Now))
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	w.store = store

	// Replayed jobs never start a process: the interpreter's name only has to be the same as when capturing,
	// and it is not part of a capture's key.
	python := "python"
	capturing := os.Getenv(captureEnv) != ""
	if capturing {
		python = testutil.Python(t)
	}
	registry, err := framework.NewRegistry(append([]framework.Framework{sqlmesh.New(python), dbt.New(python)}, frameworks...)...)
	require.NoError(t, err)
	settings := framework.JobSettings{Frameworks: registry, Allowed: []string{"EXAMPLE_DUCKDB_PATH"},
		BotEnv: map[string]string{"EXAMPLE_DUCKDB_PATH": "/nonexistent/state.duckdb"}, ExecutionTime: executionTime}
	var executor jobs.Executor
	if capturing {
		executor, settings = w.recorder(settings)
	} else {
		w.jobs = &replay.Executor{Dir: capturesDir, Files: w.forge.FilesOf}
		executor = w.jobs
	}
	// The outbox on the forge's clock, unspaced: memforge has no rate limits, and handler tests take no time.
	w.out = outbox.New(store, func(outbox.Account) (outbox.Forge, error) { return w.forge, nil },
		outbox.Config{Interval: -1, Now: w.forge.Now, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	w.opts = bot.Options{
		Store:    store,
		Forges:   func(name string) (vcs.Forge, bool) { return w.forge, name == memforge.Name },
		Outbox:   w.out,
		Executor: executor,
		Jobs:     settings,
		// No public URL: no log links, whose signatures would differ from run to run.
		LogKey:  []byte("handlertest-log-key"),
		MaxJobs: 1,
		Log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		// Waits for the forge move the forge's clock: they take no real time.
		ForgeClock: retry.Clock{Now: w.forge.Now, Sleep: func(ctx context.Context, d time.Duration) error {
			w.forge.Advance(d)
			return ctx.Err()
		}},
	}
	w.bot = bot.New(w.opts)
	t.Cleanup(w.bot.Wait)
	return w
}

// recorder runs the jobs with the real sqlmesh, as local processes of the test's user, on a fresh DuckDB file.
func (w *world) recorder(settings framework.JobSettings) (jobs.Executor, framework.JobSettings) {
	w.t.Helper()
	local, err := jobs.NewLocal(jobs.LocalOptions{WorkDir: w.t.TempDir()})
	require.NoError(w.t, err)
	settings.BotEnv = map[string]string{"EXAMPLE_DUCKDB_PATH": filepath.Join(w.t.TempDir(), "state.duckdb")}
	return &replay.Recorder{Dir: capturesDir, Files: w.forge.FilesOf, Inner: local, Scratch: w.t.TempDir()}, settings
}

// handle delivers an event to the bot and waits for the jobs it started to be reported.
func (w *world) handle(ev vcs.Event) {
	w.t.Helper()
	ev.Repo = w.repo
	err := w.bot.Handle(context.Background(), ev)
	if err != nil && err != vcs.ErrIgnored {
		require.NoError(w.t, err)
	}
	w.bot.Wait()
	w.drainWrites()
}

// drainWrites sends what the bot enqueued, until no write is due.
func (w *world) drainWrites() {
	w.t.Helper()
	for {
		require.NoError(w.t, w.out.Drain(context.Background()))
		quiet, err := w.out.Quiet(context.Background())
		require.NoError(w.t, err)
		if quiet {
			return
		}
	}
}

// openPR commits files on a new branch by author, opens a PR of it into main and delivers the event.
func (w *world) openPR(number int, branch, author string, files map[string]string) vcs.PullRequest {
	w.t.Helper()
	w.forge.Commit(w.repo, branch, author, files)
	pr := w.forge.OpenPR(w.repo, number, branch, "main", author)
	w.handle(vcs.Event{PullRequest: &vcs.PullRequestEvent{Action: vcs.PROpened, PR: pr, Sender: author}})
	return pr
}

// review is user reviewing the PR's head and the event of it.
func (w *world) review(pr vcs.PullRequest, user string, state vcs.ReviewState) {
	w.t.Helper()
	rv := w.forge.Review(w.repo, pr.Number, user, state, pr.HeadSHA)
	w.handle(vcs.Event{Review: &vcs.ReviewEvent{Action: "submitted", PR: pr, Review: rv}})
}

// comment is user commenting on the PR and the event of it; it returns the comment.
func (w *world) comment(pr vcs.PullRequest, user, body string) vcs.Comment {
	w.t.Helper()
	c := w.forge.AddComment(w.repo, pr.Number, user, body)
	w.handle(vcs.Event{Comment: &vcs.CommentEvent{Number: pr.Number, Comment: c}})
	return c
}

// state is the state of the newest status with that name on the commit, in the core's words ("" when none).
func (w *world) state(name, sha string) vcs.StatusState {
	st, ok := w.forge.StatusNamed(w.repo, name, sha)
	if !ok {
		return ""
	}
	return st.State
}

// states are every state a status went through.
func (w *world) states(name, sha string) []vcs.StatusState {
	st, _ := w.forge.StatusNamed(w.repo, name, sha)
	return st.States()
}

// sticky is the bot's sticky comment, all parts joined.
func (w *world) sticky(number int) string {
	var parts []string
	for _, c := range w.forge.CommentsOf(w.repo, number) {
		if _, ok := comments.MarkerPart(c.Body); ok && c.ByBot {
			parts = append(parts, c.Body)
		}
	}
	return strings.Join(parts, "\n")
}

// lastReply is the bot's newest comment that is not the sticky comment.
func (w *world) lastReply(number int) string {
	cs := w.forge.CommentsOf(w.repo, number)
	for i := len(cs) - 1; i >= 0; i-- {
		if _, sticky := comments.MarkerPart(cs[i].Body); cs[i].ByBot && !sticky {
			return outbox.WithoutWriteMarker(cs[i].Body) // as a person reads it
		}
	}
	return ""
}
