// Package apply is the apply sequence: an approved plan waits for its environment's lock, is decided again
// under it (deploy.StepLocked: divergence, reviewed content), planned again at the commit to apply and compared
// (deploy.StepReplanned), then applied, with its progress on the apply status and its content recorded.
package apply

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dagctl/dagctl-bot/internal/bot/approvals"
	"github.com/dagctl/dagctl-bot/internal/bot/jobrun"
	"github.com/dagctl/dagctl-bot/internal/bot/prstate"
	"github.com/dagctl/dagctl-bot/internal/bot/report"
	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/deploy"
	"github.com/dagctl/dagctl-bot/internal/framework"
	"github.com/dagctl/dagctl-bot/internal/image"
	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// Sequence runs applies.
type Sequence struct {
	Store        prstate.Store
	Forges       func(name string) (vcs.Forge, bool)
	Runner       *jobrun.Runner
	Report       *report.Reporter
	Approvals    *approvals.Evaluator
	Locks        *prstate.PRLocks
	Log          *slog.Logger
	ExecutorName string
	// Images build a dbt deploy's image, by the project's builder (the server's: layers, with the operator's
	// registry keychain). A project whose builder has none here fails its apply, saying so.
	Images map[repoconfig.ImageBuilder]image.Builder
	// LockWaits is told how long each apply waited for its environment's lock (the metrics). Optional.
	LockWaits LockWaits
}

// LockWaits is told each apply's wait for its environment's lock: acquired, or given up (cancelled, failed, the
// bot stopping). An apply that found the lock free waited about nothing, and is told too; one refused under the
// lock's decision for another reason is not.
type LockWaits interface {
	LockWaited(wait time.Duration, acquired bool)
}

// lockPoll is how often a queued apply looks at the environment's lock again.
const lockPoll = 500 * time.Millisecond

// progressInterval spaces the apply check's progress updates (content-creating requests are rate limited).
const progressInterval = 2 * time.Second

// Request is one apply to run: the approved plan, applied at a commit.
type Request struct {
	Plan    db.Plan
	Context prstate.PlanContext
	SHA     string // the PR's head (by comment) or its merge commit (on merge)
	User    string // who asked: the commenter, or whoever merged
	Trigger repoconfig.ApplyTrigger
	// Accept is a prefix of the content hash an admin accepted (`--accept`): the files no approved plan covered
	// were reviewed by them, and the plan at SHA is applied as it is.
	Accept string
	// AtBranchHead: SHA is the deploy branch's head (an admin's apply on a merged PR), which contains itself.
	AtBranchHead bool
}

// pr is the PR the apply answers on.
func (req Request) pr() vcs.PullRequest {
	return vcs.PullRequest{Repo: req.Context.PR.Repo, Number: req.Plan.PR}
}

// Queue stores the apply's run, shows it on its check and runs it in the background: it waits for the
// environment's lock, plans again at the commit, compares with the approved plan, and applies.
func (s *Sequence) Queue(ctx context.Context, forge vcs.Forge, req Request) error {
	run, _, err := s.Store.CreateRun(ctx, req.Plan.ID, jobs.KindApply, s.ExecutorName)
	if err != nil {
		return err
	}
	if err := s.reportApply(ctx, forge, req, run.ID, vcs.StatusQueued, "Queued", "Waiting for the environment's lock."); err != nil {
		return err
	}
	if req.Trigger == repoconfig.ApplyOnComment {
		if err := s.Report.Reply(ctx, req.pr(), fmt.Sprintf("🚀 Applying `%s` at %s for @%s: planning again first, to make sure it still is what was approved.", req.Context.Env.Name, prstate.Short(req.SHA), req.User)); err != nil {
			s.Log.Warn("acknowledging an apply", "err", err)
		}
	}
	if !s.Runner.InBackground(req.Plan.ID, run.ID, nil, func(ctx context.Context) { s.runApply(ctx, forge, req, run) }) {
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
	abandoned  bool   // the bot is stopping: nothing is recorded
	note       string // told with a success (the deploy image built, or none)
}

func (s *Sequence) runApply(ctx context.Context, forge vcs.Forge, req Request, run db.Run) {
	owner := req.owner()
	end := withCause(ctx, s.applyUnderLock(ctx, forge, req, run, owner))
	s.finish(context.WithoutCancel(ctx), forge, req, run, owner, end)
}

// withCause is how an apply whose run's context ended (context.Cause) ends: a shutdown leaves it for the next
// start; a cancel ends it as cancelled, saying why, whatever step it stopped at (a forge read or a store call
// cut short fails only because of it).
func withCause(ctx context.Context, end applyEnding) applyEnding {
	cause := context.Cause(ctx)
	if cause == nil || end.abandoned || end.conclusion == vcs.StatusSuccess {
		return end
	}
	if errors.Is(cause, jobrun.ErrShutdown) {
		return applyEnding{abandoned: true}
	}
	title := end.title
	if end.conclusion != vcs.StatusCancelled {
		title = "Cancelled: " + cause.Error()
	}
	return applyEnding{conclusion: vcs.StatusCancelled, title: title, summary: "Cancelled: " + cause.Error() + ".",
		exitCode: end.exitCode, reason: jobs.ReasonCancelled + ": " + cause.Error()}
}

// owner is who holds the environment's lock for the apply.
func (req Request) owner() db.LockOwner {
	return db.LockOwner{PlanID: req.Plan.ID, PR: req.Plan.PR, User: req.User}
}

// finish ends an apply, begun by this process or followed after a restart: its lock released, the run
// recorded, its check, a reply and the sticky comment.
func (s *Sequence) finish(ctx context.Context, forge vcs.Forge, req Request, run db.Run, owner db.LockOwner, end applyEnding) {
	if end.abandoned {
		// The bot is stopping: the run stays unfinished, and the next start ends it, releases its lock and says
		// how to resume (recoverApply).
		s.Log.Info("left an apply for the next start", "run", run.ID)
		return
	}
	if err := s.Store.Unlock(ctx, req.Plan.Forge, req.Plan.Repo, req.Context.Env.Name, owner); err != nil && !errors.Is(err, db.ErrNotLockOwner) {
		s.Log.Warn("releasing a lock", "env", req.Context.Env.Name, "err", err)
	}
	exit := end.exitCode
	res := db.RunResult{Status: db.RunSucceeded, ExitCode: &exit, Reason: end.reason}
	switch end.conclusion {
	case vcs.StatusCancelled:
		res.Status = db.RunCancelled
	case vcs.StatusFailure:
		res.Status = db.RunFailed
	}
	// Told before the run is recorded as finished, the reply keyed by the run: a bot killed in between leaves
	// the run unfinished, so the next start follows it again (Kubernetes: its Job ended, the same end is told,
	// once) or ends it as interrupted (local), instead of leaving a finished run whose check still runs.
	if err := s.reportApply(ctx, forge, req, run.ID, end.conclusion, end.title, end.summary); err != nil {
		s.Log.Error("reporting an apply", "run", run.ID, "err", err)
	}
	if err := s.Report.ReplyOnce(ctx, req.pr(), "apply-end|"+strconv.FormatInt(run.ID, 10), endReply(req.Context.Env.Name, end)); err != nil {
		s.Log.Warn("commenting an apply's end", "err", err)
	}
	if _, err := s.Store.FinishRun(ctx, run.ID, res); err != nil {
		s.Log.Warn("recording a finished apply", "run", run.ID, "err", err)
	}
	unlock := s.Locks.Lock(req.Context.PR.Repo, req.Plan.PR)
	defer unlock()
	if err := s.Report.Sticky(ctx, forge, req.Context.PR, ""); err != nil {
		s.Log.Warn("updating the sticky comment", "err", err)
	}
}

// endReply is what the PR is told when an apply ends.
func endReply(env string, end applyEnding) string {
	body := fmt.Sprintf("%s `%s`: %s", map[bool]string{true: "✅", false: "❌"}[end.conclusion == vcs.StatusSuccess], env, end.title)
	if end.conclusion != vcs.StatusSuccess && end.summary != "" {
		body += "\n\n" + end.summary
	}
	if end.conclusion == vcs.StatusSuccess && end.note != "" {
		body += "\n\n" + strings.ToUpper(end.note[:1]) + end.note[1:] + "."
	}
	return body
}

// applyUnderLock takes the environment's lock (waiting in line), decides again under it, plans again and
// applies.
func (s *Sequence) applyUnderLock(ctx context.Context, forge vcs.Forge, req Request, run db.Run, owner db.LockOwner) applyEnding {
	facts := req.lockedFacts()
	if end := s.waitForLock(ctx, forge, req, run, owner, &facts); end != nil {
		return *end
	}
	content, end := s.protectedContent(ctx, forge, req, run, facts)
	if end != nil {
		return *end
	}
	_ = s.reportApply(ctx, forge, req, run.ID, vcs.StatusRunning, "Checking the plan", "Planning again at "+prstate.Short(req.SHA)+" to compare with the approved plan.")

	logw := s.Store.NewRunLogWriter(run.ID, jobrun.LogFlushInterval)
	defer func() { _ = logw.Close(context.Background()) }()
	state := resumeStateOf(req, content, time.Now())
	if err := s.saveResume(ctx, run.ID, state); err != nil {
		// Without it a restart cannot follow the jobs below: it stops them and ends the apply as interrupted.
		s.Log.Warn("storing an apply's resume state", "run", run.ID, "err", err)
	}
	facts.Target.ContentAccepted = content.accepted
	job := s.startStep(forge, logw, s.waitingForForge(forge, req, run.ID))
	if end := s.replan(ctx, forge, req, run, logw, facts, job); end != nil {
		return *end
	}
	built, end := s.buildImage(ctx, forge, req, run, logw, job)
	if end != nil {
		return *end
	}
	return s.applyStep(ctx, forge, req, run, logw, content, state.Started, job, built)
}

// stepJob runs one job of the apply and waits for it: started now (startStep), or, after a restart, the job a
// previous process started, followed.
type stepJob func(ctx context.Context, step jobrun.Step, onLine func(jobs.Line)) (jobs.Result, error)

// startStep starts each step's job now, its token request's transient errors told to waiting.
func (s *Sequence) startStep(forge vcs.Forge, logw *db.RunLogWriter, waiting func(error)) stepJob {
	return func(ctx context.Context, step jobrun.Step, onLine func(jobs.Line)) (jobs.Result, error) {
		step.ForgeWait = waiting
		return s.Runner.RunStep(ctx, forge, step, logw, onLine)
	}
}

// waitingForForge shows on the apply's check that it waits out a transient forge error, holding its lock: the
// apply is running, not failed.
func (s *Sequence) waitingForForge(forge vcs.Forge, req Request, runID int64) func(error) {
	return func(err error) {
		_ = s.reportApply(context.Background(), forge, req, runID, vcs.StatusRunning, "Waiting for the forge: "+err.Error(),
			"The forge answered with an error that may pass: the apply keeps the environment's lock and goes on when it answers again.")
	}
}

// forgeRead is how the apply's own forge reads are called: transient errors waited out (jobrun.Runner.ForgeRead).
type forgeRead func(op func() error) error

// readWaiting reads from the forge for the apply's run, saying on its check while it waits.
func (s *Sequence) readWaiting(ctx context.Context, forge vcs.Forge, req Request, runID int64) forgeRead {
	waiting := s.waitingForForge(forge, req, runID)
	return func(op func() error) error { return s.Runner.ForgeRead(ctx, op, waiting) }
}

// readOnce calls the forge once: for reads of a delivery's handler, which the dispatcher retries.
func readOnce(op func() error) error { return op() }

// waitForLock takes the environment's lock, or waits in line for it, saying once who holds it. It returns the
// ending when the apply stops while waiting.
func (s *Sequence) waitForLock(ctx context.Context, forge vcs.Forge, req Request, run db.Run, owner db.LockOwner, facts *deploy.Facts) (end *applyEnding) {
	if s.LockWaits != nil {
		began := time.Now()
		defer func() {
			acquired := facts.Target.Lock != nil && facts.Target.Lock.Ours
			if end == nil && !acquired {
				return // refused for another reason than the lock: not a wait for it
			}
			s.LockWaits.LockWaited(time.Since(began), end == nil)
		}()
	}
	told := false
	for {
		if ctx.Err() != nil || s.Runner.Cancelled(run.ID) {
			title := "Cancelled while waiting for the lock"
			if cause := context.Cause(ctx); cause != nil {
				title += ": " + cause.Error()
			}
			return &applyEnding{conclusion: vcs.StatusCancelled, title: title, exitCode: -1, reason: jobs.ReasonCancelled}
		}
		held, ok, err := s.Store.TryLock(ctx, req.Plan.Forge, req.Plan.Repo, req.Context.Env.Name, owner)
		if err != nil {
			return &applyEnding{conclusion: vcs.StatusFailure, title: "Could not take the environment's lock", summary: err.Error(), exitCode: -1, reason: err.Error()}
		}
		facts.Target.Lock = &deploy.Lock{Ours: ok, PR: held.Owner.PR, User: held.Owner.User, PlanID: held.Owner.PlanID}
		d := deploy.Decide(*facts)
		if d.Verdict != deploy.Wait {
			return nil
		}
		if s.Runner.IsClosed() {
			return &applyEnding{abandoned: true}
		}
		if !told {
			told = true
			msg := d.Reasons[0].Message
			_ = s.reportApply(ctx, forge, req, run.ID, vcs.StatusQueued, "Waiting for the lock", msg)
			if err := s.Report.Reply(ctx, req.pr(), "⏳ "+msg+" This apply runs when it is released."); err != nil {
				s.Log.Warn("telling who holds a lock", "err", err)
			}
		}
		select {
		case <-ctx.Done(): // cancelled, or the bot stops: said at the top of the loop
		case <-time.After(lockPoll):
		}
	}
}

// replan plans again at the commit about to be applied and decides on the scopes (deploy.StepReplanned). A
// changed scope is stored as the PR's new plan. It returns the ending when the apply stops here.
func (s *Sequence) replan(ctx context.Context, forge vcs.Forge, req Request, run db.Run, logw *db.RunLogWriter, facts deploy.Facts, job stepJob) *applyEnding {
	fw, err := s.Runner.Jobs.Frameworks.For(req.Context.Project)
	if err != nil {
		return &applyEnding{conclusion: vcs.StatusFailure, title: "Could not plan again", summary: err.Error(), exitCode: -1, reason: err.Error()}
	}
	step := jobrun.Step{Plan: req.Plan, Context: req.Context, RunID: run.ID, Kind: jobs.KindPlan, Name: stepVerify, SHA: req.SHA}
	// A framework whose plans compare two commits (dbt) plans again against the base the bot picks now (under the
	// lock, the environment's last apply does not move).
	if step.Base, err = s.Runner.StepBase(ctx, forge, step); err != nil {
		return &applyEnding{conclusion: vcs.StatusFailure, title: "Could not plan again", summary: err.Error(), exitCode: -1, reason: err.Error()}
	}
	verify, err := job(ctx, step, func(jobs.Line) {})
	if s.Runner.Abandoned(run.ID, verify, err) {
		return &applyEnding{abandoned: true}
	}
	if err != nil {
		return &applyEnding{conclusion: vcs.StatusFailure, title: "Could not plan again", summary: err.Error(), exitCode: -1, reason: err.Error()}
	}
	if verify.Reason == jobs.ReasonCancelled {
		return &applyEnding{conclusion: vcs.StatusCancelled, title: "Cancelled", exitCode: verify.ExitCode, reason: jobs.ReasonCancelled}
	}
	// The result is read back from the store, where the log writer kept it aside: a verifying plan followed
	// after a restart is interpreted from all it printed, before the restart too.
	stdout, err := s.resultLines(ctx, run.ID, logw)
	if err != nil {
		return &applyEnding{conclusion: vcs.StatusFailure, title: "Could not plan again", summary: err.Error(), exitCode: -1, reason: err.Error()}
	}
	outcome := s.Runner.CompleteStep(ctx, forge, step, framework.InterpretPlan(fw, verify, stdout, nil))
	if outcome.Summary == nil || outcome.Status == plan.StatusFailed {
		return &applyEnding{conclusion: vcs.StatusFailure, title: "Planning again failed: nothing was applied", summary: fence(outcome.Error), exitCode: verify.ExitCode, reason: "verify plan failed"}
	}
	facts.Step = deploy.StepReplanned
	facts.Target.ScopeDifferences = plan.ScopeDifferences(*req.Plan.Summary, *outcome.Summary)
	if d := deploy.Decide(facts); d.Verdict != deploy.Apply {
		if err := s.replaceApprovedPlan(ctx, forge, req, *outcome.Summary); err != nil {
			s.Log.Error("storing the changed plan", "err", err)
		}
		return &applyEnding{conclusion: vcs.StatusFailure, title: d.Reasons[0].Title, summary: d.Reasons[0].Message, exitCode: -1, reason: "plan changed since approval"}
	}
	return nil
}

// applyStep applies, with the framework's per-batch progress on the apply status, and records the content a
// protected environment now holds.
func (s *Sequence) applyStep(ctx context.Context, forge vcs.Forge, req Request, run db.Run, logw *db.RunLogWriter, content contentCheck, started time.Time, job stepJob, built deployImage) applyEnding {
	fw, err := s.Runner.Jobs.Frameworks.For(req.Context.Project)
	if err != nil {
		return applyEnding{conclusion: vcs.StatusFailure, title: "The apply could not run", summary: err.Error(), exitCode: -1, reason: err.Error()}
	}
	if d := req.Plan.Summary; d != nil && d.DBT != nil && d.DBT.Scope == plan.ScopeBuildOnly {
		return s.buildOnly(ctx, fw, req, logw, content, built)
	}
	progress := newProgressReporter(s, forge, req, run.ID, fw.ParseProgress)
	res, err := job(ctx, jobrun.Step{Plan: req.Plan, Context: req.Context, RunID: run.ID, Kind: jobs.KindApply, Name: stepApply, SHA: req.SHA,
		Image: built.ref, ImagePath: image.DefaultImagePath}, progress.line)
	progress.stop()
	duration := time.Since(started).Round(time.Second)
	if s.Runner.Abandoned(run.ID, res, err) {
		return applyEnding{abandoned: true}
	}
	switch {
	case err != nil:
		return applyEnding{conclusion: vcs.StatusFailure, title: "The apply could not run", summary: err.Error(), exitCode: -1, reason: err.Error()}
	case res.Reason == jobs.ReasonCancelled:
		return applyEnding{conclusion: vcs.StatusCancelled, title: "Cancelled: comment `/dagctl apply` to resume (completed intervals are kept)", exitCode: res.ExitCode, reason: res.Reason}
	case !res.Succeeded():
		_ = logw.Flush(ctx)
		tail, _ := s.Store.RunLogTail(ctx, run.ID, 30)
		return applyEnding{conclusion: vcs.StatusFailure, title: fmt.Sprintf("Apply failed after %s: comment `/dagctl apply` to retry (completed intervals are kept)", duration),
			summary: fence(logText(tail)), exitCode: res.ExitCode, reason: firstNonEmpty(res.Reason, "exit code "+strconv.Itoa(res.ExitCode))}
	}
	s.recordDeployed(ctx, fw, req, res, false)
	s.recordApplied(ctx, req, content)
	summary := fmt.Sprintf("Applied the approved plan to `%s` at %s (%s).", req.Context.Env.Name, prstate.Short(req.SHA), progress.describe())
	if built.note != "" {
		summary += "\n\n" + built.note
	}
	return applyEnding{conclusion: vcs.StatusSuccess, title: fmt.Sprintf("Applied in %s", duration), summary: summary, exitCode: res.ExitCode, note: built.note}
}

// buildOnly ends a build_only deploy: the image was its whole apply (or, with no image repository, nothing
// was to be done), and no dbt command runs. The environment's production state is the last deploy's: nothing
// dbt builds changed.
func (s *Sequence) buildOnly(ctx context.Context, fw framework.Framework, req Request, logw *db.RunLogWriter, content contentCheck, built deployImage) applyEnding {
	logw.Sink(jobs.Line{Stream: "stderr", Text: "dagctl: build_only: no dbt command runs"})
	s.recordDeployed(ctx, fw, req, jobs.Result{}, true)
	s.recordApplied(ctx, req, content)
	title := "Built the image: no dbt command runs (build_only)"
	if built.ref == "" {
		title = "Nothing to build: no image repository configured, and build_only runs no dbt command"
	}
	summary := fmt.Sprintf("Deployed `%s` at %s: build_only runs no dbt command.", req.Context.Env.Name, prstate.Short(req.SHA))
	if built.note != "" {
		summary += "\n\n" + built.note
	}
	return applyEnding{conclusion: vcs.StatusSuccess, title: title, summary: summary, note: built.note}
}

// recordApplied records the content a protected environment now holds.
func (s *Sequence) recordApplied(ctx context.Context, req Request, content contentCheck) {
	if content.hash == "" {
		return
	}
	if err := s.Store.RecordApplied(ctx, db.AppliedContent{Forge: req.Plan.Forge, Repo: req.Plan.Repo, Project: req.Plan.Project,
		Environment: req.Context.Env.Name, CommitSHA: req.SHA, ContentHash: content.hash, PlanID: req.Plan.ID, AppliedAt: time.Now()}); err != nil {
		s.Log.Error("recording what was applied", "env", req.Context.Env.Name, "err", err)
	}
}

// recordDeployed stores what an apply job that succeeded (every command) deployed: its commit, the base of the
// environment's next plans, and the production state the executor collected from the job
// (framework.StateKeeper), never read from its output. A state that is missing or over the cap is not stored
// (the next plans compare with the commit's files, so no selective deploy); the log says why.
//
// A deploy that ran no command of the tool (dbt's build_only: only the image changed) keeps the last deploy's
// state (carry): what the tool built is unchanged.
func (s *Sequence) recordDeployed(ctx context.Context, fw framework.Framework, req Request, res jobs.Result, carry bool) {
	d := db.DeployedState{Forge: req.Plan.Forge, Repo: req.Plan.Repo, Project: req.Plan.Project,
		Environment: req.Context.Env.Name, CommitSHA: req.SHA, PlanID: req.Plan.ID, DeployedAt: time.Now()}
	if _, ok := framework.StateKeeperOf(fw); ok && carry {
		if last, err := s.Store.LastDeployed(ctx, d.Forge, d.Repo, d.Project, d.Environment); err == nil {
			d.Manifest = last.Manifest
		}
	} else if k, ok := framework.StateKeeperOf(fw); ok {
		path := k.StateArtifact()
		switch manifest, ok := res.Artifacts[path]; {
		case !ok:
			s.Log.Warn("the apply left no production state", "env", d.Environment, "path", path, "why", res.ArtifactErrors[path])
		case len(manifest) > db.MaxManifestBytes:
			s.Log.Warn("the apply's production state is over the cap: not stored", "env", d.Environment, "bytes", len(manifest), "cap", db.MaxManifestBytes)
		default:
			d.Manifest = manifest
		}
	}
	if err := s.Store.RecordDeployed(ctx, d); err != nil {
		s.Log.Error("recording what was deployed", "env", d.Environment, "err", err)
	}
}

// replaceApprovedPlan stores the plan made at apply time as the PR's current plan for the environment and marks
// the approved one stale. The new plan's result is posted now, so only reviews given after it count: its scope
// was not reviewed.
func (s *Sequence) replaceApprovedPlan(ctx context.Context, forge vcs.Forge, req Request, summary plan.Summary) error {
	pc := req.Context
	raw, err := json.Marshal(pc)
	if err != nil {
		return err
	}
	p := req.Plan
	next, err := s.Store.CreatePlan(ctx, db.Plan{Forge: p.Forge, Repo: p.Repo, PR: p.PR, Project: p.Project, Environment: p.Environment,
		HeadSHA: p.HeadSHA, BaseSHA: p.BaseSHA, TriggerUser: req.User, Flags: p.Flags, Context: raw})
	if err != nil {
		return err
	}
	if _, err := s.Store.SetPlanStatus(ctx, next.ID, plan.StatusRunning); err != nil {
		return err
	}
	if next, err = s.Store.SetPlanResult(ctx, next.ID, db.PlanResult{Status: plan.Outcome(summary), Summary: &summary}); err != nil {
		return err
	}
	if _, err := s.Store.SetPlanStatus(ctx, p.ID, plan.StatusStale); err != nil {
		s.Log.Warn("marking the approved plan stale", "plan", p.ID, "err", err)
	}
	unlock := s.Locks.Lock(pc.PR.Repo, p.PR)
	defer unlock()
	return s.Report.FinishedPlan(ctx, forge, next, pc, 0)
}

// progressReporter turns the framework's progress lines (sqlmesh: one per batch) into updates of the apply
// check, at most one per progressInterval.
type progressReporter struct {
	s       *Sequence
	forge   vcs.Forge
	req     Request
	runID   int64
	parse   func(line string) (framework.Progress, bool) // Framework.ParseProgress
	mu      sync.Mutex
	batches int
	last    framework.Progress
	changed bool
	done    chan struct{}
	stopped chan struct{}
}

func newProgressReporter(s *Sequence, forge vcs.Forge, req Request, runID int64, parse func(string) (framework.Progress, bool)) *progressReporter {
	p := &progressReporter{s: s, forge: forge, req: req, runID: runID, parse: parse, done: make(chan struct{}), stopped: make(chan struct{})}
	go p.loop()
	return p
}

func (p *progressReporter) line(l jobs.Line) {
	pr, ok := p.parse(l.Text)
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
		_ = p.s.reportApply(context.Background(), p.forge, p.req, p.runID, vcs.StatusRunning, fmt.Sprintf("Applying: %d batches done", n), summary)
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
func (s *Sequence) reportApply(ctx context.Context, forge vcs.Forge, req Request, runID int64, state vcs.StatusState, title, summary string) error {
	return s.Report.ApplyStatus(ctx, forge, req.Context, req.Plan.ID, req.SHA, runID, state, title, summary)
}

// Behind is how many commits head lacks of the deploy branch's head: applying it to a protected environment
// would roll back what was merged since.
func Behind(ctx context.Context, forge vcs.Forge, repo vcs.Repo, branch, head string) (int, error) {
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
func (req Request) lockedFacts() deploy.Facts {
	pr := req.Context.PR
	return deploy.Facts{Step: deploy.StepLocked, Trigger: req.Trigger, User: req.User,
		Request: deploy.Request{Accept: req.Accept},
		PR:      deploy.PR{HeadSHA: pr.HeadSHA, BaseRef: pr.BaseRef, DefaultBranch: pr.Repo.DefaultBranch},
		Target:  &deploy.Target{Env: deploy.EnvOf(req.Context.Env, req.Trigger), Name: req.Context.Env.Name, SHA: req.SHA, AtBranchHead: req.AtBranchHead}}
}

// protectedContent decides, holding the environment's lock, whether the environment may receive the commit
// (deploy.StepLocked), reading the divergence and the content from the forge as the decision asks. It returns
// the ending when the apply must stop.
func (s *Sequence) protectedContent(ctx context.Context, forge vcs.Forge, req Request, run db.Run, f deploy.Facts) (contentCheck, *applyEnding) {
	refuse := func(title, summary string) (contentCheck, *applyEnding) {
		return contentCheck{}, &applyEnding{conclusion: vcs.StatusFailure, title: title, summary: summary, exitCode: -1, reason: title}
	}
	t := f.Target
	read := s.readWaiting(ctx, forge, req, run.ID)
	for {
		d := deploy.Decide(f)
		switch d.Verdict {
		case deploy.Apply:
			check := contentCheck{accepted: d.Has(deploy.CodeContentAccepted)}
			if t.Content != nil {
				check.hash = t.Content.Hash
			}
			if check.accepted {
				s.Log.Warn("applying content no approved plan covered, accepted by an admin", "env", req.Context.Env.Name, "user", req.User, "files", len(t.Content.Unreviewed), "hash", check.hash)
			}
			return check, nil
		case deploy.Refuse:
			return refuse(d.Reasons[0].Title, d.Reasons[0].Message)
		}
		switch d.Need {
		case deploy.NeedBehind:
			var n int
			err := read(func() (err error) {
				n, err = Behind(ctx, forge, req.Context.PR.Repo, req.Context.PR.BaseRef, req.SHA)
				return err
			})
			if err != nil {
				return refuse("Could not compare with the deploy branch", err.Error())
			}
			t.Behind = &n
		case deploy.NeedContent:
			unreviewed, hash, err := s.unreviewedFiles(ctx, forge, req, read)
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
// environment has nothing to compare with: its plan covers the whole project. Each forge call goes through read.
func (s *Sequence) unreviewedFiles(ctx context.Context, forge vcs.Forge, req Request, read forgeRead) ([]string, string, error) {
	repo, p := req.Context.PR.Repo, req.Plan
	tree := func(sha string) (deploy.Files, error) {
		var t vcs.Tree
		err := read(func() (err error) {
			t, err = forge.Tree(ctx, repo, sha)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("reading the files of %s: %w", prstate.Short(sha), err)
		}
		if t.Truncated {
			return nil, fmt.Errorf("the forge's file list of %s is truncated, so its content cannot be compared", prstate.Short(sha))
		}
		return t.Files, nil
	}
	target, err := tree(req.SHA)
	if err != nil {
		return nil, "", err
	}
	hash := deploy.ContentHash(req.Context.Project.Path, target)
	last, err := s.Store.LastApplied(ctx, p.Forge, p.Repo, p.Project, req.Context.Env.Name)
	switch {
	case errors.Is(err, db.ErrNotFound):
		return nil, hash, nil
	case err != nil:
		return nil, "", err
	case last.ContentHash == hash:
		return nil, hash, nil // the same content as applied last (a re-apply, a squash of it)
	}
	c := deploy.Content{ProjectPath: req.Context.Project.Path, Target: target}
	if c.LastApplied, err = tree(last.CommitSHA); err != nil {
		return nil, "", err
	}
	if c.Planned, err = tree(p.HeadSHA); err != nil {
		return nil, "", err
	}
	var fork vcs.Comparison
	err = read(func() (err error) {
		fork, err = forge.Compare(ctx, repo, p.BaseSHA, p.HeadSHA)
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("finding where the PR forked: %w", err)
	}
	if c.ForkPoint, err = tree(fork.MergeBase); err != nil {
		return nil, "", err
	}
	return deploy.UnreviewedFiles(c), hash, nil
}

// AdvanceAppliedContent moves a protected environment's record of applied content to a merge that had nothing to
// apply (a PR that changed no model: docs, CI files) when the PR's approval holds and the merge adds nothing
// else: the environment's state is then what the merged content says, and the next apply is not refused for
// files that were reviewed here. Best effort: without it the next apply names those files.
func (s *Sequence) AdvanceAppliedContent(ctx context.Context, forge vcs.Forge, p db.Plan, pc prstate.PlanContext, sha, merger string) {
	if !pc.NeedsApproval() {
		return
	}
	if _, err := s.Store.LastApplied(ctx, p.Forge, p.Repo, p.Project, pc.Env.Name); err != nil {
		return // never applied by the bot: the first apply covers the whole project anyway
	}
	res, err := s.Approvals.Evaluate(ctx, forge, p, pc)
	if err != nil || !res.Approved {
		return
	}
	req := Request{Plan: p, Context: pc, SHA: sha, User: merger, Trigger: repoconfig.ApplyOnMerge}
	unreviewed, hash, err := s.unreviewedFiles(ctx, forge, req, readOnce)
	if err != nil || len(unreviewed) > 0 {
		return
	}
	if err := s.Store.RecordApplied(ctx, db.AppliedContent{Forge: p.Forge, Repo: p.Repo, Project: p.Project,
		Environment: pc.Env.Name, CommitSHA: sha, ContentHash: hash, PlanID: p.ID, AppliedAt: time.Now()}); err != nil {
		s.Log.Warn("recording reviewed content", "env", pc.Env.Name, "err", err)
	}
}

// Recover ends an apply a previous process left unfinished. An apply is not re-run by itself: a person
// asked for it at a moment, and much may have changed since. It fails with a clear message, its lock is
// released, and `/dagctl apply` resumes it (sqlmesh skips the intervals it already computed).
func (s *Sequence) Recover(ctx context.Context, p db.Plan, pc prstate.PlanContext, run db.Run) error {
	forge, ok := s.Forges(p.Forge)
	if !ok {
		return fmt.Errorf("no forge %q", p.Forge)
	}
	const why = "interrupted: the bot restarted while this apply ran"
	end := applyEnding{conclusion: vcs.StatusFailure, title: "Interrupted: comment `/dagctl apply` to resume",
		summary: "The bot restarted while this apply ran. Completed intervals are kept; applying again resumes where it stopped."}
	// Told before the run is finished, keyed by the run: a start killed in between tells it once, at the next.
	if err := s.Report.ReplyOnce(ctx, pc.PR, "apply-end|"+strconv.FormatInt(run.ID, 10), endReply(pc.Env.Name, end)); err != nil {
		return err
	}
	if _, err := s.Store.FinishRun(ctx, run.ID, db.RunResult{Status: db.RunFailed, Reason: why}); err != nil {
		return err
	}
	if held, ok, err := s.Store.Holder(ctx, p.Forge, p.Repo, p.Environment); err == nil && ok && held.Owner.PlanID == p.ID {
		if _, _, err := s.Store.ForceUnlock(ctx, p.Forge, p.Repo, p.Environment); err != nil {
			return err
		}
	}
	// The check run is updated by its stored id, so the commit here only names it.
	req := Request{Plan: p, Context: pc, SHA: p.HeadSHA}
	if err := s.reportApply(ctx, forge, req, run.ID, end.conclusion, end.title, end.summary); err != nil {
		return err
	}
	unlock := s.Locks.Lock(pc.PR.Repo, pc.PR.Number)
	defer unlock()
	return s.Report.Sticky(ctx, forge, pc.PR, "")
}
