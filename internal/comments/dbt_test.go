package comments

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/plan"
)

// dbt scenarios for the golden files: the shop project of examples/dbt, in its cases.

func init() {
	scenarios = append(scenarios, []struct {
		name string
		view func() View
	}{
		{"dbt_selective", dbtSelective},
		{"dbt_macro_rules_disagree", dbtMacroDisagree},
		{"dbt_not_a_deploy", dbtNotADeploy},
		{"dbt_build_only", dbtBuildOnly},
		{"dbt_pr_build", dbtPRBuild},
		{"dbt_pr_build_failed", dbtPRBuildFailed},
	}...)
}

// dbtSummary is a dbt plan's summary as the planner makes it: the nodes in the lists, without categories.
func dbtSummary(d *plan.DBT) *plan.Summary {
	sum := &plan.Summary{Tool: "dbt", ToolVersion: "1.11.2", Environment: "prod", DBT: d}
	for _, n := range d.Nodes {
		c := plan.Change{Model: n.UniqueID, Kind: n.ResourceType, Category: plan.NoCategory}
		switch {
		case isRemoved(n):
			sum.Removed = append(sum.Removed, c)
		case len(n.Reasons) == 1 && n.Reasons[0] == plan.ReasonNew:
			sum.Added = append(sum.Added, c)
		default:
			sum.DirectlyModified = append(sum.DirectlyModified, c)
		}
	}
	for _, id := range d.Downstream {
		sum.IndirectlyModified = append(sum.IndirectlyModified, plan.Change{Model: id, Category: plan.NoCategory})
	}
	sum.Normalize()
	return sum
}

const dbtState = "$DAGCTL_INPUT_DIR" // dbt.StateDir

func dbtSelective() View {
	d := &plan.DBT{Version: "1.4.0", PreviousVersion: "1.3.2", Deploy: true, BaseCommit: "9c1e5d2", BaseIsDeployed: true,
		Files: []plan.FileChange{
			{Path: ".dagctl/config.yaml", Type: plan.FileInfra, Change: "modified"},
			{Path: "shop/models/marts/revenue.sql", Type: plan.FileModel, Change: "removed"},
			{Path: "shop/models/marts/revenue_by_day.sql", Type: plan.FileModel, Change: "added"},
			{Path: "shop/models/staging/stg_orders.sql", Type: plan.FileModel, Change: "modified"},
		},
		FileScope: plan.ScopeSelective, ManifestScope: plan.ScopeSelective, Scope: plan.ScopeSelective, DecidedBy: "manifest",
		ScopeReason: "dbt's state comparison with the production manifest (the default when one exists)",
		Nodes: []plan.Node{
			{UniqueID: "model.shop.stg_orders", Name: "stg_orders", ResourceType: "model", Path: "models/staging/stg_orders.sql",
				Reasons: []plan.NodeReason{plan.ReasonBody, plan.ReasonContract}},
			{UniqueID: "model.shop.revenue", Name: "revenue", ResourceType: "model", Path: "models/marts/revenue.sql",
				Reasons: []plan.NodeReason{plan.ReasonRemoved}},
			{UniqueID: "model.shop.revenue_by_day", Name: "revenue_by_day", ResourceType: "model",
				Path: "models/marts/revenue_by_day.sql", Reasons: []plan.NodeReason{plan.ReasonNew}},
		},
		Downstream: []string{"model.shop.customer_orders", "test.shop.not_null_customer_orders_id.5c1f"},
		Commands:   []string{"dbt build --target prod --select state:modified+ --state " + dbtState},
	}
	s := prodSection(dbtSummary(d))
	s.Project = "shop"
	s.ApplyByComment, s.ApplyOnMerge = false, true
	return View{Repo: "acme/warehouse", PR: 21, HeadSHA: headSHA, Sections: []Section{s}}
}

func dbtMacroDisagree() View {
	d := &plan.DBT{Version: "1.5.0", PreviousVersion: "1.4.0", Deploy: true, BaseCommit: "a1b2c3d", BaseIsDeployed: true,
		Files:     []plan.FileChange{{Path: "shop/macros/cents_to_dollars.sql", Type: plan.FileMacro, Change: "modified"}},
		FileScope: plan.ScopeAll, ManifestScope: plan.ScopeSelective, Scope: plan.ScopeSelective, DecidedBy: "manifest",
		ScopeReason: "dbt's state comparison with the production manifest (the default when one exists)",
		Nodes: []plan.Node{
			{UniqueID: "model.shop.stg_payments", ResourceType: "model", Reasons: []plan.NodeReason{plan.ReasonMacro}},
			{UniqueID: "model.shop.orders", ResourceType: "model", Reasons: []plan.NodeReason{plan.ReasonMacro}},
		},
		Commands: []string{"dbt seed --target prod --select state:modified+ --state " + dbtState,
			"dbt build --target prod --select state:modified+ --state " + dbtState},
		ImageRepository: "ghcr.io/acme/shop-dbt",
	}
	for i := range 12 {
		d.Downstream = append(d.Downstream, fmt.Sprintf("model.shop.mart_%02d", i))
	}
	s := prodSection(dbtSummary(d))
	s.Approval = Approval{ApprovedBy: []string{"bob"}}
	return View{HeadSHA: headSHA, Sections: []Section{s}}
}

func dbtNotADeploy() View {
	d := &plan.DBT{Version: "1.4.0", PreviousVersion: "1.4.0", Deploy: false, BaseCommit: "9c1e5d2",
		Files:     []plan.FileChange{{Path: "models/staging/stg_orders.sql", Type: plan.FileModel, Change: "modified"}},
		FileScope: plan.ScopeSelective, ManifestScope: plan.ScopeSelective, Scope: plan.ScopeNone, DecidedBy: "manifest",
		ScopeReason: "dbt's state comparison with the production manifest (the default when one exists)",
		Nodes: []plan.Node{{UniqueID: "model.shop.stg_orders", ResourceType: "model",
			Reasons: []plan.NodeReason{plan.ReasonBody}}},
		Downstream: []string{"model.shop.customer_orders"},
	}
	s := prodSection(dbtSummary(d))
	s.State = StateNoChanges // plan.Outcome of a plan that is no deploy
	s.ApplyByComment, s.ApplyOnMerge = false, true
	return View{HeadSHA: headSHA, Sections: []Section{s}}
}

func dbtBuildOnly() View {
	d := &plan.DBT{Version: "1.4.1", PreviousVersion: "1.4.0", Deploy: true, BaseCommit: "9c1e5d2",
		Files: []plan.FileChange{
			{Path: "Dockerfile", Type: plan.FileInfra, Change: "modified"},
			{Path: "requirements.txt", Type: plan.FileInfra, Change: "modified"},
		},
		FileScope: plan.ScopeBuildOnly, Scope: plan.ScopeBuildOnly, DecidedBy: "files",
		ScopeReason:     "no production manifest yet: dbt's state comparison has nothing to compare with",
		ImageRepository: "ghcr.io/acme/shop-dbt",
	}
	s := prodSection(dbtSummary(d))
	s.Approval = Approval{ApprovedBy: []string{"bob"}}
	return View{HeadSHA: headSHA, Sections: []Section{s}}
}

// dbtPRBuild is a PR's own environment built into its schema (pr_environment): the plan, which deploys nothing,
// and the build's nodes; the snapshot that writes to production's schema was left out.
func dbtPRBuild() View {
	d := &plan.DBT{Version: "1.4.0", PreviousVersion: "1.4.0", BaseCommit: "9c1e5d2", BaseIsDeployed: true,
		Files:     []plan.FileChange{{Path: "shop/models/staging/stg_orders.sql", Type: plan.FileModel, Change: "modified"}},
		FileScope: plan.ScopeSelective, ManifestScope: plan.ScopeSelective, Scope: plan.ScopeNone, DecidedBy: "manifest",
		Nodes:      []plan.Node{{UniqueID: "model.shop.stg_orders", ResourceType: "model", Reasons: []plan.NodeReason{plan.ReasonBody}}},
		Downstream: []string{"model.shop.customer_orders", "test.shop.not_null_customer_orders_id.5c1f"},
		PRBuild: &plan.PRBuild{Schema: "dbt_pr_21", Target: "ci", Deferred: true,
			Nodes: []plan.BuiltNode{
				{UniqueID: "model.shop.customer_orders", Name: "customer_orders", ResourceType: "model", Status: "success"},
				{UniqueID: "model.shop.stg_orders", Name: "stg_orders", ResourceType: "model", Status: "success"},
				{UniqueID: "test.shop.not_null_customer_orders_id.5c1f", Name: "not_null_customer_orders_id", ResourceType: "test", Status: "pass"},
			},
			Outside: []plan.BuiltNode{{UniqueID: "snapshot.shop.orders_snapshot", Name: "orders_snapshot", ResourceType: "snapshot",
				Message: "writes to schema snapshots"}},
		},
	}
	s := prodSection(dbtSummary(d))
	s.Environment, s.State = "pr_21", StateNoChanges
	s.ApplyByComment, s.Approval = false, Approval{}
	return View{HeadSHA: headSHA, Sections: []Section{s}}
}

// dbtPRBuildFailed is a PR build whose model failed in the warehouse: its downstream skipped, dbt's message.
func dbtPRBuildFailed() View {
	v := dbtPRBuild()
	s := &v.Sections[0]
	b := *s.Summary.DBT.PRBuild
	b.Outside = nil
	b.Nodes = []plan.BuiltNode{
		{UniqueID: "model.shop.customer_orders", Name: "customer_orders", ResourceType: "model", Status: "skipped"},
		{UniqueID: "model.shop.stg_orders", Name: "stg_orders", ResourceType: "model", Status: "error",
			Message: "Runtime Error in model stg_orders (models/staging/stg_orders.sql)\n  Binder Error: column \"x\" not found"},
	}
	d := *s.Summary.DBT
	d.PRBuild = &b
	s.Summary = dbtSummary(&d)
	s.State = StatePlanFailed
	s.Error = "dbt build into dbt_pr_21 failed (1 of 2 nodes):\n- model.shop.stg_orders (models/staging/stg_orders.sql): Runtime Error in model stg_orders (models/staging/stg_orders.sql)\n  Binder Error: column \"x\" not found"
	return v
}

// A PR build's check is its result: success when it passed (not neutral: it built something), failure with
// dbt's message when a node failed; the comment shows the schema, the counts and the nodes, and no apply.
func TestDBTPRBuildShowsTheBuild(t *testing.T) {
	v := dbtPRBuild()
	s := v.Sections[0]
	assert.Equal(t, ConclusionSuccess, Conclusion(s))
	title, summary, _ := CheckOutput(s)
	assert.Equal(t, "PR build passed: 3 nodes into dbt_pr_21", title)
	assert.Contains(t, summary, "🏗️ **PR build** into `dbt_pr_21` (target `ci`) · built `state:modified+`, the rest deferred to production")
	assert.Contains(t, summary, "3 nodes built · 3 passed · 0 failed · 0 skipped")
	body := Comment(v, GitHubCommentLimit)[0]
	assert.Contains(t, body, "✅ Built")
	assert.Contains(t, body, "| `model.shop.stg_orders` | model | success |")
	assert.Contains(t, body, "- `snapshot.shop.orders_snapshot` — writes to schema snapshots")
	assert.Contains(t, body, "dropped when the PR is closed or merged")
	for _, not := range []string{"Not a deploy", "Apply:", "/dagctl apply"} {
		assert.NotContains(t, body, not)
	}

	f := dbtPRBuildFailed().Sections[0]
	assert.Equal(t, ConclusionFailure, Conclusion(f))
	title, summary, _ = CheckOutput(f)
	assert.Equal(t, "PR build failed: 1 of 2 nodes failed, 1 skipped", title)
	assert.Contains(t, summary, "Binder Error")
	failedBody := Comment(dbtPRBuildFailed(), GitHubCommentLimit)[0]
	assert.Contains(t, failedBody, "❌ PR build failed")
	assert.Contains(t, failedBody, "| `model.shop.stg_orders` | model | ❌ **error** |")
	requireWellFormed(t, failedBody)
}

// dbt has no categories: nothing about it may read as uncategorised (which stops an apply) or as a claim
// about breaking changes, and sqlmesh's counts and backfills are not shown for it.
func TestDBTViewClaimsNoCategories(t *testing.T) {
	for _, v := range []View{dbtSelective(), dbtMacroDisagree(), dbtNotADeploy(), dbtBuildOnly()} {
		s := v.Sections[0]
		body := Comment(v, GitHubCommentLimit)[0]
		title, summary, text := CheckOutput(s)
		for name, out := range map[string]string{"comment": body, "check title": title, "check summary": summary, "check text": text} {
			lower := strings.ToLower(out)
			for _, word := range []string{"uncategorized", "without a category", "breaking", "backfill", "directly modified", "❓"} {
				assert.NotContains(t, lower, word, "%s of %s", name, s.Summary.DBT.Version)
			}
		}
		assert.NotEqual(t, ConclusionActionRequired, Conclusion(s))
	}
}

func TestDBTInformationalPlanSaysHowToDeploy(t *testing.T) {
	v := dbtNotADeploy()
	s := v.Sections[0]
	body := Comment(v, GitHubCommentLimit)[0]
	title, _, _ := CheckOutput(s)
	assert.Contains(t, body, "**Next:** not a deploy: bump the version to deploy")
	assert.Contains(t, body, "ℹ️ Not a deploy")
	assert.NotContains(t, body, "merge the PR to apply", "merging an informational plan applies nothing")
	assert.NotContains(t, body, "Apply:", "no command is shown as if it would run")
	assert.Equal(t, ConclusionNeutral, Conclusion(s))
	assert.Equal(t, "Not a deploy: bump the version to deploy", title)
	assert.Equal(t, plan.StatusNoChanges, plan.Outcome(*s.Summary), "the fixture is what the bot stores")

	s.State = StatePlanned // stored as planned by an older version: still no deploy
	assert.Equal(t, "ℹ️ Not a deploy", s.stateLabel())
	assert.Equal(t, ConclusionNeutral, Conclusion(s))
}

func TestDBTShowsBothRulesWhenTheyDisagree(t *testing.T) {
	body := Comment(dbtMacroDisagree(), GitHubCommentLimit)[0]
	assert.Contains(t, body, "| **dbt's manifest diff** (decides) | `selective` |")
	assert.Contains(t, body, "| changed files | `all` |")
	assert.Contains(t, body, "<details><summary><b>Downstream (12)</b>")

	agree := Comment(dbtSelective(), GitHubCommentLimit)[0]
	assert.NotContains(t, agree, "| Rule | Scope |", "one scope when the rules agree")
	assert.Contains(t, agree, "- 🗑️ `model.shop.revenue` — model · **removed**")
}

// A node id or path from the job (PR code prints it) cannot break the layout or smuggle HTML.
func TestDBTViewEscapesWhatTheJobPrinted(t *testing.T) {
	d := &plan.DBT{Version: "1.0`</details>", Deploy: true, Scope: "all|x", FileScope: plan.ScopeAll,
		ManifestScope: "<b>none</b>", DecidedBy: "files", ScopeReason: "why </details> <script>",
		Files:    []plan.FileChange{{Path: "a|b`</details>.sql", Type: "model|x", Change: "added\n| x |"}},
		Nodes:    []plan.Node{{UniqueID: "model.`x`</details>", ResourceType: "<i>", Reasons: []plan.NodeReason{"body|x"}}},
		Commands: []string{"dbt build\n```\n</details>"}, Downstream: []string{"</details><details>"}}
	s := prodSection(dbtSummary(d))
	body := Comment(View{HeadSHA: headSHA, Sections: []Section{s}}, GitHubCommentLimit)[0]
	requireWellFormed(t, body)
	_, summary, text := CheckOutput(s)
	requireWellFormed(t, summary)
	requireWellFormed(t, text)
}

// docs/dbt.md shows a rendered dbt comment: it must be the golden's.
func TestDocsShowTheDBTGolden(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "dbt.md"))
	require.NoError(t, err)
	golden, err := os.ReadFile(filepath.Join("testdata", "dbt_macro_rules_disagree.md"))
	require.NoError(t, err)
	assert.Contains(t, string(doc), "````markdown\n"+string(golden)+"````\n", "docs/dbt.md's example is not the golden: paste it again")
}
