package apply

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dagctl/dagctl-bot/internal/bot/jobrun"
	"github.com/dagctl/dagctl-bot/internal/bot/prstate"
	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// The steps of an apply: each is a job of the apply's run, "<run>-<step>" to the executor.
const (
	stepVerify = "verify" // the plan made again at the commit to apply
	stepApply  = "apply"
)

// resumeState is what a restarted bot needs to finish an apply whose job outlived the process that started
// it. It is stored once the decision under the lock let the apply go on, before its first job starts, and
// deleted when the run finishes (db.Store.FinishRun).
type resumeState struct {
	SHA          string                  `json:"sha"`
	User         string                  `json:"user"`
	Trigger      repoconfig.ApplyTrigger `json:"trigger"`
	Accept       string                  `json:"accept,omitempty"`
	AtBranchHead bool                    `json:"at_branch_head,omitempty"`
	ContentHash  string                  `json:"content_hash,omitempty"` // recorded as applied when it succeeds
	Accepted     bool                    `json:"content_accepted,omitempty"`
	Started      time.Time               `json:"started"`
}

func resumeStateOf(req Request, content contentCheck, started time.Time) resumeState {
	return resumeState{SHA: req.SHA, User: req.User, Trigger: req.Trigger, Accept: req.Accept, AtBranchHead: req.AtBranchHead,
		ContentHash: content.hash, Accepted: content.accepted, Started: started}
}

func (st resumeState) request(p db.Plan, pc prstate.PlanContext) Request {
	return Request{Plan: p, Context: pc, SHA: st.SHA, User: st.User, Trigger: st.Trigger, Accept: st.Accept, AtBranchHead: st.AtBranchHead}
}

func (st resumeState) content() contentCheck {
	return contentCheck{hash: st.ContentHash, accepted: st.Accepted}
}

func (s *Sequence) saveResume(ctx context.Context, runID int64, st resumeState) error {
	body, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return s.Store.SetRunResume(ctx, runID, body)
}

// loadResume returns the run's resume state, or nil when none was stored (the apply stopped before its first
// job, or a version before resume states started it).
func (s *Sequence) loadResume(ctx context.Context, runID int64) (*resumeState, error) {
	body, err := s.Store.RunResume(ctx, runID)
	if errors.Is(err, db.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var st resumeState
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, fmt.Errorf("resume state of run %d: %w", runID, err)
	}
	return &st, nil
}

// stepOf names the step of the apply whose job the run last started, from the job's id ("<run>-<step>",
// with the executor's prefix, e.g. "local-"); false before any job started.
func stepOf(run db.Run) (string, bool) {
	for _, step := range []string{stepVerify, stepImage, stepApply} {
		suffix := strconv.FormatInt(run.ID, 10) + "-" + step
		if id := run.ExecutorJobID; id == suffix || strings.HasSuffix(id, "-"+suffix) {
			return step, true
		}
	}
	return "", false
}

// Reattach follows an apply a previous process left running, as if no restart happened: the lock stays held
// by it, its check (the same check run: the status is keyed by the run) keeps its progress, and the rest of
// the sequence runs when the job ends. A restart during the verifying plan follows that job, then applies as
// the sequence would: the decision under the lock was taken and the lock never left the apply, and the plan
// made again applies nothing, so following it loses no check and repeats no effect. It reports false when
// there is no job to follow: the executor lost it (a local process, which Attach stops first), or the apply
// had not started one; Recover then ends the apply as interrupted.
func (s *Sequence) Reattach(ctx context.Context, run db.Run) (bool, error) {
	step, ok := stepOf(run)
	if run.Kind != jobs.KindApply || !ok || run.Executor != s.ExecutorName {
		return false, nil
	}
	p, err := s.Store.GetPlan(ctx, run.PlanID)
	if err != nil {
		return false, err
	}
	pc, err := prstate.DecodeContext(p)
	if err != nil {
		return false, err
	}
	forge, ok := s.Forges(p.Forge)
	if !ok {
		return false, fmt.Errorf("no forge %q", p.Forge)
	}
	state, err := s.loadResume(ctx, run.ID)
	if err != nil {
		return false, err
	}
	relay := &lineRelay{}
	logw := s.Store.NewRunLogWriter(run.ID, jobrun.LogFlushInterval)
	h, release, err := s.Runner.Follow(ctx, run, pc, func(l jobs.Line) {
		logw.Sink(l)
		relay.line(l)
	})
	if err != nil {
		_ = logw.Close(ctx)
		if errors.Is(err, jobs.ErrGone) {
			return false, nil
		}
		return false, err
	}
	if state == nil {
		return false, s.stopUnresumable(ctx, run, h, release, logw)
	}
	req := state.request(p, pc)
	s.Log.Info("following an apply a previous process started", "run", run.ID, "step", step, "env", pc.Env.Name)
	followed := func(ctx context.Context, _ jobrun.Step, onLine func(jobs.Line)) (jobs.Result, error) {
		relay.to(onLine)
		defer release()
		return jobrun.WaitJob(ctx, h)
	}
	if !s.Runner.InBackground(p.ID, run.ID, h, func(ctx context.Context) {
		end := withCause(ctx, s.resume(ctx, forge, req, run, *state, step, logw, followed))
		s.finish(context.WithoutCancel(ctx), forge, req, run, req.owner(), end)
	}) {
		release()
		_ = logw.Close(ctx)
		return true, nil // the bot is stopping again: the run stays as it is for the next start
	}
	return true, nil
}

// stopUnresumable stops the job of an apply that nothing says how to finish (no resume state): the apply then
// ends as interrupted, its lock released, only once nothing of it runs. An error says it may still run: the
// apply then keeps its lock until a next start can tell.
func (s *Sequence) stopUnresumable(ctx context.Context, run db.Run, h jobs.Handle, release func(), logw *db.RunLogWriter) error {
	defer func() { _ = logw.Close(ctx) }()
	defer release()
	s.Log.Warn("stopping an apply's job that cannot be resumed", "run", run.ID, "job", run.ExecutorJobID)
	if err := h.Cancel(ctx); err != nil {
		return err
	}
	_, err := jobrun.WaitJob(ctx, h)
	return err
}

// resume goes on with the apply from the step whose job is followed.
func (s *Sequence) resume(ctx context.Context, forge vcs.Forge, req Request, run db.Run, state resumeState, step string, logw *db.RunLogWriter, followed stepJob) applyEnding {
	defer func() { _ = logw.Close(context.Background()) }()
	if step == stepApply {
		// The image was built and recorded before the apply job started: it runs on that one.
		built, err := s.recordedImage(ctx, req, run)
		if err != nil {
			return applyEnding{conclusion: vcs.StatusFailure, title: "Could not read the apply's image", summary: err.Error(), exitCode: -1, reason: err.Error()}
		}
		return s.applyStep(ctx, forge, req, run, logw, state.content(), state.Started, followed, built)
	}
	next := s.startStep(forge, logw, s.waitingForForge(forge, req, run.ID))
	imageJob := next
	if step == stepImage {
		// The re-plan was done; the job handing the project back for the image is followed, then built from.
		imageJob = followed
	} else {
		facts := req.lockedFacts()
		facts.Target.ContentAccepted = state.Accepted
		if end := s.replan(ctx, forge, req, run, logw, facts, followed); end != nil {
			return *end
		}
	}
	built, end := s.buildImage(ctx, forge, req, run, logw, imageJob)
	if end != nil {
		return *end
	}
	return s.applyStep(ctx, forge, req, run, logw, state.content(), state.Started, next, built)
}

// recordedImage is the image the run built, as stored; none when it built none.
func (s *Sequence) recordedImage(ctx context.Context, req Request, run db.Run) (deployImage, error) {
	b := imageBuildOf(req.Plan.Summary, req.Context.Project)
	if !b.deploys {
		return deployImage{}, nil
	}
	img, err := s.Store.ApplyImageOf(ctx, run.ID)
	switch {
	case errors.Is(err, db.ErrNotFound) && b.image == nil:
		return deployImage{note: NoImageNote}, nil
	case err != nil:
		return deployImage{}, err
	}
	return deployImage{ref: img.Reference, tagged: img.Tagged, note: "image built: `" + img.Reference + "`"}, nil
}

// resultLines are the run's result lines, kept aside by its log writer (flushed first).
func (s *Sequence) resultLines(ctx context.Context, runID int64, logw *db.RunLogWriter) (string, error) {
	if err := logw.Flush(ctx); err != nil {
		return "", err
	}
	lines, err := s.Store.RunResultLines(ctx, runID)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String(), nil
}

// lineRelay hands a followed job's lines to the step that reads them (the apply's progress), once it does;
// lines before that reach the log only.
type lineRelay struct {
	mu   sync.Mutex
	next func(jobs.Line)
}

func (r *lineRelay) to(f func(jobs.Line)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.next = f
}

func (r *lineRelay) line(l jobs.Line) {
	r.mu.Lock()
	next := r.next
	r.mu.Unlock()
	if next != nil {
		next(l)
	}
}
