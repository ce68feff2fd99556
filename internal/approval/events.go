package approval

import (
	"strings"
	"time"

	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// Event is a review event the bot received from the forge's verified webhook (stored, migration 0016): User
// approved, or withdrew an approval (Approved false), at the forge's time At. Only forges whose approvals name no
// commit need them (GitLab: its approvals API names who approves, on most versions not when).
type Event struct {
	User     string
	Approved bool
	At       time.Time
}

// DateApprovals dates a forge's listed approvals from the stored events, for a forge whose approvals name no commit.
// The forge's list decides who approves: an event of a user it does not list adds no one. An approval without the
// forge's time takes the time of its user's newest approval event; none leaves it without a known time (it does
// not count). An approval, dated either way, that a withdrawal event at or after its time voids is returned
// dismissed: the forge's list is eventually consistent and may still name a user who withdrew, so the withdrawal
// wins (fail closed; a real re-approval sends a newer approval event). Other reviews pass unchanged.
func DateApprovals(reviews []vcs.Review, events []Event) []vcs.Review {
	newestApproval := map[string]time.Time{}
	newestWithdrawal := map[string]time.Time{}
	for _, e := range events {
		user := strings.ToLower(e.User)
		into := newestWithdrawal
		if e.Approved {
			into = newestApproval
		}
		if at, ok := into[user]; !ok || e.At.After(at) {
			into[user] = e.At
		}
	}
	out := make([]vcs.Review, len(reviews))
	for i, r := range reviews {
		out[i] = r
		if r.State != vcs.ReviewApproved {
			continue
		}
		user := strings.ToLower(r.User)
		if r.SubmittedAt.IsZero() {
			out[i].SubmittedAt = newestApproval[user] // zero when no event dates it
		}
		withdrawn, ok := newestWithdrawal[user]
		if ok && !out[i].SubmittedAt.IsZero() && !withdrawn.Before(out[i].SubmittedAt) {
			out[i].State = vcs.ReviewDismissed
		}
	}
	return out
}
