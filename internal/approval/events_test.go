package approval

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/dagctl/dagctl-bot/internal/vcs"
)

func TestDateApprovalsTakesWhoFromTheForgeAndWhenFromTheEvents(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	listed := func(user string, when time.Time) vcs.Review {
		return vcs.Review{ID: 1, User: user, State: vcs.ReviewApproved, SubmittedAt: when}
	}
	approved := func(user string, min int) Event { return Event{User: user, Approved: true, At: at(min)} }
	withdrawn := func(user string, min int) Event { return Event{User: user, At: at(min)} }
	dismissed := func(r vcs.Review) vcs.Review { r.State = vcs.ReviewDismissed; return r }

	for _, c := range []struct {
		name    string
		reviews []vcs.Review
		events  []Event
		want    []vcs.Review
	}{
		{"an undated approval takes its user's approval event's time",
			[]vcs.Review{listed("bob", time.Time{})}, []Event{approved("bob", 5)}, []vcs.Review{listed("bob", at(5))}},
		{"the newest approval event dates it, in any order",
			[]vcs.Review{listed("bob", time.Time{})}, []Event{approved("bob", 9), approved("bob", 5)}, []vcs.Review{listed("bob", at(9))}},
		{"usernames fold case",
			[]vcs.Review{listed("Bob", time.Time{})}, []Event{approved("bob", 5)}, []vcs.Review{listed("Bob", at(5))}},
		{"no event: no known time",
			[]vcs.Review{listed("bob", time.Time{})}, []Event{approved("carol", 5)}, []vcs.Review{listed("bob", time.Time{})}},
		{"a withdrawal only: no known time and nothing to void",
			[]vcs.Review{listed("bob", time.Time{})}, []Event{withdrawn("bob", 5)}, []vcs.Review{listed("bob", time.Time{})}},
		{"an event of a user the forge does not list adds no one",
			nil, []Event{approved("mallory", 5)}, []vcs.Review{}},
		{"a later withdrawal voids the approval the forge still lists",
			[]vcs.Review{listed("bob", time.Time{})}, []Event{approved("bob", 5), withdrawn("bob", 6)}, []vcs.Review{dismissed(listed("bob", at(5)))}},
		{"a withdrawal at the same time voids it (fail closed)",
			[]vcs.Review{listed("bob", time.Time{})}, []Event{approved("bob", 5), withdrawn("bob", 5)}, []vcs.Review{dismissed(listed("bob", at(5)))}},
		{"approving again after a withdrawal counts from then",
			[]vcs.Review{listed("bob", time.Time{})}, []Event{approved("bob", 5), withdrawn("bob", 6), approved("bob", 7)}, []vcs.Review{listed("bob", at(7))}},
		{"the forge's own time is kept over the events'",
			[]vcs.Review{listed("bob", at(3))}, []Event{approved("bob", 5)}, []vcs.Review{listed("bob", at(3))}},
		{"a withdrawal after the forge's own time voids it too",
			[]vcs.Review{listed("bob", at(3))}, []Event{withdrawn("bob", 4)}, []vcs.Review{dismissed(listed("bob", at(3)))}},
		{"a withdrawal before the forge's own time is an older approval's",
			[]vcs.Review{listed("bob", at(3))}, []Event{withdrawn("bob", 2)}, []vcs.Review{listed("bob", at(3))}},
		{"one user's withdrawal voids no one else's approval",
			[]vcs.Review{listed("bob", time.Time{}), listed("carol", time.Time{})},
			[]Event{approved("bob", 5), approved("carol", 5), withdrawn("carol", 6)},
			[]vcs.Review{listed("bob", at(5)), dismissed(listed("carol", at(5)))}},
		{"other reviews pass unchanged",
			[]vcs.Review{{User: "bob", State: vcs.ReviewChangesRequested}}, []Event{approved("bob", 5)},
			[]vcs.Review{{User: "bob", State: vcs.ReviewChangesRequested}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, DateApprovals(c.reviews, c.events))
		})
	}
}

// The events date approvals, the rules bind them by time: dated after the plan's result counts, before does not,
// withdrawn does not, and an event of an unlisted user or of the author adds no approval.
func TestDatedFromEventsTheRulesBindByTime(t *testing.T) {
	posted := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	listed := []vcs.Review{
		{User: "alice", State: vcs.ReviewApproved}, {User: "bob", State: vcs.ReviewApproved},
		{User: "carol", State: vcs.ReviewApproved}, {User: "dave", State: vcs.ReviewApproved},
	}
	events := []Event{
		{User: "alice", Approved: true, At: posted.Add(time.Minute)},   // the author
		{User: "bob", Approved: true, At: posted.Add(time.Minute)},     // after the result
		{User: "carol", Approved: true, At: posted.Add(-time.Minute)},  // before it
		{User: "dave", Approved: true, At: posted.Add(time.Minute)},    // then withdrawn
		{User: "dave", At: posted.Add(2 * time.Minute)},                //
		{User: "mallory", Approved: true, At: posted.Add(time.Minute)}, // not listed by the forge
	}
	perms := map[string]vcs.Permission{"alice": vcs.PermissionWrite, "bob": vcs.PermissionWrite,
		"carol": vcs.PermissionWrite, "dave": vcs.PermissionWrite, "mallory": vcs.PermissionAdmin}
	res := Evaluate(Input{Rule: Rule{RequiredApprovals: 2}, PRAuthor: "alice", Plan: Plan{ID: 1, HeadSHA: "abc", ResultPostedAt: posted},
		Reviews: DateApprovals(listed, events), Permissions: perms})
	assert.Equal(t, []string{"bob"}, res.ApprovedBy)
	assert.False(t, res.Approved)
	assert.ElementsMatch(t, []Ignored{{"alice", "is the PR author"}, {"carol", "approved before plan 1's result was posted"},
		{"dave", "review was dismissed"}}, res.Ignored)
}
