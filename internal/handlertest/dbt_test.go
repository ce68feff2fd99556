package handlertest_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
	"github.com/dagctl/dagctl-bot/internal/testutil"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// dbtOnlyConfig is the example's config with examples/dbt under dbt/ as its only project, marts, at version
// (one project: its checks are named by the environment alone).
func dbtOnlyConfig(t *testing.T, version string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testutil.RepoRoot(), "examples", "sqlmesh", ".dagctl", "config.yaml"))
	require.NoError(t, err)
	const sqlmeshProject = "projects:\n  - path: .\n    framework: sqlmesh\n"
	require.Contains(t, string(data), sqlmeshProject)
	return strings.Replace(string(data), sqlmeshProject,
		"projects:\n  - name: marts\n    path: dbt\n    framework: dbt\n    version: \""+version+"\"\n", 1)
}

// newDBTWorld is a world whose main holds examples/dbt as the project marts at version 1.0.0.
func newDBTWorld(t *testing.T) *world {
	t.Helper()
	w := newWorld(t)
	files := map[string]string{repoconfig.Path: dbtOnlyConfig(t, "1.0.0")}
	for name, content := range testutil.DBTExampleFiles(t) {
		files["dbt/"+name] = content
	}
	w.forge.Commit(w.repo, "main", "carol", files)
	return w
}

// dbtModelChanged is the example's model file name, changed so that its body differs.
func dbtModelChanged(t *testing.T, name, old, new string) map[string]string {
	t.Helper()
	body := testutil.DBTExampleFiles(t)["models/"+name]
	require.Contains(t, body, old)
	return map[string]string{"dbt/models/" + name: strings.Replace(body, old, new, 1)}
}

// A dbt project through the handlers, its jobs replayed from the real dbt's captures: a version bump with a
// model change is planned against the merge base (no production manifest yet: a full build), applied by
// comment, and the manifest the apply left is the environment's production state: the next deploy's plan is
// given it (its job's inputs) and deploys selectively against it.
func TestADBTDeployStoresItsManifestAndTheNextPlanComparesWithIt(t *testing.T) {
	w := newDBTWorld(t)
	ctx := context.Background()
	files := dbtModelChanged(t, "staging/stg_orders.sql", "    status\n", "    lower(status) as status\n")
	files[repoconfig.Path] = dbtOnlyConfig(t, "1.1.0")
	pr := w.openPR(1, "lower-status", "alice", files)

	require.Equal(t, vcs.StatusSuccess, w.state("dagctl/plan: dev", pr.HeadSHA))
	sticky := w.sticky(1)
	assert.Contains(t, sticky, "**Deploy** `1.0.0` → `1.1.0`")
	assert.Contains(t, sticky, "**Scope: `all`**")
	assert.Contains(t, sticky, "_Why this scope: no production manifest yet: a full build._")
	assert.Contains(t, sticky, "`model.dagctl_example.stg_orders` — model · body", "dbt's diff against a parse of the base")
	assert.Contains(t, sticky, "dbt build --target dev\n")

	w.comment(pr, "bob", "/dagctl apply dev")
	require.Equal(t, vcs.StatusSuccess, w.state("dagctl/apply: dev", pr.HeadSHA), w.lastReply(1))
	deployed, err := w.store.LastDeployed(ctx, w.repo.Forge, w.repo.FullName(), "marts", "dev")
	require.NoError(t, err)
	assert.Equal(t, pr.HeadSHA, deployed.CommitSHA)
	require.NotEmpty(t, deployed.Manifest, "the apply's manifest, from the replayed job's artifacts")
	assert.Contains(t, string(deployed.Manifest), `"model.dagctl_example.stg_orders"`)

	w.forge.Merge(w.repo, "main", "lower-status", "bob")
	files = dbtModelChanged(t, "marts/customer_revenue.sql", "\n", "\n-- reviewed\n")
	files[repoconfig.Path] = dbtOnlyConfig(t, "1.2.0")
	next := w.openPR(2, "revenue", "carol", files)
	require.Equal(t, vcs.StatusSuccess, w.state("dagctl/plan: dev", next.HeadSHA))
	sticky = w.sticky(2)
	assert.Contains(t, sticky, "**Deploy** `1.1.0` → `1.2.0`")
	assert.Contains(t, sticky, "**Scope: `selective`**")
	assert.Contains(t, sticky, "dbt build --target dev --select state:modified+ --state $DAGCTL_INPUT_DIR")
	assert.Contains(t, sticky, "`model.dagctl_example.customer_revenue` — model · body")
	assert.NotContains(t, sticky, "model.dagctl_example.stg_orders`", "deployed already")
	if w.jobs != nil {
		var given int
		for _, k := range w.jobs.Started() {
			if k.Kind == jobs.KindPlan && k.Environment == "dev" && k.Inputs != "" {
				given++
				assert.NotEmpty(t, k.Base, "the deployed commit is its base")
			}
		}
		assert.Equal(t, 1, given, "PR 2's plan of dev, alone, was given the production manifest as its input")
	}
}
