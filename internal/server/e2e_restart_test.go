package server_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/forgetest/e2e"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// A bot killed with SIGKILL stops none of its local jobs: the apply's sqlmesh goes on writing to the
// environment. The next start ends the apply as interrupted, as before, but only once nothing of its job runs:
// its lock is not released, and no other apply let in, while the first one still writes.
func TestAnApplyLeftRunningByAKilledBotIsStoppedBeforeItsLockIsReleased(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{seedProd: true})
		head := w.PR(1, "slow", "alice", map[string]string{"models/slow_events.py": slowModel})
		w.send(w.PREvent(vcs.PROpened, 1))
		w.commentLater(1, "bob", "/dagctl apply dev")
		w.srv.Drain(context.Background())
		waitForProgress(t, w, 2)
		w.killLeavingJobs()
		require.NotEmpty(t, jobProcesses(t, w.workDir), "a killed bot leaves its job's processes running")

		w.start() // recovers
		assert.Empty(t, jobProcesses(t, w.workDir), "the apply was ended while its job still ran")
		_, held, err := w.srv.Store().Holder(context.Background(), w.forge(), w.repoName(), "dev")
		require.NoError(t, err)
		assert.False(t, held, "the dead apply's lock is released")
		w.settle()
		check := latestCheck(t, w, "dagctl/apply: dev", head, "apply:")
		assert.Equal(t, vcs.StatusFailure, check.State)
		assert.Contains(t, check.Title, "Interrupted")
	})
}

// jobProcesses are the live processes working in a directory under the jobs' work directory.
func jobProcesses(t *testing.T, workDir string) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	require.NoError(t, err)
	var found []string
	for _, e := range entries {
		cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if err != nil || !strings.HasPrefix(cwd, workDir+"/") {
			continue
		}
		if stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil {
			if i := strings.LastIndexByte(string(stat), ')'); i > 0 && i+2 < len(stat) && (stat[i+2] == 'Z' || stat[i+2] == 'X') {
				continue // a zombie: it holds nothing
			}
		}
		found = append(found, e.Name()+" "+cwd)
	}
	return found
}
