package handlertest_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/bot"
	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/jobs/replay"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
	"github.com/dagctl/dagctl-bot/internal/testutil"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// A merge handled while its head's plan is still queued or running (the bot was behind, or the merge was
// quick) waits for the plan instead of cancelling it.

func TestAMergeWhileItsPlanRunsAppliesStagingWhenThePlanEnds(t *testing.T) {
	w := newWorld(t)
	w.forge.Commit(w.repo, "main", "carol", map[string]string{repoconfig.Path: stagingOnMergeConfig(t)})
	held := w.holdPlans("staging")
	pr := w.openPRWithoutWaiting(1, "more-columns", "alice", testutil.NonBreakingChange)
	merged, mergeSHA := w.mergePR(pr, "bob")

	assert.Equal(t, vcs.StatusQueued, w.state("dagctl/apply: staging", mergeSHA), "the merge commit's apply waits")
	st, _ := w.forge.StatusNamed(w.repo, "dagctl/apply: staging", mergeSHA)
	require.NotNil(t, st.Output)
	assert.Contains(t, st.Output.Summary, "waits for its plan for "+pr.HeadSHA[:7])
	assert.NotContains(t, w.states("dagctl/plan: staging", pr.HeadSHA), vcs.StatusCancelled, "the merged head's plan goes on")

	held.release()
	w.bot.Wait()
	w.drainWrites()
	assert.Equal(t, vcs.StatusSuccess, w.state("dagctl/plan: staging", pr.HeadSHA))
	final, _ := w.forge.StatusNamed(w.repo, "dagctl/apply: staging", mergeSHA)
	assert.Equal(t, vcs.StatusSuccess, final.State, "applied once its plan ended: %+v", final.Output)
	assert.Equal(t, 1, w.appliesStarted("staging"))
	assert.NotContains(t, w.lastReply(merged.Number), "NOT applied")
}

// The merge is carried out in the plan's background work, after the merge's delivery was handled: a forge
// failing then (the config read) is waited out there, not left for the next start.
func TestAMergeWaitingForItsPlanWaitsOutAForgeFailingWhenThePlanEnds(t *testing.T) {
	w := newWorld(t)
	w.forge.Commit(w.repo, "main", "carol", map[string]string{repoconfig.Path: stagingOnMergeConfig(t)})
	held := w.holdPlans("staging")
	pr := w.openPRWithoutWaiting(1, "more-columns", "alice", testutil.NonBreakingChange)
	_, mergeSHA := w.mergePR(pr, "bob")

	w.forge.FailNext("ReadFile", 3, badGateway)
	held.release()
	w.bot.Wait()
	w.drainWrites()
	assert.Equal(t, 3, w.forge.Failed("ReadFile"), "the config reads failed while the merge was carried out")
	final, _ := w.forge.StatusNamed(w.repo, "dagctl/apply: staging", mergeSHA)
	assert.Equal(t, vcs.StatusSuccess, final.State, "applied once the forge answered: %+v", final.Output)
	assert.Equal(t, 1, w.appliesStarted("staging"))
}

func TestAMergeWhileItsPlanRunsDoesNotApplyProdForWantOfApproval(t *testing.T) {
	w := newWorld(t)
	held := w.holdPlans("prod", "dev")
	pr := w.openPRWithoutWaiting(1, "more-columns", "alice", testutil.NonBreakingChange)
	_, mergeSHA := w.mergePR(pr, "bob")

	reply := w.lastReply(1)
	assert.Contains(t, reply, "`prod` was NOT applied: the PR was merged without the required approval")
	assert.Contains(t, reply, "its plan for "+pr.HeadSHA[:7]+" had not finished")
	assert.NotContains(t, reply, "cancelled")
	assert.Equal(t, vcs.StatusFailure, w.state("dagctl/apply: prod", mergeSHA))

	held.release()
	w.bot.Wait()
	w.drainWrites()
	assert.Equal(t, vcs.StatusFailure, w.state("dagctl/apply: prod", mergeSHA), "the plan's end applies nothing")
	assert.Zero(t, w.appliesStarted("prod"))
}

func TestAMergeWaitingForItsPlanSurvivesARestart(t *testing.T) {
	w := newWorld(t)
	w.forge.Commit(w.repo, "main", "carol", map[string]string{repoconfig.Path: stagingOnMergeConfig(t)})
	held := w.holdPlans("staging")
	pr := w.openPRWithoutWaiting(1, "more-columns", "alice", testutil.NonBreakingChange)
	_, mergeSHA := w.mergePR(pr, "bob")
	require.Equal(t, vcs.StatusQueued, w.state("dagctl/apply: staging", mergeSHA))

	// The bot stops with the plan's job unfinished; its local process dies with it.
	stopping, stop := context.WithCancel(context.Background())
	stop()
	_ = w.bot.Shutdown(stopping)
	held.crash()
	w.bot.Wait()
	require.Equal(t, vcs.StatusQueued, w.state("dagctl/apply: staging", mergeSHA), "nothing applied before the restart")

	opts := w.opts
	opts.Executor = held.inner
	w.bot = bot.New(opts)
	t.Cleanup(w.bot.Wait)
	require.NoError(t, w.bot.Recover(context.Background()))
	w.bot.Wait()
	w.drainWrites()
	assert.Equal(t, vcs.StatusSuccess, w.state("dagctl/plan: staging", pr.HeadSHA), "the lost plan ran again")
	assert.Equal(t, vcs.StatusSuccess, w.state("dagctl/apply: staging", mergeSHA), "and its end applied the merge")
	assert.Equal(t, 1, w.appliesStarted("staging"))
}

func TestCancellingThePlanAMergeWaitsForEndsTheWait(t *testing.T) {
	w := newWorld(t)
	w.forge.Commit(w.repo, "main", "carol", map[string]string{repoconfig.Path: stagingOnMergeConfig(t)})
	w.holdPlans("staging")
	pr := w.openPRWithoutWaiting(1, "more-columns", "alice", testutil.NonBreakingChange)
	_, mergeSHA := w.mergePR(pr, "bob")
	require.Equal(t, vcs.StatusQueued, w.state("dagctl/apply: staging", mergeSHA))

	w.comment(pr, "bob", "/dagctl cancel")
	assert.Equal(t, vcs.StatusCancelled, w.state("dagctl/plan: staging", pr.HeadSHA))
	var told bool
	for _, c := range w.forge.CommentsOf(w.repo, 1) {
		told = told || c.ByBot && strings.Contains(c.Body, "`staging` was NOT applied") && strings.Contains(c.Body, "is cancelled")
	}
	assert.True(t, told, "the PR is told the merge's apply ended with its plan")
	assert.Zero(t, w.appliesStarted("staging"))
	waiting, err := w.store.MergeWaitPlans(context.Background())
	require.NoError(t, err)
	assert.Empty(t, waiting, "nothing waits any more")
}

func TestAPRClosedWithoutMergeWhileItsPlanRunsCancelsThePlan(t *testing.T) {
	w := newWorld(t)
	w.forge.Commit(w.repo, "main", "carol", map[string]string{repoconfig.Path: stagingOnMergeConfig(t)})
	w.holdPlans("staging")
	pr := w.openPRWithoutWaiting(1, "more-columns", "alice", testutil.NonBreakingChange)
	closed := w.forge.UpdatePR(w.repo, pr.Number, func(p *vcs.PullRequest) { p.State = "closed" })
	w.deliver(vcs.Event{PullRequest: &vcs.PullRequestEvent{Action: vcs.PRClosed, PR: closed, Sender: "alice"}})
	w.bot.Wait()
	w.drainWrites()

	assert.Equal(t, vcs.StatusCancelled, w.state("dagctl/plan: staging", pr.HeadSHA))
	assert.Zero(t, w.appliesStarted("staging"))
}

// stagingOnMergeConfig is the example's config on main with one environment, staging, applied on merge
// without approval.
func stagingOnMergeConfig(t *testing.T) string {
	t.Helper()
	config := testutil.ExampleFiles(t)[repoconfig.Path]
	start, end := strings.Index(config, "environments:"), strings.Index(config, "job:")
	require.True(t, start >= 0 && end > start, "the example config's layout changed")
	return config[:start] + "environments:\n  - name: staging\n    plan_on_pr: true\n    apply_on: [merge]\n\n" + config[end:]
}

// openPRWithoutWaiting is openPR without waiting for the plans it starts.
func (w *world) openPRWithoutWaiting(number int, branch, author string, files map[string]string) vcs.PullRequest {
	w.t.Helper()
	w.forge.Commit(w.repo, branch, author, files)
	pr := w.forge.OpenPR(w.repo, number, branch, "main", author)
	w.deliver(vcs.Event{PullRequest: &vcs.PullRequestEvent{Action: vcs.PROpened, PR: pr, Sender: author}})
	return pr
}

// mergePR merges the PR on the forge as merger and delivers the event, without waiting for jobs. main moves
// first by a file the project does not read: the apply's verifying plan at the merge commit is then a job of
// its own key (its output differs from the head's first plan, which initialised the tool's state).
func (w *world) mergePR(pr vcs.PullRequest, merger string) (vcs.PullRequest, string) {
	w.t.Helper()
	w.forge.Commit(w.repo, "main", "carol", map[string]string{"NOTES.md": "Merged meanwhile.\n"})
	sha := w.forge.Merge(w.repo, "main", pr.HeadRef, merger)
	merged := w.forge.UpdatePR(w.repo, pr.Number, func(p *vcs.PullRequest) {
		p.State, p.Merged, p.MergeCommitSHA = "closed", true, sha
	})
	w.deliver(vcs.Event{PullRequest: &vcs.PullRequestEvent{Action: vcs.PRMerged, PR: merged, Sender: merger}})
	return merged, sha
}

// deliver is handle without waiting for the jobs the event started.
func (w *world) deliver(ev vcs.Event) {
	w.t.Helper()
	ev.Repo = w.repo
	if err := w.bot.Handle(context.Background(), ev); err != nil && err != vcs.ErrIgnored {
		require.NoError(w.t, err)
	}
	w.drainWrites()
}

// appliesStarted counts the apply jobs of the environment that ran (replaying only: a capture runs them for real).
func (w *world) appliesStarted(env string) int {
	if w.jobs == nil {
		return 1
	}
	n := 0
	for _, k := range w.jobs.Started() {
		if k.Kind == jobs.KindApply && k.Environment == env {
			n++
		}
	}
	return n
}

// holdPlans restarts the world's bot (nothing ran yet) on an executor whose plan jobs of those environments
// end only when released: they run as replayed (or captured), but their end is held.
func (w *world) holdPlans(envs ...string) *heldJobs {
	w.t.Helper()
	h := &heldJobs{inner: w.opts.Executor, files: w.forge.FilesOf, envs: map[string]bool{},
		released: make(chan struct{}), crashed: make(chan struct{})}
	for _, e := range envs {
		h.envs[e] = true
	}
	opts := w.opts
	opts.Executor = h
	w.bot = bot.New(opts)
	w.t.Cleanup(func() { h.release(); w.bot.Wait() })
	return h
}

// heldJobs wraps the world's executor: the ends of some plan jobs wait for the test.
type heldJobs struct {
	inner    jobs.Executor
	files    replay.FilesAt
	envs     map[string]bool
	once     sync.Once
	released chan struct{} // closed: held jobs end as they ran
	crashOne sync.Once
	crashed  chan struct{} // closed: held jobs are lost, as a local process is with its bot
}

func (e *heldJobs) release() { e.once.Do(func() { close(e.released) }) }
func (e *heldJobs) crash()   { e.crashOne.Do(func() { close(e.crashed) }) }

func (e *heldJobs) Start(ctx context.Context, spec jobs.Spec, sink jobs.Sink) (jobs.Handle, error) {
	h, err := e.inner.Start(ctx, spec, sink)
	if err != nil || spec.Kind != jobs.KindPlan {
		return h, err
	}
	key, err := replay.KeyOf(spec, e.files)
	if err != nil || !e.envs[key.Environment] {
		return h, err
	}
	return &heldJob{Handle: h, e: e, cancelled: make(chan struct{})}, nil
}

func (e *heldJobs) Attach(ctx context.Context, id string, sink jobs.Sink) (jobs.Handle, error) {
	return e.inner.Attach(ctx, id, sink)
}

type heldJob struct {
	jobs.Handle
	e         *heldJobs
	once      sync.Once
	cancelled chan struct{}
}

func (h *heldJob) Wait(ctx context.Context) (jobs.Result, error) {
	select {
	case <-h.e.released:
	case <-h.cancelled:
	case <-h.e.crashed:
		return jobs.Result{}, errors.New("the job was lost with the bot")
	}
	return h.Handle.Wait(ctx)
}

func (h *heldJob) Cancel(ctx context.Context) error {
	h.once.Do(func() { close(h.cancelled) })
	return h.Handle.Cancel(ctx)
}
