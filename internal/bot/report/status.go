// Package report renders what is stored to the forge: the plan, approval and apply statuses of each plan, and
// the PR's sticky comment. It decides nothing: what it shows was stored (or evaluated) before.
package report

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/dagctl/dagctl-bot/internal/approval"
	"github.com/dagctl/dagctl-bot/internal/bot/approvals"
	"github.com/dagctl/dagctl-bot/internal/bot/prstate"
	"github.com/dagctl/dagctl-bot/internal/bot/writes"
	"github.com/dagctl/dagctl-bot/internal/command"
	"github.com/dagctl/dagctl-bot/internal/comments"
	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// Reporter writes the bot's statuses and sticky comment.
type Reporter struct {
	Store     prstate.Store
	Approvals *approvals.Evaluator
	// Writes enqueues what the reporter shows in the outbox.
	Writes *writes.Writes
	Log    *slog.Logger
	// PublicURL is the bot's public base URL; log links point there. Empty: no links.
	PublicURL string
	// LogKey signs log links.
	LogKey []byte
}

// LogURL is where a run's full log is served.
func (r *Reporter) LogURL(runID int64) string {
	if r.PublicURL == "" || runID == 0 {
		return ""
	}
	return fmt.Sprintf("%s/runs/%d/%s", r.PublicURL, runID, LogSignature(r.LogKey, runID))
}

// LogSignature signs a run id for its log link; the server checks it before showing the log.
func LogSignature(key []byte, runID int64) string {
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "run-log:%d", runID)
	return hex.EncodeToString(mac.Sum(nil))[:32]
}

// PutStatus writes one of a plan's statuses, the only place that does: one status per (plan, name, commit). A
// status on another commit than the planned one (an apply on the merge commit) is a status of its own: GitHub's
// check runs cannot move to another commit, and the merge commit is where a deploy is looked for. It is
// enqueued in the outbox, which sends it through the forge port (vcs.Forge.PutStatus) with the ref it keeps.
func (r *Reporter) PutStatus(ctx context.Context, forge vcs.Forge, pc prstate.PlanContext, planID int64, st vcs.Status) error {
	if err := r.Writes.Status(ctx, pc, planID, st); err != nil {
		return fmt.Errorf("status %q: %w", st.Name, err)
	}
	return nil
}

// IntoPipeline writes the plan's statuses on its commit (plan, approval, apply), each as the forge last showed
// it, into a pipeline of that commit that started after they were written (vcs.Status.Pipeline), and says how
// many it wrote. What they say comes from what the bot stored and showed, never from the pipeline.
func (r *Reporter) IntoPipeline(ctx context.Context, p db.Plan, pc prstate.PlanContext, pipeline string) (int, error) {
	n := 0
	for _, kind := range []string{prstate.CheckPlan, prstate.CheckApproval, prstate.CheckApply} {
		ok, err := r.Writes.Rejoin(ctx, pc, p.ID, pc.CheckName(kind), p.HeadSHA, pipeline)
		if err != nil {
			return n, fmt.Errorf("status %q into pipeline %s: %w", pc.CheckName(kind), pipeline, err)
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// stateOf is a check conclusion (as internal/comments gives it) as a status's state.
func stateOf(conclusion string) vcs.StatusState {
	if conclusion == comments.ConclusionActionRequired {
		return vcs.StatusBlocked
	}
	return vcs.StatusState(conclusion)
}

// titled is a status whose rich output has the title as its one-line description.
func titled(name, sha string, state vcs.StatusState, title, summary string) vcs.Status {
	return vcs.Status{Name: name, CommitSHA: sha, State: state, Description: title, Output: &vcs.StatusOutput{Title: title, Summary: summary}}
}

// PlanStatus makes the plan's status (`dagctl/plan: <env>`) show the plan's stored status. A plan that went
// stale while its status was still open ends as cancelled.
func (r *Reporter) PlanStatus(ctx context.Context, forge vcs.Forge, p db.Plan, pc prstate.PlanContext, runID int64) error {
	sec := r.section(p, pc, runID)
	title, summary, text := comments.CheckOutput(sec)
	st := vcs.Status{Name: pc.CheckName(prstate.CheckPlan), CommitSHA: p.HeadSHA,
		DetailsURL: r.LogURL(runID), ExternalID: "plan:" + strconv.FormatInt(p.ID, 10)}
	switch p.Status {
	case plan.StatusQueued:
		st.State = vcs.StatusQueued
	case plan.StatusRunning:
		st.State = vcs.StatusRunning
	case plan.StatusStale:
		st.State, title = vcs.StatusCancelled, "Superseded by a newer commit"
	default:
		st.State = stateOf(comments.Conclusion(sec))
	}
	st.Description, st.Output = title, &vcs.StatusOutput{Title: title, Summary: summary, Text: text}
	if err := r.PutStatus(ctx, forge, pc, p.ID, st); err != nil {
		return err
	}
	return r.Store.SetPlanReported(ctx, p.ID, p.Status)
}

// FinishedPlan reports a finished plan: its plan status and, for a plan that can be applied, the approval
// status (protected environments) and the apply status (environments applied by comment), both blocked until
// their condition is met.
func (r *Reporter) FinishedPlan(ctx context.Context, forge vcs.Forge, p db.Plan, pc prstate.PlanContext, runID int64) error {
	if err := r.PlanStatus(ctx, forge, p, pc, runID); err != nil {
		return err
	}
	if p.Status != plan.StatusReady && p.Status != plan.StatusNoChanges || pc.PR.Number == 0 {
		return nil // approvals and applies belong to pull requests, not to pushed commits
	}
	if pc.NeedsApproval() {
		res, err := r.Approvals.Evaluate(ctx, forge, p, pc)
		if err != nil {
			return err
		}
		if err := r.ApprovalStatus(ctx, forge, p, pc, res); err != nil {
			return err
		}
	}
	if !pc.Env.AppliesOn(repoconfig.ApplyOnComment) {
		return nil
	}
	name := pc.CheckName(prstate.CheckApply)
	if p.Status == plan.StatusNoChanges {
		return r.PutStatus(ctx, forge, pc, p.ID, titled(name, p.HeadSHA, vcs.StatusSuccess, "No changes: nothing to apply", ""))
	}
	return r.PutStatus(ctx, forge, pc, p.ID, titled(name, p.HeadSHA, vcs.StatusBlocked, "Not applied yet",
		fmt.Sprintf("Comment `/dagctl apply %s` to apply this plan once it is approved.", pc.Env.Name)))
}

// ApprovalStatus shows the approval of a plan as `dagctl/approval: <env>` on the planned commit. It stays
// blocked until the approval is there, so branch protection can require it.
func (r *Reporter) ApprovalStatus(ctx context.Context, forge vcs.Forge, p db.Plan, pc prstate.PlanContext, res approval.Result) error {
	state, title := vcs.StatusBlocked, "Waiting for approval: "+res.Describe()
	switch {
	case res.Waived != "":
		state, title = vcs.StatusSuccess, res.Waived
	case res.Approved:
		state, title = vcs.StatusSuccess, res.Describe()
	}
	var summary strings.Builder
	fmt.Fprintf(&summary, "**%s** for `%s` at `%s`.\n\n", title, pc.Env.Name, prstate.Short(p.HeadSHA))
	for _, m := range approvals.Missing(res) {
		fmt.Fprintf(&summary, "- Missing: %s\n", m)
	}
	for _, ig := range res.Ignored {
		fmt.Fprintf(&summary, "- Not counted: %s %s\n", ig.User, ig.Reason)
	}
	summary.WriteString("\n" + approvalScope(p, res))
	st := titled(pc.CheckName(prstate.CheckApproval), p.HeadSHA, state, title, summary.String())
	st.ExternalID = "plan:" + strconv.FormatInt(p.ID, 10)
	return r.PutStatus(ctx, forge, pc, p.ID, st)
}

// approvalScope says which plan the approvals apply to: a review approves the plan whose result it followed, and
// plans of the same commit and scope, never a plan made after it with other flags.
func approvalScope(p db.Plan, res approval.Result) string {
	if res.Waived != "" {
		return fmt.Sprintf("Plan %d reports no changes and the PR changes no file of the project.\n", p.ID)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Approvals apply to plan %d (`%s` at `%s`", p.ID, p.Environment, prstate.Short(p.HeadSHA))
	if f := command.FlagsString(p.Flags); f != "" {
		fmt.Fprintf(&b, ", %s", f)
	}
	b.WriteString(")")
	if !p.ResultPostedAt.IsZero() {
		fmt.Fprintf(&b, ", whose result was posted at %s: reviews given before that do not count", p.ResultPostedAt.UTC().Format(time.RFC3339))
	}
	b.WriteString(".")
	var earlier []string
	for _, id := range res.Plans {
		if id != p.ID {
			earlier = append(earlier, strconv.FormatInt(id, 10))
		}
	}
	if len(earlier) > 0 {
		fmt.Fprintf(&b, " Counted approvals of plan %s, which has the same scope.", strings.Join(earlier, ", "))
	}
	return b.String() + "\n"
}

// ApplyStatus shows an apply as `dagctl/apply: <env>` on the applied commit.
func (r *Reporter) ApplyStatus(ctx context.Context, forge vcs.Forge, pc prstate.PlanContext, planID int64, sha string, runID int64, state vcs.StatusState, title, summary string) error {
	st := titled(pc.CheckName(prstate.CheckApply), sha, state, title, summary)
	st.DetailsURL, st.ExternalID = r.LogURL(runID), "apply:"+strconv.FormatInt(runID, 10)
	return r.PutStatus(ctx, forge, pc, planID, st)
}
