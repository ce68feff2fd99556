package server_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/forgetest/e2e"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// stagingOnMerge applies staging on merge without an approval.
const stagingOnMerge = `version: 1
projects:
  - path: .
    framework: sqlmesh
environments:
  - name: staging
    protected: false
    apply_on: [merge]
job:
  timeout: 15m
`

// A PR opened and merged before the bot handled either (a quick merge, or a bot behind): the merge is handled
// while the head's plan runs, waits for it, and applies staging once it ends. On GitHub's world alone: the
// rule is forge-neutral (handlertest covers it on memforge); this runs it end to end with the real sqlmesh.
func TestAMergeHandledWhileItsPlanRunsAppliesStagingWhenThePlanEnds(t *testing.T) {
	w := newWorld(t, e2e.GitHub, worldOptions{baseFiles: map[string]string{".dagctl/config.yaml": stagingOnMerge}})
	head := w.PR(1, "x", "alice", nonBreaking)
	// Both deliveries are queued before the bot drains them: the merge is handled right after the plan starts.
	w.deliver(w.PREvent(vcs.PROpened, 1))
	mergeSHA := w.merge(1)
	w.deliver(w.PREvent(vcs.PRMerged, 1))
	w.settle()

	plan, ok := w.Status("dagctl/plan: staging", head)
	require.True(t, ok, "statuses: %v", w.Statuses())
	assert.Equal(t, vcs.StatusSuccess, plan.State, "the merged head's plan was not cancelled: %s", plan.Summary)
	apply, ok := w.Status("dagctl/apply: staging", mergeSHA)
	require.True(t, ok, "the apply is reported on the merge commit; statuses: %v", w.Statuses())
	assert.Equal(t, vcs.StatusSuccess, apply.State, apply.Summary)
	assert.NotContains(t, w.LastComment(1), "NOT applied")
	t.Logf("the merge commit's apply check went %v", apply.History)
}
