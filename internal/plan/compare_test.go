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
