package kubee2e_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/repoconfig"
	"github.com/dagctl/dagctl-bot/internal/testutil"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// dbtOnly is main with examples/dbt under dbt/ as the only project, marts, at version, with the example's
// environments and job settings (one project: its checks are named by the environment alone).
func dbtOnly(t *testing.T, version string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testutil.RepoRoot(), "examples", "sqlmesh", ".dagctl", "config.yaml"))
	require.NoError(t, err)
	const sqlmeshProject = "projects:\n  - path: .\n    framework: sqlmesh\n"
	require.Contains(t, string(data), sqlmeshProject)
	return strings.Replace(string(data), sqlmeshProject,
		"projects:\n  - name: marts\n    path: dbt\n    framework: dbt\n    version: \""+version+"\"\n", 1)
}

// The bot dies after an apply's Pod reported its result, manifest.json included, and before the bot saw the Job
// end (the report reached the process, not the caller that stores the deploy): the process started after it
// follows the Job, takes the manifest the first kept before answering the Pod, and stores it with the deploy,
// the environment's next plans' production state. The real dbt, on examples/dbt.
func TestBotRestartAfterTheApplyReportedKeepsTheDBTManifest(t *testing.T) {
	base := map[string]string{repoconfig.Path: dbtOnly(t, "1.0.0")}
	for name, content := range testutil.DBTExampleFiles(t) {
		base["dbt/"+name] = content
	}
	w := newWorld(t, base)
	stgOrders := "dbt/models/staging/stg_orders.sql"
	body := strings.Replace(base[stgOrders], "    status\n", "    lower(status) as status\n", 1)
	require.NotEqual(t, base[stgOrders], body)
	head := w.PR(1, "lower-status", "alice", map[string]string{repoconfig.Path: dbtOnly(t, "1.1.0"), stgOrders: body})
	require.Equal(t, 202, w.send(w.PREvent(vcs.PROpened, 1)).Status)
	w.waitForCheck("dagctl/plan: dev", head, completed)
	w.waitForCheck("dagctl/plan: prod", head, completed)
	w.waitJobs()

	ctx := context.Background()
	plans, err := w.srv.Store().ListPlansByPR(ctx, "github", w.Repo().FullName(), 1)
	require.NoError(t, err)
	var lastRun int64
	for _, p := range plans {
		runs, err := w.srv.Store().ListRuns(ctx, p.ID)
		require.NoError(t, err)
		for _, r := range runs {
			lastRun = max(lastRun, r.ID)
		}
	}
	applyJobRun := fmt.Sprintf("%d-apply", lastRun+1) // the apply's run is the next
	stopped := make(chan struct{})
	w.node.On(applyJobRun, w.node.RunThen(func() {
		w.close(50 * time.Millisecond) // the report was answered; the Job has not ended yet
		close(stopped)
	}))

	id := w.AddComment(1, "bob", "/dagctl apply dev")
	require.Equal(t, 202, w.send(w.CommentEvent(1, id)).Status)
	select {
	case <-stopped:
	case <-time.After(3 * time.Minute):
		t.Fatalf("the apply's Pod %s never reported; bot log:\n%s", applyJobRun, w.log.String())
	}
	w.start()

	w.waitForCheck("dagctl/apply: dev", head, completed)
	w.waitJobs()
	checks := w.StatusesNamed("dagctl/apply: dev", head)
	require.Len(t, checks, 1, "the same check run is finished, not a new one")
	require.Equal(t, vcs.StatusSuccess, checks[0].State, "%s\n%s\nbot log:\n%s", checks[0].Title, checks[0].Summary, w.log.String())
	assert.Contains(t, w.log.String(), "following an apply a previous process started")
	deployed, err := w.srv.Store().LastDeployed(ctx, "github", w.Repo().FullName(), "marts", "dev")
	require.NoError(t, err)
	assert.Equal(t, head, deployed.CommitSHA)
	require.NotEmpty(t, deployed.Manifest, "the manifest the first process kept is stored with the deploy")
	assert.Contains(t, string(deployed.Manifest), `"model.dagctl_example.stg_orders"`)
	assert.NotContains(t, w.log.String(), "the apply left no production state")
}
