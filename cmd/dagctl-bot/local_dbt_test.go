package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/testutil"
)

// sideBySide is examples/sqlmesh at the root and examples/dbt under dbt/, as one repository's working tree,
// with the config naming both: warehouse (sqlmesh) and marts (dbt) at version.
func sideBySide(t *testing.T, version string) string {
	t.Helper()
	repo := exampleRepo(t)
	for name, content := range testutil.DBTExampleFiles(t) {
		writeFile(t, repo, "dbt/"+name, content)
	}
	writeFile(t, repo, ".dagctl/config.yaml", sideBySideConfig(t, repo, version))
	return repo
}

func sideBySideConfig(t *testing.T, repo, version string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testutil.RepoRoot(), "examples", "sqlmesh", ".dagctl", "config.yaml"))
	require.NoError(t, err)
	const sqlmeshProject = "projects:\n  - path: .\n    framework: sqlmesh\n"
	require.Contains(t, string(data), sqlmeshProject)
	return strings.Replace(string(data), sqlmeshProject, "projects:\n  - name: warehouse\n    path: .\n    framework: sqlmesh\n"+
		"  - name: marts\n    path: dbt\n    framework: dbt\n    version: \""+version+"\"\n", 1)
}

func writeFile(t *testing.T, repo, name, content string) {
	t.Helper()
	path := filepath.Join(repo, filepath.FromSlash(name))
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
}

// gitRepo makes the working tree a git repository (go-git) whose main holds it as it is, ignoring what the
// tools leave there.
func gitRepo(t *testing.T, dir string) *git.Repository {
	t.Helper()
	writeFile(t, dir, ".gitignore", "*.duckdb\n*.wal\ntarget/\nlogs/\n.cache/\n")
	r, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{InitOptions: git.InitOptions{DefaultBranch: plumbing.Main}})
	require.NoError(t, err)
	commitAll(t, r, "main")
	return r
}

func commitAll(t *testing.T, r *git.Repository, message string) plumbing.Hash {
	t.Helper()
	wt, err := r.Worktree()
	require.NoError(t, err)
	require.NoError(t, wt.AddWithOptions(&git.AddOptions{All: true}))
	h, err := wt.Commit(message, &git.CommitOptions{Author: &object.Signature{Name: "t", Email: "t@example.com", When: time.Unix(1700000000, 0)}})
	require.NoError(t, err)
	return h
}

func checkout(t *testing.T, r *git.Repository, branch string, create bool) {
	t.Helper()
	wt, err := r.Worktree()
	require.NoError(t, err)
	require.NoError(t, wt.Checkout(&git.CheckoutOptions{Branch: plumbing.NewBranchReferenceName(branch), Create: create, Keep: create}))
}

// A repository with a sqlmesh and a dbt project side by side: `plan` plans both, each its own section, and
// the dbt one with the real dbt against the merge base of the branch and main (not main's later head), as a
// PR from the branch would get it: the version bump, the changed model and its downstream, the files, and a
// full build since nothing deployed a production manifest. The same plan with --base and without a bump.
func TestPlanOfADBTProjectComparesWithTheMergeBase(t *testing.T) {
	repo := sideBySide(t, "1.0.0")
	r := gitRepo(t, repo)
	checkout(t, r, "lower-status", true)
	stgOrders := "dbt/models/staging/stg_orders.sql"
	body := testutil.DBTExampleFiles(t)["models/staging/stg_orders.sql"]
	require.Contains(t, body, "    status\n")
	writeFile(t, repo, stgOrders, strings.Replace(body, "    status\n", "    lower(status) as status\n", 1))
	commitAll(t, r, "lower status")
	// main moves on after the branch: a change the branch does not have is no change of the branch's.
	checkout(t, r, "main", false)
	daily := "dbt/models/marts/daily_revenue.sql"
	writeFile(t, repo, daily, testutil.DBTExampleFiles(t)["models/marts/daily_revenue.sql"]+"\n-- later on main\n")
	commitAll(t, r, "later on main")
	checkout(t, r, "lower-status", false)
	// ... and the version is bumped in the working tree, not committed yet.
	writeFile(t, repo, ".dagctl/config.yaml", sideBySideConfig(t, repo, "1.1.0"))

	code, out, errOut := cli(t, "plan", "--repo", repo, "--env", "prod", "--execution-time", executionTime, "--quiet")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Contains(t, out, "### `warehouse/prod`", "the sqlmesh project's section")
	assert.Contains(t, out, "**Backfill: 4 models**", "planned by sqlmesh")
	assert.Contains(t, out, "### `marts/prod`", "the dbt project's section")
	assert.Contains(t, out, "**Deploy** `1.0.0` → `1.1.0`")
	assert.Contains(t, out, "**Scope: `all`**")
	assert.Contains(t, out, "_Why this scope: no production manifest yet: a full build._")
	assert.Contains(t, out, "`model.dagctl_example.stg_orders` — model · body", "the real dbt's manifest diff against the base's parse")
	assert.Contains(t, out, "- `model.dagctl_example.customer_revenue`", "its downstream")
	assert.Contains(t, out, "`"+stgOrders+"` | model | modified")
	assert.NotContains(t, out, daily, "main's later change is not the branch's")
	assert.NotContains(t, out, "dagctl_example.daily_revenue`", "nor in dbt's diff")
	assert.Contains(t, out, "dbt build --target prod\n")
	assert.Contains(t, errOut, "dagctl: comparing marts with ")

	// The branch's own commit as the base: only the uncommitted bump differs, so nothing of the project changed.
	code, out, errOut = cli(t, "plan", "--repo", repo, "--env", "prod", "--base", "HEAD", "--quiet")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Contains(t, out, "**Deploy** `1.0.0` → `1.1.0`")
	assert.NotContains(t, out, "`"+stgOrders+"`", "the model is committed at the base")
	assert.NotContains(t, out, "model.dagctl_example.stg_orders")

	// Without the bump the plan is informational.
	writeFile(t, repo, ".dagctl/config.yaml", sideBySideConfig(t, repo, "1.0.0"))
	code, out, errOut = cli(t, "plan", "--repo", repo, "--env", "prod", "--quiet")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Contains(t, out, "**Not a deploy** · version `1.0.0`, as at the base commit")
	assert.Contains(t, out, "A deploy of these changes would be `selective`")

	code, _, errOut = cli(t, "plan", "--repo", repo, "--env", "prod", "--base", "no-such-branch", "--quiet")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "--base no-such-branch")
}

// `apply` of a dbt project runs the commands of its plan against the merge base, with the real dbt: a full
// build of examples/dbt into a fresh DuckDB file. Without a bump there is nothing to apply.
func TestApplyOfADBTProjectRunsItsPlansCommands(t *testing.T) {
	repo := sideBySide(t, "1.0.0")
	r := gitRepo(t, repo)
	// Only the dbt project: the sqlmesh apply is another test's.
	dbtOnly := func(version string) string {
		return strings.Replace(sideBySideConfig(t, repo, version), "  - name: warehouse\n    path: .\n    framework: sqlmesh\n", "", 1)
	}
	writeFile(t, repo, ".dagctl/config.yaml", dbtOnly("1.0.0"))
	commitAll(t, r, "dbt only")
	checkout(t, r, "release", true)
	writeFile(t, repo, ".dagctl/config.yaml", dbtOnly("1.1.0"))
	body := testutil.DBTExampleFiles(t)["models/staging/stg_orders.sql"]
	writeFile(t, repo, "dbt/models/staging/stg_orders.sql", strings.Replace(body, "    status\n", "    lower(status) as status\n", 1))

	code, out, errOut := cli(t, "apply", "--repo", repo, "--env", "dev", "--quiet")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Contains(t, errOut, "applied marts to dev")
	assert.Contains(t, errOut, "model.dagctl_example.daily_revenue success", "dbt's progress: a full build, unchanged models too")
	_, err := os.Stat(filepath.Join(repo, "dbt", "target", "dagctl-apply", "manifest.json"))
	assert.NoError(t, err, "the apply's manifest")

	commitAll(t, r, "released")
	code, out, errOut = cli(t, "apply", "--repo", repo, "--env", "dev", "--base", "HEAD", "--quiet")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Contains(t, errOut, "nothing to apply for marts in dev: not a deploy")
}
