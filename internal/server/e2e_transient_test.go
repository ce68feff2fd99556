package server_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/forgetest/e2e"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// GitHub's alone: the 502s are injected through githubfake (forgetest.World has no failure injection). The
// apply on merge of the protected prod reads the merge commit's tree under the lock, after the merge's delivery
// was handled: the 502s there are waited out on the fake's clock (server.Options.Sleep), and prod is applied.
func TestAProdApplyWhoseTreeReadsAnswer502IsWaitedOutAndApplied(t *testing.T) {
	w := newWorld(t, e2e.GitHub, worldOptions{seedProd: true})
	fake := w.GitHub().Fake
	head := w.PR(1, "x", "alice", nonBreaking)
	w.send(w.PREvent(vcs.PROpened, 1))
	w.review(1, head, "bob", vcs.ReviewApproved)
	mergeSHA := w.merge(1)
	fake.FailNext("GET", "/repos/*/*/git/trees/*", 3, badGateway)
	w.send(w.PREvent(vcs.PRMerged, 1))

	apply, ok := w.Status("dagctl/apply: prod", mergeSHA)
	require.True(t, ok, "the apply is reported on the merge commit; checks: %v", w.Statuses())
	assert.Equal(t, vcs.StatusSuccess, apply.State, apply.Summary)
	var failed int
	for _, r := range fake.RequestsMatching("GET", "/repos/*/*/git/trees/*") {
		if r.Status == 502 {
			failed++
		}
	}
	assert.Equal(t, 3, failed, "the tree reads that answered 502 were made, and waited out")
}
