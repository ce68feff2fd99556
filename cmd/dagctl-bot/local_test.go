package main

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/testutil"
)

// executionTime fixes sqlmesh's "now", so that backfill intervals are the same on every run.
const executionTime = "2024-01-15"

// exampleRepo copies examples/sqlmesh (without local state) into a temporary working tree, and points the CLI
// at the pinned sqlmesh and a fresh DuckDB file for the team's state, passed to jobs as the example's config
// asks.
func exampleRepo(t *testing.T) string {
	t.Helper()
	src := filepath.Join(testutil.RepoRoot(), "examples", "sqlmesh")
	dst := filepath.Join(t.TempDir(), "warehouse")
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			if rel == "logs" || rel == ".cache" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if strings.HasSuffix(rel, ".duckdb") || strings.HasSuffix(rel, ".wal") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	require.NoError(t, err)

	t.Setenv("DAGCTL_SQLMESH", testutil.SQLMesh(t))
	t.Setenv("EXAMPLE_DUCKDB_PATH", filepath.Join(t.TempDir(), "state.duckdb"))
	t.Setenv("DAGCTL_JOB_ENV", "EXAMPLE_DUCKDB_PATH")
	return dst
}

// cli runs dagctl-bot in-process, as main does.
func cli(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

var exampleModels = []string{
	"dagctl_example.raw_orders", "dagctl_example.orders", "dagctl_example.customer_totals", "dagctl_example.top_customers",
}

func TestPlanPrintsTheCommentAPullRequestWouldGet(t *testing.T) {
	repo := exampleRepo(t)
	code, out, errOut := cli(t, "plan", "--repo", repo, "--env", "prod", "--execution-time", executionTime, "--quiet")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)

	assert.True(t, strings.HasPrefix(out, "<!-- dagctl-bot:sticky -->"), out)
	assert.Contains(t, out, "### `prod`")
	assert.NotContains(t, out, "### `dev`", "only the environment asked for")
	assert.Contains(t, out, "**Backfill: 4 models**")
	_, added, ok := strings.Cut(out, "**Added (4)**")
	require.True(t, ok, "no list of added models:\n%s", out)
	added, _, _ = strings.Cut(added, "<details>")
	for _, m := range exampleModels {
		assert.Contains(t, added, "`"+m+"`", "%s is listed as added", m)
	}
	assert.Contains(t, out, "<summary><b>Backfill (4 models)</b></summary>")
	assert.Contains(t, out, "| `dagctl_example.orders` | Intervals | 2024-01-01 → 2024-01-15 |", "the incremental model's intervals")
	assert.Contains(t, out, "**Next:** merge the PR to apply.", "prod's apply_on comes from the repo's config")
}

func TestPlanOfASQLErrorExitsOneWithTheError(t *testing.T) {
	repo := exampleRepo(t)
	path := filepath.Join(repo, "models", "customer_totals.sql")
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Contains(t, string(data), "  SUM(amount) AS total_amount\n")
	broken := strings.Replace(string(data), "  SUM(amount) AS total_amount\n", "  SUM(amount AS total_amount\n", 1)
	require.NoError(t, os.WriteFile(path, []byte(broken), 0o644))

	code, out, errOut := cli(t, "plan", "--repo", repo, "--env", "prod", "--execution-time", executionTime, "--quiet")
	assert.Equal(t, 1, code, "stderr:\n%s", errOut)
	assert.Contains(t, out, "Failed to load model from file 'models/customer_totals.sql'")
	assert.Contains(t, out, "Expecting ). Line 10")
}

func TestApplyThenPlanShowsNoChanges(t *testing.T) {
	repo := exampleRepo(t)
	code, out, errOut := cli(t, "apply", "--repo", repo, "--env", "prod", "--execution-time", executionTime, "--quiet")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Contains(t, errOut, "applied default to prod")

	code, out, errOut = cli(t, "plan", "--repo", repo, "--env", "prod", "--execution-time", executionTime, "--quiet")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Contains(t, out, "No changes")
	assert.NotContains(t, out, "**Added")
	for _, m := range exampleModels {
		assert.NotContains(t, out, m, "nothing left to change")
	}
}

func TestUsageErrorsExitTwo(t *testing.T) {
	repo := exampleRepo(t)
	for _, args := range [][]string{
		nil,
		{"frobnicate"},
		{"plan", "--repo", repo, "--no-such-flag"},
		{"plan", "--repo", repo, "--env"},
		{"apply", "--repo", repo},
		{"apply", "--repo", repo, "--env", "prod", "--forward-only=maybe"},
	} {
		code, out, errOut := cli(t, args...)
		assert.Equal(t, 2, code, "%q\nstdout:\n%s\nstderr:\n%s", args, out, errOut)
		assert.NotContains(t, out+errOut, "Ready to apply", "%q planned nothing", args)
	}
	// A well-formed command about an environment the repo does not have is an error, not a usage error.
	code, _, errOut := cli(t, "plan", "--repo", repo, "--env", "staging")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, `environment "staging" is not in .dagctl/config.yaml (it has prod, dev)`)
}
