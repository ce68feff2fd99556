package testutil

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// ExampleFiles are the files of examples/sqlmesh (path → content), as a repository's root: what end-to-end tests
// and benchmarks commit to their fake forge's repository. Local state (DuckDB files, logs, caches) is left out.
func ExampleFiles(tb testing.TB) map[string]string {
	tb.Helper()
	return exampleFiles(tb, "sqlmesh", "logs", ".cache")
}

// DBTExampleFiles are the files of examples/dbt (path → content), relative to the dbt project. What dbt
// generates or installs (target/, logs/, dbt_packages/, .user.yml) and DuckDB files are left out.
func DBTExampleFiles(tb testing.TB) map[string]string {
	tb.Helper()
	files := exampleFiles(tb, "dbt", "target", "logs", "dbt_packages")
	delete(files, ".user.yml")
	return files
}

func exampleFiles(tb testing.TB, example string, skipDirs ...string) map[string]string {
	tb.Helper()
	root := filepath.Join(RepoRoot(), "examples", example)
	files := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if slices.Contains(skipDirs, rel) {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(rel, ".duckdb") || strings.HasSuffix(rel, ".wal") {
			return nil
		}
		data, err := os.ReadFile(path)
		files[filepath.ToSlash(rel)] = string(data)
		return err
	})
	if err != nil {
		tb.Fatalf("reading examples/%s: %v", example, err)
	}
	return files
}

// NonBreakingChange adds a column to the example's customer_totals: a non-breaking change whose downstream view
// is indirectly modified.
var NonBreakingChange = map[string]string{"models/customer_totals.sql": `MODEL (
  name dagctl_example.customer_totals,
  kind FULL,
  cron '@daily',
  grain customer_id
);

SELECT
  customer_id,
  SUM(amount) AS total_amount,
  COUNT(*) AS order_count
FROM dagctl_example.orders
GROUP BY
  customer_id
`}
