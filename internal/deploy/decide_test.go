package deploy

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
)

const head = "0123456789abcdef0123456789abcdef01234567"

func yes() *bool          { v := true; return &v }
func no() *bool           { v := false; return &v }
func n(v int) *int        { return &v }
func approved() *Approval { return &Approval{Approved: true, Describe: "Approved by bob"} }

// byComment is a request to apply prod by comment that passes every rule.
func byComment() Facts {
	return Facts{
		Step: StepAsked, Trigger: repoconfig.ApplyOnComment, User: "alice",
		PR: PR{HeadSHA: head, BaseRef: "main", DefaultBranch: "main", BaseIsDeployBranch: true, Mergeable: yes()},
		Target: &Target{
			Env:  Env{Name: "prod", AppliesOnTrigger: true, NeedsApproval: true},
			Name: "prod", SHA: head, Behind: n(0), Approval: approved(),
			Plan: Plan{Found: true, Status: plan.StatusReady, HasSummary: true},
		},
	}
}

func byMerge() Facts {
	f := byComment()
	f.Trigger, f.PR.Merged, f.PR.Closed, f.Target.Behind = repoconfig.ApplyOnMerge, true, true, nil
	return f
}

func locked() Facts {
	f := byComment()
	f.Step = StepLocked
	f.Target.Lock = &Lock{Ours: true}
	f.Target.Content = &ReviewedContent{Hash: "ab12cd34ef56ab78cd90ef12ab34cd56"}
	return f
}

func TestDecide(t *testing.T) {
	tests := []struct {
		name    string
		facts   func(f *Facts)
		start   func() Facts
		verdict Verdict
		code    Code // the first reason's code
		need    Need
	}{
		{"everything holds", nil, byComment, Apply, "", ""},
		{"closed", func(f *Facts) { f.PR.Closed = true }, byComment, Refuse, CodePRClosed, ""},
		{"closed and merged, with --accept", func(f *Facts) {
			f.PR.Closed, f.PR.Merged, f.Request = true, true, Request{Accept: "ab12", EnvNamed: true, UserIsAdmin: yes()}
		}, byComment, Apply, "", ""},
		{"--accept on a merged PR names the environment", func(f *Facts) {
			f.PR.Closed, f.PR.Merged, f.Request = true, true, Request{Accept: "ab12", UserIsAdmin: yes()}
		}, byComment, Refuse, CodeEnvUnnamed, ""},
		{"conflicts", func(f *Facts) { f.PR.Mergeable = no() }, byComment, Refuse, CodeConflicts, ""},
		{"mergeability unknown", func(f *Facts) { f.PR.Mergeable = nil }, byComment, Apply, "", ""},
		{"--accept asks who the user is", func(f *Facts) { f.Request.Accept = "ab12" }, byComment, Undecided, "", NeedAdmin},
		{"--accept by a writer", func(f *Facts) { f.Request.Accept, f.Request.UserIsAdmin = "ab12", no() }, byComment, Refuse, CodeNotAdmin, ""},
		{"targets not resolved yet", func(f *Facts) { f.Target = nil }, byComment, Undecided, "", NeedTarget},
		{"an environment applied on merge", func(f *Facts) { f.Target.Env.AppliesOnTrigger = false }, byComment, Refuse, CodeNotOnTrigger, ""},
		{"appliers not read yet", func(f *Facts) { f.Target.Env.Appliers = []string{"org/platform"} }, byComment, Undecided, "", NeedApplier},
		{"not an applier", func(f *Facts) { f.Target.Env.Appliers, f.Target.Applier = []string{"org/platform"}, no() }, byComment, Refuse, CodeNotApplier, ""},
		{"an applier", func(f *Facts) { f.Target.Env.Appliers, f.Target.Applier = []string{"org/platform"}, yes() }, byComment, Apply, "", ""},
		{"not a deploy branch", func(f *Facts) { f.PR.BaseIsDeployBranch = false }, byComment, Refuse, CodeNotDeployBranch, ""},
		{"an unprotected environment from any branch", func(f *Facts) {
			f.PR.BaseIsDeployBranch, f.Target.Env.NeedsApproval, f.Target.Behind = false, false, nil
		}, byComment, Apply, "", ""},
		{"divergence not read yet", func(f *Facts) { f.Target.Behind = nil }, byComment, Undecided, "", NeedBehind},
		{"behind the deploy branch", func(f *Facts) { f.Target.Behind = n(2) }, byComment, Refuse, CodeBehind, ""},
		{"no plan at the head", func(f *Facts) { f.Target.Plan = Plan{} }, byComment, Refuse, CodeNoPlan, ""},
		{"a failed plan", func(f *Facts) { f.Target.Plan.Status = plan.StatusFailed }, byComment, Refuse, CodePlanNotReady, ""},
		{"a stale plan", func(f *Facts) { f.Target.Plan.Status = plan.StatusStale }, byComment, Refuse, CodePlanNotReady, ""},
		{"no summary", func(f *Facts) { f.Target.Plan.HasSummary = false }, byComment, Refuse, CodeNoSummary, ""},
		{"uncategorized changes", func(f *Facts) { f.Target.Plan.Uncategorized = []string{"db.a"} }, byComment, Refuse, CodeUncategorized, ""},
		{"an apply running", func(f *Facts) { f.Target.Plan.ApplyRunning = 7 }, byComment, Refuse, CodeApplyRunning, ""},
		{"applied already", func(f *Facts) { f.Target.Plan.Applied = true }, byComment, Refuse, CodeApplied, ""},
		{"no changes, every environment", func(f *Facts) { f.Target.Plan.Status = plan.StatusNoChanges }, byComment, NothingToDo, CodeNoChanges, ""},
		{"no changes, the environment named", func(f *Facts) { f.Target.Plan.Status, f.Request.EnvNamed = plan.StatusNoChanges, true }, byComment, Refuse, CodeNoChanges, ""},
		{"approval not read yet", func(f *Facts) { f.Target.Approval = nil }, byComment, Undecided, "", NeedApproval},
		{"not approved", func(f *Facts) { f.Target.Approval = &Approval{Describe: "1 more approval"} }, byComment, Refuse, CodeNotApproved, ""},

		{"merged into a deploy branch", nil, byMerge, Apply, "", ""},
		{"merged into a branch that does not deploy", func(f *Facts) { f.PR.BaseIsDeployBranch = false }, byMerge, NothingToDo, CodeNotDeployBranch, ""},
		{"merged with no changes", func(f *Facts) { f.Target.Plan.Status = plan.StatusNoChanges }, byMerge, NothingToDo, CodeNoChanges, ""},
		{"merged after an apply by comment", func(f *Facts) { f.Target.Plan.Applied = true }, byMerge, NothingToDo, CodeApplied, ""},
		{"merged with a failed plan", func(f *Facts) { f.Target.Plan.Status = plan.StatusFailed }, byMerge, Refuse, CodePlanNotReady, ""},
		{"merged without approval", func(f *Facts) { f.Target.Approval = &Approval{Describe: "1 more approval"} }, byMerge, Refuse, CodeNotApproved, ""},
		{"merged while the plan is queued: an unprotected environment waits for it", func(f *Facts) {
			f.Target.Env.NeedsApproval, f.Target.Plan, f.Target.Approval = false, Plan{Found: true, Status: plan.StatusQueued}, nil
		}, byMerge, Wait, CodePlanRunning, ""},
		{"merged while the plan runs: an unprotected environment waits for it", func(f *Facts) {
			f.Target.Env.NeedsApproval, f.Target.Plan, f.Target.Approval = false, Plan{Found: true, Status: plan.StatusRunning}, nil
		}, byMerge, Wait, CodePlanRunning, ""},
		{"merged while the plan runs: a protected environment is not approved", func(f *Facts) {
			f.Target.Plan, f.Target.Approval = Plan{Found: true, Status: plan.StatusRunning}, nil
		}, byMerge, Refuse, CodeNotApproved, ""},
		{"a running plan by comment is still not ready", func(f *Facts) { f.Target.Plan.Status = plan.StatusRunning }, byComment, Refuse, CodePlanNotReady, ""},
		{"merged: appliers are not asked", func(f *Facts) { f.Target.Env.Appliers = []string{"org/platform"} }, byMerge, Apply, "", ""},

		{"under the lock, holding it", nil, locked, Apply, "", ""},
		{"the lock not tried yet", func(f *Facts) { f.Target.Lock = nil }, locked, Undecided, "", NeedLock},
		{"the lock held by another PR", func(f *Facts) { f.Target.Lock = &Lock{PR: 3, User: "bob", PlanID: 9} }, locked, Wait, CodeLocked, ""},
		{"under the lock, behind", func(f *Facts) { f.Target.Behind = n(1) }, locked, Refuse, CodeBehind, ""},
		{"under the lock, at the branch head", func(f *Facts) { f.Target.Behind, f.Target.AtBranchHead = nil, true }, locked, Apply, "", ""},
		{"content not compared yet", func(f *Facts) { f.Target.Content = nil }, locked, Undecided, "", NeedContent},
		{"unreviewed files", func(f *Facts) { f.Target.Content.Unreviewed = []string{"models/a.sql"} }, locked, Refuse, CodeUnreviewed, ""},
		{"unreviewed files, accepted", func(f *Facts) { f.Target.Content.Unreviewed, f.Request.Accept = []string{"models/a.sql"}, "ab12cd" }, locked, Apply, CodeContentAccepted, ""},
		{"unreviewed files, another hash accepted", func(f *Facts) { f.Target.Content.Unreviewed, f.Request.Accept = []string{"models/a.sql"}, "ffff" }, locked, Refuse, CodeUnreviewed, ""},
		{"an unprotected environment is not compared", func(f *Facts) { f.Target.Env.NeedsApproval, f.Target.Content, f.Target.Behind = false, nil, nil }, locked, Apply, "", ""},
		{"merged: divergence is not asked under the lock", func(f *Facts) { f.Trigger, f.Target.Behind = repoconfig.ApplyOnMerge, nil }, locked, Apply, "", ""},

		{"re-planned, same scope", func(f *Facts) { f.Step = StepReplanned }, byComment, Apply, "", ""},
		{"re-planned, scope changed", func(f *Facts) { f.Step, f.Target.ScopeDifferences = StepReplanned, []string{"db.b is new"} }, byComment, Refuse, CodeScopeChanged, ""},
		{"re-planned, scope changed, content accepted", func(f *Facts) {
			f.Step, f.Target.ScopeDifferences, f.Target.ContentAccepted = StepReplanned, []string{"db.b is new"}, true
		}, byComment, Apply, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.start()
			if tt.facts != nil {
				tt.facts(&f)
			}
			d := Decide(f)
			assert.Equal(t, tt.verdict, d.Verdict)
			assert.Equal(t, tt.need, d.Need)
			var code Code
			if len(d.Reasons) > 0 {
				code = d.Reasons[0].Code
			}
			assert.Equal(t, tt.code, code)
		})
	}
}

// The messages are today's texts: the e2e tests compare comment texts.
func TestDecisionMessages(t *testing.T) {
	f := byComment()
	f.Target.Behind = n(2)
	assert.Equal(t, []string{"`prod`: this PR's head 0123456 is 2 commit(s) behind `main`: applying it would roll `prod` back by what was merged since. Update the branch, then apply the new plan."}, Decide(f).Messages())

	f = byMerge()
	f.Target.Approval = &Approval{Describe: "1 more approval needed"}
	assert.Equal(t, "`prod` was NOT applied: the PR was merged without the required approval (1 more approval needed).", Decide(f).Reasons[0].Message)

	f = byMerge()
	f.Target.Plan.Status = plan.StatusFailed
	assert.Equal(t, "`prod` was NOT applied: `prod`'s plan for 0123456 is failed.", Decide(f).Reasons[0].Message)

	f = byMerge()
	f.Target.Plan, f.Target.Approval = Plan{Found: true, Status: plan.StatusRunning}, nil
	assert.Equal(t, "`prod` was NOT applied: the PR was merged without the required approval (its plan for 0123456 had not finished, and a review counts only once the plan's result is posted).", Decide(f).Reasons[0].Message)
	f.Target.Env.NeedsApproval = false
	assert.Equal(t, "`prod` waits for its plan for 0123456, which has not finished: it is applied when the plan ends.", Decide(f).Reasons[0].Message)

	f = locked()
	f.Target.Lock = &Lock{PR: 3, User: "bob", PlanID: 9}
	assert.Equal(t, "Waiting: `prod` is locked by #3 (bob), applying plan 9.", Decide(f).Reasons[0].Message)

	f = locked()
	files := make([]string, 32)
	for i := range files {
		files[i] = string(rune('a'+i%26)) + ".sql"
	}
	f.Target.Content.Unreviewed = files
	r := Decide(f).Reasons[0]
	assert.Equal(t, "Refused: files changed since the last apply that no approved plan covered", r.Title)
	assert.Contains(t, r.Message, "- … and 2 more\n")
	assert.Contains(t, r.Message, "`/dagctl apply prod --accept ab12cd34ef56ab78`")
}

func TestRequestCodesAreAnsweredAlone(t *testing.T) {
	assert.True(t, CodePRClosed.AboutRequest())
	assert.False(t, CodeNotApproved.AboutRequest())
	assert.True(t, CodeBehind.AboutEnvironment())
	assert.False(t, CodeNotApproved.AboutEnvironment(), "each project's plan has its own approval")
}
