package outbox_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/comments"
	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/outbox"
	"github.com/dagctl/dagctl-bot/internal/vcs"
	ghadapter "github.com/dagctl/dagctl-bot/internal/vcs/github"
)

// The child process is this test binary run again with these set: a sender on the database, sending to the API
// until it is killed.
const (
	childDBEnv  = "DAGCTL_OUTBOX_CHILD_DB"
	childAPIEnv = "DAGCTL_OUTBOX_CHILD_API"
	childPEMEnv = "DAGCTL_OUTBOX_CHILD_PEM"
)

func TestMain(m *testing.M) {
	if os.Getenv(childDBEnv) != "" {
		os.Exit(childSender())
	}
	os.Exit(m.Run())
}

// childSender runs a sender as the bot would, on the wall clock, until it is killed.
func childSender() int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "child sender:", err)
		return 1
	}
	store, err := db.Open(os.Getenv(childDBEnv))
	if err != nil {
		return fail(err)
	}
	pem, err := os.ReadFile(os.Getenv(childPEMEnv))
	if err != nil {
		return fail(err)
	}
	app, err := ghadapter.NewApp(ghadapter.Config{AppID: appID, PrivateKey: pem, APIURL: os.Getenv(childAPIEnv), MinWriteInterval: -1})
	if err != nil {
		return fail(err)
	}
	forge := app
	ob := outbox.New(store, func(outbox.Account) (outbox.Forge, error) { return forge, nil }, outbox.Config{
		Interval: 20 * time.Millisecond, Log: slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	if err := ob.Run(context.Background()); err != nil {
		return fail(err)
	}
	return 0
}

// TestASIGKILLMidDrainLosesNoWriteAndRepeatsNone kills a sender process while the forge is handling a reply's
// creation (the proxy holds the request, after or before passing it on), then starts a sender again: every
// write reaches the forge exactly once.
func TestASIGKILLMidDrainLosesNoWriteAndRepeatsNone(t *testing.T) {
	for _, tc := range []struct {
		name           string
		mode           holdMode
		createdAtDeath int
	}{
		{"after the forge created the reply", holdAfterForward, 2},
		{"before the reply reached the forge", holdBeforeForward, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			ctx := context.Background()
			// The second comment created is the first reply (the sticky comment goes first, by priority).
			proxy := newHoldingProxy(t, w.fake.URL(), "POST", "/api/v3/repos/acme/warehouse/issues/1/comments", 2, tc.mode)
			commentID := w.repo.AddComment(prNumber, "alice", "/dagctl apply prod")
			enqueueAll(t, w, w.outbox(w.app), commentID)

			child := startChildSender(t, w, proxy.URL+"/api/v3")
			select {
			case <-proxy.Held:
			case <-time.After(2 * time.Minute): // a guard against a hung child, not a measurement
				t.Fatalf("the child never reached the reply; its log:\n%s", child.log)
			}
			require.NoError(t, child.cmd.Process.Signal(syscall.SIGKILL))
			_ = child.cmd.Wait()

			require.Len(t, w.repo.Comments(prNumber), 1+tc.createdAtDeath, "the user's comment, the sticky and maybe the reply")
			rows := w.pending()
			require.NotEmpty(t, rows)
			assert.True(t, rows[0].Sending, "the reply was being sent when the sender died")
			assert.Equal(t, "reply", rows[0].Kind)

			require.NoError(t, w.outbox(w.app).Drain(ctx), "a sender started again")
			assertEverythingOnce(t, w, commentID)
		})
	}
}

func enqueueAll(t *testing.T, w *world, ob *outbox.Outbox, commentID int64) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, ob.PutStatus(ctx, acct, w.vrepo, w.status(planProd, vcs.StatusRunning, "plan:1"), outbox.PriorityProgress))
	for _, r := range []string{"first", "second", "third"} {
		require.NoError(t, ob.Reply(ctx, acct, w.vrepo, prNumber, "reply "+r, outbox.PriorityProgress))
	}
	require.NoError(t, ob.PutSticky(ctx, acct, w.vrepo, prNumber, []string{comments.Marker + "\nplanned"}, outbox.PriorityResult))
	require.NoError(t, ob.PutStatus(ctx, acct, w.vrepo, w.status(planProd, vcs.StatusSuccess, "plan:1"), outbox.PriorityResult))
	require.NoError(t, ob.React(ctx, acct, w.vrepo, commentID, vcs.ReactionRocket, outbox.PriorityOther))
}

func assertEverythingOnce(t *testing.T, w *world, commentID int64) {
	t.Helper()
	count := map[string]int{}
	for _, c := range w.repo.Comments(prNumber) {
		first, _, _ := strings.Cut(c.Body, "\n")
		count[first]++
	}
	assert.Equal(t, map[string]int{"/dagctl apply prod": 1, comments.Marker: 1, "reply first": 1, "reply second": 1, "reply third": 1}, count)
	runs := w.repo.CheckRuns()
	require.Len(t, runs, 1)
	assert.Equal(t, []string{"completed"}, runs[0].Statuses(), "running was replaced by success before it was sent")
	assert.Len(t, w.repo.Reactions(commentID), 1)
	assert.Empty(t, w.pending(), "nothing left to send")
}

type childProcess struct {
	cmd *exec.Cmd
	log *bytes.Buffer
}

func startChildSender(t *testing.T, w *world, apiURL string) childProcess {
	t.Helper()
	pemPath := filepath.Join(t.TempDir(), "app.pem")
	require.NoError(t, os.WriteFile(pemPath, w.pem, 0o600))
	c := childProcess{cmd: exec.Command(os.Args[0], "-test.run=^$"), log: &bytes.Buffer{}}
	c.cmd.Env = append(os.Environ(), childDBEnv+"="+w.path, childAPIEnv+"="+apiURL, childPEMEnv+"="+pemPath)
	c.cmd.Stdout, c.cmd.Stderr = c.log, c.log
	require.NoError(t, c.cmd.Start())
	t.Cleanup(func() { _ = c.cmd.Process.Kill() })
	return c
}
