package server_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/forgetest/e2e"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// A fork's PR opened while the bot was down, its webhook lost, reaches the bot only through the reconcile of open
// PRs: it must meet the fork rule there as it does on `opened`. Nothing of the fork's code runs; the sticky comment
// asks a maintainer for the exact commit.
func TestAForkPRFoundByTheReconcileIsNotPlannedUntilAMaintainerNamesItsCommit(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{})
		ctx := context.Background()
		// The reconcile looks at the repositories the bot has seen: one PR of the repository's own first.
		w.PR(1, "x", "alice", nonBreaking)
		w.send(w.PREvent(vcs.PROpened, 1))
		before := len(w.Statuses())

		w.stop()
		head := w.forkPR(2, "fork-change", aNewModel) // no webhook reaches the bot, now or later
		w.start()
		require.NoError(t, w.srv.RecoverMissed(ctx))
		w.settle()

		assert.Len(t, w.Statuses(), before, "the reconcile ran no job of the fork's code")
		assert.Empty(t, storedPlans(t, w, 2), "nor stored a plan of it")
		assert.Contains(t, w.Sticky(2), "/dagctl plan --sha "+head, "the PR says what a maintainer can run")

		require.NoError(t, w.srv.RecoverMissed(ctx))
		w.settle()
		assert.Len(t, w.Statuses(), before, "a second round plans it no more than the first")
	})
}
