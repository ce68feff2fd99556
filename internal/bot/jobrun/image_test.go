package jobrun

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/framework"
	"github.com/dagctl/dagctl-bot/internal/framework/frameworktest"
	"github.com/dagctl/dagctl-bot/internal/jobs"
)

// packagingFramework is a framework that builds deploy images from a handed-back project.
type packagingFramework struct{ frameworktest.DBTLike }

func (packagingFramework) PackageCommand(framework.CommandRequest, int) []string {
	return []string{"package"}
}
func (packagingFramework) PackageArtifact() string { return "target/project.tar" }
func (packagingFramework) ImageEnv(p string) map[string]string {
	return map[string]string{"PROJECT_IN_IMAGE": p}
}

// recordingExecutor keeps the specs it was asked to start and ends each job at once; with images set it says
// it runs jobs on the image their spec names.
type recordingExecutor struct {
	images bool
	specs  []jobs.Spec
}

func (e *recordingExecutor) RunsImages() bool { return e.images }
func (e *recordingExecutor) Start(_ context.Context, spec jobs.Spec, _ jobs.Sink) (jobs.Handle, error) {
	e.specs = append(e.specs, spec)
	return doneHandle(spec.RunID), nil
}
func (e *recordingExecutor) Attach(context.Context, string, jobs.Sink) (jobs.Handle, error) {
	return nil, jobs.ErrGone
}

type doneHandle string

func (h doneHandle) ID() string                              { return string(h) }
func (doneHandle) Wait(context.Context) (jobs.Result, error) { return jobs.Result{}, nil }
func (doneHandle) Cancel(context.Context) error              { return nil }

// An apply step runs on the deploy image the apply built only where the executor runs images (Kubernetes), with
// the framework's variables naming the project in it; the local executor runs it in the checkout; the other
// steps never run on it.
func TestAnApplyStepRunsOnTheDeployImageWhereTheExecutorRunsImages(t *testing.T) {
	const ref = "registry.example/acme/marts@sha256:0123456789012345678901234567890123456789012345678901234567890123"
	for _, images := range []bool{true, false} {
		w := newCompareWorld(t)
		reg, err := framework.NewRegistry(packagingFramework{frameworktest.NewDBTLike("python3")})
		require.NoError(t, err)
		exec := &recordingExecutor{images: images}
		w.runner.Executor, w.runner.Forges = exec, nil
		w.runner.Jobs = framework.JobSettings{Frameworks: reg, Image: "runtime:1"}
		w.runner.slots = make(chan struct{}, 1)
		ctx := context.Background()
		p, err := w.store.CreatePlan(ctx, w.plan)
		require.NoError(t, err)
		run, _, err := w.store.CreateRun(ctx, p.ID, jobs.KindApply, "test")
		require.NoError(t, err)
		logw := w.store.NewRunLogWriter(run.ID, LogFlushInterval)
		for _, kind := range []jobs.Kind{jobs.KindImage, jobs.KindApply} {
			_, err := w.runner.RunStep(ctx, w.forge, Step{Plan: p, Context: w.pc, RunID: run.ID, Kind: kind, Name: string(kind), SHA: w.plan.HeadSHA,
				Image: ref, ImagePath: "/dbt/project"}, logw, func(jobs.Line) {})
			require.NoError(t, err)
		}
		require.NoError(t, logw.Close(ctx))
		require.Len(t, exec.specs, 2)
		pkg, apply := exec.specs[0], exec.specs[1]
		assert.Equal(t, []string{"package"}, pkg.Command)
		assert.Equal(t, []string{"target/project.tar"}, pkg.Collect)
		assert.Equal(t, "runtime:1", pkg.Image, "the package job never runs on the image it builds")
		log, err := w.store.RunLog(ctx, run.ID)
		require.NoError(t, err)
		if images {
			assert.Equal(t, ref, apply.Image, "the apply runs on the deploy image, by digest")
			assert.Equal(t, "/dbt/project", apply.Env["PROJECT_IN_IMAGE"])
			assert.Contains(t, logTexts(log), "dagctl: apply: on the deploy image "+ref)
		} else {
			assert.Equal(t, "runtime:1", apply.Image)
			assert.NotContains(t, apply.Env, "PROJECT_IN_IMAGE", "the local executor runs in the checkout")
			assert.Contains(t, logTexts(log), "dagctl: apply: in the checkout: this executor runs no images (the deploy image is "+ref+")")
		}
	}
}

func logTexts(lines []db.LogLine) []string {
	var out []string
	for _, l := range lines {
		out = append(out, l.Text)
	}
	return out
}
