package jobrun

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/testutil"
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
