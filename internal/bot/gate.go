package bot

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dagctl/dagctl-bot/internal/approval"
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

func envFacts(e repoconfig.Environment, trigger repoconfig.ApplyTrigger) deploy.Env {
	return deploy.Env{Name: e.Name, AppliesOnTrigger: e.AppliesOn(trigger), NeedsApproval: e.NeedsApproval(), Appliers: e.Appliers}
}

// requestGatherer reads the facts of an apply request as the decision asks for them. The environment's facts
// (appliers, divergence) are read once per environment, whatever the number of its projects.
type requestGatherer struct {
	b       *Bot
	forge   vcs.Forge
	pr      vcs.PullRequest
	applier map[string]bool
	behind  map[string]int
	// approval is the last approval evaluated, for the approval check of a refusal.
	approval approval.Result
}

func newRequestGatherer(b *Bot, forge vcs.Forge, pr vcs.PullRequest) *requestGatherer {
	return &requestGatherer{b: b, forge: forge, pr: pr, applier: map[string]bool{}, behind: map[string]int{}}
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
				if ok, err = g.b.allowedApplier(ctx, g.forge, g.pr.Repo, t.Env.Appliers, f.User); err != nil {
					return d, err
				}
				g.applier[t.Env.Name] = ok
			}
			t.Applier = &ok
		case deploy.NeedBehind:
			n, known := g.behind[t.Env.Name]
			if !known {
				var err error
				if n, err = g.b.behind(ctx, g.forge, g.pr.Repo, g.pr.BaseRef, g.pr.HeadSHA); err != nil {
					return d, err
				}
				g.behind[t.Env.Name] = n
			}
			t.Behind = &n
		case deploy.NeedApproval:
			res, err := g.b.approvals.Evaluate(ctx, g.forge, c.plan, c.pc)
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
func (b *Bot) candidates(ctx context.Context, pr vcs.PullRequest, cfg repoconfig.Config, env repoconfig.Environment, trigger repoconfig.ApplyTrigger) ([]candidate, error) {
	plans, err := b.store.ListPlansByPR(ctx, pr.Repo.Forge, pr.Repo.FullName(), pr.Number)
	if err != nil {
		return nil, err
	}
	var out []candidate
	for _, project := range cfg.Projects {
		c := candidate{target: deploy.Target{Env: envFacts(env, trigger), Name: env.Name}}
		if len(cfg.Projects) > 1 {
			c.target.Name = project.Name + "/" + env.Name
		}
		for _, p := range plans {
			if p.HeadSHA == pr.HeadSHA && p.Project == project.Name && p.Environment == env.Name {
				c.plan = p // the newest wins: plans are listed oldest first
			}
		}
		if c.plan.ID != 0 {
			if err := b.planFacts(ctx, &c); err != nil {
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
func (b *Bot) planFacts(ctx context.Context, c *candidate) error {
	p := c.plan
	f := deploy.Plan{Found: true, Status: p.Status, HasSummary: p.Summary != nil}
	if p.Summary != nil {
		f.Uncategorized = p.Summary.Uncategorized()
	}
	applicable := p.Status == plan.StatusNoChanges || p.Status == plan.StatusReady && f.HasSummary && len(f.Uncategorized) == 0
	if applicable {
		var err error
		if f.ApplyRunning, f.Applied, err = b.applyState(ctx, p); err != nil {
			return err
		}
	}
	c.target.Plan = f
	return nil
}

// applyState is the plan's latest apply: queued or running (its run id), or succeeded. A failed or cancelled
// latest apply is neither: applying again resumes it.
func (b *Bot) applyState(ctx context.Context, p db.Plan) (running int64, applied bool, err error) {
	runs, err := b.store.ListRuns(ctx, p.ID)
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

// behind is how many commits head lacks of the deploy branch's head: applying it to a protected environment
// would roll back what was merged since.
func (b *Bot) behind(ctx context.Context, forge vcs.Forge, repo vcs.Repo, branch, head string) (int, error) {
	c, err := forge.Compare(ctx, repo, branch, head)
	if err != nil {
		return 0, fmt.Errorf("comparing %s with %s: %w", prstate.Short(head), branch, err)
	}
	return c.Behind, nil
}

// contentCheck is what the content rule found for an apply.
type contentCheck struct {
	hash     string // the project's content hash at the apply's commit; "" for unprotected environments
	accepted bool   // an admin accepted unreviewed files: the plan at the commit is applied as it is
}

// lockedFacts are the facts of an apply that the decision reads again under the lock.
func (req applyRequest) lockedFacts() deploy.Facts {
	pr := req.pc.PR
	return deploy.Facts{Step: deploy.StepLocked, Trigger: req.trigger, User: req.user,
		Request: deploy.Request{Accept: req.accept},
		PR:      deploy.PR{HeadSHA: pr.HeadSHA, BaseRef: pr.BaseRef, DefaultBranch: pr.Repo.DefaultBranch},
		Target:  &deploy.Target{Env: envFacts(req.pc.Env, req.trigger), Name: req.pc.Env.Name, SHA: req.sha, AtBranchHead: req.atBranchHead}}
}

// protectedContent decides, holding the environment's lock, whether the environment may receive the commit
// (deploy.StepLocked), reading the divergence and the content from the forge as the decision asks. It returns
// the ending when the apply must stop.
func (b *Bot) protectedContent(ctx context.Context, forge vcs.Forge, req applyRequest, f deploy.Facts) (contentCheck, *applyEnding) {
	refuse := func(title, summary string) (contentCheck, *applyEnding) {
		return contentCheck{}, &applyEnding{conclusion: vcs.StatusFailure, title: title, summary: summary, exitCode: -1, reason: title}
	}
	t := f.Target
	for {
		d := deploy.Decide(f)
		switch d.Verdict {
		case deploy.Apply:
			check := contentCheck{accepted: d.Has(deploy.CodeContentAccepted)}
			if t.Content != nil {
				check.hash = t.Content.Hash
			}
			if check.accepted {
				b.log.Warn("applying content no approved plan covered, accepted by an admin", "env", req.pc.Env.Name, "user", req.user, "files", len(t.Content.Unreviewed), "hash", check.hash)
			}
			return check, nil
		case deploy.Refuse:
			return refuse(d.Reasons[0].Title, d.Reasons[0].Message)
		}
		switch d.Need {
		case deploy.NeedBehind:
			n, err := b.behind(ctx, forge, req.pc.PR.Repo, req.pc.PR.BaseRef, req.sha)
			if err != nil {
				return refuse("Could not compare with the deploy branch", err.Error())
			}
			t.Behind = &n
		case deploy.NeedContent:
			unreviewed, hash, err := b.unreviewedFiles(ctx, forge, req)
			if err != nil {
				return refuse("Could not compare the content with the last apply", err.Error()+"\n\nNothing was applied.")
			}
			t.Content = &deploy.ReviewedContent{Hash: hash, Unreviewed: unreviewed}
		default:
			return refuse("Could not decide", fmt.Sprintf("the deploy decision asked for %s (%s) under the lock", d.Need, d.Verdict))
		}
	}
}

// unreviewedFiles compares the project's files at the apply's commit with the environment's last applied content
// and the approved plan's change, with trees read from the forge (never from the job). The first apply of an
// environment has nothing to compare with: its plan covers the whole project.
func (b *Bot) unreviewedFiles(ctx context.Context, forge vcs.Forge, req applyRequest) ([]string, string, error) {
	repo, p := req.pc.PR.Repo, req.plan
	tree := func(sha string) (deploy.Files, error) {
		t, err := forge.Tree(ctx, repo, sha)
		if err != nil {
			return nil, fmt.Errorf("reading the files of %s: %w", prstate.Short(sha), err)
		}
		if t.Truncated {
			return nil, fmt.Errorf("the forge's file list of %s is truncated, so its content cannot be compared", prstate.Short(sha))
		}
		return t.Files, nil
	}
	target, err := tree(req.sha)
	if err != nil {
		return nil, "", err
	}
	hash := deploy.ContentHash(req.pc.Project.Path, target)
	last, err := b.store.LastApplied(ctx, p.Forge, p.Repo, p.Project, req.pc.Env.Name)
	switch {
	case errors.Is(err, db.ErrNotFound):
		return nil, hash, nil
	case err != nil:
		return nil, "", err
	case last.ContentHash == hash:
		return nil, hash, nil // the same content as applied last (a re-apply, a squash of it)
	}
	c := deploy.Content{ProjectPath: req.pc.Project.Path, Target: target}
	if c.LastApplied, err = tree(last.CommitSHA); err != nil {
		return nil, "", err
	}
	if c.Planned, err = tree(p.HeadSHA); err != nil {
		return nil, "", err
	}
	fork, err := forge.Compare(ctx, repo, p.BaseSHA, p.HeadSHA)
	if err != nil {
		return nil, "", fmt.Errorf("finding where the PR forked: %w", err)
	}
	if c.ForkPoint, err = tree(fork.MergeBase); err != nil {
		return nil, "", err
	}
	return deploy.UnreviewedFiles(c), hash, nil
}

// advanceAppliedContent moves a protected environment's record of applied content to a merge that had nothing to
// apply (a PR that changed no model: docs, CI files) when the PR's approval holds and the merge adds nothing
// else: the environment's state is then what the merged content says, and the next apply is not refused for
// files that were reviewed here. Best effort: without it the next apply names those files.
func (b *Bot) advanceAppliedContent(ctx context.Context, forge vcs.Forge, c candidate, sha, merger string) {
	if !c.pc.NeedsApproval() {
		return
	}
	if _, err := b.store.LastApplied(ctx, c.plan.Forge, c.plan.Repo, c.plan.Project, c.pc.Env.Name); err != nil {
		return // never applied by the bot: the first apply covers the whole project anyway
	}
	res, err := b.approvals.Evaluate(ctx, forge, c.plan, c.pc)
	if err != nil || !res.Approved {
		return
	}
	req := applyRequest{plan: c.plan, pc: c.pc, sha: sha, user: merger, trigger: repoconfig.ApplyOnMerge}
	unreviewed, hash, err := b.unreviewedFiles(ctx, forge, req)
	if err != nil || len(unreviewed) > 0 {
		return
	}
	if err := b.store.RecordApplied(ctx, db.AppliedContent{Forge: c.plan.Forge, Repo: c.plan.Repo, Project: c.plan.Project,
		Environment: c.pc.Env.Name, CommitSHA: sha, ContentHash: hash, PlanID: c.plan.ID, AppliedAt: time.Now()}); err != nil {
		b.log.Warn("recording reviewed content", "env", c.pc.Env.Name, "err", err)
	}
}
