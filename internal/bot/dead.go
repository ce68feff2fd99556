package bot

import (
	"context"
	"time"

	"github.com/dagctl/dagctl-bot/internal/comments"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// DeliveryDied is told of a delivery the dispatcher gave up on after the retry window (its id in the queue, its
// event when it parsed). A merge it could not act on is told on the PR and its merge commit, through the outbox,
// which sends them once the forge answers again; other events are only logged by the dispatcher (a later event
// of the PR brings its state up to date).
func (b *Bot) DeliveryDied(ctx context.Context, delivery int64, ev vcs.Event, window time.Duration) error {
	pe := ev.PullRequest
	if pe == nil || pe.Action != vcs.PRMerged || pe.PR.MergeCommitSHA == "" {
		return nil
	}
	n := comments.UnhandledMerge(pe.PR, delivery, window)
	return b.writes.Notice(ctx, pe.PR, n.Status, n.Reply)
}
