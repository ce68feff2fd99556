package dbt

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/framework"
	"github.com/dagctl/dagctl-bot/internal/framework/dbt/scope"
	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
	"github.com/dagctl/dagctl-bot/internal/testutil"
)

// dbtConfig is a repository's .dagctl/config.yaml with the dbt project under dbt/ at version.
func dbtConfig(version string) string {
	return "version: 1\nprojects:\n  - name: marts\n    path: dbt\n    framework: dbt\n    version: \"" + version + "\"\n" +
		"environments:\n  - name: prod\n"
}

// commitOf is a commit holding examples/dbt's dbt_project.yml under dbt/, the config and the tree given.
func commitOf(t *testing.T, sha, config string, tree map[string]string) framework.Commit {
	t.Helper()
	yml, err := os.ReadFile(filepath.Join(testutil.RepoRoot(), "examples", "dbt", "dbt_project.yml"))
	require.NoError(t, err)
	tree["dbt/dbt_project.yml"] = "yml"
	tree[repoconfig.Path] = config // the config's own text stands in for its blob id
	return framework.Commit{SHA: sha, Tree: tree, Files: map[string][]byte{repoconfig.Path: []byte(config), "dbt/dbt_project.yml": yml}}
}

func governing(t *testing.T, config string) repoconfig.Project {
	t.Helper()
	cfg, err := repoconfig.Parse(repoconfig.Path, []byte(config))
	require.NoError(t, err)
	return cfg.Projects[0]
}

// A model changed against the base commit (the real dbt's plan of examples/dbt, compared with a parse of the
// base), completed from both commits: with the version bumped it deploys, a full build while there is no
// production manifest and selectively against it once there is, with the commands; without the bump it is informational; with no base at all it
// is a first deploy of everything.
func TestAPlanIsCompletedFromBothCommits(t *testing.T) {
	fw := New("python3")
	c, ok := framework.ComparerOf(fw)
	require.True(t, ok, "dbt's plans compare two commits")
	assert.Equal(t, []string{repoconfig.Path, "dbt/dbt_project.yml"}, c.CommitFiles(governing(t, dbtConfig("1.0.0"))))

	jobOutcome := func() framework.PlanOutcome {
		o := framework.InterpretPlan(fw, jobs.Result{}, captured(t, "base_model_change"), nil)
		require.Equal(t, plan.StatusNoChanges, o.Status, "the job alone deploys nothing")
		return o
	}
	model := "dbt/models/marts/customer_revenue.sql"
	baseTree := map[string]string{model: "old", "dbt/models/staging/stg_orders.sql": "same", "README.md": "r1"}
	headTree := map[string]string{model: "new", "dbt/models/staging/stg_orders.sql": "same", "README.md": "r2"}
	base := commitOf(t, "base1", dbtConfig("1.0.0"), baseTree)

	t.Run("a version bump deploys", func(t *testing.T) {
		head := commitOf(t, "head1", dbtConfig("1.1.0"), headTree)
		o := framework.CompletePlan(c, jobOutcome(), framework.Comparison{Project: governing(t, dbtConfig("1.1.0")), Environment: "prod",
			Head: head, Base: &base, BaseIsDeployed: true})
		require.Equal(t, plan.StatusReady, o.Status, o.Error)
		d := o.Summary.DBT
		assert.True(t, d.Deploy)
		assert.Equal(t, "1.0.0", d.PreviousVersion)
		assert.Equal(t, "1.1.0", d.Version)
		assert.Equal(t, "base1", d.BaseCommit)
		assert.True(t, d.BaseIsDeployed)
		assert.Equal(t, []plan.FileChange{{Path: model, Type: plan.FileModel, Change: "modified"}}, d.Files,
			"the project's files only, from the trees; the config's version line is no infra change")
		assert.Equal(t, plan.ScopeSelective, d.FileScope)
		assert.Equal(t, plan.ScopeSelective, d.ManifestScope, "the job's side is kept")
		assert.Equal(t, plan.ScopeAll, d.Scope, "no production manifest to select against: a full build")
		assert.Equal(t, "files", d.DecidedBy, "no production manifest yet")
		assert.Equal(t, scope.NoStateFullBuild, d.ScopeReason)
		assert.Equal(t, []string{"dbt build --target prod"}, d.Commands)
		assert.Len(t, d.Nodes, 1)
		assert.Empty(t, d.ImageRepository, "no image configured: the apply runs in the checkout")
	})

	t.Run("the image repository is the governing project's", func(t *testing.T) {
		head := commitOf(t, "head1", dbtConfig("1.1.0"), headTree)
		p := governing(t, dbtConfig("1.1.0"))
		p.DBT.Image = &repoconfig.DBTImage{Base: "registry.example/dbt:1", Repository: "registry.example/acme/marts"}
		o := framework.CompletePlan(c, jobOutcome(), framework.Comparison{Project: p, Environment: "prod", Head: head, Base: &base})
		require.Equal(t, plan.StatusReady, o.Status, o.Error)
		assert.Equal(t, "registry.example/acme/marts", o.Summary.DBT.ImageRepository, "the repository the merged config keeps, never the head's text")
	})
	t.Run("a version bump with the production manifest deploys selectively", func(t *testing.T) {
		head := commitOf(t, "head1", dbtConfig("1.1.0"), headTree)
		o := framework.CompletePlan(c, jobOutcome(), framework.Comparison{Project: governing(t, dbtConfig("1.1.0")), Environment: "prod",
			Head: head, Base: &base, BaseIsDeployed: true, HasProductionState: true})
		require.Equal(t, plan.StatusReady, o.Status, o.Error)
		d := o.Summary.DBT
		assert.Equal(t, plan.ScopeSelective, d.Scope)
		assert.Equal(t, "manifest", d.DecidedBy)
		assert.Equal(t, []string{"dbt build --target prod --select state:modified+ --state " + StateDir}, d.Commands)
	})
	t.Run("without a bump the plan is informational", func(t *testing.T) {
		head := commitOf(t, "head2", dbtConfig("1.0.0"), headTree)
		o := framework.CompletePlan(c, jobOutcome(), framework.Comparison{Project: governing(t, dbtConfig("1.0.0")), Environment: "prod",
			Head: head, Base: &base})
		require.Equal(t, plan.StatusNoChanges, o.Status, o.Error)
		d := o.Summary.DBT
		assert.False(t, d.Deploy)
		assert.Equal(t, plan.ScopeNone, d.Scope)
		assert.Empty(t, d.Commands)
		assert.Equal(t, plan.ScopeSelective, d.FileScope, "what a deploy would build is still said")
		assert.False(t, d.BaseIsDeployed, "the merge base")
	})
	t.Run("no base commit is a first deploy", func(t *testing.T) {
		head := commitOf(t, "head3", dbtConfig("1.0.0"), headTree)
		o := framework.CompletePlan(c, jobOutcome(), framework.Comparison{Project: governing(t, dbtConfig("1.0.0")), Environment: "prod", Head: head})
		require.Equal(t, plan.StatusReady, o.Status, o.Error)
		d := o.Summary.DBT
		assert.True(t, d.Deploy)
		assert.Empty(t, d.PreviousVersion)
		assert.Empty(t, d.BaseCommit)
		assert.Equal(t, plan.ScopeAll, d.Scope)
		assert.Equal(t, []string{"dbt build --target prod"}, d.Commands)
	})
	t.Run("a dbt_project.yml that cannot be read fails the plan at its line", func(t *testing.T) {
		head := commitOf(t, "head4", dbtConfig("1.1.0"), headTree)
		head.Files["dbt/dbt_project.yml"] = []byte("name: x\nmodel-paths: [\n")
		o := framework.CompletePlan(c, jobOutcome(), framework.Comparison{Project: governing(t, dbtConfig("1.1.0")), Environment: "prod",
			Head: head, Base: &base})
		assert.Equal(t, plan.StatusFailed, o.Status)
		assert.Contains(t, o.Error, "dbt/dbt_project.yml")
		assert.Nil(t, o.Summary)
	})
}
