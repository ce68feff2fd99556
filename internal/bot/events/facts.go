package events

import (
	"context"
	"fmt"

	"github.com/dagctl/dagctl-bot/internal/approval"
	"github.com/dagctl/dagctl-bot/internal/bot/apply"
	"github.com/dagctl/dagctl-bot/internal/bot/prstate"
	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/deploy"
	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// The deploy decision (deploy.Decide) is pure; this file gathers its facts from the forge and the store, each
// when the decision asks for it, and no earlier: a request refused early reads nothing more.

// prFacts are the PR's facts for the deploy decision, with the trust root from cfg (read from the default branch).
func prFacts(pr vcs.PullRequest, cfg repoconfig.Config) deploy.PR {
	return deploy.PR{Closed: pr.State == "closed", Merged: pr.Merged, Mergeable: pr.Mergeable, HeadSHA: pr.HeadSHA,
		BaseRef: pr.BaseRef, DefaultBranch: pr.Repo.DefaultBranch, BaseIsDeployBranch: cfg.IsDeployBranch(pr.BaseRef, pr.Repo.DefaultBranch)}
}

// requestGatherer reads the facts of an apply request as the decision asks for them. The environment's facts
// (appliers, divergence) are read once per environment, whatever the number of its projects.
type requestGatherer struct {
	h       *Handlers
	forge   vcs.Forge
	pr      vcs.PullRequest
	applier map[string]bool
	behind  map[string]int
	// approval is the last approval evaluated, for the approval check of a refusal.
	approval approval.Result
}

func newRequestGatherer(h *Handlers, forge vcs.Forge, pr vcs.PullRequest) *requestGatherer {
	return &requestGatherer{h: h, forge: forge, pr: pr, applier: map[string]bool{}, behind: map[string]int{}}
}

// decide evaluates the decision for one candidate, gathering what it needs until it decides.
func (g *requestGatherer) decide(ctx context.Context, f deploy.Facts, c *candidate) (deploy.Decision, error) {
	t := &c.target
	f.Target = t
	for {
		d := deploy.Decide(f)
		if d.Verdict != deploy.Undecided {
			return d, nil
		}
		switch d.Need {
		case deploy.NeedApplier:
			ok, known := g.applier[t.Env.Name]
			if !known {
				var err error
				if ok, err = g.h.allowedApplier(ctx, g.forge, g.pr.Repo, t.Env.Appliers, f.User); err != nil {
					return d, err
				}
				g.applier[t.Env.Name] = ok
			}
			t.Applier = &ok
		case deploy.NeedBehind:
			n, known := g.behind[t.Env.Name]
			if !known {
				var err error
				if n, err = apply.Behind(ctx, g.forge, g.pr.Repo, g.pr.BaseRef, g.pr.HeadSHA); err != nil {
					return d, err
				}
				g.behind[t.Env.Name] = n
			}
			t.Behind = &n
		case deploy.NeedApproval:
			res, err := g.h.Approvals.Evaluate(ctx, g.forge, c.plan, c.pc)
			if err != nil {
				return d, err
			}
			g.approval = res
			t.Approval = &deploy.Approval{Approved: res.Approved, Describe: res.Describe()}
		default:
			return d, fmt.Errorf("the deploy decision needs %s, which an apply request does not gather", d.Need)
		}
	}
}

// candidates are, for each project, the newest plan of the environment at the PR's head with the facts the
// decision reads of it. Protection comes from env, read fresh from the default branch.
func (h *Handlers) candidates(ctx context.Context, pr vcs.PullRequest, cfg repoconfig.Config, env repoconfig.Environment, trigger repoconfig.ApplyTrigger) ([]candidate, error) {
	plans, err := h.Store.ListPlansByPR(ctx, pr.Repo.Forge, pr.Repo.FullName(), pr.Number)
	if err != nil {
		return nil, err
	}
	var out []candidate
	for _, project := range cfg.Projects {
		c := candidate{target: deploy.Target{Env: deploy.EnvOf(env, trigger), Name: env.Name}}
		if len(cfg.Projects) > 1 {
			c.target.Name = project.Name + "/" + env.Name
		}
		for _, p := range plans {
			if p.HeadSHA == pr.HeadSHA && p.Project == project.Name && p.Environment == env.Name {
				c.plan = p // the newest wins: plans are listed oldest first
			}
		}
		if c.plan.ID != 0 {
			if err := h.planFacts(ctx, &c, project); err != nil {
				return nil, err
			}
			if c.pc, err = prstate.DecodeContext(c.plan); err != nil {
				return nil, err
			}
			c.pc.Env = env // protection as the default branch says now
		}
		out = append(out, c)
	}
	return out, nil
}

// planFacts fills in the plan's facts. Its applies are read only for a plan that could be applied: the others
// are refused for their status first.
func (h *Handlers) planFacts(ctx context.Context, c *candidate, project repoconfig.Project) error {
	p := c.plan
	f := deploy.Plan{Found: true, Status: p.Status, HasSummary: p.Summary != nil, Tool: string(project.Framework)}
	// A framework without categories has nothing to categorise: its changes are never refused as uncategorised.
	// One this bot does not run counts as categorising, so that the gate fails closed.
	categorizes := true
	if fw, err := h.Runner.Jobs.Frameworks.For(project); err == nil {
		categorizes = fw.Categorizes()
	}
	if p.Summary != nil && categorizes {
		f.Uncategorized = p.Summary.Uncategorized()
	}
	applicable := p.Status == plan.StatusNoChanges || p.Status == plan.StatusReady && f.HasSummary && len(f.Uncategorized) == 0
	if applicable {
		var err error
		if f.ApplyRunning, f.Applied, err = h.applyState(ctx, p); err != nil {
			return err
		}
	}
	c.target.Plan = f
	return nil
}

// applyState is the plan's latest apply: queued or running (its run id), or succeeded. A failed or cancelled
// latest apply is neither: applying again resumes it.
func (h *Handlers) applyState(ctx context.Context, p db.Plan) (running int64, applied bool, err error) {
	runs, err := h.Store.ListRuns(ctx, p.ID)
	if err != nil {
		return 0, false, err
	}
	for i := len(runs) - 1; i >= 0; i-- {
		r := runs[i]
		if r.Kind != jobs.KindApply {
			continue
		}
		switch {
		case !r.Status.Final():
			return r.ID, false, nil
		case r.Status == db.RunSucceeded:
			return 0, true, nil
		}
		return 0, false, nil
	}
	return 0, false, nil
}
