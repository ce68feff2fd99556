package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dagctl/dagctl-bot/internal/approval"
	"github.com/dagctl/dagctl-bot/internal/bot/jobrun"
	"github.com/dagctl/dagctl-bot/internal/bot/prstate"
	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/deploy"
	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/planner"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// lockPoll is how often a queued apply looks at the environment's lock again.
const lockPoll = 500 * time.Millisecond

// progressInterval spaces the apply check's progress updates (content-creating requests are rate limited).
const progressInterval = 2 * time.Second

// applyRequest is one apply to run: the approved plan, applied at a commit.
type applyRequest struct {
	plan    db.Plan
	pc      prstate.PlanContext
	sha     string // the PR's head (by comment) or its merge commit (on merge)
	user    string // who asked: the commenter, or whoever merged
	trigger repoconfig.ApplyTrigger
	// accept is a prefix of the content hash an admin accepted (`--accept`): the files no approved plan covered
	// were reviewed by them, and the plan at sha is applied as it is.
	accept string
	// atBranchHead: sha is the deploy branch's head (an admin's apply on a merged PR), which contains itself.
	atBranchHead bool
}

// candidate is a plan an apply would run, with the facts the deploy decision reads of it.
type candidate struct {
	plan   db.Plan
	pc     prstate.PlanContext
	target deploy.Target
}

// allowedApplier reports whether the user may apply the environment (appliers: logins or org/team slugs;
// empty means anyone with write permission, which the caller has checked).
func (b *Bot) allowedApplier(ctx context.Context, forge vcs.Forge, repo vcs.Repo, appliers []string, user string) (bool, error) {
	if len(appliers) == 0 {
		return true, nil
	}
	for _, a := range appliers {
		if !strings.Contains(a, "/") {
			if strings.EqualFold(strings.TrimPrefix(a, "@"), user) {
				return true, nil
			}
			continue
		}
		in, err := forge.InTeam(ctx, repo, a, user)
		if err != nil {
			return false, err
		}
		if in {
			return true, nil
		}
	}
	return false, nil
}

// applyByComment runs `/dagctl apply [env] [--accept HASH]`: the deploy decision must allow every plan first
// (the PR is open and mergeable — or merged, for an admin's --accept —, targets a deploy branch, contains the
// branch's head, the user may apply, the plan at the head is ready and approved), then the applies are queued on
// the environments' locks.
func (b *Bot) applyByComment(ctx context.Context, forge vcs.Forge, pr vcs.PullRequest, user, envName, accept string) error {
	unlock := b.lockPR(pr.Repo, pr.Number)
	defer unlock()
	facts := deploy.Facts{Step: deploy.StepAsked, Trigger: repoconfig.ApplyOnComment, User: user,
		Request: deploy.Request{EnvNamed: envName != "", Accept: accept}, PR: prFacts(pr, repoconfig.Config{})}
	d := deploy.Decide(facts)
	if d.Need == deploy.NeedAdmin {
		perm, err := forge.Permission(ctx, pr.Repo, user)
		if err != nil {
			return err
		}
		admin := perm == vcs.PermissionAdmin
		facts.Request.UserIsAdmin = &admin
		d = deploy.Decide(facts)
	}
	if d.Verdict == deploy.Refuse {
		return b.report.ReplyError(ctx, forge, pr, d.Reasons[0].Message)
	}
	cfg, _, err := b.loadConfig(ctx, forge, pr)
	if err != nil {
		return b.report.ReplyError(ctx, forge, pr, "Cannot read the config: "+err.Error())
	}
	facts.PR = prFacts(pr, cfg)
	envs, refusal := commentEnvironments(cfg, pr, envName)
	if refusal != "" {
		return b.report.ReplyError(ctx, forge, pr, refusal)
	}
	sha, atBranchHead := pr.HeadSHA, pr.Merged && accept != ""
	if atBranchHead {
		// An admin applies the deploy branch as it is now, having reviewed what no plan covered.
		if sha, err = forge.BranchHead(ctx, pr.Repo, pr.BaseRef); err != nil {
			return err
		}
	}
	ready, refusals, err := b.decideByComment(ctx, forge, pr, cfg, envs, facts)
	switch {
	case err != nil:
		return err
	case len(refusals) == 1 && refusals[0].Code.AboutRequest():
		return b.report.ReplyError(ctx, forge, pr, refusals[0].Message)
	case len(refusals) > 0:
		return b.report.ReplyError(ctx, forge, pr, "Not applied:\n\n- "+strings.Join(messages(refusals), "\n- "))
	case len(ready) == 0:
		return b.report.ReplyError(ctx, forge, pr, "Nothing to apply: the plans have no changes.")
	}
	for _, c := range ready {
		if err := b.queueApply(ctx, forge, applyRequest{plan: c.plan, pc: c.pc, sha: sha, user: user, trigger: repoconfig.ApplyOnComment, accept: accept, atBranchHead: atBranchHead}); err != nil {
			return err
		}
	}
	return b.report.Sticky(ctx, forge, pr, "")
}

// commentEnvironments are the environments `/dagctl apply [env]` is for, or why there are none. A named
// environment not applied by comment is left to the deploy decision (an admin's --accept on a merged PR applies it).
func commentEnvironments(cfg repoconfig.Config, pr vcs.PullRequest, envName string) ([]repoconfig.Environment, string) {
	if envName != "" {
		e, ok := Environment(cfg, pr.Number, envName)
		if !ok {
			return nil, fmt.Sprintf("Environment `%s` is not configured.", envName)
		}
		return []repoconfig.Environment{e}, ""
	}
	var envs []repoconfig.Environment
	for _, e := range Environments(cfg, pr.Number) {
		if e.AppliesOn(repoconfig.ApplyOnComment) {
			envs = append(envs, e)
		}
	}
	if len(envs) == 0 {
		return nil, "No environment of this repository is applied by comment."
	}
	return envs, ""
}

// decideByComment decides each plan of the environments: the ones to apply, and the reasons of the others (an
// environment's own reasons once, however many projects it has). A plan refused for its approval gets its
// approval check updated, so the PR shows what is missing.
func (b *Bot) decideByComment(ctx context.Context, forge vcs.Forge, pr vcs.PullRequest, cfg repoconfig.Config, envs []repoconfig.Environment, facts deploy.Facts) ([]candidate, []deploy.Reason, error) {
	g := newRequestGatherer(b, forge, pr)
	var ready []candidate
	var refusals []deploy.Reason
	seen := map[string]bool{}
	for _, e := range envs {
		cands, err := b.candidates(ctx, pr, cfg, e, repoconfig.ApplyOnComment)
		if err != nil {
			return nil, nil, err
		}
		for i := range cands {
			c := &cands[i]
			c.target.SHA = pr.HeadSHA
			d, err := g.decide(ctx, facts, c)
			if err != nil {
				return nil, nil, err
			}
			switch {
			case d.Verdict == deploy.Apply:
				ready = append(ready, *c)
			case d.Verdict != deploy.Refuse || seen[d.Reasons[0].Message]:
			case d.Reasons[0].Code.AboutRequest():
				return nil, []deploy.Reason{d.Reasons[0]}, nil
			default:
				seen[d.Reasons[0].Message] = true
				refusals = append(refusals, d.Reasons[0])
				if d.Has(deploy.CodeNotApproved) {
					if err := b.report.ApprovalStatus(ctx, forge, c.plan, c.pc, g.approval); err != nil {
						return nil, nil, err
					}
				}
			}
		}
	}
	return ready, refusals, nil
}

func messages(reasons []deploy.Reason) []string {
	out := make([]string, len(reasons))
	for i, r := range reasons {
		out[i] = r.Message
	}
	return out
}

// applyOnMerge applies the approved plans of a PR merged into a deploy branch, for environments applied on
// merge. Nothing unapproved is applied: the PR and the merge commit are told why.
func (b *Bot) applyOnMerge(ctx context.Context, forge vcs.Forge, pr vcs.PullRequest, merger string) error {
	unlock := b.lockPR(pr.Repo, pr.Number)
	defer unlock()
	cfg, present, err := b.loadConfig(ctx, forge, pr)
	if err != nil || !present {
		return err
	}
	facts := deploy.Facts{Step: deploy.StepAsked, Trigger: repoconfig.ApplyOnMerge, User: merger, PR: prFacts(pr, cfg)}
	if deploy.Decide(facts).Verdict == deploy.NothingToDo {
		return nil // merged into a branch that does not deploy
	}
	sha := pr.MergeCommitSHA
	if sha == "" {
		sha = pr.HeadSHA
	}
	g := newRequestGatherer(b, forge, pr)
	var notes []string
	for _, e := range Environments(cfg, pr.Number) {
		if !e.AppliesOn(repoconfig.ApplyOnMerge) {
			continue
		}
		cands, err := b.candidates(ctx, pr, cfg, e, repoconfig.ApplyOnMerge)
		if err != nil {
			return err
		}
		for i := range cands {
			c := &cands[i]
			c.target.SHA = sha
			d, err := g.decide(ctx, facts, c)
			if err != nil {
				return err
			}
			if err := b.carryOutMerge(ctx, forge, d, *c, g.approval, sha, merger, &notes); err != nil {
				return err
			}
		}
	}
	if len(notes) > 0 {
		if _, err := forge.CreateComment(ctx, pr.Repo, pr.Number, "⚠️ "+strings.Join(notes, "\n\n⚠️ ")); err != nil {
			return err
		}
	}
	return b.report.Sticky(ctx, forge, pr, "")
}

// carryOutMerge does what the decision says of one plan of a merge: queue its apply, record reviewed content
// of a plan with nothing to apply, or note why it was not applied (on the merge commit's apply check too, when
// the approval was missing).
func (b *Bot) carryOutMerge(ctx context.Context, forge vcs.Forge, d deploy.Decision, c candidate, res approval.Result, sha, merger string, notes *[]string) error {
	switch d.Verdict {
	case deploy.Apply:
		return b.queueApply(ctx, forge, applyRequest{plan: c.plan, pc: c.pc, sha: sha, user: merger, trigger: repoconfig.ApplyOnMerge})
	case deploy.NothingToDo:
		if d.Has(deploy.CodeNoChanges) {
			b.advanceAppliedContent(ctx, forge, c, sha, merger)
		}
		return nil
	}
	*notes = append(*notes, d.Reasons[0].Message)
	if !d.Has(deploy.CodeNotApproved) {
		return nil
	}
	const title = "Not applied: merged without approval"
	return b.report.PutStatus(ctx, forge, c.pc, c.plan.ID, vcs.Status{Name: c.pc.CheckName(prstate.CheckApply), CommitSHA: sha,
		State: vcs.StatusFailure, Description: title, Output: &vcs.StatusOutput{Title: title,
			Summary: "The plan for `" + c.pc.Env.Name + "` was not approved: " + res.Describe() + ".\n\nNothing was applied."}})
}

// queueApply stores the apply's run, shows it on its check and runs it in the background: it waits for the
// environment's lock, plans again at the commit, compares with the approved plan, and applies.
func (b *Bot) queueApply(ctx context.Context, forge vcs.Forge, req applyRequest) error {
	run, _, err := b.store.CreateRun(ctx, req.plan.ID, jobs.KindApply, b.executorName)
	if err != nil {
		return err
	}
	if err := b.reportApply(ctx, forge, req, run.ID, vcs.StatusQueued, "Queued", "Waiting for the environment's lock."); err != nil {
		return err
	}
	if req.trigger == repoconfig.ApplyOnComment {
		if _, err := forge.CreateComment(ctx, req.pc.PR.Repo, req.plan.PR, fmt.Sprintf("🚀 Applying `%s` at %s for @%s: planning again first, to make sure it still is what was approved.", req.pc.Env.Name, prstate.Short(req.sha), req.user)); err != nil {
			b.log.Warn("acknowledging an apply", "err", err)
		}
	}
	if !b.runner.InBackground(req.plan.ID, run.ID, nil, func(ctx context.Context) { b.runApply(ctx, forge, req, run) }) {
		return errors.New("the bot is shutting down")
	}
	return nil
}

// applyEnding is how an apply ended, for its check and the PR.
type applyEnding struct {
	conclusion vcs.StatusState
	title      string
	summary    string
	reason     string // stored with the run
	exitCode   int
	abandoned  bool // the bot is stopping: nothing is recorded
}

func (b *Bot) runApply(ctx context.Context, forge vcs.Forge, req applyRequest, run db.Run) {
	owner := db.LockOwner{PlanID: req.plan.ID, PR: req.plan.PR, User: req.user}
	end := b.applyUnderLock(ctx, forge, req, run, owner)
	if end.abandoned {
		// The bot is stopping: the run stays unfinished, and the next start ends it, releases its lock and says
		// how to resume (recoverApply).
		b.log.Info("left an apply for the next start", "run", run.ID)
		return
	}
	if err := b.store.Unlock(ctx, req.plan.Forge, req.plan.Repo, req.pc.Env.Name, owner); err != nil && !errors.Is(err, db.ErrNotLockOwner) {
		b.log.Warn("releasing a lock", "env", req.pc.Env.Name, "err", err)
	}
	exit := end.exitCode
	res := db.RunResult{Status: db.RunSucceeded, ExitCode: &exit, Reason: end.reason}
	switch end.conclusion {
	case vcs.StatusCancelled:
		res.Status = db.RunCancelled
	case vcs.StatusFailure:
		res.Status = db.RunFailed
	}
	if _, err := b.store.FinishRun(ctx, run.ID, res); err != nil {
		b.log.Warn("recording a finished apply", "run", run.ID, "err", err)
	}
	if err := b.reportApply(ctx, forge, req, run.ID, end.conclusion, end.title, end.summary); err != nil {
		b.log.Error("reporting an apply", "run", run.ID, "err", err)
	}
	unlock := b.lockPR(req.pc.PR.Repo, req.plan.PR)
	defer unlock()
	body := fmt.Sprintf("%s `%s`: %s", map[bool]string{true: "✅", false: "❌"}[end.conclusion == vcs.StatusSuccess], req.pc.Env.Name, end.title)
	if end.conclusion != vcs.StatusSuccess && end.summary != "" {
		body += "\n\n" + end.summary
	}
	if _, err := forge.CreateComment(ctx, req.pc.PR.Repo, req.plan.PR, body); err != nil {
		b.log.Warn("commenting an apply's end", "err", err)
	}
	if err := b.report.Sticky(ctx, forge, req.pc.PR, ""); err != nil {
		b.log.Warn("updating the sticky comment", "err", err)
	}
}

// applyUnderLock takes the environment's lock (waiting in line), checks the plan again and applies it.
func (b *Bot) applyUnderLock(ctx context.Context, forge vcs.Forge, req applyRequest, run db.Run, owner db.LockOwner) applyEnding {
	facts := req.lockedFacts()
	told := false
	for {
		held, ok, err := b.store.TryLock(ctx, req.plan.Forge, req.plan.Repo, req.pc.Env.Name, owner)
		if err != nil {
			return applyEnding{conclusion: vcs.StatusFailure, title: "Could not take the environment's lock", summary: err.Error(), exitCode: -1, reason: err.Error()}
		}
		facts.Target.Lock = &deploy.Lock{Ours: ok, PR: held.Owner.PR, User: held.Owner.User, PlanID: held.Owner.PlanID}
		d := deploy.Decide(facts)
		if d.Verdict != deploy.Wait {
			break
		}
		if b.runner.Cancelled(run.ID) {
			return applyEnding{conclusion: vcs.StatusCancelled, title: "Cancelled while waiting for the lock", exitCode: -1, reason: jobs.ReasonCancelled}
		}
		if b.runner.IsClosed() {
			return applyEnding{abandoned: true}
		}
		if !told {
			told = true
			msg := d.Reasons[0].Message
			_ = b.reportApply(ctx, forge, req, run.ID, vcs.StatusQueued, "Waiting for the lock", msg)
			if _, err := forge.CreateComment(ctx, req.pc.PR.Repo, req.plan.PR, "⏳ "+msg+" This apply runs when it is released."); err != nil {
				b.log.Warn("telling who holds a lock", "err", err)
			}
		}
		time.Sleep(lockPoll)
	}
	content, end := b.protectedContent(ctx, forge, req, facts)
	if end != nil {
		return *end
	}
	_ = b.reportApply(ctx, forge, req, run.ID, vcs.StatusRunning, "Checking the plan", "Planning again at "+prstate.Short(req.sha)+" to compare with the approved plan.")

	logw := b.store.NewRunLogWriter(run.ID, jobrun.LogFlushInterval)
	defer func() { _ = logw.Close(context.Background()) }()
	started := time.Now()

	// 1. Plan again at the commit about to be applied.
	var stdout strings.Builder
	verify, err := b.runner.RunStep(ctx, forge, jobrun.Step{Plan: req.plan, Context: req.pc, RunID: run.ID, Kind: jobs.KindPlan, Name: "verify", SHA: req.sha}, logw, func(l jobs.Line) {
		if l.Stream == "stdout" {
			stdout.WriteString(l.Text + "\n")
		}
	})
	if b.runner.Abandoned(run.ID, verify, err) {
		return applyEnding{abandoned: true}
	}
	if err != nil {
		return applyEnding{conclusion: vcs.StatusFailure, title: "Could not plan again", summary: err.Error(), exitCode: -1, reason: err.Error()}
	}
	if verify.Reason == jobs.ReasonCancelled {
		return applyEnding{conclusion: vcs.StatusCancelled, title: "Cancelled", exitCode: verify.ExitCode, reason: jobs.ReasonCancelled}
	}
	outcome := jobrun.InterpretPlan(verify, stdout.String(), nil)
	if outcome.Summary == nil || outcome.Status == plan.StatusFailed {
		return applyEnding{conclusion: vcs.StatusFailure, title: "Planning again failed: nothing was applied", summary: fence(outcome.Error), exitCode: verify.ExitCode, reason: "verify plan failed"}
	}
	facts.Step, facts.Target.ContentAccepted = deploy.StepReplanned, content.accepted
	facts.Target.ScopeDifferences = plan.ScopeDifferences(*req.plan.Summary, *outcome.Summary)
	if d := deploy.Decide(facts); d.Verdict != deploy.Apply {
		if err := b.replaceApprovedPlan(ctx, forge, req, *outcome.Summary); err != nil {
			b.log.Error("storing the changed plan", "err", err)
		}
		return applyEnding{conclusion: vcs.StatusFailure, title: d.Reasons[0].Title, summary: d.Reasons[0].Message, exitCode: -1, reason: "plan changed since approval"}
	}

	// 2. Apply, with sqlmesh's per-batch progress on the check.
	progress := newProgressReporter(b, forge, req, run.ID)
	res, err := b.runner.RunStep(ctx, forge, jobrun.Step{Plan: req.plan, Context: req.pc, RunID: run.ID, Kind: jobs.KindApply, Name: "apply", SHA: req.sha}, logw, progress.line)
	progress.stop()
	duration := time.Since(started).Round(time.Second)
	if b.runner.Abandoned(run.ID, res, err) {
		return applyEnding{abandoned: true}
	}
	switch {
	case err != nil:
		return applyEnding{conclusion: vcs.StatusFailure, title: "The apply could not run", summary: err.Error(), exitCode: -1, reason: err.Error()}
	case res.Reason == jobs.ReasonCancelled:
		return applyEnding{conclusion: vcs.StatusCancelled, title: "Cancelled: comment `/dagctl apply` to resume (completed intervals are kept)", exitCode: res.ExitCode, reason: res.Reason}
	case !res.Succeeded():
		_ = logw.Flush(ctx)
		tail, _ := b.store.RunLogTail(ctx, run.ID, 30)
		return applyEnding{conclusion: vcs.StatusFailure, title: fmt.Sprintf("Apply failed after %s: comment `/dagctl apply` to retry (completed intervals are kept)", duration),
			summary: fence(logText(tail)), exitCode: res.ExitCode, reason: firstNonEmpty(res.Reason, "exit code "+strconv.Itoa(res.ExitCode))}
	}
	if content.hash != "" {
		if err := b.store.RecordApplied(ctx, db.AppliedContent{Forge: req.plan.Forge, Repo: req.plan.Repo, Project: req.plan.Project,
			Environment: req.pc.Env.Name, CommitSHA: req.sha, ContentHash: content.hash, PlanID: req.plan.ID, AppliedAt: time.Now()}); err != nil {
			b.log.Error("recording what was applied", "env", req.pc.Env.Name, "err", err)
		}
	}
	return applyEnding{conclusion: vcs.StatusSuccess, title: fmt.Sprintf("Applied in %s", duration),
		summary: fmt.Sprintf("Applied the approved plan to `%s` at %s (%s).", req.pc.Env.Name, prstate.Short(req.sha), progress.describe()), exitCode: res.ExitCode}
}

// replaceApprovedPlan stores the plan made at apply time as the PR's current plan for the environment and marks
// the approved one stale. The new plan's result is posted now, so only reviews given after it count: its scope
// was not reviewed.
func (b *Bot) replaceApprovedPlan(ctx context.Context, forge vcs.Forge, req applyRequest, summary plan.Summary) error {
	pc := req.pc
	raw, err := json.Marshal(pc)
	if err != nil {
		return err
	}
	p := req.plan
	next, err := b.store.CreatePlan(ctx, db.Plan{Forge: p.Forge, Repo: p.Repo, PR: p.PR, Project: p.Project, Environment: p.Environment,
		HeadSHA: p.HeadSHA, BaseSHA: p.BaseSHA, TriggerUser: req.user, Flags: p.Flags, Context: raw})
	if err != nil {
		return err
	}
	if _, err := b.store.SetPlanStatus(ctx, next.ID, plan.StatusRunning); err != nil {
		return err
	}
	if next, err = b.store.SetPlanResult(ctx, next.ID, db.PlanResult{Status: plan.Outcome(summary), Summary: &summary}); err != nil {
		return err
	}
	if _, err := b.store.SetPlanStatus(ctx, p.ID, plan.StatusStale); err != nil {
		b.log.Warn("marking the approved plan stale", "plan", p.ID, "err", err)
	}
	unlock := b.lockPR(pc.PR.Repo, p.PR)
	defer unlock()
	return b.report.FinishedPlan(ctx, forge, next, pc, 0)
}

// progressReporter turns sqlmesh's per-batch lines into updates of the apply check, at most one per
// progressInterval.
type progressReporter struct {
	b       *Bot
	forge   vcs.Forge
	req     applyRequest
	runID   int64
	mu      sync.Mutex
	batches int
	last    planner.Progress
	changed bool
	done    chan struct{}
	stopped chan struct{}
}

func newProgressReporter(b *Bot, forge vcs.Forge, req applyRequest, runID int64) *progressReporter {
	p := &progressReporter{b: b, forge: forge, req: req, runID: runID, done: make(chan struct{}), stopped: make(chan struct{})}
	go p.loop()
	return p
}

func (p *progressReporter) line(l jobs.Line) {
	pr, ok := planner.ParseProgress(l.Text)
	if !ok {
		return
	}
	p.mu.Lock()
	p.batches++
	p.last, p.changed = pr, true
	p.mu.Unlock()
}

func (p *progressReporter) loop() {
	defer close(p.stopped)
	t := time.NewTicker(progressInterval)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-t.C:
		}
		p.mu.Lock()
		changed, last, n := p.changed, p.last, p.batches
		p.changed = false
		p.mu.Unlock()
		if !changed {
			continue
		}
		summary := fmt.Sprintf("%d batches done. Latest: `%s` %s (batch %d/%d).", n, last.Model, last.Action, last.Batch, last.Batches)
		_ = p.b.reportApply(context.Background(), p.forge, p.req, p.runID, vcs.StatusRunning, fmt.Sprintf("Applying: %d batches done", n), summary)
	}
}

func (p *progressReporter) stop() {
	close(p.done)
	<-p.stopped
}

func (p *progressReporter) describe() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return fmt.Sprintf("%d batches", p.batches)
}

func fence(s string) string {
	if s == "" {
		return ""
	}
	return "```text\n" + strings.ReplaceAll(s, "```", "'''") + "\n```"
}

func logText(lines []db.LogLine) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.Text)
		b.WriteByte('\n')
	}
	return strings.TrimRight(b.String(), "\n")
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// reportApply shows an apply on its status, `dagctl/apply: <env>`, on the applied commit.
func (b *Bot) reportApply(ctx context.Context, forge vcs.Forge, req applyRequest, runID int64, state vcs.StatusState, title, summary string) error {
	return b.report.ApplyStatus(ctx, forge, req.pc, req.plan.ID, req.sha, runID, state, title, summary)
}
