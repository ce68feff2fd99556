// Package approval decides whether a plan is approved for a protected environment. It is a pure function over
// the pull request, its reviews and the plan: the caller fetches reviews, permissions and team memberships from
// the forge (fresh, whenever it matters) and this package applies the rules.
package approval

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// Rule is an environment's protection, from the base branch's config.
type Rule struct {
	RequiredApprovals int
	// Approvers are logins or "org/team" slugs allowed to approve; empty means anyone with write permission.
	Approvers []string
	// CountCommitAuthors lets people who authored commits on the PR approve it. Off by default: an author of a
	// change does not approve it.
	CountCommitAuthors bool
}

// Input is everything the rules look at.
type Input struct {
	Rule     Rule
	PRAuthor string
	// Plan is the plan to approve: an approval must be of exactly its commit, and given after its result was
	// posted (a review given while the plan still ran, or of an earlier plan, approved something else).
	Plan Plan
	// SameScope are earlier plans of the same PR whose scope (models, categories, backfill, restatements, flags)
	// equals Plan's: an approval that covered one of them covers Plan too (a re-run changes nothing reviewed).
	SameScope     []Plan
	PlanTrigger   string // who triggered the plan
	CommitAuthors []string
	Reviews       []vcs.Review
	// Permissions of the reviewers (folded: admin, write, read, none). A reviewer missing here has none.
	Permissions map[string]vcs.Permission
	// Teams maps "org/team" to its members, for the teams named in Rule.Approvers.
	Teams map[string][]string
	// Facts is what the forge's reviews carry (vcs.Forge.ReviewFacts). With the commit (GitHub), an approval is
	// bound to the plan by its commit and its time, and needs both. Without the commit (GitLab), time alone binds
	// (Plan.SupersededAt), and a review without a known time (SubmittedAt zero: neither the API nor a stored
	// approval event dated it) does not count.
	Facts vcs.ReviewFacts
}

// unbindable says why the forge's reviews cannot be bound to a plan, or "" when they can: by commit and time, or,
// for a forge whose approvals name no commit, by time alone (checked per review).
func unbindable(f vcs.ReviewFacts) string {
	if f.Commit && !f.SubmittedAt {
		return "the forge's approvals do not say when they were given"
	}
	return ""
}

// NoKnownTime is why an approval without a commit and without a time does not count.
const NoKnownTime = "approval has no known time (the forge gave none and no approval event of it was stored)"

// UnknownAuthor is why no approval counts for a PR whose author the bot does not know: it could be the author's.
const UnknownAuthor = "the PR's author is not known, so no approval can be told from the author's own"

// Plan is a plan as the approval rules see it.
type Plan struct {
	ID      int64
	HeadSHA string
	// ResultPostedAt is when the forge says the plan's result was posted (its check completed), on the forge's
	// clock, which is also the clock of the reviews' times. Zero: never posted, so nothing approved it.
	ResultPostedAt time.Time
	// SupersededAt is when the PR's head moved off HeadSHA (on the forge's clock; zero: it has not). On a forge
	// whose approvals name no commit, only approvals given before it can be of this plan's commit.
	SupersededAt time.Time
}

// coveredBy reports whether a review was given on the plan's commit after the plan's result was posted. Without
// the review's commit (byTime), the time alone decides: after the result, before the head moved on.
func (p Plan) coveredBy(r vcs.Review, byTime bool) bool {
	if p.ResultPostedAt.IsZero() || !r.SubmittedAt.After(p.ResultPostedAt) {
		return false
	}
	if byTime {
		return p.SupersededAt.IsZero() || r.SubmittedAt.Before(p.SupersededAt)
	}
	return r.CommitSHA == p.HeadSHA
}

// Ignored is a review that did not count, and why.
type Ignored struct {
	User   string
	Reason string
}

// Result is the decision.
type Result struct {
	Approved bool
	// ApprovedBy are the reviewers whose approvals count, sorted.
	ApprovedBy []string
	// ChangesRequestedBy are reviewers with write access whose latest review requests changes; they block.
	ChangesRequestedBy []string
	Ignored            []Ignored
	Required           int
	// Plans are the plans the counted approvals were given on: Input.Plan, or earlier plans of the same scope.
	Plans []int64
	// Waived says why no approval is needed (set by the caller, e.g. a plan with no changes whose PR changes no
	// file of the project); "" when approvals decide.
	Waived string
}

// Missing is how many more approvals are needed.
func (r Result) Missing() int {
	if n := r.Required - len(r.ApprovedBy); n > 0 {
		return n
	}
	return 0
}

// Describe says in one line what is there and what is missing, for checks and comments.
func (r Result) Describe() string {
	var b strings.Builder
	switch {
	case r.Waived != "":
		b.WriteString(r.Waived)
	case r.Approved && len(r.ApprovedBy) == 0:
		b.WriteString("No approval required")
	case r.Approved:
		fmt.Fprintf(&b, "Approved by %s", joinUsers(r.ApprovedBy))
	case len(r.ChangesRequestedBy) > 0:
		fmt.Fprintf(&b, "Changes requested by %s", joinUsers(r.ChangesRequestedBy))
	default:
		fmt.Fprintf(&b, "%d of %d required approvals", len(r.ApprovedBy), r.Required)
		if len(r.ApprovedBy) > 0 {
			fmt.Fprintf(&b, " (approved by %s)", joinUsers(r.ApprovedBy))
		}
		fmt.Fprintf(&b, "; %d more needed", r.Missing())
	}
	return b.String()
}

func joinUsers(users []string) string {
	out := make([]string, len(users))
	for i, u := range users {
		out[i] = "@" + u
	}
	return strings.Join(out, ", ")
}

// Evaluate applies the rules:
//   - each reviewer's latest review that decides something counts (approved, changes requested, or dismissed —
//     a dismissal voids that reviewer's approval); plain comments do not change a reviewer's state;
//   - an approval counts only if it is of the planned commit and was given after the plan's result was posted
//     (or after the result of an earlier plan of the same commit and scope), its author is not the PR author, not the plan's
//     trigger, not a commit author (unless the rule allows), is an allowed approver and has write permission;
//   - changes requested by a reviewer with write permission block;
//   - the number of counted approvals must reach the rule's requirement;
//   - on a forge whose approvals name no commit (Input.Facts), time alone binds: after the plan's result, before
//     its head was superseded; an approval with no known time does not count.
//
// It is long because the rules above are applied in one pass, in that order.
func Evaluate(in Input) Result {
	res := Result{Required: in.Rule.RequiredApprovals}
	cannotBind := unbindable(in.Facts)
	excluded := map[string]string{}
	if !in.Rule.CountCommitAuthors {
		for _, a := range in.CommitAuthors {
			excluded[strings.ToLower(a)] = "authored commits on this PR"
		}
	}
	if in.PlanTrigger != "" {
		excluded[strings.ToLower(in.PlanTrigger)] = "triggered the plan"
	}
	excluded[strings.ToLower(in.PRAuthor)] = "is the PR author"
	// Without the author no approval can be told from the author's own, so none counts (fail closed).
	unknownAuthor := strings.TrimSpace(in.PRAuthor) == ""

	for _, r := range latestDecisiveReviews(in.Reviews) {
		perm := in.Permissions[r.User]
		switch r.State {
		case vcs.ReviewChangesRequested:
			if perm.CanWrite() {
				res.ChangesRequestedBy = append(res.ChangesRequestedBy, r.User)
			}
			continue
		case vcs.ReviewDismissed:
			res.Ignored = append(res.Ignored, Ignored{r.User, "review was dismissed"})
			continue
		}
		if reason, ok := excluded[strings.ToLower(r.User)]; ok {
			res.Ignored = append(res.Ignored, Ignored{r.User, reason})
			continue
		}
		if unknownAuthor {
			res.Ignored = append(res.Ignored, Ignored{r.User, UnknownAuthor})
			continue
		}
		if cannotBind != "" {
			res.Ignored = append(res.Ignored, Ignored{r.User, cannotBind})
			continue
		}
		byTime := !in.Facts.Commit
		if byTime && r.SubmittedAt.IsZero() {
			res.Ignored = append(res.Ignored, Ignored{r.User, NoKnownTime})
			continue
		}
		if !byTime && r.CommitSHA != in.Plan.HeadSHA {
			res.Ignored = append(res.Ignored, Ignored{r.User, fmt.Sprintf("approved %s, not the planned commit %s", short(r.CommitSHA), short(in.Plan.HeadSHA))})
			continue
		}
		covered, ok := coveringPlan(in, r, byTime)
		if !ok {
			reason := fmt.Sprintf("approved before plan %d's result was posted", in.Plan.ID)
			if byTime && !in.Plan.SupersededAt.IsZero() && !r.SubmittedAt.Before(in.Plan.SupersededAt) {
				reason = fmt.Sprintf("approved after a push replaced plan %d's commit", in.Plan.ID)
			}
			res.Ignored = append(res.Ignored, Ignored{r.User, reason})
			continue
		}
		if !perm.CanWrite() {
			res.Ignored = append(res.Ignored, Ignored{r.User, "has no write permission"})
			continue
		}
		if !allowedApprover(in, r.User) {
			res.Ignored = append(res.Ignored, Ignored{r.User, "is not an allowed approver"})
			continue
		}
		res.ApprovedBy = append(res.ApprovedBy, r.User)
		if !slices.Contains(res.Plans, covered) {
			res.Plans = append(res.Plans, covered)
		}
	}
	slices.Sort(res.Plans)
	sort.Strings(res.ApprovedBy)
	sort.Strings(res.ChangesRequestedBy)
	res.Approved = len(res.ChangesRequestedBy) == 0 && len(res.ApprovedBy) >= res.Required
	return res
}

// coveringPlan is the plan a review approved: Input.Plan if it was given after that plan's result, else an earlier
// plan of the same scope whose result it followed.
func coveringPlan(in Input, r vcs.Review, byTime bool) (int64, bool) {
	if in.Plan.coveredBy(r, byTime) {
		return in.Plan.ID, true
	}
	for _, p := range in.SameScope {
		if p.HeadSHA == in.Plan.HeadSHA && p.coveredBy(r, byTime) {
			return p.ID, true
		}
	}
	return 0, false
}

// latestDecisiveReviews keeps, per reviewer, the latest review that is not a plain comment (or pending).
func latestDecisiveReviews(reviews []vcs.Review) []vcs.Review {
	sorted := append([]vcs.Review(nil), reviews...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if !sorted[i].SubmittedAt.Equal(sorted[j].SubmittedAt) {
			return sorted[i].SubmittedAt.Before(sorted[j].SubmittedAt)
		}
		return sorted[i].ID < sorted[j].ID
	})
	latest := map[string]vcs.Review{}
	var order []string
	for _, r := range sorted {
		if r.State == vcs.ReviewCommented || r.State == vcs.ReviewPending || r.User == "" {
			continue
		}
		if _, seen := latest[r.User]; !seen {
			order = append(order, r.User)
		}
		latest[r.User] = r
	}
	out := make([]vcs.Review, 0, len(order))
	for _, u := range order {
		out = append(out, latest[u])
	}
	return out
}

func allowedApprover(in Input, user string) bool {
	if len(in.Rule.Approvers) == 0 {
		return true
	}
	for _, a := range in.Rule.Approvers {
		if strings.Contains(a, "/") {
			for _, m := range in.Teams[a] {
				if strings.EqualFold(m, user) {
					return true
				}
			}
		} else if strings.EqualFold(strings.TrimPrefix(a, "@"), user) {
			return true
		}
	}
	return false
}

// Teams lists the team slugs named in a rule's approvers, so the caller knows whose membership to fetch.
func (r Rule) Teams() []string {
	var teams []string
	for _, a := range r.Approvers {
		if strings.Contains(a, "/") {
			teams = append(teams, a)
		}
	}
	return teams
}

func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}
