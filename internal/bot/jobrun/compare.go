package jobrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dagctl/dagctl-bot/internal/bot/prstate"
	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/framework"
	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// The plans of a framework that compares two commits (framework.Comparer, dbt): the bot picks the base commit,
// the job checks it out beside the head, and the job's summary is completed from both commits as the forge
// shows them. Trust comes from the store and the forge: nothing here is read from the PR's text or the job.

// BaseCommit is the commit a plan's head is compared with, as the bot picked it.
type BaseCommit struct {
	SHA string `json:"sha,omitempty"` // "": none
	// Deployed: the commit last applied to the environment (else the merge base).
	Deployed bool `json:"deployed,omitempty"`
	// ProductionState: the job is given the environment's production state stored with that deploy
	// (framework.StateKeeper: dbt's manifest), so the plan compares with it.
	ProductionState bool `json:"production_state,omitempty"`
}

// describe says in the run's log what the plan compares with.
func (b BaseCommit) describe(env string) string {
	switch {
	case b.SHA == "":
		return "no base commit to compare with (nothing applied to " + env + ", no merge base): every file is new"
	case b.Deployed && b.ProductionState:
		return "comparing with the production state of " + b.SHA + ", the commit last deployed to " + env
	case b.Deployed:
		return "comparing with " + b.SHA + ", the commit last applied to " + env
	}
	return "comparing with " + b.SHA + ", the merge base (nothing applied to " + env + " yet)"
}

// chooseBase is the commit to compare with: the one last applied to the environment, else the merge base;
// "" for either is none. Pure.
func chooseBase(lastApplied, mergeBase string) BaseCommit {
	if lastApplied != "" {
		return BaseCommit{SHA: lastApplied, Deployed: true}
	}
	return BaseCommit{SHA: mergeBase}
}

// pickBase finds the base commit of a plan: the environment's last successful deploy as this bot recorded it
// (the store's deployed state, never the reviewed-content record an approved merge that deployed nothing moves),
// else the merge base of the plan's base and head commits (the forge's Compare; a push's base is the commit
// before it). A plan with no base commit (a new branch) has none.
func (r *Runner) pickBase(ctx context.Context, forge vcs.Forge, p db.Plan, pc prstate.PlanContext) (BaseCommit, error) {
	return r.pickBaseOf(ctx, forge, p, pc, p.HeadSHA)
}

// pickBaseOf is pickBase for the plan made again at head (an apply's commit).
func (r *Runner) pickBaseOf(ctx context.Context, forge vcs.Forge, p db.Plan, pc prstate.PlanContext, head string) (BaseCommit, error) {
	base, _, err := r.pickBaseAndState(ctx, forge, p, pc, head)
	return base, err
}

// pickBaseAndState is pickBaseOf with the production state stored with the deploy it picks (nil: none); the
// base says whether there is one.
func (r *Runner) pickBaseAndState(ctx context.Context, forge vcs.Forge, p db.Plan, pc prstate.PlanContext, head string) (BaseCommit, []byte, error) {
	last, err := r.Store.LastDeployed(ctx, p.Forge, p.Repo, p.Project, pc.StateEnvironment())
	switch {
	case err == nil && last.CommitSHA != "":
		base := chooseBase(last.CommitSHA, "")
		base.ProductionState = last.Manifest != nil
		return base, last.Manifest, nil
	case err != nil && !errors.Is(err, db.ErrNotFound):
		return BaseCommit{}, nil, err
	}
	if p.BaseSHA == "" || p.BaseSHA == head {
		return BaseCommit{}, nil, nil
	}
	var cmp vcs.Comparison
	err = r.ForgeRead(ctx, func() (err error) {
		cmp, err = forge.Compare(ctx, pc.PR.Repo, p.BaseSHA, head)
		return err
	}, nil)
	if err != nil {
		return BaseCommit{}, nil, fmt.Errorf("finding the merge base of %s and %s: %w", prstate.Short(p.BaseSHA), prstate.Short(head), err)
	}
	return chooseBase("", cmp.MergeBase), nil, nil
}

// rememberBase stores the plan run's base commit, so that a bot restarted while its job runs (a Kubernetes Job
// goes on) completes the plan from the base the job compared with.
func (r *Runner) rememberBase(ctx context.Context, runID int64, base BaseCommit) {
	raw, err := json.Marshal(base)
	if err == nil {
		err = r.Store.SetRunResume(ctx, runID, raw)
	}
	if err != nil {
		r.Log.Warn("storing a plan run's base commit", "run", runID, "err", err)
	}
}

// rememberedBase is what rememberBase stored for the run; nil when nothing was (the plan then picks again).
func (r *Runner) rememberedBase(ctx context.Context, runID int64) *BaseCommit {
	raw, err := r.Store.RunResume(ctx, runID)
	if err != nil {
		return nil
	}
	var base BaseCommit
	if json.Unmarshal(raw, &base) != nil {
		return nil
	}
	return &base
}

// readCommit reads what a Comparer needs of one commit from the forge: its whole tree (a truncated one cannot
// be compared) and the files it names.
func (r *Runner) readCommit(ctx context.Context, forge vcs.Forge, repo vcs.Repo, sha string, paths []string) (framework.Commit, error) {
	c := framework.Commit{SHA: sha, Files: map[string][]byte{}}
	var tree vcs.Tree
	err := r.ForgeRead(ctx, func() (err error) {
		tree, err = forge.Tree(ctx, repo, sha)
		return err
	}, nil)
	if err != nil {
		return c, fmt.Errorf("reading the files of %s: %w", prstate.Short(sha), err)
	}
	if tree.Truncated {
		return c, fmt.Errorf("the forge's file list of %s is truncated, so the commits cannot be compared", prstate.Short(sha))
	}
	c.Tree = tree.Files
	for _, path := range paths {
		var data []byte
		err := r.ForgeRead(ctx, func() (err error) {
			data, err = forge.ReadFile(ctx, repo, sha, path)
			return err
		}, nil)
		switch {
		case errors.Is(err, vcs.ErrNotFound):
		case err != nil:
			return c, fmt.Errorf("reading %s at %s: %w", path, prstate.Short(sha), err)
		default:
			c.Files[path] = data
		}
	}
	return c, nil
}

// completePlan completes a comparing framework's plan outcome from both commits as the forge shows them
// (framework.CompletePlan). A forge that cannot be read fails the plan, saying so; a bot stopping meanwhile
// leaves it for the next start.
func (r *Runner) completePlan(ctx context.Context, forge vcs.Forge, p db.Plan, pc prstate.PlanContext, c framework.Comparer, o planOutcome) planOutcome {
	return r.completeAt(ctx, forge, p, pc, p.HeadSHA, c, o)
}

// StepBase is the base commit of an apply's verifying plan at s.SHA when the project's framework compares two
// commits (nil otherwise): the same rules as the plan's (pickBase).
func (r *Runner) StepBase(ctx context.Context, forge vcs.Forge, s Step) (*BaseCommit, error) {
	fw, err := r.Jobs.Frameworks.For(s.Context.Project)
	if err != nil {
		return nil, err
	}
	if _, ok := framework.ComparerOf(fw); !ok {
		return nil, nil
	}
	base, err := r.pickBaseOf(ctx, forge, s.Plan, s.Context, s.SHA)
	return &base, err
}

// CompleteStep completes an apply's verifying plan at s.SHA from both commits, as a plan's (completePlan), when
// the project's framework compares two commits (s.Base, from StepBase, is set).
func (r *Runner) CompleteStep(ctx context.Context, forge vcs.Forge, s Step, o framework.PlanOutcome) framework.PlanOutcome {
	fw, err := r.Jobs.Frameworks.For(s.Context.Project)
	if err != nil || s.Base == nil {
		return o
	}
	c, ok := framework.ComparerOf(fw)
	if !ok {
		return o
	}
	done := r.completeAt(ctx, forge, s.Plan, s.Context, s.SHA, c, planOutcome{PlanOutcome: o, base: s.Base})
	if done.abandoned {
		return framework.PlanOutcome{Status: plan.StatusCancelled, Error: "the bot is shutting down", Result: o.Result}
	}
	return done.PlanOutcome
}

// completeAt is completePlan of the plan's job made at head.
func (r *Runner) completeAt(ctx context.Context, forge vcs.Forge, p db.Plan, pc prstate.PlanContext, head string, c framework.Comparer, o planOutcome) planOutcome {
	if o.Summary == nil {
		return o
	}
	fail := func(err error) planOutcome {
		if errors.Is(context.Cause(ctx), ErrShutdown) {
			return planOutcome{abandoned: true}
		}
		return planOutcome{PlanOutcome: framework.PlanOutcome{Status: plan.StatusFailed, Result: o.Result,
			Error: fmt.Sprintf("Could not compare the commits on the forge: %v", err)}}
	}
	base := o.base
	if base == nil { // a job an older process started without storing its base: the same rules again
		pick, err := r.pickBaseOf(ctx, forge, p, pc, head)
		if err != nil {
			return fail(err)
		}
		base = &pick
	}
	paths := c.CommitFiles(pc.Project)
	headCommit, err := r.readCommit(ctx, forge, pc.PR.Repo, head, paths)
	if err != nil {
		return fail(err)
	}
	cmp := framework.Comparison{Project: pc.Project, Environment: pc.Env.Name, Head: headCommit, BaseIsDeployed: base.Deployed,
		// The job was given the environment's production state (dbt: the manifest of its last successful
		// deploy, DAGCTL_DBT_STATE) exactly when its base says so: the store's, never the job's word.
		HasProductionState: base.ProductionState, PRNumber: pc.PRNumber()}
	if base.SHA != "" {
		b, err := r.readCommit(ctx, forge, pc.PR.Repo, base.SHA, paths)
		if err != nil {
			return fail(err)
		}
		cmp.Base = &b
	}
	o.PlanOutcome = framework.CompletePlan(c, o.PlanOutcome, cmp)
	return o
}
