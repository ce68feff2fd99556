package server_test

import (
	"encoding/json"
	"os/exec"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/forgetest/e2e"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
	"github.com/dagctl/dagctl-bot/internal/testutil"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// dbtPRConfig is dbtConfig with the project's PR environment: each PR built into dbt_pr_<number> with the
// example's dev target (its schema replaced by the PR's).
func dbtPRConfig(t *testing.T, version string) string {
	line := "    version: \"" + version + "\"\n"
	return replaceOnce(t, dbtConfig(t, version), line, line+"    pr_environment: {schema: \"dbt_pr_{number}\", target: dev}\n")
}

// schemas reads the world's DuckDB warehouse (the jobs' EXAMPLE_DUCKDB_PATH) with DuckDB itself, read-only, while
// no job runs: each schema's tables and views.
func schemas(t *testing.T, w *world) map[string][]string {
	t.Helper()
	script := `import duckdb, json, sys
c = duckdb.connect(sys.argv[1], read_only=True)
out = {}
for s, n in c.sql("select table_schema, table_name from information_schema.tables").fetchall():
    out.setdefault(s, []).append(n)
print(json.dumps(out))`
	out, err := exec.Command(testutil.Python(t), "-c", script, w.State).Output()
	require.NoError(t, err)
	got := map[string][]string{}
	require.NoError(t, json.Unmarshal(out, &got))
	for _, names := range got {
		sort.Strings(names)
	}
	return got
}

// withoutPRSchemas is the warehouse without the PR schemas (dbt_pr_*): production's, and sqlmesh's.
func withoutPRSchemas(all map[string][]string) map[string][]string {
	out := map[string][]string{}
	for s, names := range all {
		if !strings.HasPrefix(s, "dbt_pr_") {
			out[s] = names
		}
	}
	return out
}

// A dbt project with pr_environment builds each PR into its own schema as dbt Cloud's CI does, shown on the PR
// as its own check, and drops it when the PR is merged or closed. Before the first deploy the PR build builds
// everything; after it, only the modified nodes and their downstream, deferring the rest to production, whose
// schema it never touches. A failing model fails the check with dbt's message.
func TestDBTPRBuildsIntoItsOwnSchemaShownOnThePRAndDroppedOnClose(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		base := dbtBase(t)
		base[repoconfig.Path] = dbtPRConfig(t, "1.0.0")
		w := newWorld(t, forge, worldOptions{baseFiles: base})

		// PR 1 deploys (a macro change: everything): its PR build has no production state yet, so it builds
		// every node into dbt_pr_1.
		macro := dbtProjectDir + "/macros/cents_to_dollars.sql"
		files := map[string]string{repoconfig.Path: dbtPRConfig(t, "1.1.0"),
			macro: replaceOnce(t, testutil.DBTExampleFiles(t)["macros/cents_to_dollars.sql"], "100.0", "100.00")}
		head := w.PR(1, "dollars", "alice", files)
		w.send(w.PREvent(vcs.PROpened, 1))
		check, ok := w.Status("dagctl/plan: marts/pr_1", head)
		require.True(t, ok, "the PR build is a check of its own; checks: %v", w.Statuses())
		require.Equal(t, vcs.StatusSuccess, check.State, "%s\n%s", check.Title, runLog(t, w, check))
		_, warehouse := w.Status("dagctl/plan: warehouse/pr_1", head)
		assert.False(t, warehouse, "the sqlmesh project has no PR environment (the repository sets none)")
		_, apply := w.Status("dagctl/apply: marts/pr_1", head)
		assert.False(t, apply, "nothing is applied to a PR build")
		sticky := w.Sticky(1)
		assert.Contains(t, sticky, "🏗️ **PR build** into `dbt_pr_1` (target `dev`) · no production state to defer to, so every node was built")
		assert.Contains(t, sticky, "- `snapshot.dagctl_example.orders_snapshot` — writes to schema snapshots", "left out: production's schema")
		assert.Contains(t, runLog(t, w, check), "dagctl: PR build into schema dbt_pr_1 (target dev): dbt build --exclude")
		got := schemas(t, w)
		assert.Equal(t, []string{"customer_revenue", "daily_revenue", "raw_orders", "stg_customers", "stg_orders"}, got["dbt_pr_1"])
		assert.NotContains(t, got, "snapshots", "the snapshot's production schema is not written by a PR")
		assert.Empty(t, got["main"], "nothing deployed to production yet")

		// Merged with its approval: prod is deployed (the production state), and PR 1's schema is dropped.
		w.review(1, head, "bob", vcs.ReviewApproved)
		mergeSHA := w.merge(1)
		w.send(w.PREvent(vcs.PRMerged, 1))
		w.srv.WaitJobs()
		deployed, ok := w.Status("dagctl/apply: marts/prod", mergeSHA)
		require.True(t, ok, "checks: %v", w.Statuses())
		require.Equal(t, vcs.StatusSuccess, deployed.State, "%s\n%s", deployed.Title, deployed.Summary)
		got = schemas(t, w)
		assert.NotContains(t, got, "dbt_pr_1", "a merged PR's schema is dropped")
		assert.Contains(t, w.logLines.String(), `msg="removed a closed PR's environment" env=pr_1`)
		prod := withoutPRSchemas(got)
		require.Contains(t, prod["main"], "stg_orders", "deployed")

		// PR 2 changes a model without deploying: built against production's manifest, only it and its downstream.
		w.Base = mergeSHA
		customers := dbtProjectDir + "/models/staging/stg_customers.sql"
		head2 := w.PR(2, "one", "carol", map[string]string{customers: replaceOnce(t, testutil.DBTExampleFiles(t)["models/staging/stg_customers.sql"],
			"select distinct customer_id", "select distinct customer_id, 1 as one")})
		w.send(w.PREvent(vcs.PROpened, 2))
		check, ok = w.Status("dagctl/plan: marts/pr_2", head2)
		require.True(t, ok, "checks: %v", w.Statuses())
		require.Equal(t, vcs.StatusSuccess, check.State, "%s\n%s", check.Title, runLog(t, w, check))
		assert.Contains(t, check.Title, "PR build passed:")
		log := runLog(t, w, check)
		assert.Contains(t, log, "dagctl: comparing with the production state of "+mergeSHA+", the commit last deployed to prod")
		assert.Contains(t, log, "dbt build --select state:modified+ --defer --state")
		sticky = w.Sticky(2)
		assert.Contains(t, sticky, "🏗️ **PR build** into `dbt_pr_2` (target `dev`) · built `state:modified+`, the rest deferred to production")
		assert.Contains(t, sticky, "| `model.dagctl_example.stg_customers` | model | success |")
		got = schemas(t, w)
		assert.Equal(t, []string{"customer_revenue", "stg_customers"}, got["dbt_pr_2"], "the changed model and its downstream; the rest deferred")
		assert.Equal(t, prod, withoutPRSchemas(got), "production's schema is unchanged by the PR build")

		// Closed without merging: its schema is dropped, production stays.
		w.close(2)
		w.srv.WaitJobs()
		got = schemas(t, w)
		assert.NotContains(t, got, "dbt_pr_2", "a closed PR's schema is dropped")
		assert.Equal(t, prod, withoutPRSchemas(got))
		assert.Contains(t, w.logLines.String(), `msg="removed a closed PR's environment" env=pr_2`)

		// A model that fails in the warehouse fails the PR build's check with dbt's message.
		head3 := w.PR(3, "broken", "carol", map[string]string{customers: replaceOnce(t, testutil.DBTExampleFiles(t)["models/staging/stg_customers.sql"],
			"from {{ ref('raw_orders') }}", "from {{ ref('raw_orders') }} where no_such_column > 0")})
		w.send(w.PREvent(vcs.PROpened, 3))
		check, ok = w.Status("dagctl/plan: marts/pr_3", head3)
		require.True(t, ok, "checks: %v", w.Statuses())
		assert.Equal(t, vcs.StatusFailure, check.State)
		assert.Contains(t, check.Title, "PR build failed: 1 of")
		assert.Contains(t, w.shownText(check, 3), "no_such_column")
		assert.Contains(t, w.Sticky(3), "| `model.dagctl_example.stg_customers` | model | ❌ **error** |")
		assert.Equal(t, prod, withoutPRSchemas(schemas(t, w)), "a failed PR build does not touch production either")
	})
}
