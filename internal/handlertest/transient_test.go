package handlertest_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/bot"
	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/testutil"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// A forge's transient error inside background work (a plan job, an apply), after the delivery that started it
// was done, is waited out on the retry policy, on the forge's clock; an error retrying cannot fix still ends
// the work at once.

var badGateway = errors.New("memforge: 502 Bad Gateway")

func notFound(what string) error { return fmt.Errorf("memforge: %s: %w", what, vcs.ErrNotFound) }

func TestAPlanWhoseTokenRequestFailsTransientlyIsReady(t *testing.T) {
	w := newWorld(t)
	w.forge.FailNext("CloneToken", 3, badGateway)
	pr := w.openPR(1, "more-columns", "alice", testutil.NonBreakingChange)

	assert.Equal(t, 3, w.forge.Failed("CloneToken"))
	for _, env := range []string{"dev", "prod"} {
		st, ok := w.forge.StatusNamed(w.repo, "dagctl/plan: "+env, pr.HeadSHA)
		require.True(t, ok, env)
		assert.Equal(t, vcs.StatusSuccess, st.State, "%s: %s", env, describe(st.Status))
	}
}

func TestAPlanWhoseTokenRequestIsRefusedFailsAtOnce(t *testing.T) {
	w := newWorld(t)
	w.forge.FailNext("CloneToken", 1, notFound("installation"))
	pr := w.openPR(1, "more-columns", "alice", testutil.NonBreakingChange)

	assert.Equal(t, 1, w.forge.Failed("CloneToken"))
	failed := 0
	for _, env := range []string{"dev", "prod"} {
		st, ok := w.forge.StatusNamed(w.repo, "dagctl/plan: "+env, pr.HeadSHA)
		require.True(t, ok, env)
		if st.State == vcs.StatusFailure {
			failed++
			assert.Contains(t, describe(st.Status), "Could not get a token to fetch the code")
		}
	}
	assert.Equal(t, 1, failed, "the plan whose token was refused failed, the other not")
}

func TestAnApplyWhoseTokenRequestFailsTransientlyApplies(t *testing.T) {
	w := newWorld(t)
	pr := w.openPR(1, "more-columns", "alice", testutil.NonBreakingChange)
	w.forge.FailNext("CloneToken", 2, badGateway)
	w.comment(pr, "bob", "/dagctl apply dev")

	assert.Equal(t, 2, w.forge.Failed("CloneToken"))
	st, ok := w.forge.StatusNamed(w.repo, "dagctl/apply: dev", pr.HeadSHA)
	require.True(t, ok)
	assert.Equal(t, vcs.StatusSuccess, st.State, "%s", describe(st.Status))
}

// describe is a status's description, title and summary, for messages.
func describe(st vcs.Status) string {
	out := st.Description
	if st.Output != nil {
		out += " | " + st.Output.Title + " | " + st.Output.Summary
	}
	return out
}

// The content check of a protected environment's apply on merge reads the forge's trees under the lock: a 502
// there is waited out (an environment applied only on merge has no way back from a failed apply).
func TestAMergeWhoseContentCheckFailsTransientlyApplies(t *testing.T) {
	w := newWorld(t)
	pr := w.openPR(1, "more-columns", "alice", testutil.NonBreakingChange)
	w.review(pr, "bob", vcs.ReviewApproved)
	w.forge.FailNext("Tree", 3, badGateway)
	_, sha := w.mergePR(pr, "alice")
	w.bot.Wait()
	w.drainWrites()

	assert.Equal(t, 3, w.forge.Failed("Tree"))
	st, ok := w.forge.StatusNamed(w.repo, "dagctl/apply: prod", sha)
	require.True(t, ok)
	assert.Equal(t, vcs.StatusSuccess, st.State, "%s", describe(st.Status))
	assert.Equal(t, 1, w.appliesStarted("prod"))
}

func TestAMergeWhoseContentCheckIsRefusedFailsAtOnce(t *testing.T) {
	w := newWorld(t)
	pr := w.openPR(1, "more-columns", "alice", testutil.NonBreakingChange)
	w.review(pr, "bob", vcs.ReviewApproved)
	w.forge.FailNext("Tree", 1, notFound("tree"))
	_, sha := w.mergePR(pr, "alice")
	w.bot.Wait()
	w.drainWrites()

	assert.Equal(t, 1, w.forge.Failed("Tree"))
	st, ok := w.forge.StatusNamed(w.repo, "dagctl/apply: prod", sha)
	require.True(t, ok)
	assert.Equal(t, vcs.StatusFailure, st.State)
	assert.Contains(t, describe(st.Status), "Could not compare the content with the last apply")
	assert.Zero(t, w.appliesStarted("prod"))
}

// waitForever replaces the world's bot by one whose waits for the forge last until its run's context ends.
func (w *world) waitForever(t *testing.T) {
	opts := w.opts
	opts.ForgeClock.Sleep = func(ctx context.Context, d time.Duration) error {
		<-ctx.Done()
		return ctx.Err()
	}
	w.bot = bot.New(opts)
	t.Cleanup(w.bot.Wait)
}

// waitingApply starts `/dagctl apply dev` with every clone token request failing and waits forever: the apply
// waits, holding its lock.
func (w *world) waitingApply(t *testing.T) (vcs.PullRequest, db.Plan) {
	t.Helper()
	pr := w.openPR(1, "more-columns", "alice", testutil.NonBreakingChange)
	w.waitForever(t)
	w.forge.FailNext("CloneToken", 1000, badGateway)
	c := w.forge.AddComment(w.repo, pr.Number, "bob", "/dagctl apply dev")
	require.NoError(t, w.bot.Handle(context.Background(), vcs.Event{Repo: w.repo, Comment: &vcs.CommentEvent{Number: pr.Number, Comment: c}}))
	require.Eventually(t, func() bool {
		w.drainWrites()
		st, _ := w.forge.StatusNamed(w.repo, "dagctl/apply: dev", pr.HeadSHA)
		return st.State == vcs.StatusRunning && strings.HasPrefix(st.Description, "Waiting for the forge: ")
	}, time.Minute, 10*time.Millisecond, "the apply's check says it waits for the forge")
	plans, err := w.store.ListPlansByPR(context.Background(), w.repo.Forge, w.repo.FullName(), pr.Number)
	require.NoError(t, err)
	for _, p := range plans {
		if p.Environment == "dev" {
			return pr, p
		}
	}
	t.Fatal("no plan of dev")
	return pr, db.Plan{}
}

func (w *world) applyRun(t *testing.T, p db.Plan) db.Run {
	t.Helper()
	runs, err := w.store.ListRuns(context.Background(), p.ID)
	require.NoError(t, err)
	for _, r := range runs {
		if r.Kind == jobs.KindApply {
			return r
		}
	}
	t.Fatal("no apply run")
	return db.Run{}
}

// An apply waiting for the forge stops when cancelled, saying by whom, and releases its lock.
func TestAnApplyWaitingForTheForgeIsCancelledWithItsCause(t *testing.T) {
	w := newWorld(t)
	pr, p := w.waitingApply(t)
	_, held, err := w.store.Holder(context.Background(), w.repo.Forge, w.repo.FullName(), "dev")
	require.NoError(t, err)
	require.True(t, held, "the apply keeps its lock while it waits")

	w.comment(pr, "bob", "/dagctl cancel")

	st, _ := w.forge.StatusNamed(w.repo, "dagctl/apply: dev", pr.HeadSHA)
	assert.Equal(t, vcs.StatusCancelled, st.State)
	assert.Equal(t, "Cancelled: cancelled by bob", st.Description)
	assert.Equal(t, db.RunCancelled, w.applyRun(t, p).Status)
	_, held, err = w.store.Holder(context.Background(), w.repo.Forge, w.repo.FullName(), "dev")
	require.NoError(t, err)
	assert.False(t, held)
}

// A shutdown while an apply waits for the forge leaves the run unfinished, for the next start.
func TestAnApplyWaitingForTheForgeIsLeftForTheNextStartOnShutdown(t *testing.T) {
	w := newWorld(t)
	_, p := w.waitingApply(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // no grace: the runs' contexts end at once
	_ = w.bot.Shutdown(ctx)
	w.bot.Wait()

	run := w.applyRun(t, p)
	assert.True(t, run.FinishedAt.IsZero(), "unfinished: %s %s", run.Status, run.Reason)
}

// A shutdown while a plan job waits for its token leaves the plan running and its run unfinished: the next
// start plans it again.
func TestAPlanWaitingForTheForgeIsLeftForTheNextStartOnShutdown(t *testing.T) {
	w := newWorld(t)
	w.waitForever(t)
	w.forge.FailNext("CloneToken", 1000, badGateway)
	pr := w.openPRWithoutWaiting(1, "more-columns", "alice", testutil.NonBreakingChange)
	require.Eventually(t, func() bool { return w.forge.Failed("CloneToken") > 0 }, time.Minute, 10*time.Millisecond)

	stopping, stop := context.WithCancel(context.Background())
	stop()
	_ = w.bot.Shutdown(stopping)
	w.bot.Wait()
	w.drainWrites()
	for _, env := range []string{"dev", "prod"} {
		assert.NotEqual(t, vcs.StatusFailure, w.state("dagctl/plan: "+env, pr.HeadSHA), "%s: not failed by the shutdown", env)
	}

	w.forge.Heal()
	w.bot = bot.New(w.opts)
	t.Cleanup(w.bot.Wait)
	require.NoError(t, w.bot.Recover(context.Background()))
	w.bot.Wait()
	w.drainWrites()
	for _, env := range []string{"dev", "prod"} {
		assert.Equal(t, vcs.StatusSuccess, w.state("dagctl/plan: "+env, pr.HeadSHA), env)
	}
}

// A plan's end is reported with its approval, read from the forge (reviews, commit authors, permissions) in the
// plan job's background work: a 502 there is waited out, and the approval status is reported.
func TestAPlanWhoseApprovalReadsFailTransientlyIsReported(t *testing.T) {
	w := newWorld(t)
	w.forge.FailNext("CommitAuthors", 2, badGateway)
	pr := w.openPR(1, "more-columns", "alice", testutil.NonBreakingChange)

	assert.Equal(t, 2, w.forge.Failed("CommitAuthors"))
	assert.Equal(t, vcs.StatusSuccess, w.state("dagctl/plan: prod", pr.HeadSHA))
	assert.Equal(t, vcs.StatusBlocked, w.state("dagctl/approval: prod", pr.HeadSHA), "waiting for an approval")
}
