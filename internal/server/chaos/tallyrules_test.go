package chaos_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/dagctl/dagctl-bot/internal/comments"
	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// cleanRun is one PR driven to the end with nothing lost or doubled.
func cleanRun() observed {
	return observed{
		PRs: []prLedger{{Number: 1, Head: "h2", Commands: []int64{10}, Merged: true}},
		Checks: []check{
			{Name: "dagctl/plan: dev", SHA: "h1", ExternalID: "plan:1", State: vcs.StatusCancelled},
			{Name: "dagctl/plan: dev", SHA: "h2", ExternalID: "plan:3", State: vcs.StatusSuccess},
			{Name: "dagctl/plan: prod", SHA: "h2", ExternalID: "plan:4", State: vcs.StatusSuccess},
		},
		Replies: map[int][]reply{1: {
			{ID: 5, Body: comments.Marker + "\nthe plans"},
			{ID: 11, Body: "🚀 Applying `dev` at h2 for @alice: planning again first"},
			{ID: 12, Body: "✅ `dev`: Applied"},
			{ID: 13, Body: "✅ `prod`: Applied"},
		}},
		Eyes: map[int64]bool{10: true},
		Runs: []run{
			{ID: 7, PlanID: 3, Kind: jobs.KindApply, Status: "succeeded", PR: 1, Env: "dev"},
			{ID: 8, PlanID: 4, Kind: jobs.KindApply, Status: "succeeded", PR: 1, Env: "prod"},
		},
		Journal: []jobLine{{RunID: "7-verify", Kind: jobs.KindPlan}, {RunID: "7-apply", Kind: jobs.KindApply},
			{RunID: "8-apply", Kind: jobs.KindApply}},
	}
}

func TestTallyNamesWhatWasLostDoubledStuckOrHeld(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(o *observed)
		want   counts
	}{
		{"a clean run", func(*observed) {}, counts{}},
		{"a command answered twice", func(o *observed) {
			o.Replies[1] = append(o.Replies[1], reply{ID: 14, Body: "🚀 Applying `dev` at h2 for @alice"})
		}, counts{Doubled: []string{"PR #1: 1 `/dagctl apply dev` commands, 2 answers"}}},
		{"a command never answered nor seen", func(o *observed) {
			o.Replies[1] = append(o.Replies[1][:1], o.Replies[1][2:]...)
			o.Eyes = nil
		}, counts{Lost: []string{"PR #1: command comment 10 got no 👀", "PR #1: 1 `/dagctl apply dev` commands, 0 answered"}}},
		{"an apply job started again after a restart", func(o *observed) {
			o.Journal = append(o.Journal, jobLine{RunID: "9-apply", Kind: jobs.KindApply})
			o.Runs = append(o.Runs, run{ID: 9, PlanID: 4, Kind: jobs.KindApply, Status: "failed", PR: 1, Env: "prod"})
		}, counts{Doubled: []string{"PR #1 prod (plan 4): applied 2 times (jobs 8-apply, 9-apply)"}}},
		{"an apply's end replied twice", func(o *observed) {
			o.Replies[1] = append(o.Replies[1], reply{ID: 15, Body: "✅ `prod`: Applied"})
		}, counts{Doubled: []string{"PR #1: 2 replies ending a prod apply, 1 applies ended"}}},
		{"a check run created twice", func(o *observed) {
			o.Checks = append(o.Checks, check{Name: "dagctl/plan: prod", SHA: "h2", ExternalID: "plan:4", State: vcs.StatusSuccess})
		}, counts{Doubled: []string{`check run "dagctl/plan: prod" on h2 (plan:4) created 2 times`}}},
		{"two sticky comments", func(o *observed) {
			o.Replies[1] = append(o.Replies[1], reply{ID: 16, Body: comments.Marker + "\nagain"})
		}, counts{Doubled: []string{"PR #1: 2 sticky comments"}}},
		{"a check left running, a lock left held, a dead delivery", func(o *observed) {
			o.Checks[1].State = vcs.StatusRunning
			o.Locks = []string{"dev held by PR #1 (plan 3)"}
			o.Dead = []string{"d-1 (pull_request): failed for good"}
		}, counts{Lost: []string{"delivery d-1 (pull_request): failed for good"},
			StuckChecks: []string{`"dagctl/plan: dev" on h2 (plan:3) is running`}, HeldLocks: []string{"dev held by PR #1 (plan 3)"}}},
		{"a merge that applied nothing", func(o *observed) {
			o.Runs = o.Runs[:1]
			o.Journal = o.Journal[:2]
			o.Replies[1] = append(o.Replies[1][:3], reply{ID: 17, Body: "⚠️ `prod` was not applied: no approval"})
		}, counts{Lost: []string{`PR #1: merged and approved, prod never applied (prod applies ended []; merge note "⚠️ ` + "`prod`" + ` was not applied: no approval")`}}},
		{"a merge whose apply failed", func(o *observed) {
			o.Runs[1].Status, o.Runs[1].Reason = "failed", "Could not compare the content with the last apply"
			o.Replies[1][3].Body = "❌ `prod`: Could not compare the content with the last apply"
		}, counts{Lost: []string{`PR #1: merged and approved, prod never applied (prod applies ended ["failed: Could not compare the content with the last apply"]; merge note "")`}}},
		{"the head was never planned", func(o *observed) { o.PRs[0].Head = "h3" }, counts{Lost: []string{
			`PR #1: no "dagctl/plan: dev" on its head h3`, `PR #1: no "dagctl/plan: prod" on its head h3`}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := cleanRun()
			tc.change(&o)
			assert.Equal(t, tc.want, tally(o))
		})
	}
}
