package bot_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/bot"
	"github.com/dagctl/dagctl-bot/internal/command"
	"github.com/dagctl/dagctl-bot/internal/comments"
	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/dispatch"
	"github.com/dagctl/dagctl-bot/internal/forgetest/githubfake"
	"github.com/dagctl/dagctl-bot/internal/framework"
	"github.com/dagctl/dagctl-bot/internal/framework/sqlmesh"
	"github.com/dagctl/dagctl-bot/internal/jobs/replay"
	"github.com/dagctl/dagctl-bot/internal/outbox"
	"github.com/dagctl/dagctl-bot/internal/vcs"
	ghadapter "github.com/dagctl/dagctl-bot/internal/vcs/github"
)

// The child process is this test binary run again with these set: the bot's dispatcher on the database,
// handling what is queued against the API, killing itself with SIGKILL once it has handled a delivery and
// before the delivery is marked done.
const (
	childDBEnv   = "DAGCTL_BOT_CHILD_DB"
	childAPIEnv  = "DAGCTL_BOT_CHILD_API"
	childPEMEnv  = "DAGCTL_BOT_CHILD_PEM"
	childSendEnv = "DAGCTL_BOT_CHILD_SEND" // "1": the outbox sends what the handler enqueued before the kill
	childRunEnv  = "DAGCTL_BOT_CHILD_RUN"  // "1": run the dispatcher and the sender as the server does, until killed
)

const (
	appID          = 42
	installationID = 7
	prNumber       = 1
)

func TestMain(m *testing.M) {
	if os.Getenv(childDBEnv) != "" {
		os.Exit(childBot())
	}
	os.Exit(m.Run())
}

// parts are the bot's parts that act on a delivery, as the server assembles them: the store (its queue), the
// GitHub adapter, the outbox and the bot, on the wall clock (the child process shares the database).
type parts struct {
	store  *db.Store
	outbox *outbox.Outbox
	bot    *bot.Bot
}

func newParts(dbPath, apiURL string, pem []byte, log *slog.Logger) (*parts, error) {
	// A delivery interrupted by a kill counts an attempt; the queue makes one dead after 5 (db.WithMaxInterruptions; the retry policy is
	// another test's subject): these tests kill the bot far more often than that, and a delivery given up
	// would be a command lost, not one repeated.
	store, err := db.Open(dbPath, db.WithMaxInterruptions(1000))
	if err != nil {
		return nil, err
	}
	app, err := ghadapter.NewApp(ghadapter.Config{AppID: appID, PrivateKey: pem, APIURL: apiURL, MinWriteInterval: -1})
	if err != nil {
		return nil, err
	}
	registry, err := framework.NewRegistry(sqlmesh.New("python"))
	if err != nil {
		return nil, err
	}
	ob := outbox.New(store, func(outbox.Account) (outbox.Forge, error) { return app, nil }, outbox.Config{Interval: -1, Log: log})
	b := bot.New(bot.Options{
		Store: store, Forges: func(name string) (vcs.Forge, bool) { return app, name == ghadapter.Forge },
		Outbox: ob, Executor: &replay.Executor{Dir: os.TempDir()}, Jobs: framework.JobSettings{Frameworks: registry},
		LogKey: []byte("sigkill-test"), Log: log,
	})
	return &parts{store: store, outbox: ob, bot: b}, nil
}

func (p *parts) dispatcher(queue dispatch.Queue, log *slog.Logger) *dispatch.Dispatcher {
	return &dispatch.Dispatcher{Queue: queue, Parsers: map[string]dispatch.Parser{ghadapter.Forge: ghadapter.ParseWebhook},
		Handle: p.bot.Handle, Log: log}
}

// killedBeforeComplete is the store's queue, but the process dies where marking a delivery done would begin.
type killedBeforeComplete struct {
	*db.Store
	beforeDeath func()
}

func (q killedBeforeComplete) Complete(context.Context, int64, string) error {
	q.beforeDeath()
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // the signal is on its way
}

func childBot() int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "child bot:", err)
		return 1
	}
	pem, err := os.ReadFile(os.Getenv(childPEMEnv))
	if err != nil {
		return fail(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	p, err := newParts(os.Getenv(childDBEnv), os.Getenv(childAPIEnv), pem, log)
	if err != nil {
		return fail(err)
	}
	ctx := context.Background()
	if os.Getenv(childRunEnv) == "1" {
		go func() { _ = p.outbox.Run(ctx) }()
		_ = p.dispatcher(p.store, log).Run(ctx)
		return 0
	}
	queue := killedBeforeComplete{Store: p.store, beforeDeath: func() {
		if os.Getenv(childSendEnv) == "1" {
			if err := p.outbox.Drain(ctx); err != nil {
				fmt.Fprintln(os.Stderr, "child bot: sending:", err)
			}
		}
	}}
	p.dispatcher(queue, log).Drain(ctx)
	return fail(fmt.Errorf("the dispatcher drained without handling a delivery"))
}

// TestABotKilledAfterHandlingACommandAndBeforeMarkingItDoneRepliesOnce: the process is killed (SIGKILL) after
// the bot handled `/dagctl help` and before the delivery was marked done, with the reply still in the outbox
// or already on the forge. The next start requeues the delivery and handles it again: one reply, one reaction.
func TestABotKilledAfterHandlingACommandAndBeforeMarkingItDoneRepliesOnce(t *testing.T) {
	for _, tc := range []struct {
		name, send string
		onForge    int // bot comments on the PR when the process died
	}{
		{"the reply was still in the outbox", "0", 0},
		{"the reply was on the forge", "1", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gh := newGitHub(t)
			fake, repo, pem := gh.fake, gh.repo, gh.pem
			commentID, body := gh.help(t)

			dbPath := filepath.Join(t.TempDir(), "dagctl.db")
			logs := &bytes.Buffer{}
			log := slog.New(slog.NewTextHandler(logs, nil))
			p, err := newParts(dbPath, fake.APIURL(), pem, log)
			require.NoError(t, err)
			t.Cleanup(func() { p.store.Close() })
			ctx := context.Background()
			const deliveryID = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
			_, err = p.store.Enqueue(ctx, ghadapter.Forge, deliveryID, "issue_comment", "github:acme/warehouse#1", body)
			require.NoError(t, err)

			child := startChild(t, dbPath, fake.APIURL(), pem, tc.send)
			err = child.cmd.Wait()
			require.Error(t, err, "the child dies by its signal; its log:\n%s", child.log)
			status, _ := child.cmd.ProcessState.Sys().(syscall.WaitStatus)
			require.True(t, status.Signaled(), "killed, not exited; its log:\n%s", child.log)
			require.Len(t, botReplies(repo), tc.onForge)
			d, err := p.store.GetDelivery(ctx, ghadapter.Forge, deliveryID)
			require.NoError(t, err)
			require.Equal(t, db.DeliveryInFlight, d.Status, "the delivery was not marked done")

			// The next start: the dispatcher requeues what was in flight and handles it again.
			n, err := p.store.RequeueInFlight(ctx)
			require.NoError(t, err)
			require.Equal(t, 1, n)
			require.Equal(t, 1, p.dispatcher(p.store, log).Drain(ctx))
			require.NoError(t, p.outbox.Drain(ctx))

			assert.Equal(t, []string{command.Usage}, botReplies(repo), "one reply")
			assert.Len(t, repo.Reactions(commentID), 1, "one reaction")
			d, err = p.store.GetDelivery(ctx, ghadapter.Forge, deliveryID)
			require.NoError(t, err)
			assert.Equal(t, db.DeliveryDone, d.Status)
			if t.Failed() {
				t.Logf("bot log:\n%s\nchild log:\n%s", logs, child.log)
			}
		})
	}
}

func botReplies(repo *githubfake.Repo) []string {
	var out []string
	for _, c := range repo.Comments(prNumber) {
		if _, sticky := comments.MarkerPart(c.Body); c.Bot && !sticky {
			out = append(out, outbox.WithoutWriteMarker(c.Body))
		}
	}
	return out
}

type childProcess struct {
	cmd *exec.Cmd
	log *bytes.Buffer
}

func startChild(t *testing.T, dbPath, apiURL string, pem []byte, send string, env ...string) childProcess {
	t.Helper()
	pemPath := filepath.Join(t.TempDir(), "app.pem")
	require.NoError(t, os.WriteFile(pemPath, pem, 0o600))
	c := childProcess{cmd: exec.Command(os.Args[0], "-test.run=^$"), log: &bytes.Buffer{}}
	c.cmd.Env = append(append(os.Environ(), childDBEnv+"="+dbPath, childAPIEnv+"="+apiURL, childPEMEnv+"="+pemPath, childSendEnv+"="+send), env...)
	c.cmd.Stdout, c.cmd.Stderr = c.log, c.log
	require.NoError(t, c.cmd.Start())
	t.Cleanup(func() { _ = c.cmd.Process.Kill() })
	return c
}

// The measurement: 300 `/dagctl help` deliveries handled by a bot process killed with SIGKILL at random
// moments and started again, until all are done (at most 100 kills; the rest is handled in this process). Every
// command gets one reply and one reaction. Before replies were keyed by their delivery, three runs of this test
// (50 to 130 kills each) posted 304, 305 and 305 replies.
func TestRandomSIGKILLsWhileHandling300HelpCommandsLeaveOneReplyEach(t *testing.T) {
	const commands = 300
	gh := newGitHub(t)
	fake, repo, pem := gh.fake, gh.repo, gh.pem
	dbPath := filepath.Join(t.TempDir(), "dagctl.db")
	var childLogs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&childLogs, nil))
	p, err := newParts(dbPath, fake.APIURL(), pem, log)
	require.NoError(t, err)
	t.Cleanup(func() { p.store.Close() })
	ctx := context.Background()
	var ids []int64
	for i := range commands {
		id, body := gh.help(t)
		ids = append(ids, id)
		_, err := p.store.Enqueue(ctx, ghadapter.Forge, fmt.Sprintf("delivery-%03d", i), "issue_comment", "github:acme/warehouse#1", body)
		require.NoError(t, err)
	}

	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	kills := 0
	for lastPending(t, p.store, commands) && kills < 100 {
		child := startChild(t, dbPath, fake.APIURL(), pem, "", childRunEnv+"=1")
		time.Sleep(time.Duration(5+rng.IntN(60)) * time.Millisecond) // a random moment, not a measurement
		require.NoError(t, child.cmd.Process.Signal(syscall.SIGKILL))
		_ = child.cmd.Wait()
		kills++
		childLogs.Write(child.log.Bytes())
	}
	// The last start runs to the end in this process.
	_, err = p.store.RequeueInFlight(ctx)
	require.NoError(t, err)
	p.dispatcher(p.store, log).Drain(ctx)
	require.NoError(t, p.outbox.Drain(ctx))

	replies := len(botReplies(repo))
	missing, doubled := reactionCounts(repo, ids)
	t.Logf("seed %d: %d SIGKILLs, %d commands, %d replies, reactions: %d missing, %d doubled", seed, kills, commands, replies, missing, doubled)
	for i := range commands {
		d, err := p.store.GetDelivery(ctx, ghadapter.Forge, fmt.Sprintf("delivery-%03d", i))
		require.NoError(t, err)
		assert.Equal(t, db.DeliveryDone, d.Status, "delivery %d: %s", i, d.LastError)
	}
	if replies != commands {
		logWarnings(t, childLogs.String())
	}
	assert.Equal(t, commands, replies, "one reply per command")
	assert.Zero(t, doubled)
	assert.Zero(t, missing)
}

// lastPending reports whether the last of n deliveries is not done yet (a PR's are handled in order).
func lastPending(t *testing.T, store *db.Store, n int) bool {
	t.Helper()
	d, err := store.GetDelivery(context.Background(), ghadapter.Forge, fmt.Sprintf("delivery-%03d", n-1))
	require.NoError(t, err)
	return d.Status != db.DeliveryDone
}

// newGitHub is a fake GitHub with the app installed on acme/warehouse, PR 1 open, and bob a writer.
func newGitHub(t *testing.T) *gitHub {
	gh := &gitHub{fake: githubfake.New(t)}
	gh.pem = gh.fake.NewApp(t, appID, "dagctl-bot")
	gh.fake.AddInstallation(githubfake.Installation{ID: installationID, AppID: appID, Account: "acme"})
	git := githubfake.NewGitRepo(t, "main")
	gh.base = git.Commit("main", map[string]string{"README.md": "hello"}, "init")
	gh.head = git.Commit("change", map[string]string{"README.md": "hello again"}, "change")
	gh.repo = gh.fake.AddRepo("acme", "warehouse", git.Dir, "main")
	gh.repo.SetPR(githubfake.PR{Number: prNumber, Author: "alice", HeadRef: "change", HeadSHA: gh.head, BaseRef: "main", BaseSHA: gh.base})
	gh.repo.SetPermission("bob", "write")
	return gh
}

type gitHub struct {
	fake       *githubfake.Fake
	repo       *githubfake.Repo
	pem        []byte
	base, head string
}

// help is bob commenting `/dagctl help` on the PR, and the issue_comment delivery's body GitHub sends of it.
func (gh *gitHub) help(t *testing.T) (int64, []byte) {
	id := gh.repo.AddComment(prNumber, "bob", "/dagctl help")
	return id, githubfake.LoadPayload(t, "issue_comment.created.on-pr.json").Installation(installationID).Repo(gh.repo).
		PullRequest(prNumber, gh.head, gh.base).Set("comment.id", id).Set("comment.body", "/dagctl help").
		Set("comment.user.login", "bob").Set("comment.user.type", "User").Set("sender.login", "bob").Bytes()
}

// reactionCounts: how many of the comments have no reaction, and how many more than one.
func reactionCounts(repo *githubfake.Repo, ids []int64) (missing, doubled int) {
	for _, id := range ids {
		switch n := len(repo.Reactions(id)); {
		case n == 0:
			missing++
		case n > 1:
			doubled++
		}
	}
	return missing, doubled
}

// logWarnings logs the bot's warnings and errors: what it dropped or gave up.
func logWarnings(t *testing.T, logs string) {
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			t.Log(line)
		}
	}
}
