// Package writes is the bot's side of the outbox: every write the bot makes to a forge (statuses, the sticky
// comment's parts, replies, reactions) is enqueued here with its account and priority, and sent by the outbox's
// sender. The outbox keeps the forge's refs; this package only names the keys the bot's writes are kept under.
package writes

import (
	"context"
	"strconv"

	"github.com/dagctl/dagctl-bot/internal/bot/prstate"
	"github.com/dagctl/dagctl-bot/internal/outbox"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// Legacy is where versions before the outbox kept a plan's check run ids (plan_checks): read so that a bot
// upgraded mid-PR updates the check runs it created before instead of creating second ones.
type Legacy interface {
	CheckRun(ctx context.Context, planID int64, name string) (int64, bool, error)
}

// Writes enqueues the bot's forge writes.
type Writes struct {
	Outbox *outbox.Outbox
	Legacy Legacy
}

// slot keeps one forge status per (plan, name, commit), as the bot always had: a blocked "not applied yet" and
// the apply runs that follow it are one check run on GitHub.
func slot(planID int64) string { return "plan:" + strconv.FormatInt(planID, 10) }

// priority puts what a person waits for first: a plan's final status goes before queued and running states
// and before the approval and apply statuses, which follow from the plan's result (the sticky comment, sent
// first of all, shows them too).
func priority(pc prstate.PlanContext, st vcs.Status) outbox.Priority {
	if st.State.Final() && st.Name == pc.CheckName(prstate.CheckPlan) {
		return outbox.PriorityResult
	}
	return outbox.PriorityProgress
}

// Status enqueues one of a plan's statuses.
func (w *Writes) Status(ctx context.Context, pc prstate.PlanContext, planID int64, st vcs.Status) error {
	if err := w.adoptLegacy(ctx, pc, planID, st.Name, st.CommitSHA); err != nil {
		return err
	}
	repo := pc.PR.Repo
	return w.Outbox.PutStatusSlot(ctx, outbox.AccountOf(repo), repo, st, slot(planID), priority(pc, st))
}

// Rejoin enqueues one of a plan's statuses, as the forge last showed it, into a pipeline that started after it
// was written (outbox.RejoinSlot): false when it was never shown. It holds a merge as the status does, so it goes
// with the results.
func (w *Writes) Rejoin(ctx context.Context, pc prstate.PlanContext, planID int64, name, sha, pipeline string) (bool, error) {
	repo := pc.PR.Repo
	return w.Outbox.RejoinSlot(ctx, outbox.AccountOf(repo), repo, sha, name, slot(planID), pipeline, outbox.PriorityResult)
}

// StatusRef is the forge's ref of a plan's status ("" while it was never sent).
func (w *Writes) StatusRef(ctx context.Context, pc prstate.PlanContext, planID int64, name, sha string) (vcs.StatusRef, error) {
	if err := w.adoptLegacy(ctx, pc, planID, name, sha); err != nil {
		return "", err
	}
	repo := pc.PR.Repo
	return w.Outbox.SlotRef(ctx, outbox.AccountOf(repo), repo, sha, name, slot(planID))
}

// adoptLegacy hands the outbox a check run id an earlier version stored for the status, once. Those versions
// ran on GitHub only, whose status ref is the check run's id in decimal; they keyed a status on another commit
// than the planned one (an apply on the merge commit) as "name@sha".
func (w *Writes) adoptLegacy(ctx context.Context, pc prstate.PlanContext, planID int64, name, sha string) error {
	if w.Legacy == nil {
		return nil
	}
	key := name
	if sha != pc.PR.HeadSHA {
		key += "@" + sha
	}
	id, ok, err := w.Legacy.CheckRun(ctx, planID, key)
	if err != nil || !ok {
		return err
	}
	repo := pc.PR.Repo
	return w.Outbox.AdoptSlotRef(ctx, outbox.AccountOf(repo), repo, sha, name, slot(planID), vcs.StatusRef(strconv.FormatInt(id, 10)))
}

// Sticky enqueues the PR's sticky comment, as rendered.
func (w *Writes) Sticky(ctx context.Context, pr vcs.PullRequest, parts []string) error {
	return w.Outbox.PutSticky(ctx, outbox.AccountOf(pr.Repo), pr.Repo, pr.Number, parts, outbox.PriorityComment)
}

// Reply enqueues a new comment on the PR. Replies answer a person, in the order the bot made them, so they all
// have one priority. A reply made while handling a delivery (prstate.WithDelivery) is that delivery's n-th:
// handled again, the delivery asks for the same replies, and the outbox posts none of them twice.
func (w *Writes) Reply(ctx context.Context, pr vcs.PullRequest, body string) error {
	effect := ""
	if d, ok := prstate.DeliveryOf(ctx); ok {
		effect = d.NextReply()
	}
	return w.Outbox.ReplyOnce(ctx, outbox.AccountOf(pr.Repo), pr.Repo, pr.Number, effect, body, outbox.PriorityResult)
}

// ReplyOnce enqueues a reply of the effect named (not a delivery's): asked for again, it is not posted twice.
func (w *Writes) ReplyOnce(ctx context.Context, pr vcs.PullRequest, effect, body string) error {
	return w.Outbox.ReplyOnce(ctx, outbox.AccountOf(pr.Repo), pr.Repo, pr.Number, effect, body, outbox.PriorityResult)
}

// React enqueues a reaction to a comment: an acknowledgement, sent after what people wait for.
func (w *Writes) React(ctx context.Context, repo vcs.Repo, commentID int64, reaction vcs.Reaction) error {
	return w.Outbox.React(ctx, outbox.AccountOf(repo), repo, commentID, reaction, outbox.PriorityOther)
}

// Notice enqueues what a PR and its merge commit are told when the bot could not act on its merge: a failure
// status on the commit (not a plan's: keyed by commit and name) and a reply. The outbox keeps retrying both
// until the forge answers.
func (w *Writes) Notice(ctx context.Context, pr vcs.PullRequest, st vcs.Status, reply string) error {
	if err := w.Outbox.PutStatus(ctx, outbox.AccountOf(pr.Repo), pr.Repo, st, outbox.PriorityResult); err != nil {
		return err
	}
	return w.Reply(ctx, pr, reply)
}
