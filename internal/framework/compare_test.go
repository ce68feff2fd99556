package framework

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
)

// versionBump completes a dbt-shaped summary as the simplest comparing framework would: a deploy when the
// head's file "v" differs from the base's.
type versionBump struct{ err error }

func (versionBump) CommitFiles(repoconfig.Project) []string { return []string{"v"} }

func (c versionBump) Complete(s *plan.Summary, cmp Comparison) error {
	if c.err != nil {
		return c.err
	}
	s.DBT.Deploy = cmp.Base == nil || string(cmp.Head.Files["v"]) != string(cmp.Base.Files["v"])
	s.DBT.Scope = plan.ScopeNone
	if s.DBT.Deploy {
		s.DBT.Scope = plan.ScopeAll
	}
	return nil
}

func TestCompletePlanSaysAgainWhatTheCompletedSummaryMeans(t *testing.T) {
	head := Commit{SHA: "h", Files: map[string][]byte{"v": []byte("2")}}
	bumped := Comparison{Head: head, Base: &Commit{SHA: "b", Files: map[string][]byte{"v": []byte("1")}}}
	same := Comparison{Head: head, Base: &Commit{SHA: "b", Files: map[string][]byte{"v": []byte("2")}}}
	made := func(status plan.Status, errText string) PlanOutcome {
		return PlanOutcome{Status: status, Error: errText, Summary: &plan.Summary{Tool: "dbt", DBT: &plan.DBT{}}}
	}
	for name, tc := range map[string]struct {
		c      Comparer
		in     PlanOutcome
		cmp    Comparison
		status plan.Status
		err    string
	}{
		"the job's no-changes becomes a deploy":     {versionBump{}, made(plan.StatusNoChanges, ""), bumped, plan.StatusReady, ""},
		"no bump stays no changes":                  {versionBump{}, made(plan.StatusNoChanges, ""), same, plan.StatusNoChanges, ""},
		"a failed plan is left as it is":            {versionBump{}, made(plan.StatusFailed, "compile error"), bumped, plan.StatusFailed, "compile error"},
		"a cancelled plan is left as it is":         {versionBump{}, PlanOutcome{Status: plan.StatusCancelled, Error: "cancelled"}, bumped, plan.StatusCancelled, "cancelled"},
		"commits that cannot be read fail the plan": {versionBump{err: errors.New("dbt_project.yml:3: bad")}, made(plan.StatusNoChanges, ""), bumped, plan.StatusFailed, "dbt_project.yml:3: bad"},
	} {
		t.Run(name, func(t *testing.T) {
			got := CompletePlan(tc.c, tc.in, tc.cmp)
			assert.Equal(t, tc.status, got.Status)
			assert.Equal(t, tc.err, got.Error)
			if tc.status == plan.StatusFailed && tc.in.Status != plan.StatusFailed {
				assert.Nil(t, got.Summary, "a half-completed summary is not shown")
			}
		})
	}
	_, ok := ComparerOf(Framework(nil))
	assert.False(t, ok)
}
