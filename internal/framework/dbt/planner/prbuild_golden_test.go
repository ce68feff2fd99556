package planner

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/testutil"
)

// The PR build and its cleanup with the real dbt on copies of examples/dbt. A scenario built against the
// production state gets its own copy of the warehouse the real deploy (deployProd) left, so deferring finds the
// production relations; the warehouse is read afterwards, before and after, with DuckDB itself.

const prSchema = "dbt_pr_7"

// relations lists the warehouse's tables and views by schema ("schema.name"), read with DuckDB in a process of
// its own (read-only).
func relations(t *testing.T, db string) []string {
	t.Helper()
	script := `import duckdb, json, sys
c = duckdb.connect(sys.argv[1], read_only=True)
print(json.dumps(sorted(s + "." + n for s, n in c.sql("select table_schema, table_name from information_schema.tables").fetchall())))`
	out, err := exec.Command(testutil.Python(t), "-c", script, db).Output()
	require.NoError(t, err)
	var rels []string
	require.NoError(t, json.Unmarshal(out, &rels))
	return rels
}

// inSchema are the relations of one schema.
func inSchema(rels []string, schema string) []string {
	out := []string{}
	for _, r := range rels {
		if strings.HasPrefix(r, schema+".") {
			out = append(out, strings.TrimPrefix(r, schema+"."))
		}
	}
	sort.Strings(out)
	return out
}

// withoutSchemaPrefix are the relations outside every schema that starts with prefix.
func withoutSchemaPrefix(rels []string, prefix string) []string {
	out := []string{}
	for _, r := range rels {
		if !strings.HasPrefix(r, prefix) {
			out = append(out, r)
		}
	}
	return out
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Dir(dst), 0o755))
	require.NoError(t, os.WriteFile(dst, data, 0o644))
}

func builtStatuses(b *plan.PRBuild) map[string]string {
	out := map[string]string{}
	for _, n := range b.Nodes {
		out[n.UniqueID] = n.Status
	}
	return out
}

type prBuildScenario struct {
	name  string
	from  int // fromProduction or fromNothing
	edit  func(t *testing.T, sb *sandbox)
	check func(t *testing.T, s plan.Summary, err error, code int, before, after []string)
}

var prBuildScenarios = []prBuildScenario{
	{
		// Slim CI: the changed model and its downstream are built into the PR's schema, the rest deferred to
		// production; the snapshot, whose target_schema is production's, is left out; production is untouched.
		name: "deferred",
		from: fromProduction,
		edit: func(t *testing.T, sb *sandbox) {
			sb.replace(t, "models/staging/stg_orders.sql", "    status\n", "    lower(status) as status\n")
		},
		check: func(t *testing.T, s plan.Summary, err error, code int, before, after []string) {
			require.NoError(t, err)
			b := s.DBT.PRBuild
			require.NotNil(t, b)
			assert.Equal(t, prSchema, b.Schema)
			assert.Equal(t, "dev", b.Target)
			assert.True(t, b.Deferred)
			st := builtStatuses(b)
			assert.Equal(t, "success", st["model."+project+".stg_orders"])
			assert.Equal(t, "success", st["model."+project+".customer_revenue"])
			assert.Equal(t, "pass", st["test."+project+".assert_no_negative_revenue"])
			assert.NotContains(t, st, "model."+project+".daily_revenue", "not downstream: deferred to production")
			assert.NotContains(t, st, "seed."+project+".raw_orders", "unchanged: deferred to production")
			require.Len(t, b.Outside, 1)
			assert.Equal(t, "snapshot."+project+".orders_snapshot", b.Outside[0].UniqueID)
			assert.Equal(t, "writes to schema snapshots", b.Outside[0].Message)
			built, passed, failed, skipped := b.Counts()
			assert.Equal(t, []int{8, 8, 0, 0}, []int{built, passed, failed, skipped})
			assert.Equal(t, []string{"customer_revenue", "stg_orders"}, inSchema(after, prSchema), "the PR's schema has the built models")
			assert.Equal(t, before, withoutSchemaPrefix(after, prSchema), "production (main, snapshots) is unchanged")
		},
	},
	{
		// Before the first deploy there is nothing to defer to: everything is built into the PR's schema.
		name: "no_state",
		from: fromNothing,
		check: func(t *testing.T, s plan.Summary, err error, code int, before, after []string) {
			require.NoError(t, err)
			b := s.DBT.PRBuild
			require.NotNil(t, b)
			assert.False(t, b.Deferred)
			assert.Len(t, b.Nodes, 12, "the example's 13 nodes but the snapshot")
			assert.Equal(t, []string{"customer_revenue", "daily_revenue", "raw_orders", "stg_customers", "stg_orders"}, inSchema(after, prSchema))
			assert.Empty(t, withoutSchemaPrefix(after, prSchema), "nothing outside the PR's schemas")
		},
	},
	{
		// A model that fails in the warehouse: the build fails with dbt's message and its file; its downstream is
		// skipped; the plan and the build are still shown.
		name: "failure",
		from: fromProduction,
		edit: func(t *testing.T, sb *sandbox) {
			sb.replace(t, "models/staging/stg_customers.sql", "from {{ ref('raw_orders') }}", "from {{ ref('raw_orders') }} where no_such_column > 0")
		},
		check: func(t *testing.T, s plan.Summary, err error, code int, before, after []string) {
			var toolErr *ToolError
			require.ErrorAs(t, err, &toolErr)
			assert.Equal(t, 1, code)
			assert.Equal(t, "build", toolErr.Kind)
			assert.Equal(t, "models/staging/stg_customers.sql", toolErr.File)
			assert.Contains(t, toolErr.Message, "dbt build into "+prSchema+" failed (1 of ")
			assert.Contains(t, toolErr.Message, "Runtime Error in model stg_customers (models/staging/stg_customers.sql)")
			assert.Contains(t, toolErr.Message, "no_such_column")
			require.NotNil(t, s.DBT)
			st := builtStatuses(s.DBT.PRBuild)
			assert.Equal(t, "error", st["model."+project+".stg_customers"])
			assert.Equal(t, "skipped", st["model."+project+".customer_revenue"])
			assert.Equal(t, before, withoutSchemaPrefix(after, prSchema), "production is unchanged")
		},
	},
}

func TestPRBuildGolden(t *testing.T) {
	python := testutil.Python(t)
	for _, sc := range prBuildScenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			sb := newSandbox(t, "")
			if sc.from == fromProduction {
				state, _, _ := deployProd(t)
				sb.env = append(sb.env, StateEnv+"="+state)
				copyFile(t, filepath.Join(deployedProd.dir, "warehouse", "example.duckdb"), sb.db)
			}
			if sc.edit != nil {
				sc.edit(t, sb)
			}
			var before []string
			if sc.from == fromProduction {
				before = relations(t, sb.db)
				require.Contains(t, before, "main.stg_orders", "the production copy")
			}
			files := sb.files(t)
			output, code := sb.run(t, DBT{Python: python}.PRBuildCommand("pr_7", prSchema, Options{Target: "dev"}))
			assert.Equal(t, files, sb.files(t), "the build leaves the checkout as it was")
			after := relations(t, sb.db)

			summary, err := ParseResult(strings.NewReader(output))
			got, unexpected := planGoldenOf(summary, err, code)
			require.NoError(t, unexpected, "output:\n%s", output)
			sc.check(t, summary, err, code, before, after)
			if t.Failed() {
				t.Logf("output:\n%s", output)
			}

			// The cleanup drops every schema of the PR and nothing else.
			cleanup, cleanupCode := sb.run(t, DBT{Python: python}.CleanupCommand("pr_7", prSchema, Options{Target: "dev"}))
			require.Equal(t, 0, cleanupCode, "cleanup:\n%s", cleanup)
			res, err := ParseCleanupResult(strings.NewReader(cleanup))
			require.NoError(t, err)
			assert.Contains(t, res.Dropped, prSchema)
			dropped := relations(t, sb.db)
			assert.Empty(t, inSchema(dropped, prSchema), "the PR's schema is gone")
			assert.Equal(t, withoutSchemaPrefix(after, prSchema), dropped, "only the PR's schemas were dropped")

			outPath, jsonPath := filepath.Join("testdata", "pr_build_"+sc.name+".out"), filepath.Join("testdata", "pr_build_"+sc.name+".json")
			if updateGolden {
				writeGolden(t, outPath, []byte(output))
				writeGolden(t, jsonPath, marshal(t, got))
				return
			}
			want := readGolden(t, jsonPath)
			assert.JSONEq(t, string(want), string(marshal(t, got)), "live dbt run differs from %s (make golden rewrites it)", jsonPath)
			storedSummary, storedErr := ParseResult(bytes.NewReader(readGolden(t, outPath)))
			var wantGolden planGolden
			require.NoError(t, json.Unmarshal(want, &wantGolden))
			parsed, unexpected := planGoldenOf(storedSummary, storedErr, wantGolden.ExitCode)
			require.NoError(t, unexpected)
			assert.JSONEq(t, string(want), string(marshal(t, parsed)), "%s no longer parses to %s", outPath, jsonPath)
		})
	}
}
