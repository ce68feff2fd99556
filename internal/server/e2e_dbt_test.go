package server_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/forgetest/e2e"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
	"github.com/dagctl/dagctl-bot/internal/testutil"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// dbtProjectDir is where main holds examples/dbt, beside the sqlmesh example at the root.
const dbtProjectDir = "dbt"

// dbtConfig is the example's config with a second project, examples/dbt under dbt/ at version.
func dbtConfig(t *testing.T, version string) string {
	return exampleConfig(t, func(s string) string {
		return replaceOnce(t, s, "projects:\n  - path: .\n    framework: sqlmesh\n",
			"projects:\n  - name: warehouse\n    path: .\n    framework: sqlmesh\n"+
				"  - name: marts\n    path: "+dbtProjectDir+"\n    framework: dbt\n    version: \""+version+"\"\n")
	})
}

// dbtBase is main with examples/dbt as the project marts, at version 1.0.0.
func dbtBase(t *testing.T) map[string]string {
	files := map[string]string{repoconfig.Path: dbtConfig(t, "1.0.0")}
	for name, content := range testutil.DBTExampleFiles(t) {
		files[dbtProjectDir+"/"+name] = content
	}
	return files
}

// stgOrdersChanged changes the body of the staging model every mart reads.
func stgOrdersChanged(t *testing.T) map[string]string {
	path := dbtProjectDir + "/models/staging/stg_orders.sql"
	body := testutil.DBTExampleFiles(t)["models/staging/stg_orders.sql"]
	return map[string]string{path: replaceOnce(t, body, "    status\n", "    lower(status) as status\n")}
}

// A dbt PR that bumps the version and changes a model is planned by the real dbt against the base commit (the
// merge base: nothing was applied yet), and the bot fills the files' side from the forge: the changed model and
// its downstream, a deploy the files call selective that is a full build, with the exact command, since no
// deploy stored a production manifest to select against yet.
func TestDBTAVersionBumpDeploysTheChangedModelAndItsDownstream(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{baseFiles: dbtBase(t)})
		files := stgOrdersChanged(t)
		files[repoconfig.Path] = dbtConfig(t, "1.1.0")
		head := w.PR(1, "lower-status", "alice", files)
		w.send(w.PREvent(vcs.PROpened, 1))

		for _, env := range []string{"prod", "dev"} {
			check, ok := w.Status("dagctl/plan: marts/"+env, head)
			require.True(t, ok, "no check for marts/%s; checks: %v", env, w.Statuses())
			assertLifecycle(t, check.History, vcs.StatusSuccess, "marts/"+env)
			assert.Contains(t, w.shownText(check, 1), "Scope: `all`", env)
			log := runLog(t, w, check)
			assert.Contains(t, log, "dbt parse of the base", "the job compared with the base commit's checkout")
			assert.Contains(t, log, "dagctl: comparing with "+w.Base+", the merge base (nothing applied to "+env+" yet)")
			assert.NotContains(t, log, "dbt parse of the head ("+dbtProjectDir, "the checkout's paths are the executor's")
		}
		for _, env := range []string{"prod", "dev"} {
			check, ok := w.Status("dagctl/plan: warehouse/"+env, head)
			require.True(t, ok, "the sqlmesh project is planned beside it; checks: %v", w.Statuses())
			assert.True(t, check.State == vcs.StatusSuccess || check.State == vcs.StatusNeutral, "warehouse/%s: %s", env, check.State)
		}

		sticky := w.Sticky(1)
		assert.Contains(t, sticky, "**Deploy** `1.0.0` → `1.1.0`")
		assert.Contains(t, sticky, "**Scope: `all`**")
		assert.Contains(t, sticky, "_Why this scope: no production manifest yet: a full build._")
		assert.Contains(t, sticky, "`model.dagctl_example.stg_orders` — model · body", "the changed model with its reason")
		assert.Contains(t, sticky, "1 node changed · 8 downstream")
		for _, downstream := range []string{"model.dagctl_example.customer_revenue", "snapshot.dagctl_example.orders_snapshot"} {
			assert.Contains(t, sticky, "- `"+downstream+"`", "its downstream")
		}
		assert.NotContains(t, sticky, "`model.dagctl_example.daily_revenue`", "a mart that does not read it is not built")
		assert.Contains(t, sticky, "dbt build --target prod\n")
		assert.Contains(t, sticky, "dbt build --target dev\n")
		assert.NotContains(t, sticky, "--state", "no production manifest to select against")
		assert.Contains(t, sticky, "`"+dbtProjectDir+"/models/staging/stg_orders.sql` | model | modified", "the file, from the forge's trees")
		assert.NotContains(t, sticky, "| infra |", "a version line alone is no infra change")
		assert.NotContains(t, strings.ToLower(sticky), "uncategori")
	})
}

// The same change without a version bump is informational: the plan shows what a deploy would build, ends as
// nothing to apply (neutral), and merging it runs nothing.
func TestDBTWithoutAVersionBumpIsInformational(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{baseFiles: dbtBase(t)})
		head := w.PR(1, "lower-status", "alice", stgOrdersChanged(t))
		w.send(w.PREvent(vcs.PROpened, 1))

		for _, env := range []string{"prod", "dev"} {
			check, ok := w.Status("dagctl/plan: marts/"+env, head)
			require.True(t, ok, "no check for marts/%s; checks: %v", env, w.Statuses())
			assertLifecycle(t, check.History, w.Shown(vcs.StatusNeutral), "marts/"+env)
		}
		sticky := w.Sticky(1)
		assert.Contains(t, sticky, "**Not a deploy** · version `1.0.0`, as at the base commit: merging this PR runs nothing.")
		assert.Contains(t, sticky, "A deploy of these changes would be `selective`")
		assert.Contains(t, sticky, "`model.dagctl_example.stg_orders` — model · body")
		assert.NotContains(t, sticky, "dbt build --target prod", "an informational plan runs no command")
	})
}

// An approved version bump applies on merge through the bot: the verifying plan at the merge commit has the
// approved scope, the apply runs the approved plan's exact command with the real dbt, and the environment's
// last apply is then the base commit the next PR is compared with (so it is not a deploy again).
func TestDBTAnApprovedVersionBumpAppliesOnMergeAndBecomesTheBase(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{seedProd: true, baseFiles: dbtBase(t)})
		macro := dbtProjectDir + "/macros/cents_to_dollars.sql"
		files := map[string]string{repoconfig.Path: dbtConfig(t, "1.1.0"),
			macro: replaceOnce(t, testutil.DBTExampleFiles(t)["macros/cents_to_dollars.sql"], "100.0", "100.00")}
		head := w.PR(1, "dollars", "alice", files)
		w.send(w.PREvent(vcs.PROpened, 1))
		plan, ok := w.Status("dagctl/plan: marts/prod", head)
		require.True(t, ok, "checks: %v", w.Statuses())
		require.Equal(t, vcs.StatusSuccess, plan.State, plan.Summary)
		assert.Contains(t, w.Sticky(1), "dbt build --target prod\n", "a macro change builds everything: no state selection")

		w.review(1, head, "bob", vcs.ReviewApproved)
		mergeSHA := w.merge(1)
		w.send(w.PREvent(vcs.PRMerged, 1))
		apply, ok := w.Status("dagctl/apply: marts/prod", mergeSHA)
		require.True(t, ok, "the apply is reported on the merge commit; checks: %v", w.Statuses())
		require.Equal(t, vcs.StatusSuccess, apply.State, "%s\n%s", apply.Title, apply.Summary)
		log := runLog(t, w, apply)
		assert.Contains(t, log, "dagctl: verify: comparing with "+w.Base+", the merge base", "the verifying plan's base")
		assert.Contains(t, log, "dbt build --target prod", "the approved command ran")
		assert.Contains(t, log, "dagctl: image: no image repository configured: ran in the checkout")
		assert.Contains(t, strings.ToLower(botText(w, apply.State, 1, apply.Title, apply.Summary)),
			"no image repository configured: ran in the checkout", "the apply says it built no image")

		// The next PR, from the merged main, is compared with what prod was applied from.
		w.Base = mergeSHA
		next := w.PR(2, "lower-status", "carol", stgOrdersChanged(t))
		w.send(w.PREvent(vcs.PROpened, 2))
		check, ok := w.Status("dagctl/plan: marts/prod", next)
		require.True(t, ok, "checks: %v", w.Statuses())
		w.assertState(vcs.StatusNeutral, check.State, check.Summary)
		assert.Contains(t, runLog(t, w, check), "dagctl: comparing with the production state of "+mergeSHA+", the commit last deployed to prod")
		assert.Contains(t, w.Sticky(2), "**Not a deploy** · version `1.1.0`, as at the base commit")

		// Merged with its approval, the informational PR deploys nothing: the base stays the deployed commit.
		w.review(2, next, "bob", vcs.ReviewApproved)
		informational := w.merge(2)
		w.send(w.PREvent(vcs.PRMerged, 2))
		_, applied := w.Status("dagctl/apply: marts/prod", informational)
		assert.False(t, applied, "an informational merge runs nothing")

		// A version bump alone, from the later main: compared with the production manifest of the deploy, the
		// change merged in between (never deployed) is what this deploy builds, selectively, with --state.
		w.Base = informational
		bump := w.PR(3, "release", "carol", map[string]string{repoconfig.Path: dbtConfig(t, "1.2.0")})
		w.send(w.PREvent(vcs.PROpened, 3))
		check, ok = w.Status("dagctl/plan: marts/prod", bump)
		require.True(t, ok, "checks: %v", w.Statuses())
		require.Equal(t, vcs.StatusSuccess, check.State, check.Summary)
		log = runLog(t, w, check)
		assert.Contains(t, log, "dagctl: comparing with the production state of "+mergeSHA+", the commit last deployed to prod", "not the informational merge")
		sticky := w.Sticky(3)
		assert.Contains(t, sticky, "**Scope: `selective`**")
		assert.Contains(t, sticky, "`model.dagctl_example.stg_orders` — model · body", "the undeployed change")
		assert.Contains(t, sticky, "dbt build --target prod --select state:modified+ --state $DAGCTL_INPUT_DIR")

		w.review(3, bump, "bob", vcs.ReviewApproved)
		release := w.merge(3)
		w.send(w.PREvent(vcs.PRMerged, 3))
		apply, ok = w.Status("dagctl/apply: marts/prod", release)
		require.True(t, ok, "checks: %v", w.Statuses())
		require.Equal(t, vcs.StatusSuccess, apply.State, "%s\n%s\n%s", apply.Title, apply.Summary, runLog(t, w, apply))
		log = runLog(t, w, apply)
		assert.Contains(t, log, "dagctl: verify: comparing with the production state of "+mergeSHA)
		assert.Contains(t, log, "dbt build --target prod --select state:modified+ --state $DAGCTL_INPUT_DIR", "the approved command ran, with the stored state")
	})
}

// The first deploy of a model change (the files say selective) has no production manifest to select with, so
// it is a full build, which the real dbt runs and which stores the manifest; the next model change deploys
// selectively against that stored state.
func TestDBTASelectiveDeployWithoutProductionStateIsAFullBuildAndStoresIt(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{seedProd: true, baseFiles: dbtBase(t)})
		files := stgOrdersChanged(t)
		files[repoconfig.Path] = dbtConfig(t, "1.1.0")
		head := w.PR(1, "lower-status", "alice", files)
		w.send(w.PREvent(vcs.PROpened, 1))
		plan, ok := w.Status("dagctl/plan: marts/prod", head)
		require.True(t, ok, "checks: %v", w.Statuses())
		require.Equal(t, vcs.StatusSuccess, plan.State, plan.Summary)
		sticky := w.Sticky(1)
		require.Contains(t, sticky, "**Scope: `all`**")
		assert.Contains(t, sticky, "_Why this scope: no production manifest yet: a full build._")
		assert.Contains(t, sticky, "dbt build --target prod\n")

		w.review(1, head, "bob", vcs.ReviewApproved)
		mergeSHA := w.merge(1)
		w.send(w.PREvent(vcs.PRMerged, 1))
		apply, ok := w.Status("dagctl/apply: marts/prod", mergeSHA)
		require.True(t, ok, "checks: %v", w.Statuses())
		log := runLog(t, w, apply)
		require.Equal(t, vcs.StatusSuccess, apply.State, "%s\n%s\n%s", apply.Title, apply.Summary, log)
		assert.Contains(t, log, "dbt build --target prod", "the full build ran")
		assert.NotContains(t, log, "the job was given no manifest.json")

		// The next model change is compared with the manifest that deploy stored, and deploys selectively.
		w.Base = mergeSHA
		revenue := dbtProjectDir + "/models/marts/customer_revenue.sql"
		next := w.PR(2, "revenue", "carol", map[string]string{repoconfig.Path: dbtConfig(t, "1.2.0"),
			revenue: testutil.DBTExampleFiles(t)["models/marts/customer_revenue.sql"] + "\n-- reviewed\n"})
		w.send(w.PREvent(vcs.PROpened, 2))
		check, ok := w.Status("dagctl/plan: marts/prod", next)
		require.True(t, ok, "checks: %v", w.Statuses())
		require.Equal(t, vcs.StatusSuccess, check.State, check.Summary)
		assert.Contains(t, runLog(t, w, check), "dagctl: comparing with the production state of "+mergeSHA+", the commit last deployed to prod")
		sticky = w.Sticky(2)
		assert.Contains(t, sticky, "**Scope: `selective`**")
		assert.Contains(t, sticky, "dbt build --target prod --select state:modified+ --state $DAGCTL_INPUT_DIR")
		// The comment a dbt PR gets, from the real dbt: README.md and docs/dbt.md show it (TestTheDocsShowARealDBTPRsComment).
		golden(t, dbtPRCommentGolden, w.normalize(sticky, map[string]string{next: "head", mergeSHA: "deployed"}))

		w.review(2, next, "bob", vcs.ReviewApproved)
		release := w.merge(2)
		w.send(w.PREvent(vcs.PRMerged, 2))
		apply, ok = w.Status("dagctl/apply: marts/prod", release)
		require.True(t, ok, "checks: %v", w.Statuses())
		log = runLog(t, w, apply)
		require.Equal(t, vcs.StatusSuccess, apply.State, "%s\n%s\n%s", apply.Title, apply.Summary, log)
		assert.Contains(t, log, "dbt build --target prod --select state:modified+ --state $DAGCTL_INPUT_DIR", "the approved command ran, with the stored state")
	})
}

// An apply that fails stores nothing: a deploy whose new model fails in the warehouse fails its apply (the
// full build stops at it), and the next PR is still compared with the merge base.
func TestDBTAFailedApplyStoresNoProductionState(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{seedProd: true, baseFiles: dbtBase(t)})
		files := map[string]string{repoconfig.Path: dbtConfig(t, "1.1.0"),
			dbtProjectDir + "/models/marts/broken.sql": "select cast('not a number' as integer) as n\n"}
		head := w.PR(1, "broken", "alice", files)
		w.send(w.PREvent(vcs.PROpened, 1))
		plan, ok := w.Status("dagctl/plan: marts/prod", head)
		require.True(t, ok, "checks: %v", w.Statuses())
		require.Equal(t, vcs.StatusSuccess, plan.State, plan.Summary)

		w.review(1, head, "bob", vcs.ReviewApproved)
		mergeSHA := w.merge(1)
		w.send(w.PREvent(vcs.PRMerged, 1))
		apply, ok := w.Status("dagctl/apply: marts/prod", mergeSHA)
		require.True(t, ok, "checks: %v", w.Statuses())
		require.Equal(t, vcs.StatusFailure, apply.State, "%s\n%s", apply.Title, apply.Summary)
		assert.Contains(t, runLog(t, w, apply), "broken", "dbt's failure names the model")

		w.Base = mergeSHA
		next := w.PR(2, "release", "carol", map[string]string{repoconfig.Path: dbtConfig(t, "1.2.0")})
		w.send(w.PREvent(vcs.PROpened, 2))
		check, ok := w.Status("dagctl/plan: marts/prod", next)
		require.True(t, ok, "checks: %v", w.Statuses())
		log := runLog(t, w, check)
		assert.NotContains(t, log, "the commit last deployed to prod", "the failed apply deployed nothing")
		assert.Contains(t, log, "the merge base (nothing applied to prod yet)")
	})
}

// dbtPRCommentGolden is the sticky comment of a selective dbt deploy PR, as the real dbt plans it.
const dbtPRCommentGolden = "dbt_pr_selective.md"

// README.md and docs/dbt.md show a dbt PR's comment: the golden of a real one.
func TestTheDocsShowARealDBTPRsComment(t *testing.T) {
	want, err := os.ReadFile(filepath.Join("testdata", dbtPRCommentGolden))
	require.NoError(t, err, "missing golden file: run `make golden`")
	for _, doc := range []string{"README.md", "docs/dbt.md"} {
		got, err := os.ReadFile(filepath.Join("..", "..", doc))
		require.NoError(t, err)
		assert.Contains(t, string(got), "````markdown\n"+string(want)+"````\n",
			"%s does not show internal/server/testdata/%s: paste it again", doc, dbtPRCommentGolden)
	}
}
