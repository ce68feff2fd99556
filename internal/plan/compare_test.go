package plan

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func approvedPlan() Summary {
	return Summary{
		DirectlyModified:   []Change{{Model: "db.orders", Category: NonBreaking}},
		IndirectlyModified: []Change{{Model: "db.totals", Category: IndirectNonBreaking}},
		Backfills: []Backfill{
			{Model: "db.orders", Kind: BackfillIntervals, Intervals: []Interval{{Start: "2024-01-01", End: "2024-01-15"}}},
			{Model: "db.totals", Kind: BackfillFullRefresh},
		},
	}
}

func TestSameScopeHasNoDifferences(t *testing.T) {
	assert.Empty(t, ScopeDifferences(approvedPlan(), approvedPlan()))
}

func TestIntervalsThatBecameDueAreTheSameScope(t *testing.T) {
	later := approvedPlan()
	later.Backfills[0].Intervals = []Interval{{Start: "2024-01-01", End: "2024-01-17"}}
	later.DirectlyModified[0].Diff = "a different rendering of the same change"
	assert.Empty(t, ScopeDifferences(approvedPlan(), later))
}

func TestScopeChanges(t *testing.T) {
	now := approvedPlan()
	now.DirectlyModified[0].Category = Breaking
	now.IndirectlyModified = append(now.IndirectlyModified, Change{Model: "db.report", Category: IndirectBreaking})
	now.Backfills[0].Intervals = []Interval{{Start: "2023-06-01", End: "2024-01-15"}}
	now.Backfills[1].Kind = BackfillRecreateView
	now.Removed = []Change{{Model: "db.old"}}
	assert.Equal(t, []string{
		"`db.old` is now removed",
		"`db.orders` (directly modified) changed category: Non-breaking → Breaking",
		"`db.report` is now indirectly modified (Indirect Breaking)",
		"`db.orders` backfill now starts at 2023-06-01, before the approved 2024-01-01",
		"`db.totals` backfill changed: full-refresh → recreate-view",
	}, ScopeDifferences(approvedPlan(), now))

}

func TestResumedApplyHasLessWorkAndNoDifferences(t *testing.T) {
	resumed := approvedPlan()
	resumed.Backfills[0].Intervals = []Interval{{Start: "2024-01-06", End: "2024-01-15"}} // five days done
	resumed.Backfills = resumed.Backfills[:1]                                             // totals done
	assert.Empty(t, ScopeDifferences(approvedPlan(), resumed))
}

func TestSameScope(t *testing.T) {
	later := approvedPlan()
	later.Backfills[0].Intervals = []Interval{{Start: "2024-01-01", End: "2024-01-17"}}
	restated := approvedPlan()
	restated.Restated = []string{"db.orders"}
	restated.Backfills[0].Restatement = true
	earlier := approvedPlan()
	earlier.Backfills[0].Intervals = []Interval{{Start: "2000-01-01", End: "2024-01-15"}}
	less := approvedPlan()
	less.Backfills = less.Backfills[:1]

	tests := []struct {
		name   string
		b      Summary
		fa, fb Flags
		want   bool
	}{
		{"identical", approvedPlan(), Flags{}, Flags{}, true},
		{"intervals that became due", later, Flags{}, Flags{}, true},
		{"restatement", restated, Flags{}, Flags{}, false},
		{"earlier start", earlier, Flags{}, Flags{}, false},
		{"less work is not the same scope", less, Flags{}, Flags{}, false},
		{"forward-only flag", approvedPlan(), Flags{}, Flags{ForwardOnly: true}, false},
		{"start flag", approvedPlan(), Flags{}, Flags{Start: "2000-01-01"}, false},
		{"restate flags in any order", approvedPlan(), Flags{RestateModels: []string{"a", "b"}}, Flags{RestateModels: []string{"b", "a"}}, true},
		{"empty and no restate flags", approvedPlan(), Flags{RestateModels: []string{}}, Flags{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, SameScope(approvedPlan(), tt.fa, tt.b, tt.fb))
		})
	}
}

func approvedDBT() Summary {
	return Summary{Tool: "dbt", DBT: &DBT{Version: "1.1.0", PreviousVersion: "1.0.0", Deploy: true, Scope: ScopeSelective,
		Nodes:      []Node{{UniqueID: "model.shop.stg_orders", Reasons: []NodeReason{ReasonBody}}},
		Downstream: []string{"model.shop.revenue"},
		Commands:   []string{"dbt build --target prod --select state:modified+ --state .dagctl/prod-state"}}}
}

// A dbt plan made again at apply time differs from the approved one when it deploys otherwise, in another
// scope, with other commands, other changed nodes or reasons, or more downstream; before, any two dbt plans
// compared equal (their Summary lists are empty), so an approval of one would have counted for another.
func TestDBTScopeChanges(t *testing.T) {
	assert.Empty(t, ScopeDifferences(approvedDBT(), approvedDBT()))
	assert.True(t, SameScope(approvedDBT(), Flags{}, approvedDBT(), Flags{}))
	for name, tc := range map[string]struct {
		change func(d *DBT)
		want   string
	}{
		"no longer a deploy": {func(d *DBT) { d.Deploy = false }, "deploy: true → false"},
		"another scope":      {func(d *DBT) { d.Scope = ScopeAll }, "the scope changed: `selective` → `all`"},
		"other commands":     {func(d *DBT) { d.Commands = []string{"dbt build --target prod"} }, "the commands changed"},
		"a new changed node": {func(d *DBT) {
			d.Nodes = append(d.Nodes, Node{UniqueID: "model.shop.x", Reasons: []NodeReason{ReasonNew}})
		}, "`model.shop.x` is now changed (new)"},
		"a node not changed":   {func(d *DBT) { d.Nodes = nil }, "`model.shop.stg_orders` is no longer changed"},
		"other reasons":        {func(d *DBT) { d.Nodes[0].Reasons = []NodeReason{ReasonMacro} }, "changed for other reasons: body → macro"},
		"more downstream":      {func(d *DBT) { d.Downstream = append(d.Downstream, "model.shop.more") }, "`model.shop.more` is now built downstream"},
		"no longer a dbt plan": {nil, "the plan is no longer a dbt plan"},
	} {
		t.Run(name, func(t *testing.T) {
			now := approvedDBT()
			if tc.change == nil {
				now.DBT = nil
			} else {
				tc.change(now.DBT)
			}
			diffs := ScopeDifferences(approvedDBT(), now)
			assert.NotEmpty(t, diffs)
			assert.Contains(t, diffs[0], tc.want)
			assert.False(t, SameScope(approvedDBT(), Flags{}, now, Flags{}))
		})
	}
	less := approvedDBT()
	less.DBT.Downstream = nil
	assert.Empty(t, ScopeDifferences(approvedDBT(), less), "less downstream is less work")
}
