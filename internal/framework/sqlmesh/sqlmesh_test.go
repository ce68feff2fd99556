package sqlmesh

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/framework"
	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
	"github.com/dagctl/dagctl-bot/internal/testutil"
)

// captured is a plan job's output captured from the real sqlmesh by the planner's golden tests.
func captured(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testutil.RepoRoot(), "internal", "framework", "sqlmesh", "planner", "testdata", name+".out"))
	require.NoError(t, err)
	return string(data)
}

func TestInterpretRealPlanOutputs(t *testing.T) {
	fw := New("python")
	ok := jobs.Result{ExitCode: 0}
	failed := jobs.Result{ExitCode: 1}

	o := framework.InterpretPlan(fw, ok, captured(t, "non_breaking"), nil)
	assert.Equal(t, plan.StatusReady, o.Status)
	require.NotNil(t, o.Summary)
	require.NotEmpty(t, o.Summary.DirectlyModified)
	assert.Equal(t, plan.NonBreaking, o.Summary.DirectlyModified[0].Category, "sqlmesh's categories are kept")

	o = framework.InterpretPlan(fw, ok, captured(t, "no_changes"), nil)
	assert.Equal(t, plan.StatusNoChanges, o.Status)

	o = framework.InterpretPlan(fw, failed, captured(t, "sql_error"), []string{"tail"})
	assert.Equal(t, plan.StatusFailed, o.Status)
	assert.Contains(t, o.Error, "Failed to load model from file 'models/customer_totals.sql'")

	o = framework.InterpretPlan(fw, failed, captured(t, "uncategorized"), nil)
	assert.Equal(t, plan.StatusReady, o.Status, "an uncategorised plan is shown, and its check asks for action")
	require.NotNil(t, o.Summary)
	assert.NotEmpty(t, o.Summary.Uncategorized())

	_, err := fw.ParseResult(strings.NewReader(captured(t, "sql_error")))
	var toolErr *framework.ToolError
	require.ErrorAs(t, err, &toolErr)
	assert.Equal(t, "config", toolErr.Kind, "the helper's kind is kept")
}

func TestInterpretJobsThatDidNotFinish(t *testing.T) {
	fw := New("python")
	o := framework.InterpretPlan(fw, jobs.Result{ExitCode: -1, Reason: jobs.ReasonCancelled}, "", nil)
	assert.Equal(t, plan.StatusCancelled, o.Status)

	o = framework.InterpretPlan(fw, jobs.Result{ExitCode: -1, Reason: jobs.ReasonTimeout, Duration: 90 * time.Second}, "", nil)
	assert.Equal(t, plan.StatusFailed, o.Status)
	assert.Contains(t, o.Error, "timed out after 1m30s")

	o = framework.InterpretPlan(fw, jobs.Result{ExitCode: 137, Reason: "OOMKilled"}, "half a line", []string{"Killed"})
	assert.Equal(t, plan.StatusFailed, o.Status)
	assert.Contains(t, o.Error, "OOMKilled")
	assert.Contains(t, o.Error, "Killed")

	o = framework.InterpretPlan(fw, jobs.Result{ExitCode: 0}, "no result line at all", nil)
	assert.Equal(t, plan.StatusFailed, o.Status, "a job that printed no result is never a silent success")
}

func TestProgressOfARealApply(t *testing.T) {
	fw := New("python")
	var got []framework.Progress
	for _, line := range strings.Split(captured(t, "apply_prod"), "\n") {
		if p, ok := fw.ParseProgress(line); ok {
			got = append(got, p)
		}
	}
	require.NotEmpty(t, got)
	for _, p := range got {
		assert.NotEmpty(t, p.Model)
		assert.True(t, p.Batch >= 1 && p.Batch <= p.Batches, "%+v", p)
	}
	_, ok := fw.ParseProgress("Updating virtual layer")
	assert.False(t, ok)
}

// exampleCheckout is examples/sqlmesh in a directory of its own.
func exampleCheckout(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range testutil.ExampleFiles(t) {
		path := filepath.Join(dir, filepath.FromSlash(name))
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	}
	return dir
}

// A setup step runs in the checkout before sqlmesh: here it writes a model, which the plan then adds.
func TestSetupStepsRunBeforeThePlan(t *testing.T) {
	dir := exampleCheckout(t)
	reg, err := framework.NewRegistry(New(testutil.Python(t)))
	require.NoError(t, err)
	allowAny, err := repoconfig.ParseSetupAllowlist("any")
	require.NoError(t, err)
	cfg, err := repoconfig.ParseWithRules(repoconfig.Path, []byte(`version: 1
job:
  setup:
    - "printf 'MODEL (name dagctl_example.from_setup, kind VIEW);\nSELECT 1 AS x\n' > models/from_setup.sql"
`), repoconfig.Rules{RefuseSetup: allowAny.Refuse})
	require.NoError(t, err)
	req := framework.JobRequest{RunID: "setup-1", Kind: jobs.KindPlan, Config: cfg, Project: cfg.Projects[0], Env: "prod", Source: jobs.Source{Dir: dir}}

	_, _, err = framework.JobSettings{Frameworks: reg}.Spec(req)
	assert.ErrorContains(t, err, "job.setup[0]", "a step the operator does not allow is refused when the job is built too")

	settings := framework.JobSettings{Frameworks: reg, ExecutionTime: "2024-01-22", Setup: allowAny}
	spec, _, err := settings.Spec(req)
	require.NoError(t, err)
	exec, err := jobs.NewLocal(jobs.LocalOptions{WorkDir: t.TempDir()})
	require.NoError(t, err)
	tail := framework.NewTail(40)
	stdout, res, err := framework.RunJob(context.Background(), exec, spec, func(l jobs.Line) { tail.Add(l.Text) }, nil)
	require.NoError(t, err)
	o := framework.InterpretPlan(reg.All()[0], res, stdout, tail.Lines())
	require.Equal(t, plan.StatusReady, o.Status, "%s\n%v", o.Error, tail.Lines())
	var added []string
	for _, c := range o.Summary.Added {
		added = append(added, c.Model)
	}
	assert.Contains(t, added, "dagctl_example.from_setup")
}

// The seam end to end: the registry finds sqlmesh for the project, the spec runs its plan on the local
// executor with the real sqlmesh, and the framework reads the result; then the apply reports progress.
func TestPlanAndApplyThroughTheSeam(t *testing.T) {
	dir := exampleCheckout(t)
	reg, err := framework.NewRegistry(New(testutil.Python(t)))
	require.NoError(t, err)
	settings := framework.JobSettings{Frameworks: reg, ExecutionTime: "2024-01-22", BotEnv: map[string]string{"PATH": os.Getenv("PATH")}, Allowed: []string{"PATH"}}
	exec, err := jobs.NewLocal(jobs.LocalOptions{WorkDir: t.TempDir()})
	require.NoError(t, err)
	cfg := repoconfig.Default()
	project := cfg.Projects[0]
	ctx := context.Background()

	spec, _, err := settings.Spec(framework.JobRequest{RunID: "plan-1", Kind: jobs.KindPlan, Config: cfg, Project: project, Env: "prod", Source: jobs.Source{Dir: dir}})
	require.NoError(t, err)
	assert.Equal(t, "1", spec.Env["NO_COLOR"], "the framework's variables are set")
	tail := framework.NewTail(40)
	stdout, res, err := framework.RunJob(ctx, exec, spec, func(l jobs.Line) { tail.Add(l.Text) }, nil)
	require.NoError(t, err)
	o := framework.InterpretPlan(reg.All()[0], res, stdout, tail.Lines())
	require.Equal(t, plan.StatusReady, o.Status, "%s\n%v", o.Error, tail.Lines())
	require.NotNil(t, o.Summary)
	assert.Equal(t, "sqlmesh", o.Summary.Tool)
	assert.NotEmpty(t, o.Summary.Added)

	spec, _, err = settings.Spec(framework.JobRequest{RunID: "apply-1", Kind: jobs.KindApply, Config: cfg, Project: project, Env: "prod", Source: jobs.Source{Dir: dir}})
	require.NoError(t, err)
	var mu sync.Mutex
	var progress []framework.Progress
	_, res, err = framework.RunJob(ctx, exec, spec, func(l jobs.Line) {
		if p, ok := reg.All()[0].ParseProgress(l.Text); ok {
			mu.Lock()
			progress = append(progress, p)
			mu.Unlock()
		}
	}, nil)
	require.NoError(t, err)
	require.True(t, res.Succeeded(), "%+v", res)
	assert.NotEmpty(t, progress, "the apply's batches are read as progress")

	_, _, err = settings.Spec(framework.JobRequest{Kind: jobs.KindPlan, Config: cfg, Project: project, Env: "prod", Flags: plan.Flags{ForwardOnly: true}, Source: jobs.Source{Dir: dir}})
	assert.NoError(t, err, "sqlmesh takes every plan flag")
	spec, _, err = settings.Spec(framework.JobRequest{Kind: jobs.KindInvalidate, Config: cfg, Project: project, Env: "pr_7", Source: jobs.Source{Dir: dir}})
	require.NoError(t, err)
	assert.Equal(t, []string{filepath.Join(filepath.Dir(testutil.Python(t)), "sqlmesh"), "invalidate", "pr_7"}, spec.Command)
}

func TestSQLMeshTakesEveryPlanFlag(t *testing.T) {
	reg, err := framework.NewRegistry(New("python"))
	require.NoError(t, err)
	all := plan.Flags{ForwardOnly: true, RestateModels: []string{"dagctl_example.orders"}, Start: "2024-01-01", End: "2024-01-08"}
	projects := []repoconfig.Project{{Name: "warehouse", Framework: repoconfig.SQLMesh}, {Name: "marts", Framework: repoconfig.DBT}}
	assert.NoError(t, reg.CheckPlanFlags(projects, all), "dbt is not run here: its plan says so, not the flags")
	for _, f := range all.Set() {
		assert.Contains(t, New("python").Flags(), f)
	}
}
