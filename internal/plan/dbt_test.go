package plan

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// An informational dbt plan (no version bump) must end as no-changes, so that merging it applies nothing,
// even though the manifest lists changed nodes; a build_only deploy has changes though no node changed.
func TestADBTPlanHasChangesOnlyWhenItDeploys(t *testing.T) {
	nodes := []Change{{Model: "model.shop.orders", Category: NoCategory}}
	tests := []struct {
		name string
		sum  Summary
		want Status
	}{
		{"not a deploy, nodes changed", Summary{DirectlyModified: nodes, DBT: &DBT{Deploy: false, Scope: ScopeNone, FileScope: ScopeSelective}}, StatusNoChanges},
		{"a deploy of the image alone", Summary{DBT: &DBT{Deploy: true, Scope: ScopeBuildOnly}}, StatusReady},
		{"a selective deploy", Summary{DirectlyModified: nodes, DBT: &DBT{Deploy: true, Scope: ScopeSelective}}, StatusReady},
		{"a version bump with nothing to run", Summary{DBT: &DBT{Deploy: true, Scope: ScopeNone}}, StatusNoChanges},
		{"sqlmesh is unchanged", Summary{DirectlyModified: []Change{{Model: "a", Category: Breaking}}}, StatusReady},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, Outcome(tt.sum), tt.name)
	}
}
