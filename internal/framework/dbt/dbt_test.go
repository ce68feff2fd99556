package dbt

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/framework"
	"github.com/dagctl/dagctl-bot/internal/framework/dbt/planner"
	"github.com/dagctl/dagctl-bot/internal/framework/dbt/scope"
	"github.com/dagctl/dagctl-bot/internal/framework/sqlmesh"
	"github.com/dagctl/dagctl-bot/internal/image"
	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
	"github.com/dagctl/dagctl-bot/internal/testutil"
)

// captured is a job's output captured from the real dbt by the planner's golden tests.
func captured(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testutil.RepoRoot(), "internal", "framework", "dbt", "planner", "testdata", name+".out"))
	require.NoError(t, err)
	return string(data)
}

func project(settings *repoconfig.DBTProject) repoconfig.Project {
	return repoconfig.Project{Name: "example", Path: ".", Framework: repoconfig.DBT, DBT: settings}
}

func TestDBTsMeanings(t *testing.T) {
	fw := New("python3")
	assert.Equal(t, repoconfig.DBT, fw.Name())
	assert.False(t, fw.Categorizes())
	assert.Empty(t, fw.Flags())
	_, ok := fw.CleanupCommand(framework.CommandRequest{Project: project(nil), Env: "pr_7", PRNumber: 7})
	assert.False(t, ok, "a project without pr_environment builds no PR schema, so there is nothing to clean")
	assert.Equal(t, "1", fw.Env()["DO_NOT_TRACK"])

	reg, err := framework.NewRegistry(sqlmesh.New("python3"), fw)
	require.NoError(t, err, "dbt and sqlmesh side by side")
	got, err := reg.For(project(nil))
	require.NoError(t, err)
	assert.Equal(t, repoconfig.DBT, got.Name())

	for _, flags := range []plan.Flags{{Start: "2024-01-01"}, {End: "2024-01-08"}, {ForwardOnly: true}, {RestateModels: []string{"m"}}} {
		var flagErr *framework.FlagError
		require.ErrorAs(t, framework.CheckFlags(fw, "example", flags), &flagErr, "%+v", flags)
		assert.Contains(t, flagErr.Error(), "it takes no plan flags")
	}
	assert.NoError(t, framework.CheckFlags(fw, "example", plan.Flags{}))
}

func TestCommandsFollowTheProject(t *testing.T) {
	fw := New("/venv/bin/python")
	helper := planner.HelperSource()
	for name, tc := range map[string]struct {
		req  framework.CommandRequest
		plan []string
	}{
		"the environment's own target": {
			framework.CommandRequest{Project: project(&repoconfig.DBTProject{}), Env: "prod"},
			[]string{"/venv/bin/python", "-c", helper, "plan", "--env", "prod", "--target", "prod"},
		},
		"a mapped target and a profiles directory": {
			framework.CommandRequest{Project: project(&repoconfig.DBTProject{Targets: map[string]string{"prod": "production"}, ProfilesDir: "ci"}), Env: "prod"},
			[]string{"/venv/bin/python", "-c", helper, "plan", "--env", "prod", "--target", "production", "--profiles-dir", "ci"},
		},
		"no dbt settings": {
			framework.CommandRequest{Project: project(nil), Env: "dev"},
			[]string{"/venv/bin/python", "-c", helper, "plan", "--env", "dev", "--target", "dev"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.plan, fw.PlanCommand(tc.req))
		})
	}

	approved := &plan.DBT{Scope: plan.ScopeAll, Commands: []string{"dbt seed --target prod", "dbt build --target prod"}}
	argv := fw.ApplyCommand(framework.CommandRequest{Project: project(&repoconfig.DBTProject{}), Env: "prod", DBT: approved})
	assert.Equal(t, []string{"/venv/bin/python", "-c", helper, "apply", "--env", "prod", "--scope", "all", "--artifacts", planner.ArtifactsDir,
		"--command", "dbt seed --target prod", "--command", "dbt build --target prod"}, argv, "the approved plan's commands, in order")
}

func TestInterpretRealPlanOutputs(t *testing.T) {
	fw := New("python3")
	ok := jobs.Result{ExitCode: 0}

	o := framework.InterpretPlan(fw, ok, captured(t, "macro_change"), nil)
	require.NotNil(t, o.Summary, o.Error)
	assert.Equal(t, "dbt", o.Summary.Tool)
	require.NotNil(t, o.Summary.DBT)
	assert.Len(t, o.Summary.DBT.Nodes, 2)
	assert.Equal(t, plan.StatusNoChanges, o.Status, "before the bot's rules fill it, the manifest's side deploys nothing")

	o = framework.InterpretPlan(fw, jobs.Result{ExitCode: 1}, captured(t, "compile_error"), []string{"tail"})
	assert.Equal(t, plan.StatusFailed, o.Status)
	assert.Contains(t, o.Error, "Compilation Error in model daily_revenue (models/marts/daily_revenue.sql)")
	assert.Contains(t, o.Error, "line 4")
	_, err := fw.ParseResult(strings.NewReader(captured(t, "compile_error")))
	var toolErr *framework.ToolError
	require.ErrorAs(t, err, &toolErr)
	assert.Equal(t, "compile", toolErr.Kind)
	assert.Equal(t, "dbt", toolErr.Tool)

	o = framework.InterpretPlan(fw, ok, "dbt: not found", nil)
	assert.Equal(t, plan.StatusFailed, o.Status, "no result line is never a silent success")
}

// The manifest's side (the planner) and the files' side (scope.Fill) of one plan: a macro change, where the
// files say all and the production manifest's two models decide.
func TestTheManifestSideFillsWithTheRules(t *testing.T) {
	s, err := New("python3").ParseResult(strings.NewReader(captured(t, "macro_change")))
	require.NoError(t, err)
	cfg := func(version string) *repoconfig.Config {
		c, err := repoconfig.Parse(repoconfig.Path, []byte("version: 1\nprojects:\n  - name: example\n    path: .\n    framework: dbt\n    version: "+version+"\n"))
		require.NoError(t, err)
		return &c
	}
	base := scope.Commit{Files: map[string]string{"macros/cents_to_dollars.sql": "a", "dbt_project.yml": "p", repoconfig.Path: "1"}, Config: cfg("1.0.0")}
	head := scope.Commit{Files: map[string]string{"macros/cents_to_dollars.sql": "b", "dbt_project.yml": "p", repoconfig.Path: "2"}, Config: cfg("1.1.0")}
	require.NoError(t, scope.Fill(s.DBT, scope.Input{Project: head.Config.Projects[0], Environment: "prod", Head: head, Base: &base,
		HasProdManifest: true, StateDir: ".dagctl/prod-state"}))
	assert.Equal(t, plan.ScopeAll, s.DBT.FileScope)
	assert.Equal(t, plan.ScopeSelective, s.DBT.Scope)
	assert.Equal(t, scope.ByManifest, s.DBT.DecidedBy)
	assert.Equal(t, []string{"dbt build --target prod --select state:modified+ --state .dagctl/prod-state"}, s.DBT.Commands)
	assert.True(t, s.HasChanges())
}

func TestProgressOfARealApply(t *testing.T) {
	fw := New("python3")
	var got []framework.Progress
	for _, line := range strings.Split(captured(t, "apply_first_deploy"), "\n") {
		if p, ok := fw.ParseProgress(line); ok {
			got = append(got, p)
		}
	}
	require.Len(t, got, 14, "dbt seed's one node, then dbt build's 13")
	for _, p := range got {
		assert.NotEmpty(t, p.Model)
		assert.True(t, p.Batch >= 1 && p.Batch <= p.Batches, "%+v", p)
	}
	assert.Equal(t, framework.Progress{Model: "seed.dagctl_example.raw_orders", Action: "success", Batch: 1, Batches: 1}, got[0])
	for _, p := range got[1:] {
		assert.Equal(t, 13, p.Batches, "n of the 13 nodes of dbt build")
		assert.Contains(t, []string{"success", "pass"}, p.Action, p.Model)
	}
	assert.Equal(t, 13, got[13].Batch)
}

// exampleCheckout is examples/dbt in a directory of its own.
func exampleCheckout(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(testutil.RepoRoot(), "examples", "dbt")
	require.NoError(t, filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			if rel == "target" || rel == "logs" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dir, rel), 0o755)
		}
		if strings.Contains(d.Name(), ".duckdb") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, rel), data, 0o644)
		}
		return err
	}))
	return dir
}

// The seam end to end: the registry finds dbt for the project, the spec runs its plan on the local executor
// with the real dbt (everything new: no state), the framework reads the result; then the apply of the approved
// plan's commands, given through the job request, reports progress and leaves the manifest to store.
func TestPlanAndApplyThroughTheSeam(t *testing.T) {
	dir := exampleCheckout(t)
	reg, err := framework.NewRegistry(New(testutil.Python(t)))
	require.NoError(t, err)
	settings := framework.JobSettings{Frameworks: reg, BotEnv: map[string]string{"PATH": os.Getenv("PATH")}, Allowed: []string{"PATH"}}
	exec, err := jobs.NewLocal(jobs.LocalOptions{WorkDir: t.TempDir()})
	require.NoError(t, err)
	cfg := repoconfig.Default()
	cfg.Job.Env = map[string]string{"EXAMPLE_DUCKDB_PATH": filepath.Join(t.TempDir(), "warehouse.duckdb")}
	p := project(&repoconfig.DBTProject{Version: "1.0.0", Commands: []string{"dbt seed", "dbt build"}})
	cfg.Projects = []repoconfig.Project{p}
	ctx := context.Background()

	spec, _, err := settings.Spec(framework.JobRequest{RunID: "plan-1", Kind: jobs.KindPlan, Config: cfg, Project: p, Env: "prod", Source: jobs.Source{Dir: dir}})
	require.NoError(t, err)
	tail := framework.NewTail(40)
	stdout, res, err := framework.RunJob(ctx, exec, spec, func(l jobs.Line) { tail.Add(l.Text) }, nil)
	require.NoError(t, err)
	o := framework.InterpretPlan(reg.All()[0], res, stdout, tail.Lines())
	require.NotNil(t, o.Summary, "%s\n%v", o.Error, tail.Lines())
	assert.Len(t, o.Summary.DBT.Nodes, 13)
	assert.Equal(t, plan.ScopeAll, o.Summary.DBT.ManifestScope)

	approved := &plan.DBT{Scope: plan.ScopeAll, Commands: scope.Commands(plan.ScopeAll, *p.DBT, "prod", "")}
	spec, _, err = settings.Spec(framework.JobRequest{RunID: "apply-1", Kind: jobs.KindApply, Config: cfg, Project: p, Env: "prod", Source: jobs.Source{Dir: dir}, DBT: approved})
	require.NoError(t, err)
	var mu sync.Mutex
	var progress []framework.Progress
	var results framework.ResultLines
	_, res, err = framework.RunJob(ctx, exec, spec, func(l jobs.Line) {
		results.Add(l)
		if p, ok := reg.All()[0].ParseProgress(l.Text); ok {
			mu.Lock()
			progress = append(progress, p)
			mu.Unlock()
		}
	}, nil)
	require.NoError(t, err)
	require.True(t, res.Succeeded(), "%+v", res)
	assert.Len(t, progress, 14, "each node of dbt seed and dbt build")
	applied, err := planner.ParseApplyResult(strings.NewReader(results.String()))
	require.NoError(t, err)
	assert.Equal(t, []planner.AppliedCommand{{Command: "dbt seed --target prod", Success: true}, {Command: "dbt build --target prod", Success: true}}, applied.Commands)

	// The apply's manifest comes back collected (StateArtifact); the next plan given it as the production state
	// compares with it: nothing changed since, where without it every node was new.
	assert.Equal(t, []string{"target/dagctl-apply/manifest.json"}, spec.Collect)
	manifest := res.Artifacts["target/dagctl-apply/manifest.json"]
	require.NotEmpty(t, manifest, "%v", res.ArtifactErrors)
	spec, _, err = settings.Spec(framework.JobRequest{RunID: "plan-2", Kind: jobs.KindPlan, Config: cfg, Project: p, Env: "prod", Source: jobs.Source{Dir: dir}, State: manifest})
	require.NoError(t, err)
	assert.Empty(t, spec.Collect, "a plan leaves no state")
	assert.Equal(t, map[string][]byte{"manifest.json": manifest}, spec.Inputs)
	assert.Equal(t, "$DAGCTL_INPUT_DIR", spec.Env[planner.StateEnv])
	tail = framework.NewTail(40)
	stdout, res, err = framework.RunJob(ctx, exec, spec, func(l jobs.Line) { tail.Add(l.Text) }, nil)
	require.NoError(t, err)
	o = framework.InterpretPlan(reg.All()[0], res, stdout, tail.Lines())
	require.NotNil(t, o.Summary, "%s\n%v", o.Error, tail.Lines())
	assert.Empty(t, o.Summary.DBT.Nodes, "compared with the production manifest: nothing changed")

	// A selective deploy's --state is the stored manifest the executor gives: it runs with the real dbt; without
	// the state it fails before dbt runs anything.
	selective := &plan.DBT{Scope: plan.ScopeSelective, Commands: scope.Commands(plan.ScopeSelective, *p.DBT, "prod", StateDir)}
	require.Contains(t, selective.Commands[1], "--state $DAGCTL_INPUT_DIR")
	spec, _, err = settings.Spec(framework.JobRequest{RunID: "apply-2", Kind: jobs.KindApply, Config: cfg, Project: p, Env: "prod", Source: jobs.Source{Dir: dir}, DBT: selective, State: manifest})
	require.NoError(t, err)
	results = framework.ResultLines{}
	_, res, err = framework.RunJob(ctx, exec, spec, results.Add, nil)
	require.NoError(t, err)
	require.True(t, res.Succeeded(), "%+v\n%s", res, results.String())
	applied, err = planner.ParseApplyResult(strings.NewReader(results.String()))
	require.NoError(t, err)
	assert.Equal(t, selective.Commands[1], applied.Commands[1].Command, "the command as approved")

	spec, _, err = settings.Spec(framework.JobRequest{RunID: "apply-3", Kind: jobs.KindApply, Config: cfg, Project: p, Env: "prod", Source: jobs.Source{Dir: dir}, DBT: selective})
	require.NoError(t, err)
	results = framework.ResultLines{}
	_, res, err = framework.RunJob(ctx, exec, spec, results.Add, nil)
	require.NoError(t, err)
	assert.False(t, res.Succeeded(), "no production state: no selective apply")
	assert.Contains(t, results.String(), "no manifest.json")

	_, _, err = settings.Spec(framework.JobRequest{Kind: jobs.KindInvalidate, Config: cfg, Project: p, Env: "pr_7", Source: jobs.Source{Dir: dir}})
	assert.ErrorContains(t, err, "need no cleanup")
}

// The deploy image's jobs through the seam on the local executor: the package job hands the project back as a
// tar (an artifact, never registry credentials), and an apply on the image runs the commands in the project the
// image holds (here the extracted tar stands for it), its artifacts still in the checkout, where they are
// collected.
func TestTheDeployImagesJobsThroughTheSeam(t *testing.T) {
	dir := exampleCheckout(t)
	reg, err := framework.NewRegistry(New(testutil.Python(t)))
	require.NoError(t, err)
	settings := framework.JobSettings{Frameworks: reg, BotEnv: map[string]string{"PATH": os.Getenv("PATH")}, Allowed: []string{"PATH"}, Image: "runtime:1"}
	exec, err := jobs.NewLocal(jobs.LocalOptions{WorkDir: t.TempDir()})
	require.NoError(t, err)
	cfg := repoconfig.Default()
	cfg.Job.Env = map[string]string{"EXAMPLE_DUCKDB_PATH": filepath.Join(t.TempDir(), "warehouse.duckdb")}
	p := project(&repoconfig.DBTProject{Version: "1.0.0", Commands: []string{"dbt seed"}})
	cfg.Projects = []repoconfig.Project{p}
	ctx := context.Background()

	spec, _, err := settings.Spec(framework.JobRequest{RunID: "9-image", Kind: jobs.KindImage, Config: cfg, Project: p, Env: "prod",
		Source: jobs.Source{Dir: dir}, State: []byte("{}")})
	require.NoError(t, err)
	assert.Equal(t, []string{planner.PackageArtifact}, spec.Collect, "the tar alone")
	assert.Empty(t, spec.Inputs, "a package job needs no production state")
	_, res, err := framework.RunJob(ctx, exec, spec, func(jobs.Line) {}, nil)
	require.NoError(t, err)
	require.True(t, res.Succeeded(), "%+v", res)
	tarball, ok := res.Artifacts[planner.PackageArtifact]
	require.True(t, ok, "%v", res.ArtifactErrors)
	imageProject := t.TempDir()
	ids, err := image.ExtractProject(bytes.NewReader(tarball), imageProject)
	require.NoError(t, err)
	assert.Contains(t, ids, "models/staging/stg_orders.sql")

	approved := &plan.DBT{Scope: plan.ScopeAll, Commands: scope.Commands(plan.ScopeAll, *p.DBT, "prod", "")}
	plain, _, err := settings.Spec(framework.JobRequest{RunID: "9-apply", Kind: jobs.KindApply, Config: cfg, Project: p, Env: "prod", Source: jobs.Source{Dir: dir}, DBT: approved})
	require.NoError(t, err)
	assert.Equal(t, "runtime:1", plain.Image)
	assert.NotContains(t, plain.Env, planner.ImageProjectEnv, "without a deploy image the job runs in the checkout")

	const ref = "registry.example/acme/marts@sha256:0123456789012345678901234567890123456789012345678901234567890123"
	onImage, _, err := settings.Spec(framework.JobRequest{RunID: "9-apply", Kind: jobs.KindApply, Config: cfg, Project: p, Env: "prod", Source: jobs.Source{Dir: dir}, DBT: approved,
		DeployImage: ref, ImagePath: imageProject})
	require.NoError(t, err)
	assert.Equal(t, ref, onImage.Image, "the apply runs on the image it built, by digest")
	assert.Equal(t, imageProject, onImage.Env[planner.ImageProjectEnv])
	verify, _, err := settings.Spec(framework.JobRequest{RunID: "9-verify", Kind: jobs.KindPlan, Config: cfg, Project: p, Env: "prod", Source: jobs.Source{Dir: dir}, DeployImage: ref})
	require.NoError(t, err)
	assert.Equal(t, "runtime:1", verify.Image, "only the apply runs on the deploy image")

	var results framework.ResultLines
	var log strings.Builder
	_, res, err = framework.RunJob(ctx, exec, onImage, func(l jobs.Line) { results.Add(l); log.WriteString(l.Text + "\n") }, nil)
	require.NoError(t, err)
	require.True(t, res.Succeeded(), "%+v\n%s", res, log.String())
	assert.Contains(t, log.String(), "dagctl: running in "+imageProject+", the project in the deploy image")
	assert.Contains(t, res.Artifacts, "target/dagctl-apply/manifest.json", "the artifacts are the checkout's: collected as before")
	_, err = os.Stat(filepath.Join(imageProject, "target", "dagctl-apply"))
	assert.True(t, os.IsNotExist(err), "nothing of the artifacts went into the image's project")
}

// The PR's own environment of a project with pr_environment is its PR build: the schema from the config's
// pattern and the PR's number, the PR's target, the project's profiles directory; the cleanup drops the same
// schema. Anywhere else the plan is the plain plan and there is nothing to drop.
func TestPRBuildAndCleanupCommands(t *testing.T) {
	fw := New("/venv/bin/python")
	helper := planner.HelperSource()
	withPR := project(&repoconfig.DBTProject{ProfilesDir: "ci", PREnvironment: &repoconfig.DBTPREnvironment{Schema: "dbt_pr_{number}", Target: "ci"}})
	pr := framework.CommandRequest{Project: withPR, Env: "pr_7", PRNumber: 7}

	assert.Equal(t, []string{"/venv/bin/python", "-c", helper, "prbuild", "--env", "pr_7", "--schema", "dbt_pr_7", "--target", "ci", "--profiles-dir", "ci"},
		fw.PlanCommand(pr))
	argv, ok := fw.CleanupCommand(pr)
	require.True(t, ok)
	assert.Equal(t, []string{"/venv/bin/python", "-c", helper, "cleanup", "--env", "pr_7", "--schema", "dbt_pr_7", "--target", "ci", "--profiles-dir", "ci"}, argv)

	prod := framework.CommandRequest{Project: withPR, Env: "prod"}
	assert.Equal(t, "plan", fw.PlanCommand(prod)[3], "a configured environment is planned, not built")
	_, ok = fw.CleanupCommand(prod)
	assert.False(t, ok, "nothing of prod is ever dropped")

	noTarget := project(&repoconfig.DBTProject{PREnvironment: &repoconfig.DBTPREnvironment{Schema: "ci_{number}"}})
	assert.Equal(t, []string{"/venv/bin/python", "-c", helper, "prbuild", "--env", "pr_7", "--schema", "ci_7"},
		fw.PlanCommand(framework.CommandRequest{Project: noTarget, Env: "pr_7", PRNumber: 7}), "the profile's default target")

	bad := project(&repoconfig.DBTProject{PREnvironment: &repoconfig.DBTPREnvironment{Schema: "x-{number}"}})
	_, ok = fw.CleanupCommand(framework.CommandRequest{Project: bad, Env: "pr_7", PRNumber: 7})
	assert.False(t, ok, "a schema that is no plain name is never dropped")
}

// A real PR build's output completed from both commits: the build is shown with the config's schema, and the
// plan deploys nothing even when the PR bumps the version (the job built the PR's schema already); a failed
// build fails the plan with dbt's message and keeps the build to show.
func TestAPRBuildIsCompletedAndDeploysNothing(t *testing.T) {
	fw := New("python3")
	c, _ := framework.ComparerOf(fw)
	config := func(version string) string {
		return "version: 1\nprojects:\n  - name: marts\n    path: dbt\n    framework: dbt\n    version: \"" + version + "\"\n" +
			"    pr_environment: {schema: \"dbt_pr_{number}\", target: dev}\nenvironments:\n  - name: prod\n"
	}
	model := "dbt/models/staging/stg_orders.sql"
	base := commitOf(t, "base1", config("1.0.0"), map[string]string{model: "old"})
	head := commitOf(t, "head1", config("1.1.0"), map[string]string{model: "new"})
	o := framework.InterpretPlan(fw, jobs.Result{}, captured(t, "pr_build_deferred"), nil)
	require.NotNil(t, o.Summary, o.Error)
	cmp := framework.Comparison{Project: governing(t, config("1.1.0")), Environment: "pr_7", Head: head, Base: &base,
		BaseIsDeployed: true, HasProductionState: true, PRNumber: 7}
	done := framework.CompletePlan(c, o, cmp)
	require.Equal(t, plan.StatusNoChanges, done.Status, done.Error)
	d := done.Summary.DBT
	assert.False(t, d.Deploy, "a PR build deploys nothing, version bump or not")
	assert.Equal(t, plan.ScopeNone, d.Scope)
	assert.Empty(t, d.Commands)
	assert.Equal(t, "dbt_pr_7", d.PRBuild.Schema)
	assert.Equal(t, []plan.FileChange{{Path: model, Type: plan.FileModel, Change: "modified"}}, d.Files)

	cmp.PRNumber = 0
	mismatch := framework.CompletePlan(c, framework.InterpretPlan(fw, jobs.Result{}, captured(t, "pr_build_deferred"), nil), cmp)
	assert.Equal(t, plan.StatusFailed, mismatch.Status, "a PR build printed for another environment is not taken")

	failed := framework.InterpretPlan(fw, jobs.Result{ExitCode: 1}, captured(t, "pr_build_failure"), nil)
	assert.Equal(t, plan.StatusFailed, failed.Status)
	assert.Contains(t, failed.Error, "Runtime Error in model stg_customers (models/staging/stg_customers.sql)")
	require.NotNil(t, failed.Summary, "the failed build is shown")
	_, _, nFailed, skipped := failed.Summary.DBT.PRBuild.Counts()
	assert.Equal(t, 1, nFailed)
	assert.Positive(t, skipped)
}
