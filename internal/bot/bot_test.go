package bot

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/command"
	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
	"github.com/dagctl/dagctl-bot/internal/testutil"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// captured is a plan job's output captured from the real sqlmesh by the planner's golden tests.
func captured(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testutil.RepoRoot(), "internal", "planner", "testdata", name+".out"))
	require.NoError(t, err)
	return string(data)
}

func TestInterpretRealPlanOutputs(t *testing.T) {
	ok := jobs.Result{ExitCode: 0}
	failed := jobs.Result{ExitCode: 1}

	o := InterpretPlan(ok, captured(t, "non_breaking"), nil)
	assert.Equal(t, plan.StatusReady, o.Status)
	require.NotNil(t, o.Summary)
	assert.NotEmpty(t, o.Summary.DirectlyModified)

	o = InterpretPlan(ok, captured(t, "no_changes"), nil)
	assert.Equal(t, plan.StatusNoChanges, o.Status)

	o = InterpretPlan(failed, captured(t, "sql_error"), []string{"tail"})
	assert.Equal(t, plan.StatusFailed, o.Status)
	assert.Contains(t, o.Error, "Failed to load model from file 'models/customer_totals.sql'")

	o = InterpretPlan(failed, captured(t, "uncategorized"), nil)
	assert.Equal(t, plan.StatusReady, o.Status, "an uncategorised plan is shown, and its check asks for action")
	require.NotNil(t, o.Summary)
	assert.NotEmpty(t, o.Summary.Uncategorized())
}

func TestInterpretJobsThatDidNotFinish(t *testing.T) {
	o := InterpretPlan(jobs.Result{ExitCode: -1, Reason: jobs.ReasonCancelled}, "", nil)
	assert.Equal(t, plan.StatusCancelled, o.Status)

	o = InterpretPlan(jobs.Result{ExitCode: -1, Reason: jobs.ReasonTimeout, Duration: 90 * time.Second}, "", nil)
	assert.Equal(t, plan.StatusFailed, o.Status)
	assert.Contains(t, o.Error, "timed out after 1m30s")

	o = InterpretPlan(jobs.Result{ExitCode: 137, Reason: "OOMKilled"}, "half a line", []string{"Killed"})
	assert.Equal(t, plan.StatusFailed, o.Status)
	assert.Contains(t, o.Error, "OOMKilled")
	assert.Contains(t, o.Error, "Killed")

	o = InterpretPlan(jobs.Result{ExitCode: 0}, "no result line at all", nil)
	assert.Equal(t, plan.StatusFailed, o.Status, "a job that printed no result is never a silent success")
}

func config() repoconfig.Config {
	cfg := repoconfig.Default()
	return cfg
}

func TestTargets(t *testing.T) {
	cfg := config()
	pr := vcs.PullRequest{Number: 4}
	targets, note := AutoTargets(cfg, pr)
	assert.Empty(t, note)
	require.Len(t, targets, 2)
	assert.Equal(t, "prod", targets[0].Env.Name)

	_, note = AutoTargets(cfg, vcs.PullRequest{Number: 4, Fork: true, HeadSHA: sha40})
	assert.Contains(t, note, "`/dagctl plan --sha "+sha40+"`", "a fork's note names its head in full")
	_, note = AutoTargets(cfg, vcs.PullRequest{Number: 4, Draft: true})
	assert.Equal(t, NoteDraft, note)
	cfg.PlanDrafts = true
	targets, _ = AutoTargets(cfg, vcs.PullRequest{Number: 4, Draft: true})
	assert.Len(t, targets, 2)

	cfg.PREnvironment = "pr_{number}"
	targets, err := CommandTargets(cfg, pr, "pr_4")
	require.NoError(t, err)
	require.Len(t, targets, 1)
	assert.True(t, targets[0].Env.AppliesOn(repoconfig.ApplyOnComment))
	assert.False(t, targets[0].Env.Protected)
	_, err = CommandTargets(cfg, pr, "staging")
	assert.EqualError(t, err, "environment `staging` is not configured; this PR has `prod`, `dev`, `pr_4`")
}

// sha40 is a full commit SHA.
const sha40 = "0123456789abcdef0123456789abcdef01234567"

func TestPinRefusal(t *testing.T) {
	moved := "fedcba9876543210fedcba9876543210fedcba98"
	bare := command.Command{Verb: command.Plan}
	dev := command.Command{Verb: command.Plan, Env: "dev"}
	pinned := func(c command.Command, sha string) command.Command { c.SHA = sha; return c }
	fork := vcs.PullRequest{Number: 4, Fork: true, HeadSHA: sha40}
	own := vcs.PullRequest{Number: 4, HeadSHA: sha40}

	assert.Empty(t, PinRefusal(own, bare), "a PR of the repository is planned at its head")
	assert.Empty(t, PinRefusal(own, pinned(dev, sha40)))
	assert.Empty(t, PinRefusal(fork, pinned(bare, sha40)), "a fork at the commit named")

	refusal := PinRefusal(fork, bare)
	assert.Contains(t, refusal, "Nothing was planned")
	assert.Contains(t, refusal, "`/dagctl plan --sha "+sha40+"`")
	for _, pr := range []vcs.PullRequest{fork, own} {
		refusal = PinRefusal(pr, pinned(dev, moved))
		assert.Contains(t, refusal, "head moved")
		assert.Contains(t, refusal, "`/dagctl plan dev --sha "+sha40+"`", "the command for the new head, same environment")
	}
}

func TestLogLinksAreSignedPerRun(t *testing.T) {
	key := []byte("k")
	assert.Len(t, LogSignature(key, 1), 32)
	assert.NotEqual(t, LogSignature(key, 1), LogSignature(key, 2))
	assert.NotEqual(t, LogSignature(key, 1), LogSignature([]byte("other"), 1))
}
