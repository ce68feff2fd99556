package planner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/testutil"
)

// The golden tests run the real dbt on copies of examples/dbt. Each scenario has its own copy of the project,
// DuckDB file and temporary directory. The production state is the manifest a real apply of the example (the
// helper in apply mode, `dbt seed` then `dbt build`) left in ArtifactsDir, made once per test binary; that
// apply is the apply golden. The captured output of each run is stored in testdata with what ParseResult (or
// ParseProgress) made of it. DAGCTL_UPDATE_GOLDEN=1 (`make golden`) rewrites both; otherwise the live result
// must equal the stored one and the stored output must still parse to it.

var updateGolden = os.Getenv("DAGCTL_UPDATE_GOLDEN") == "1"

// sandbox is a scratch copy of the example project with its own warehouse file, home and temporary directory.
type sandbox struct {
	root    string // replaced by $SANDBOX in stored output
	project string
	db      string
	base    string   // the base commit's copy of the project, for scenarios compared with it
	env     []string // extra variables of the job
}

func newSandbox(t *testing.T, dir string) *sandbox {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	sb := &sandbox{root: dir, project: filepath.Join(dir, "project"), db: filepath.Join(dir, "warehouse", "example.duckdb")}
	require.NoError(t, copyProject(filepath.Join(testutil.RepoRoot(), "examples", "dbt"), sb.project))
	for _, d := range []string{filepath.Dir(sb.db), filepath.Join(dir, "home"), filepath.Join(dir, "tmp")} {
		require.NoError(t, os.MkdirAll(d, 0o755))
	}
	return sb
}

// copyProject copies the example's sources, leaving out what running dbt leaves behind.
func copyProject(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			if rel == "target" || rel == "logs" || rel == "dbt_packages" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if strings.Contains(d.Name(), ".duckdb") || d.Name() == ".user.yml" {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
}

// files lists the project's files, relative to it.
func (sb *sandbox) files(t *testing.T) []string {
	t.Helper()
	var out []string
	require.NoError(t, filepath.WalkDir(sb.project, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(sb.project, path)
			out = append(out, rel)
		}
		return err
	}))
	sort.Strings(out)
	return out
}

var (
	// What differs from run to run in dbt's text output: the time at the start of each line, the scratch
	// directory's random suffix.
	logTime     = regexp.MustCompile(`(?m)^\d{2}:\d{2}:\d{2}  `)
	scratchName = regexp.MustCompile(`dagctl-dbt-plan-[A-Za-z0-9_]+`)
)

// run runs argv in the project as a job would: the planner's environment, the project's variable and the
// sandbox's own, nothing inherited but PATH. It returns standard output with the sandbox path replaced, and
// the exit code.
func (sb *sandbox) run(t *testing.T, argv []string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = sb.project
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + filepath.Join(sb.root, "home"),
		"TMPDIR=" + filepath.Join(sb.root, "tmp"), "EXAMPLE_DUCKDB_PATH=" + sb.db}
	cmd.Env = append(cmd.Env, sb.env...)
	for k, v := range (DBT{}).Env() {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("running %s: %v", argv[0], err)
	}
	if code != 0 {
		t.Logf("%s exited %d; stderr:\n%s", argv[0], code, stderr.String())
	}
	out := strings.ReplaceAll(stdout.String(), sb.root, "$SANDBOX")
	if deployedProd.dir != "" {
		out = strings.ReplaceAll(out, deployedProd.dir, "$PROD")
	}
	out = logTime.ReplaceAllString(out, "HH:MM:SS  ")
	return scratchName.ReplaceAllString(out, "dagctl-dbt-plan-<scratch>"), code
}

func (sb *sandbox) write(t *testing.T, rel, content string) {
	t.Helper()
	path := filepath.Join(sb.project, rel)
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
}

func (sb *sandbox) replace(t *testing.T, rel, old, new string) {
	t.Helper()
	path := filepath.Join(sb.project, rel)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Contains(t, string(data), old, "%s changed; update the scenario", rel)
	require.NoError(t, os.WriteFile(path, []byte(strings.Replace(string(data), old, new, 1)), 0o644))
}

// firstDeploy is what the example's first deploy to prod runs: the commands scope.Commands makes of
// `commands: [dbt seed, dbt build]` for scope all.
var firstDeploy = &plan.DBT{Scope: plan.ScopeAll, Commands: []string{"dbt seed --target prod", "dbt build --target prod"}}

// deployedProd is the example applied to prod for real, once per test binary: the directory of its artifacts
// (the production state), and the apply's captured output and exit code.
var deployedProd struct {
	once   sync.Once
	dir    string
	state  string
	output string
	code   int
	err    error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if deployedProd.dir != "" {
		_ = os.RemoveAll(deployedProd.dir)
	}
	os.Exit(code)
}

func deployProd(t *testing.T) (state, output string, code int) {
	t.Helper()
	python := testutil.Python(t)
	deployedProd.once.Do(func() {
		deployedProd.err = errors.New("the deploy to prod did not finish (see the first test that ran it)")
		dir, err := os.MkdirTemp("", "dagctl-dbt-deployed-")
		if err != nil {
			deployedProd.err = err
			return
		}
		deployedProd.dir = dir
		sb := newSandbox(t, dir)
		deployedProd.output, deployedProd.code = sb.run(t, DBT{Python: python}.ApplyCommand("prod", firstDeploy, Options{}))
		deployedProd.state, deployedProd.err = filepath.Join(sb.project, ArtifactsDir), nil
	})
	require.NoError(t, deployedProd.err)
	require.Equal(t, 0, deployedProd.code, "deploying the example to prod failed:\n%s", deployedProd.output)
	return deployedProd.state, deployedProd.output, deployedProd.code
}

// planGolden is what a plan run produced, as stored in testdata/<scenario>.json.
type planGolden struct {
	ExitCode int           `json:"exit_code"`
	Summary  *plan.Summary `json:"summary,omitempty"`
	Error    *ToolError    `json:"error,omitempty"`
}

func planGoldenOf(summary plan.Summary, err error, code int) (planGolden, error) {
	g := planGolden{ExitCode: code}
	if summary.Environment != "" {
		g.Summary = &summary
	}
	var toolErr *ToolError
	switch {
	case errors.As(err, &toolErr):
		g.Error = toolErr
	case err != nil:
		return g, err
	}
	return g, nil
}

// Where a scenario's comparison comes from.
const (
	fromNothing    = iota // neither variable: every node is new
	fromProduction        // DAGCTL_DBT_STATE: the manifest of the real deploy
	fromBase              // DAGCTL_BASE_DIR: an unedited copy of the example as the base commit
)

type scenario struct {
	name  string
	from  int
	edit  func(t *testing.T, sb *sandbox)
	check func(t *testing.T, s plan.Summary, err error, code int)
}

const project = "dagctl_example"

func ids(nodes []plan.Node) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.UniqueID)
	}
	return out
}

func reasonsOf(nodes []plan.Node) map[string][]plan.NodeReason {
	out := map[string][]plan.NodeReason{}
	for _, n := range nodes {
		out[n.UniqueID] = n.Reasons
	}
	return out
}

var scenarios = []scenario{
	{
		name: "first_deploy",
		from: fromNothing,
		check: func(t *testing.T, s plan.Summary, err error, code int) {
			require.NoError(t, err)
			d := s.DBT
			assert.Equal(t, plan.ScopeAll, d.ManifestScope)
			assert.Len(t, d.Nodes, 13, "every node of the example (dbt build runs 13) and nothing else")
			for _, n := range d.Nodes {
				assert.Equal(t, []plan.NodeReason{plan.ReasonNew}, n.Reasons, n.UniqueID)
			}
			assert.Contains(t, ids(d.Nodes), "seed."+project+".raw_orders")
			assert.Empty(t, d.Downstream)
		},
	},
	{
		name: "model_change",
		from: fromProduction,
		edit: func(t *testing.T, sb *sandbox) {
			sb.replace(t, "models/staging/stg_customers.sql", "select distinct customer_id", "select distinct customer_id, 1 as one")
		},
		check: func(t *testing.T, s plan.Summary, err error, code int) {
			require.NoError(t, err)
			d := s.DBT
			assert.Equal(t, plan.ScopeSelective, d.ManifestScope)
			assert.Equal(t, map[string][]plan.NodeReason{"model." + project + ".stg_customers": {plan.ReasonBody}}, reasonsOf(d.Nodes))
			assert.Equal(t, "models/staging/stg_customers.sql", d.Nodes[0].Path)
			assert.Contains(t, d.Downstream, "model."+project+".customer_revenue")
			assert.NotContains(t, d.Downstream, "model."+project+".daily_revenue", "not downstream of stg_customers")
		},
	},
	{
		name: "macro_change",
		from: fromProduction,
		edit: func(t *testing.T, sb *sandbox) {
			sb.replace(t, "macros/cents_to_dollars.sql", "/ 100.0)", "/ 100.00)")
		},
		check: func(t *testing.T, s plan.Summary, err error, code int) {
			require.NoError(t, err)
			d := s.DBT
			assert.Equal(t, plan.ScopeSelective, d.ManifestScope)
			assert.Equal(t, map[string][]plan.NodeReason{
				"model." + project + ".daily_revenue": {plan.ReasonMacro},
				"model." + project + ".stg_orders":    {plan.ReasonMacro},
			}, reasonsOf(d.Nodes), "the two models that use cents_to_dollars")
			assert.Contains(t, d.Downstream, "model."+project+".customer_revenue")
			assert.Contains(t, d.Downstream, "snapshot."+project+".orders_snapshot")
		},
	},
	{
		// A test added and a description edited in schema.yml. The example does not persist docs, so dbt's
		// state sees the new test alone.
		name: "yaml_only",
		from: fromProduction,
		edit: func(t *testing.T, sb *sandbox) {
			sb.replace(t, "models/schema.yml", "description: Completed revenue per customer.", "description: Revenue of completed orders, per customer.")
			sb.replace(t, "models/schema.yml", "data_tests: [unique]", "data_tests: [unique, not_null]")
		},
		check: func(t *testing.T, s plan.Summary, err error, code int) {
			require.NoError(t, err)
			d := s.DBT
			assert.Equal(t, plan.ScopeSelective, d.ManifestScope)
			require.Len(t, d.Nodes, 1)
			assert.Equal(t, "test", d.Nodes[0].ResourceType)
			assert.Equal(t, "not_null_daily_revenue_order_date", d.Nodes[0].Name)
			assert.Equal(t, []plan.NodeReason{plan.ReasonNew}, d.Nodes[0].Reasons)
			assert.Equal(t, "models/schema.yml", d.Nodes[0].Path)
		},
	},
	{
		name: "removed_model",
		from: fromProduction,
		edit: func(t *testing.T, sb *sandbox) {
			require.NoError(t, os.Remove(filepath.Join(sb.project, "models", "marts", "daily_revenue.sql")))
			sb.replace(t, "models/schema.yml", "  - name: daily_revenue\n    columns:\n      - name: order_date\n        data_tests: [unique]\n", "")
		},
		check: func(t *testing.T, s plan.Summary, err error, code int) {
			require.NoError(t, err)
			d := s.DBT
			removed := d.Removed()
			assert.Equal(t, []string{"model." + project + ".daily_revenue", "test." + project + ".unique_daily_revenue_order_date.059107fd56"}, ids(removed))
			assert.Equal(t, "models/marts/daily_revenue.sql", removed[0].Path, "at the base")
			assert.Len(t, d.Nodes, 2, "nothing else changed")
			assert.Equal(t, plan.ScopeSelective, d.ManifestScope)
		},
	},
	{
		name: "infra_only",
		from: fromProduction,
		edit: func(t *testing.T, sb *sandbox) {
			sb.write(t, "Dockerfile", "FROM ghcr.io/dbt-labs/dbt-core:1.11.2\nCOPY . /project\n")
			sb.write(t, "requirements.txt", "dbt-duckdb==1.11.1\n")
		},
		check: func(t *testing.T, s plan.Summary, err error, code int) {
			require.NoError(t, err)
			assert.Empty(t, s.DBT.Nodes)
			assert.Empty(t, s.DBT.Downstream)
			assert.Equal(t, plan.ScopeNone, s.DBT.ManifestScope)
		},
	},
	{
		// The version in .dagctl/config.yaml (outside the dbt project) is all that changed.
		name: "version_bump",
		from: fromProduction,
		edit: func(t *testing.T, sb *sandbox) {
			sb.write(t, "../.dagctl/config.yaml", "projects:\n  - name: example\n    path: project\n    framework: dbt\n    version: 1.0.1\n")
		},
		check: func(t *testing.T, s plan.Summary, err error, code int) {
			require.NoError(t, err)
			assert.Empty(t, s.DBT.Nodes)
			assert.Equal(t, plan.ScopeNone, s.DBT.ManifestScope)
			assert.False(t, s.HasChanges(), "the manifest's side alone deploys nothing")
		},
	},
	{
		// Before the first deploy the base commit's parse is the comparison.
		name: "base_model_change",
		from: fromBase,
		edit: func(t *testing.T, sb *sandbox) {
			sb.replace(t, "models/marts/customer_revenue.sql", "count(*) as orders", "count(*) as order_count")
		},
		check: func(t *testing.T, s plan.Summary, err error, code int) {
			require.NoError(t, err)
			assert.Contains(t, s.Explain, "base commit")
			assert.Equal(t, map[string][]plan.NodeReason{"model." + project + ".customer_revenue": {plan.ReasonBody}}, reasonsOf(s.DBT.Nodes))
			assert.Contains(t, s.DBT.Downstream, "test."+project+".assert_no_negative_revenue")
		},
	},
	{
		// The base commit does not parse (merged without a deploy) and the PR fixes it: the plan goes on with
		// nothing to compare with, and says why.
		name: "base_does_not_parse",
		from: fromBase,
		edit: func(t *testing.T, sb *sandbox) {
			path := filepath.Join(sb.base, "models", "marts", "daily_revenue.sql")
			data, err := os.ReadFile(path)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(path, []byte(strings.Replace(string(data), "ref('raw_orders') }}", "ref('raw_orders' }}", 1)), 0o644))
		},
		check: func(t *testing.T, s plan.Summary, err error, code int) {
			require.NoError(t, err)
			assert.Equal(t, plan.ScopeAll, s.DBT.ManifestScope)
			assert.Len(t, s.DBT.Nodes, 13)
			assert.Contains(t, s.Explain, "Nothing to compare with: every node is new.\nThe base commit does not parse: Compilation Error in model daily_revenue")
		},
	},
	{
		name: "compile_error",
		from: fromProduction,
		edit: func(t *testing.T, sb *sandbox) {
			sb.replace(t, "models/marts/daily_revenue.sql", "ref('raw_orders') }}", "ref('raw_orders' }}")
		},
		check: func(t *testing.T, s plan.Summary, err error, code int) {
			var toolErr *ToolError
			require.ErrorAs(t, err, &toolErr)
			assert.NotEqual(t, 0, code)
			assert.Equal(t, "compile", toolErr.Kind)
			assert.Equal(t, "models/marts/daily_revenue.sql", toolErr.File)
			assert.Contains(t, toolErr.Message, "Compilation Error in model daily_revenue (models/marts/daily_revenue.sql)")
			assert.Contains(t, toolErr.Message, "line 4")
			assert.Nil(t, s.DBT)
		},
	},
}

func TestPlanGolden(t *testing.T) {
	python := testutil.Python(t)
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			sb := newSandbox(t, "")
			switch sc.from {
			case fromProduction:
				state, _, _ := deployProd(t)
				sb.env = append(sb.env, StateEnv+"="+state)
			case fromBase:
				sb.base = filepath.Join(sb.root, "base")
				require.NoError(t, copyProject(filepath.Join(testutil.RepoRoot(), "examples", "dbt"), sb.base))
				sb.env = append(sb.env, BaseDirEnv+"="+sb.base)
			}
			if sc.edit != nil {
				sc.edit(t, sb)
			}
			before := sb.files(t)
			output, code := sb.run(t, DBT{Python: python}.PlanCommand("prod", Options{Target: "prod"}))
			assert.Equal(t, before, sb.files(t), "a plan leaves the checkout as it was (target/, logs/ and .user.yml elsewhere)")
			assert.NoFileExists(t, sb.db, "a plan never opens the warehouse")

			summary, err := ParseResult(strings.NewReader(output))
			got, unexpected := planGoldenOf(summary, err, code)
			require.NoError(t, unexpected, "output:\n%s", output)
			if err == nil {
				assert.Equal(t, 0, code)
				assert.Equal(t, "dbt", summary.Tool)
				assert.Equal(t, "prod", summary.Environment)
			}
			sc.check(t, summary, err, code)
			if t.Failed() {
				t.Logf("output:\n%s", output)
			}

			outPath, jsonPath := filepath.Join("testdata", sc.name+".out"), filepath.Join("testdata", sc.name+".json")
			if updateGolden {
				writeGolden(t, outPath, []byte(output))
				writeGolden(t, jsonPath, marshal(t, got))
				return
			}
			want := readGolden(t, jsonPath)
			assert.JSONEq(t, string(want), string(marshal(t, got)), "live dbt run differs from %s (make golden rewrites it)", jsonPath)

			// The stored output, captured from a real run, still parses to the stored result.
			stored := readGolden(t, outPath)
			storedSummary, storedErr := ParseResult(bytes.NewReader(stored))
			var wantGolden planGolden
			require.NoError(t, json.Unmarshal(want, &wantGolden))
			parsed, unexpected := planGoldenOf(storedSummary, storedErr, wantGolden.ExitCode)
			require.NoError(t, unexpected)
			assert.JSONEq(t, string(want), string(marshal(t, parsed)), "%s no longer parses to %s", outPath, jsonPath)
		})
	}
}

// applyGolden is what an apply printed, as stored in testdata/apply_<scenario>.json.
type applyGolden struct {
	ExitCode int         `json:"exit_code"`
	Result   ApplyResult `json:"result"`
	Progress []Progress  `json:"progress"`
	Error    *ToolError  `json:"error,omitempty"`
}

func progressOf(output string) []Progress {
	var out []Progress
	for _, line := range strings.Split(output, "\n") {
		if p, ok := ParseProgress(line); ok {
			out = append(out, p)
		}
	}
	return out
}

type applyScenario struct {
	name  string
	edit  func(t *testing.T, sb *sandbox)
	plan  *plan.DBT
	code  int
	check func(t *testing.T, res ApplyResult, err error, ps []Progress, sb *sandbox)
}

var applyScenarios = []applyScenario{
	{
		// The first deploy of the example (the production state the plan scenarios compare with).
		name: "first_deploy",
		plan: firstDeploy,
		check: func(t *testing.T, res ApplyResult, err error, ps []Progress, sb *sandbox) {
			require.NoError(t, err)
			assert.Equal(t, []AppliedCommand{{Command: "dbt seed --target prod", Success: true}, {Command: "dbt build --target prod", Success: true}}, res.Commands)
			require.Len(t, ps, 14, "1 seed, then the 13 nodes of dbt build")
			assert.Equal(t, Progress{UniqueID: "seed." + project + ".raw_orders", ResourceType: "seed", Status: "success", Index: 1, Total: 1}, ps[0])
			last := ps[len(ps)-1]
			assert.Equal(t, 13, last.Index)
			assert.Equal(t, 13, last.Total)
		},
	},
	{
		// A model that compiles but fails in the warehouse: its downstream is skipped, the command fails, and the
		// command after it never runs.
		name: "failure",
		plan: &plan.DBT{Scope: plan.ScopeAll, Commands: []string{"dbt build --target prod", "dbt snapshot --target prod"}},
		edit: func(t *testing.T, sb *sandbox) {
			sb.replace(t, "models/staging/stg_customers.sql", "from {{ ref('raw_orders') }}", "from {{ ref('raw_orders') }} where no_such_column > 0")
		},
		code: 1,
		check: func(t *testing.T, res ApplyResult, err error, ps []Progress, sb *sandbox) {
			var toolErr *ToolError
			require.ErrorAs(t, err, &toolErr)
			assert.Equal(t, "apply", toolErr.Kind)
			assert.Contains(t, toolErr.Message, "`dbt build --target prod` failed (command 1 of 2)")
			assert.Equal(t, []AppliedCommand{{Command: "dbt build --target prod", Success: false}}, res.Commands)
			statuses := map[string]string{}
			for _, p := range ps {
				statuses[p.UniqueID] = p.Status
			}
			assert.Equal(t, "error", statuses["model."+project+".stg_customers"])
			assert.Equal(t, "skipped", statuses["model."+project+".customer_revenue"])
			assert.Equal(t, "success", statuses["model."+project+".daily_revenue"])
			assert.FileExists(t, filepath.Join(sb.project, ArtifactsDir, "run_results.json"), "the failed command's results are kept")
		},
	},
}

func TestApplyGolden(t *testing.T) {
	python := testutil.Python(t)
	for _, sc := range applyScenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			var sb *sandbox
			var output string
			var code int
			if sc.plan == firstDeploy {
				_, output, code = deployProd(t)
				sb = &sandbox{project: filepath.Join(deployedProd.dir, "project")}
			} else {
				sb = newSandbox(t, "")
				if sc.edit != nil {
					sc.edit(t, sb)
				}
				output, code = sb.run(t, DBT{Python: python}.ApplyCommand("prod", sc.plan, Options{}))
			}
			res, err := ParseApplyResult(strings.NewReader(output))
			var toolErr *ToolError
			if err != nil && !errors.As(err, &toolErr) {
				t.Fatalf("unreadable apply result: %v\n%s", err, output)
			}
			progress := progressOf(output)
			assert.Equal(t, sc.code, code)
			sc.check(t, res, err, progress, sb)
			if sc.code == 0 {
				for _, f := range []string{"manifest.json", "run_results.json"} {
					assert.FileExists(t, filepath.Join(sb.project, ArtifactsDir, f))
				}
			}
			if t.Failed() {
				t.Logf("output:\n%s", output)
			}
			got := applyGolden{ExitCode: code, Result: res, Progress: progress, Error: toolErr}

			outPath, jsonPath := filepath.Join("testdata", "apply_"+sc.name+".out"), filepath.Join("testdata", "apply_"+sc.name+".json")
			if updateGolden {
				writeGolden(t, outPath, []byte(output))
				writeGolden(t, jsonPath, marshal(t, got))
				return
			}
			want := readGolden(t, jsonPath)
			assert.JSONEq(t, string(want), string(marshal(t, got)), "live dbt run differs from %s (make golden rewrites it)", jsonPath)
			stored := string(readGolden(t, outPath))
			storedRes, storedErr := ParseApplyResult(strings.NewReader(stored))
			var storedToolErr *ToolError
			errors.As(storedErr, &storedToolErr)
			assert.JSONEq(t, string(want), string(marshal(t, applyGolden{ExitCode: code, Result: storedRes, Progress: progressOf(stored), Error: storedToolErr})),
				"%s no longer parses to %s", outPath, jsonPath)
		})
	}
}

func marshal(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	require.NoError(t, enc.Encode(v))
	return buf.Bytes()
}

func writeGolden(t *testing.T, path string, data []byte) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, data, 0o644))
}

func readGolden(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err, "missing golden file; run `make golden`")
	return data
}
