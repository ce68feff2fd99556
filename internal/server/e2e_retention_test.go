package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/forgetest/e2e"
	"github.com/dagctl/dagctl-bot/internal/server"
	"github.com/dagctl/dagctl-bot/internal/serverconfig"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// Past the retention, a PR's run log and its webhooks' bodies are pruned; the plan and its check stay, and the
// check's log link says the log was pruned instead of failing.
func TestARunLogPastItsRetentionIsPrunedAndItsPageSaysSo(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{configure: func(_ *world, cfg *serverconfig.Config, _ *server.Options) {
			cfg.Retention = serverconfig.Retention{DeliveryBodies: 7 * 24 * time.Hour, RunLogs: 90 * 24 * time.Hour}
		}})
		head := w.PR(1, "more-columns", "alice", nonBreaking)
		w.send(w.PREvent(vcs.PROpened, 1))
		dev, ok := w.Status("dagctl/plan: dev", head)
		require.True(t, ok, "checks: %v", w.Statuses())
		require.Equal(t, vcs.StatusSuccess, dev.State, dev.Summary)
		require.Contains(t, runLog(t, w, dev), "dagctl_example.customer_totals")

		ctx := context.Background()
		p, err := w.srv.Prune(ctx, time.Now().Add(8*24*time.Hour))
		require.NoError(t, err)
		assert.Positive(t, p.DeliveryBodies, "the PR's webhook bodies after 7 days")
		assert.Zero(t, p.RunLogRows, "logs are kept for 90 days")
		require.Contains(t, runLog(t, w, dev), "dagctl_example.customer_totals")

		p, err = w.srv.Prune(ctx, time.Now().Add(91*24*time.Hour))
		require.NoError(t, err)
		assert.Positive(t, p.RunLogRows)
		page := runLog(t, w, dev)
		assert.Contains(t, page, "was pruned on")
		assert.Contains(t, page, "logs are kept for 90 days after a run ends")
		assert.NotContains(t, page, "dagctl_example.customer_totals")

		plans, err := w.srv.Store().ListPlansByPR(ctx, w.forge(), w.repoName(), 1)
		require.NoError(t, err)
		assert.NotEmpty(t, plans, "plans are kept")
		dev, _ = w.Status("dagctl/plan: dev", head)
		assert.Equal(t, vcs.StatusSuccess, dev.State)
	})
}
