package jobrun

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/bot/prstate"
	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/forgetest/memforge"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
	"github.com/dagctl/dagctl-bot/internal/retry"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

func TestChooseBase(t *testing.T) {
	assert.Equal(t, BaseCommit{SHA: "applied", Deployed: true}, chooseBase("applied", "fork"), "the environment's last apply wins")
	assert.Equal(t, BaseCommit{SHA: "fork"}, chooseBase("", "fork"))
	assert.Equal(t, BaseCommit{}, chooseBase("", ""), "none")
	assert.Equal(t, "comparing with abc, the commit last applied to prod", BaseCommit{SHA: "abc", Deployed: true}.describe("prod"))
	assert.Equal(t, "comparing with abc, the merge base (nothing applied to prod yet)", BaseCommit{SHA: "abc"}.describe("prod"))
}

// compareWorld is a runner on a real store and memforge, with a PR forked from main before main moved on.
type compareWorld struct {
	runner              *Runner
	store               *db.Store
	forge               *memforge.Forge
	plan                db.Plan
	pc                  prstate.PlanContext
	forkPoint, mainHead string
}

func newCompareWorld(t *testing.T) compareWorld {
	t.Helper()
	store, err := db.Open(filepath.Join(t.TempDir(), "dagctl.db"))
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	forge := memforge.New()
	repo := forge.AddRepo("acme", "warehouse", "main", "alice", map[string]string{
		repoconfig.Path: "version: 1\n", "dbt/dbt_project.yml": "name: shop\n", "dbt/models/a.sql": "select 1\n"})
	fork := forge.BranchSHA(repo, "main")
	head := forge.Commit(repo, "feature", "alice", map[string]string{"dbt/models/a.sql": "select 2\n"})
	mainHead := forge.Commit(repo, "main", "bob", map[string]string{"README.md": "later\n"})
	r := New(Config{Store: store, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		ForgeClock: retry.Clock{Sleep: func(context.Context, time.Duration) error { return nil }}})
	p := db.Plan{Forge: repo.Forge, Repo: repo.FullName(), PR: 1, Project: "marts", Environment: "prod", HeadSHA: head, BaseSHA: mainHead}
	pc := prstate.PlanContext{PR: vcs.PullRequest{Repo: repo, Number: 1, HeadSHA: head, BaseSHA: mainHead},
		Project: repoconfig.Project{Name: "marts", Path: "dbt", Framework: repoconfig.DBT}, Env: repoconfig.Environment{Name: "prod"}}
	return compareWorld{runner: r, store: store, forge: forge, plan: p, pc: pc, forkPoint: fork, mainHead: mainHead}
}

// The base commit is the environment's last apply as the store has it, else the PR's merge base as the forge
// computes it (not the PR's base commit, which moved on), its transient errors waited out.
func TestThePlansBaseCommitIsTheLastApplyElseTheMergeBase(t *testing.T) {
	ctx := context.Background()
	w := newCompareWorld(t)

	w.forge.FailNext("Compare", 1, errors.New("502 from the forge"))
	got, err := w.runner.pickBase(ctx, w.forge, w.plan, w.pc)
	require.NoError(t, err)
	assert.Equal(t, BaseCommit{SHA: w.forkPoint}, got, "nothing applied yet: the merge base")
	assert.Equal(t, 1, w.forge.Failed("Compare"), "the transient failure was waited out")

	require.NoError(t, w.store.RecordDeployed(ctx, db.DeployedState{Forge: w.plan.Forge, Repo: w.plan.Repo, Project: "marts",
		Environment: "dev", CommitSHA: w.mainHead, DeployedAt: time.Now()}))
	got, err = w.runner.pickBase(ctx, w.forge, w.plan, w.pc)
	require.NoError(t, err)
	assert.Equal(t, BaseCommit{SHA: w.forkPoint}, got, "another environment's deploy is not this one's")

	// An approved merge that deployed nothing (dbt: no version bump) moves the reviewed-content record
	// (AdvanceAppliedContent), never the base: the next plan still compares with what was deployed.
	require.NoError(t, w.store.RecordApplied(ctx, db.AppliedContent{Forge: w.plan.Forge, Repo: w.plan.Repo, Project: "marts",
		Environment: "prod", CommitSHA: w.mainHead, ContentHash: "h", AppliedAt: time.Now()}))
	got, err = w.runner.pickBase(ctx, w.forge, w.plan, w.pc)
	require.NoError(t, err)
	assert.Equal(t, BaseCommit{SHA: w.forkPoint}, got, "reviewed content alone is no deploy")

	require.NoError(t, w.store.RecordDeployed(ctx, db.DeployedState{Forge: w.plan.Forge, Repo: w.plan.Repo, Project: "marts",
		Environment: "prod", CommitSHA: w.mainHead, DeployedAt: time.Now()}))
	got, err = w.runner.pickBase(ctx, w.forge, w.plan, w.pc)
	require.NoError(t, err)
	assert.Equal(t, BaseCommit{SHA: w.mainHead, Deployed: true}, got, "the environment's last successful deploy")

	pushed := w.plan
	pushed.Environment, pushed.BaseSHA = "staging", ""
	got, err = w.runner.pickBase(ctx, w.forge, pushed, prstate.PlanContext{PR: w.pc.PR, Env: repoconfig.Environment{Name: "staging"}})
	require.NoError(t, err)
	assert.Equal(t, BaseCommit{}, got, "no base commit and nothing applied: none")
}

// A commit is read whole from the forge: a truncated tree cannot be compared, and a file the commit lacks is
// absent rather than empty.
func TestACommitIsReadWholeFromTheForge(t *testing.T) {
	ctx := context.Background()
	w := newCompareWorld(t)
	paths := []string{repoconfig.Path, "dbt/dbt_project.yml", "dbt/profiles.yml"}
	c, err := w.runner.readCommit(ctx, w.forge, w.pc.PR.Repo, w.plan.HeadSHA, paths)
	require.NoError(t, err)
	assert.Equal(t, w.plan.HeadSHA, c.SHA)
	assert.Len(t, c.Tree, 3)
	assert.Equal(t, "name: shop\n", string(c.Files["dbt/dbt_project.yml"]))
	_, has := c.Files["dbt/profiles.yml"]
	assert.False(t, has, "a file the commit lacks is absent")

	w.forge.TreeCap = 2
	_, err = w.runner.readCommit(ctx, w.forge, w.pc.PR.Repo, w.plan.HeadSHA, paths)
	assert.ErrorContains(t, err, "is truncated, so the commits cannot be compared")
}

// A plan run's base commit is stored with the run, so that a bot restarted while its job runs completes the
// plan from the base the job checked out; the run's end forgets it.
func TestAPlanRunsBaseCommitOutlivesARestartUntilTheRunEnds(t *testing.T) {
	ctx := context.Background()
	w := newCompareWorld(t)
	w.plan.Context = []byte("{}")
	p, err := w.store.CreatePlan(ctx, w.plan)
	require.NoError(t, err)
	run, _, err := w.store.CreateRun(ctx, p.ID, "plan", "local")
	require.NoError(t, err)

	assert.Nil(t, w.runner.rememberedBase(ctx, run.ID), "nothing stored: the plan picks again")
	w.runner.rememberBase(ctx, run.ID, BaseCommit{SHA: w.forkPoint})
	assert.Equal(t, &BaseCommit{SHA: w.forkPoint}, w.runner.rememberedBase(ctx, run.ID))

	_, err = w.store.FinishRun(ctx, run.ID, db.RunResult{Status: db.RunSucceeded})
	require.NoError(t, err)
	assert.Nil(t, w.runner.rememberedBase(ctx, run.ID), "forgotten with the run's end")
}

// A PR environment's plan (dbt's PR build) compares with, and is given the production state of, production's
// last deploy (PlanContext.StateFrom), not its own environment's, which is never deployed to.
func TestAPREnvironmentsPlanTakesProductionsDeployAndState(t *testing.T) {
	ctx := context.Background()
	w := newCompareWorld(t)
	p, pc := w.plan, w.pc
	p.Environment = "pr_1"
	pc.Env, pc.PREnvironment, pc.StateFrom = repoconfig.Environment{Name: "pr_1"}, true, "prod"

	base, state, err := w.runner.pickBaseAndState(ctx, w.forge, p, pc, p.HeadSHA)
	require.NoError(t, err)
	assert.Equal(t, BaseCommit{SHA: w.forkPoint}, base, "no deploy to prod yet: the merge base")
	assert.Nil(t, state)

	manifest := []byte(`{"nodes":{}}`)
	require.NoError(t, w.store.RecordDeployed(ctx, db.DeployedState{Forge: p.Forge, Repo: p.Repo, Project: "marts",
		Environment: "prod", CommitSHA: w.mainHead, Manifest: manifest, DeployedAt: time.Now()}))
	base, state, err = w.runner.pickBaseAndState(ctx, w.forge, p, pc, p.HeadSHA)
	require.NoError(t, err)
	assert.Equal(t, BaseCommit{SHA: w.mainHead, Deployed: true, ProductionState: true}, base)
	assert.Equal(t, manifest, state, "production's manifest, to defer to")
	assert.Equal(t, "comparing with the production state of "+w.mainHead+", the commit last deployed to prod", base.describe(pc.StateEnvironment()))

	pc.PREnvironment = false // a configured environment of the same name takes its own deploys
	base, _, err = w.runner.pickBaseAndState(ctx, w.forge, p, pc, p.HeadSHA)
	require.NoError(t, err)
	assert.Equal(t, BaseCommit{SHA: w.forkPoint}, base)
}
