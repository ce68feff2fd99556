package approval

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/dagctl/dagctl-bot/internal/vcs"
)

const head = "1111111111111111111111111111111111111111"

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func review(id int64, user string, state vcs.ReviewState, sha string, minute int) vcs.Review {
	return vcs.Review{ID: id, User: user, State: state, CommitSHA: sha, SubmittedAt: t0.Add(time.Duration(minute) * time.Minute)}
}

func base(reviews ...vcs.Review) Input {
	return Input{
		Rule:          Rule{RequiredApprovals: 1},
		PRAuthor:      "alice",
		Plan:          Plan{ID: 10, HeadSHA: head, ResultPostedAt: t0},
		PlanTrigger:   "alice",
		CommitAuthors: []string{"alice"},
		Reviews:       reviews,
		Permissions:   map[string]vcs.Permission{"alice": vcs.PermissionWrite, "bob": vcs.PermissionWrite, "carol": vcs.PermissionAdmin, "dave": vcs.PermissionRead, "erin": vcs.PermissionWrite},
		Facts:         vcs.ReviewFacts{Commit: true, SubmittedAt: true}, // GitHub's reviews
	}
}

// With the commit, an approval needs its time too; without the commit (GitLab), time alone binds, so a dated
// approval counts; changes requested still block.
func TestApprovalsCountOnlyWhenTheyCanBeBoundToThePlan(t *testing.T) {
	approved := review(1, "bob", vcs.ReviewApproved, head, 1)
	for name, tc := range map[string]struct {
		facts    vcs.ReviewFacts
		approved bool
		reason   string
	}{
		"commit and time (GitHub)":     {vcs.ReviewFacts{Commit: true, SubmittedAt: true}, true, ""},
		"time only":                    {vcs.ReviewFacts{SubmittedAt: true}, true, ""},
		"commit only":                  {vcs.ReviewFacts{Commit: true}, false, "the forge's approvals do not say when they were given"},
		"neither (GitLab's approvals)": {vcs.ReviewFacts{}, true, ""},
	} {
		t.Run(name, func(t *testing.T) {
			in := base(approved)
			in.Facts = tc.facts
			res := Evaluate(in)
			assert.Equal(t, tc.approved, res.Approved)
			if tc.approved {
				assert.Equal(t, []string{"bob"}, res.ApprovedBy)
			} else {
				assert.Empty(t, res.ApprovedBy)
				assert.Equal(t, []Ignored{{"bob", tc.reason}}, res.Ignored)
			}
			in.Reviews = append(in.Reviews, review(2, "carol", vcs.ReviewChangesRequested, head, 2))
			assert.Equal(t, []string{"carol"}, Evaluate(in).ChangesRequestedBy, "a request for changes blocks whatever the forge carries")
			assert.False(t, Evaluate(in).Approved)
		})
	}
}

// On a forge whose approvals name no commit, time alone binds an approval to a plan: after the plan's result
// was posted and before a push superseded its head. An approval with no known time never counts.
func TestWithoutACommitTimeAloneBindsAnApproval(t *testing.T) {
	const newer = "2222222222222222222222222222222222222222"
	posted, pushed := t0.Add(5*time.Minute), t0.Add(10*time.Minute)
	undated := vcs.Review{ID: 1, User: "bob", State: vcs.ReviewApproved}
	for name, tc := range map[string]struct {
		review    vcs.Review
		plan      Plan
		sameScope []Plan
		approved  bool
		reason    string
	}{
		"after the result, head unchanged":  {review(1, "bob", vcs.ReviewApproved, "", 6), Plan{ID: 10, HeadSHA: head, ResultPostedAt: posted}, nil, true, ""},
		"after the result, before the push": {review(1, "bob", vcs.ReviewApproved, "", 6), Plan{ID: 10, HeadSHA: head, ResultPostedAt: posted, SupersededAt: pushed}, nil, true, ""},
		"before the result": {review(1, "bob", vcs.ReviewApproved, "", 4), Plan{ID: 10, HeadSHA: head, ResultPostedAt: posted}, nil, false,
			"approved before plan 10's result was posted"},
		"in the second the result was posted": {review(1, "bob", vcs.ReviewApproved, "", 5), Plan{ID: 10, HeadSHA: head, ResultPostedAt: posted}, nil, false,
			"approved before plan 10's result was posted"},
		"after a push, for the older head's plan": {review(1, "bob", vcs.ReviewApproved, "", 11), Plan{ID: 10, HeadSHA: head, ResultPostedAt: posted, SupersededAt: pushed}, nil, false,
			"approved after a push replaced plan 10's commit"},
		"after the newer head's plan": {review(1, "bob", vcs.ReviewApproved, "", 13), Plan{ID: 11, HeadSHA: newer, ResultPostedAt: t0.Add(12 * time.Minute)}, nil, true, ""},
		"before a push, for the new head's plan (approvals kept on push)": {review(1, "bob", vcs.ReviewApproved, "", 6), Plan{ID: 11, HeadSHA: newer, ResultPostedAt: t0.Add(12 * time.Minute)}, nil, false,
			"approved before plan 11's result was posted"},
		"of the older head's same-scope plan": {review(1, "bob", vcs.ReviewApproved, "", 6), Plan{ID: 11, HeadSHA: newer, ResultPostedAt: t0.Add(12 * time.Minute)},
			[]Plan{{ID: 10, HeadSHA: head, ResultPostedAt: posted, SupersededAt: pushed}}, false, "approved before plan 11's result was posted"},
		"of a same-scope re-run of this head": {review(1, "bob", vcs.ReviewApproved, "", 6), Plan{ID: 11, HeadSHA: head, ResultPostedAt: t0.Add(8 * time.Minute)},
			[]Plan{{ID: 10, HeadSHA: head, ResultPostedAt: posted}}, true, ""},
		"no known time": {undated, Plan{ID: 10, HeadSHA: head, ResultPostedAt: posted}, nil, false, NoKnownTime},
		"result never posted": {review(1, "bob", vcs.ReviewApproved, "", 6), Plan{ID: 10, HeadSHA: head}, nil, false,
			"approved before plan 10's result was posted"},
	} {
		t.Run(name, func(t *testing.T) {
			in := base(tc.review)
			in.Facts = vcs.ReviewFacts{} // GitLab's approvals: no commit, the time supplied by the caller
			in.Plan, in.SameScope = tc.plan, tc.sameScope
			res := Evaluate(in)
			assert.Equal(t, tc.approved, res.Approved)
			if tc.approved {
				assert.Equal(t, []string{"bob"}, res.ApprovedBy)
				return
			}
			assert.Equal(t, []Ignored{{"bob", tc.reason}}, res.Ignored)
		})
	}
	// The exclusions hold whatever the time: the author's, the trigger's and a commit author's approvals.
	for _, who := range []string{"alice", "carol", "erin"} {
		in := base(review(1, who, vcs.ReviewApproved, "", 6))
		in.Facts = vcs.ReviewFacts{}
		in.PlanTrigger, in.CommitAuthors = "carol", []string{"alice", "erin"}
		in.Plan = Plan{ID: 10, HeadSHA: head, ResultPostedAt: posted}
		assert.False(t, Evaluate(in).Approved, who)
	}
}

func TestSecondUserApproves(t *testing.T) {
	res := Evaluate(base(review(1, "bob", vcs.ReviewApproved, head, 1)))
	assert.True(t, res.Approved)
	assert.Equal(t, []string{"bob"}, res.ApprovedBy)
	assert.Equal(t, "Approved by @bob", res.Describe())
}

func TestAuthorsOwnApprovalIgnored(t *testing.T) {
	res := Evaluate(base(review(1, "alice", vcs.ReviewApproved, head, 1)))
	assert.False(t, res.Approved)
	assert.Equal(t, []Ignored{{"alice", "is the PR author"}}, res.Ignored)
	assert.Equal(t, 1, res.Missing())
}

func TestTriggerAndCommitAuthorsExcluded(t *testing.T) {
	in := base(review(1, "bob", vcs.ReviewApproved, head, 1), review(2, "carol", vcs.ReviewApproved, head, 2))
	in.PlanTrigger = "bob"
	in.CommitAuthors = []string{"alice", "carol"}
	res := Evaluate(in)
	assert.False(t, res.Approved)
	assert.ElementsMatch(t, []Ignored{{"bob", "triggered the plan"}, {"carol", "authored commits on this PR"}}, res.Ignored)

	in.Rule.CountCommitAuthors = true
	assert.Equal(t, []string{"carol"}, Evaluate(in).ApprovedBy)
}

func TestApprovalOfOlderCommitIsStale(t *testing.T) {
	res := Evaluate(base(review(1, "bob", vcs.ReviewApproved, "0000000000000000000000000000000000000000", 1)))
	assert.False(t, res.Approved)
	assert.Contains(t, res.Ignored[0].Reason, "not the planned commit 1111111")
}

func TestDismissedReviewNoLongerCounts(t *testing.T) {
	res := Evaluate(base(review(1, "bob", vcs.ReviewDismissed, head, 1)))
	assert.False(t, res.Approved)
	assert.Equal(t, []Ignored{{"bob", "review was dismissed"}}, res.Ignored)
}

func TestChangesRequestedAfterApprovalBlocks(t *testing.T) {
	res := Evaluate(base(review(1, "bob", vcs.ReviewApproved, head, 1), review(2, "bob", vcs.ReviewChangesRequested, head, 2)))
	assert.False(t, res.Approved)
	assert.Empty(t, res.ApprovedBy)
	assert.Equal(t, "Changes requested by @bob", res.Describe())
}

func TestApprovalAfterChangesRequestedCounts(t *testing.T) {
	res := Evaluate(base(review(1, "bob", vcs.ReviewChangesRequested, head, 1), review(2, "bob", vcs.ReviewApproved, head, 2)))
	assert.True(t, res.Approved)
}

func TestCommentAfterApprovalKeepsApproval(t *testing.T) {
	res := Evaluate(base(review(1, "bob", vcs.ReviewApproved, head, 1), review(2, "bob", vcs.ReviewCommented, head, 2)))
	assert.True(t, res.Approved)
}

func TestOtherReviewersChangeRequestBlocksOnlyWithWrite(t *testing.T) {
	res := Evaluate(base(review(1, "bob", vcs.ReviewApproved, head, 1), review(2, "dave", vcs.ReviewChangesRequested, head, 2)))
	assert.True(t, res.Approved, "a read-only user's change request does not block")
	res = Evaluate(base(review(1, "bob", vcs.ReviewApproved, head, 1), review(2, "erin", vcs.ReviewChangesRequested, head, 2)))
	assert.False(t, res.Approved)
}

func TestReadOnlyApproverIgnored(t *testing.T) {
	res := Evaluate(base(review(1, "dave", vcs.ReviewApproved, head, 1), review(2, "mallory", vcs.ReviewApproved, head, 2)))
	assert.False(t, res.Approved)
	assert.ElementsMatch(t, []Ignored{{"dave", "has no write permission"}, {"mallory", "has no write permission"}}, res.Ignored)
}

func TestAllowedApproversAndTeams(t *testing.T) {
	in := base(review(1, "bob", vcs.ReviewApproved, head, 1), review(2, "erin", vcs.ReviewApproved, head, 2))
	in.Rule = Rule{RequiredApprovals: 2, Approvers: []string{"@erin", "acme/data-leads"}}
	in.Teams = map[string][]string{"acme/data-leads": {"carol"}}
	res := Evaluate(in)
	assert.False(t, res.Approved)
	assert.Equal(t, []string{"erin"}, res.ApprovedBy)
	assert.Equal(t, "1 of 2 required approvals (approved by @erin); 1 more needed", res.Describe())

	in.Reviews = append(in.Reviews, review(3, "carol", vcs.ReviewApproved, head, 3))
	res = Evaluate(in)
	assert.True(t, res.Approved)
	assert.Equal(t, []string{"carol", "erin"}, res.ApprovedBy)
	assert.Equal(t, []string{"acme/data-leads"}, in.Rule.Teams())
}

func TestNoApprovalRequired(t *testing.T) {
	in := base()
	in.Rule.RequiredApprovals = 0
	res := Evaluate(in)
	assert.True(t, res.Approved)
	assert.Equal(t, "No approval required", res.Describe())
}

func TestAnApprovalCountsOnlyForAPlanPostedBeforeIt(t *testing.T) {
	// The plan's result was posted at minute 5; an approval at minute 3 was given while it still ran.
	in := base(review(1, "bob", vcs.ReviewApproved, head, 3))
	in.Plan.ResultPostedAt = t0.Add(5 * time.Minute)
	res := Evaluate(in)
	assert.False(t, res.Approved)
	assert.Equal(t, []Ignored{{"bob", "approved before plan 10's result was posted"}}, res.Ignored)

	// Given in the same second as the result: not after it, so it does not count either.
	in = base(review(1, "bob", vcs.ReviewApproved, head, 5))
	in.Plan.ResultPostedAt = t0.Add(5 * time.Minute)
	assert.False(t, Evaluate(in).Approved)

	in = base(review(1, "bob", vcs.ReviewApproved, head, 6))
	in.Plan.ResultPostedAt = t0.Add(5 * time.Minute)
	res = Evaluate(in)
	assert.True(t, res.Approved)
	assert.Equal(t, []int64{10}, res.Plans)
}

func TestAPlanNeverPostedIsNotApproved(t *testing.T) {
	in := base(review(1, "bob", vcs.ReviewApproved, head, 3))
	in.Plan.ResultPostedAt = time.Time{}
	assert.False(t, Evaluate(in).Approved)
}

func TestANewPlanAtTheSameHeadNeedsItsOwnReview(t *testing.T) {
	// Bob approved plan 10 (posted at minute 1, approved at 2). A `/dagctl plan --restate-model ...` makes plan 11 at
	// the same head, posted at minute 4: its scope differs, so bob's approval does not reach it.
	in := base(review(1, "bob", vcs.ReviewApproved, head, 2))
	in.Plan = Plan{ID: 11, HeadSHA: head, ResultPostedAt: t0.Add(4 * time.Minute)}
	assert.False(t, Evaluate(in).Approved)

	// The same scope as plan 10 (a re-run): the approval of plan 10 covers it.
	in.SameScope = []Plan{{ID: 10, HeadSHA: head, ResultPostedAt: t0.Add(1 * time.Minute)}}
	res := Evaluate(in)
	assert.True(t, res.Approved)
	assert.Equal(t, []int64{10}, res.Plans)

	// A same-scope plan of another commit covers nothing: approvals are of exactly the planned commit.
	in.SameScope = []Plan{{ID: 9, HeadSHA: "2222222222222222222222222222222222222222", ResultPostedAt: t0}}
	assert.False(t, Evaluate(in).Approved)
}

// A hook that does not name the PR's author (GitLab's update hook names only an id) must not let the author's
// own approval count: with the author unknown, no approval counts, on either forge's facts.
func TestNoApprovalCountsWhenThePRsAuthorIsUnknown(t *testing.T) {
	for name, facts := range map[string]vcs.ReviewFacts{"commit and time": {Commit: true, SubmittedAt: true}, "time alone": {}} {
		t.Run(name, func(t *testing.T) {
			in := base(review(1, "bob", vcs.ReviewApproved, head, 6))
			in.Facts = facts
			in.PRAuthor = ""
			res := Evaluate(in)
			assert.False(t, res.Approved)
			assert.Equal(t, []Ignored{{"bob", UnknownAuthor}}, res.Ignored)

			in.PRAuthor = "carol"
			assert.True(t, Evaluate(in).Approved, "the same approval counts once the author is known")
		})
	}
}
