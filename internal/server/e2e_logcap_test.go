package server_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/forgetest/e2e"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
	"github.com/dagctl/dagctl-bot/internal/server"
	"github.com/dagctl/dagctl-bot/internal/serverconfig"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// floodStep prints about 1.3 MB before sqlmesh plans: far more than the cap below.
const floodStep = "seq 1 200000"

const smallLogCap = 64 << 10

// A plan job printing far more than the log's cap still plans: its result line travels aside from the capped
// log, whose page shows its head, one line saying what was dropped, and its tail.
func TestAPlanWhoseLogIsCappedStillCompletes(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		config := exampleConfig(t, func(s string) string {
			return replaceOnce(t, s, "\njob:\n", "\njob:\n  setup:\n    - "+floodStep+"\n")
		})
		w := newWorld(t, forge, worldOptions{baseFiles: map[string]string{repoconfig.Path: config},
			configure: func(_ *world, cfg *serverconfig.Config, _ *server.Options) {
				allow, err := repoconfig.ParseSetupAllowlist("seq")
				require.NoError(t, err)
				cfg.JobSetup = allow
				cfg.RunLogMaxBytes = smallLogCap
			}})
		head := w.PR(1, "more-columns", "alice", nonBreaking)
		w.send(w.PREvent(vcs.PROpened, 1))

		dev, ok := w.Status("dagctl/plan: dev", head)
		require.True(t, ok, "checks: %v", w.Statuses())
		assert.Equal(t, vcs.StatusSuccess, dev.State, dev.Summary)
		assert.Contains(t, w.shownText(dev, 1), "dagctl_example.customer_totals", "the plan was read")
		log := runLog(t, w, dev)
		assert.Contains(t, log, "dagctl: setup 1/1: "+floodStep, "the head")
		assert.Contains(t, log, "lines) dropped …")
		assert.NotContains(t, log, "\n100000\n", "the middle is gone")
		assert.Less(t, len(log), 4*smallLogCap, "the page shows a bounded log")
		assert.Contains(t, w.Sticky(1), "dagctl_example.customer_totals")
	})
}
