package planner

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/testutil"
)

// The golden tests run the real sqlmesh on copies of examples/sqlmesh. Every scenario is a real state
// transition: its own copy of the project and its own DuckDB file, starting either empty or from the state of a
// real `--auto-apply` of the example to prod. The captured output of each run is stored in testdata together
// with what ParseResult (or ParseProgress) made of it. DAGCTL_UPDATE_GOLDEN=1 (`make golden`) rewrites both;
// otherwise the live result must equal the stored one and the stored output must still parse to it.

// executionTime is sqlmesh's "now" in every run: the example starts on 2024-01-01, so backfills cover three
// weeks (three batches of seven days for dagctl_example.orders).
const executionTime = "2024-01-22"

var updateGolden = os.Getenv("DAGCTL_UPDATE_GOLDEN") == "1"

var options = Options{ExecutionTime: executionTime}

// sandbox is a scratch copy of the example project with its own state database and home directory.
type sandbox struct {
	root    string // replaced by $SANDBOX in stored output
	project string
	db      string
}

func newSandbox(t *testing.T) *sandbox {
	t.Helper()
	root := t.TempDir()
	sb := &sandbox{root: root, project: filepath.Join(root, "project"), db: filepath.Join(root, "state", "example.duckdb")}
	require.NoError(t, copyProject(filepath.Join(testutil.RepoRoot(), "examples", "sqlmesh"), sb.project))
	require.NoError(t, os.MkdirAll(filepath.Dir(sb.db), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "home"), 0o755))
	return sb
}

// copyProject copies the example's sources, leaving out what running it leaves behind.
func copyProject(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
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
		if strings.Contains(d.Name(), ".duckdb") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
}

// useState copies a state database into the sandbox.
func (sb *sandbox) useState(t *testing.T, db string) {
	t.Helper()
	for _, suffix := range []string{"", ".wal"} {
		data, err := os.ReadFile(db + suffix)
		if errors.Is(err, fs.ErrNotExist) && suffix != "" {
			continue
		}
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(sb.db+suffix, data, 0o644))
	}
}

// run runs argv in the project as a job would: the planner's environment plus the project's variable, nothing
// inherited but PATH. It returns standard output with the sandbox path replaced, and the exit code.
func (sb *sandbox) run(t *testing.T, argv []string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = sb.project
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + filepath.Join(sb.root, "home"), "EXAMPLE_DUCKDB_PATH=" + sb.db}
	for k, v := range (SQLMesh{}).Env() {
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
	return lockHolder.ReplaceAllString(out, "held in <process> (PID <pid>)"), code
}

// lockHolder is how DuckDB names the process holding a file, which differs from run to run.
var lockHolder = regexp.MustCompile(`held in \S+ \(PID \d+\)`)

// lockState holds the sandbox's DuckDB file open in another process, as a concurrent job would, until the test
// ends.
func (sb *sandbox) lockState(t *testing.T) {
	t.Helper()
	cmd := exec.Command(testutil.Python(t), "-c",
		"import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('locked', flush=True); sys.stdin.read()", sb.db)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "locked\n", line)
}

func (sb *sandbox) write(t *testing.T, rel, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(sb.project, rel), []byte(content), 0o644))
}

func (sb *sandbox) replace(t *testing.T, rel, old, new string) {
	t.Helper()
	path := filepath.Join(sb.project, rel)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Contains(t, string(data), old, "%s changed; update the scenario", rel)
	require.NoError(t, os.WriteFile(path, []byte(strings.Replace(string(data), old, new, 1)), 0o644))
}

// appliedProd is the example applied to prod for real, once per test binary: its state database, and the
// apply's captured output and exit code.
var appliedProd struct {
	once   sync.Once
	dir    string
	db     string
	output string
	code   int
	err    error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if appliedProd.dir != "" {
		_ = os.RemoveAll(appliedProd.dir)
	}
	os.Exit(code)
}

func applyProd(t *testing.T) (db, output string, code int) {
	t.Helper()
	python := testutil.Python(t)
	appliedProd.once.Do(func() {
		appliedProd.err = errors.New("the apply to prod did not finish (see the first test that ran it)")
		dir, err := os.MkdirTemp("", "dagctl-planner-applied-")
		if err != nil {
			appliedProd.err = err
			return
		}
		appliedProd.dir = dir
		sb := &sandbox{root: dir, project: filepath.Join(dir, "project"), db: filepath.Join(dir, "state", "example.duckdb")}
		for _, d := range []string{filepath.Dir(sb.db), filepath.Join(dir, "home")} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				appliedProd.err = err
				return
			}
		}
		if err := copyProject(filepath.Join(testutil.RepoRoot(), "examples", "sqlmesh"), sb.project); err != nil {
			appliedProd.err = err
			return
		}
		appliedProd.output, appliedProd.code = sb.run(t, SQLMesh{Python: python}.ApplyCommand("prod", plan.Flags{}, options))
		appliedProd.db, appliedProd.err = sb.db, nil
	})
	require.NoError(t, appliedProd.err)
	require.Equal(t, 0, appliedProd.code, "applying the example to prod failed:\n%s", appliedProd.output)
	return appliedProd.db, appliedProd.output, appliedProd.code
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

type scenario struct {
	name string
	// applied starts from the example applied to prod; otherwise from an empty state database.
	applied bool
	edit    func(t *testing.T, sb *sandbox)
	env     string
	flags   plan.Flags
	opts    Options
	// check states what the scenario is about, independently of the golden file.
	check func(t *testing.T, s plan.Summary, err error, code int)
}

// threeWeeks is the backfill of dagctl_example.orders from its start to the execution time.
var threeWeeks = []plan.Interval{{Start: "2024-01-01", End: "2024-01-22"}}

var scenarios = []scenario{
	{
		name: "first_prod",
		env:  "prod",
		check: func(t *testing.T, s plan.Summary, err error, code int) {
			require.NoError(t, err)
			assert.True(t, s.CreatesEnvironment)
			assert.Equal(t, []plan.Change{
				{Model: "dagctl_example.customer_totals", Kind: "FULL", Category: plan.Breaking},
				{Model: "dagctl_example.orders", Kind: "INCREMENTAL_BY_TIME_RANGE", Category: plan.Breaking},
				{Model: "dagctl_example.raw_orders", Kind: "SEED", Category: plan.Breaking},
				{Model: "dagctl_example.top_customers", Kind: "VIEW", Category: plan.Breaking},
			}, s.Added)
			assert.Equal(t, []plan.Backfill{
				{Model: "dagctl_example.customer_totals", Kind: plan.BackfillFullRefresh},
				{Model: "dagctl_example.orders", Kind: plan.BackfillIntervals, Intervals: threeWeeks},
				{Model: "dagctl_example.raw_orders", Kind: plan.BackfillFullRefresh},
				{Model: "dagctl_example.top_customers", Kind: plan.BackfillRecreateView},
			}, s.Backfills)
			assert.Equal(t, "2024-01-01", s.Start)
			assert.Equal(t, "2024-01-22", s.End)
			assert.Contains(t, s.Explain, "Update the virtual layer for environment 'prod'")
		},
	},
	{
		name:    "non_breaking",
		applied: true,
		env:     "prod",
		edit: func(t *testing.T, sb *sandbox) {
			sb.replace(t, "models/customer_totals.sql", "  SUM(amount) AS total_amount\n",
				"  SUM(amount) AS total_amount,\n  COUNT(*) AS order_count\n")
		},
		check: func(t *testing.T, s plan.Summary, err error, code int) {
			require.NoError(t, err)
			require.Len(t, s.DirectlyModified, 1)
			direct := s.DirectlyModified[0]
			assert.Equal(t, "dagctl_example.customer_totals", direct.Model)
			assert.Equal(t, plan.NonBreaking, direct.Category)
			assert.Equal(t, []string{"dagctl_example.top_customers"}, direct.Children)
			assert.Contains(t, direct.Diff, "+  COUNT(*) AS order_count")
			assert.Equal(t, []plan.Change{{Model: "dagctl_example.top_customers", Kind: "VIEW", Category: plan.IndirectNonBreaking}},
				s.IndirectlyModified)
			// Non-breaking: the changed model is rebuilt and the view on it recreated; nothing upstream moves.
			assert.Equal(t, []plan.Backfill{
				{Model: "dagctl_example.customer_totals", Kind: plan.BackfillFullRefresh},
				{Model: "dagctl_example.top_customers", Kind: plan.BackfillRecreateView},
			}, s.Backfills)
		},
	},
	{
		name:    "breaking",
		applied: true,
		env:     "prod",
		// Small parts, so that the result arrives as several lines.
		opts: Options{ExecutionTime: executionTime, ResultChunkBytes: 1000},
		edit: func(t *testing.T, sb *sandbox) {
			sb.replace(t, "models/orders.sql", "order_date BETWEEN @start_ds AND @end_ds",
				"order_date BETWEEN @start_ds AND @end_ds AND amount > 0")
		},
		check: func(t *testing.T, s plan.Summary, err error, code int) {
			require.NoError(t, err)
			require.Len(t, s.DirectlyModified, 1)
			direct := s.DirectlyModified[0]
			assert.Equal(t, "dagctl_example.orders", direct.Model)
			assert.Equal(t, plan.Breaking, direct.Category)
			assert.Equal(t, []string{"dagctl_example.customer_totals", "dagctl_example.top_customers"}, direct.Children)
			assert.Contains(t, direct.Diff, "+  order_date BETWEEN @start_ds AND @end_ds AND amount > 0")
			assert.Equal(t, []plan.Change{
				{Model: "dagctl_example.customer_totals", Kind: "FULL", Category: plan.IndirectBreaking},
				{Model: "dagctl_example.top_customers", Kind: "VIEW", Category: plan.IndirectBreaking},
			}, s.IndirectlyModified)
			assert.Equal(t, []plan.Backfill{
				{Model: "dagctl_example.customer_totals", Kind: plan.BackfillFullRefresh},
				{Model: "dagctl_example.orders", Kind: plan.BackfillIntervals, Intervals: threeWeeks},
				{Model: "dagctl_example.top_customers", Kind: plan.BackfillRecreateView},
			}, s.Backfills)
		},
	},
	{
		name:    "removed",
		applied: true,
		env:     "prod",
		edit: func(t *testing.T, sb *sandbox) {
			require.NoError(t, os.Remove(filepath.Join(sb.project, "models", "top_customers.sql")))
		},
		check: func(t *testing.T, s plan.Summary, err error, code int) {
			require.NoError(t, err)
			assert.Equal(t, []plan.Change{{Model: "dagctl_example.top_customers", Kind: "VIEW"}}, s.Removed)
			assert.Empty(t, s.DirectlyModified)
			assert.Empty(t, s.Backfills)
			assert.True(t, s.HasChanges())
			assert.Contains(t, s.Explain, "Delete views in the virtual layer for models that were removed")
		},
	},
	{
		name:    "forward_only",
		applied: true,
		env:     "prod",
		flags:   plan.Flags{ForwardOnly: true},
		edit: func(t *testing.T, sb *sandbox) {
			sb.replace(t, "models/orders.sql", "  amount\nFROM", "  amount,\n  amount * 100 AS amount_cents\nFROM")
		},
		check: func(t *testing.T, s plan.Summary, err error, code int) {
			require.NoError(t, err)
			assert.True(t, s.ForwardOnly)
			require.Len(t, s.DirectlyModified, 1)
			assert.Equal(t, "dagctl_example.orders", s.DirectlyModified[0].Model)
			assert.Equal(t, plan.ForwardOnly, s.DirectlyModified[0].Category)
			// Forward-only: existing tables are kept, nothing is backfilled.
			assert.Empty(t, s.Backfills)
		},
	},
	{
		name:    "restatement",
		applied: true,
		env:     "prod",
		flags:   plan.Flags{RestateModels: []string{"dagctl_example.orders"}, Start: "2024-01-08", End: "2024-01-14"},
		check: func(t *testing.T, s plan.Summary, err error, code int) {
			require.NoError(t, err)
			assert.Equal(t, []string{"dagctl_example.orders"}, s.Restated)
			assert.Empty(t, s.DirectlyModified)
			require.NotEmpty(t, s.Backfills)
			for _, b := range s.Backfills {
				assert.True(t, b.Restatement, "%s is restated", b.Model)
			}
			assert.Contains(t, s.Backfills, plan.Backfill{
				Model: "dagctl_example.orders", Kind: plan.BackfillIntervals, Restatement: true,
				Intervals: []plan.Interval{{Start: "2024-01-08", End: "2024-01-15"}},
			})
			// --end 2024-01-14 is inclusive for sqlmesh; the summary's ranges are half-open.
			assert.Equal(t, "2024-01-08", s.Start)
			assert.Equal(t, "2024-01-15", s.End)
		},
	},
	{
		name:    "dev",
		applied: true,
		env:     "dev",
		edit: func(t *testing.T, sb *sandbox) {
			sb.replace(t, "models/orders.sql", "order_date BETWEEN @start_ds AND @end_ds",
				"order_date BETWEEN @start_ds AND @end_ds AND amount > 0")
		},
		check: func(t *testing.T, s plan.Summary, err error, code int) {
			require.NoError(t, err)
			assert.Equal(t, "dev", s.Environment)
			assert.True(t, s.CreatesEnvironment)
			assert.Equal(t, "prod", s.CreateFrom)
			require.Len(t, s.DirectlyModified, 1)
			assert.Equal(t, plan.Breaking, s.DirectlyModified[0].Category)
			assert.Contains(t, s.Backfills, plan.Backfill{Model: "dagctl_example.orders", Kind: plan.BackfillIntervals, Intervals: threeWeeks})
			assert.Contains(t, s.Explain, "Update the virtual layer for environment 'dev'")
		},
	},
	{
		name:    "dev_forward_only",
		applied: true,
		env:     "dev",
		flags:   plan.Flags{ForwardOnly: true},
		edit: func(t *testing.T, sb *sandbox) {
			sb.replace(t, "models/orders.sql", "order_date BETWEEN @start_ds AND @end_ds",
				"order_date BETWEEN @start_ds AND @end_ds AND amount > 0")
		},
		check: func(t *testing.T, s plan.Summary, err error, code int) {
			require.NoError(t, err)
			assert.True(t, s.ForwardOnly)
			require.Len(t, s.DirectlyModified, 1)
			assert.Equal(t, plan.ForwardOnly, s.DirectlyModified[0].Category)
			require.NotEmpty(t, s.Backfills)
			for _, b := range s.Backfills {
				assert.Equal(t, plan.BackfillPreview, b.Kind, "%s is computed as a preview only", b.Model)
			}
		},
	},
	{
		name:    "no_changes",
		applied: true,
		env:     "prod",
		check: func(t *testing.T, s plan.Summary, err error, code int) {
			require.NoError(t, err)
			assert.Equal(t, "prod", s.Environment)
			assert.False(t, s.HasChanges())
			assert.Equal(t, plan.StatusNoChanges, plan.Outcome(s))
		},
	},
	{
		// sqlmesh refuses to create a development environment identical to prod; for a pull request that is
		// "no changes".
		name:    "no_changes_dev",
		applied: true,
		env:     "dev",
		check: func(t *testing.T, s plan.Summary, err error, code int) {
			require.NoError(t, err)
			assert.Equal(t, 0, code)
			assert.Equal(t, "dev", s.Environment)
			assert.False(t, s.HasChanges())
		},
	},
	{
		name:    "sql_error",
		applied: true,
		env:     "prod",
		edit: func(t *testing.T, sb *sandbox) {
			sb.replace(t, "models/customer_totals.sql", "  SUM(amount) AS total_amount\n", "  SUM(amount AS total_amount\n")
		},
		check: func(t *testing.T, s plan.Summary, err error, code int) {
			var toolErr *ToolError
			require.ErrorAs(t, err, &toolErr)
			assert.NotEqual(t, 0, code)
			assert.Equal(t, "config", toolErr.Kind)
			assert.Contains(t, toolErr.Message, "Failed to load model from file 'models/customer_totals.sql'")
			assert.Contains(t, toolErr.Message, "Expecting ). Line 10")
			assert.NotContains(t, toolErr.Message, "\x1b", "terminal escapes are removed")
		},
	},
	{
		// Another process holds the DuckDB file (a concurrent job). sqlmesh alone would take the unreadable state
		// for a new project and plan every model as added.
		name:    "state_locked",
		applied: true,
		env:     "prod",
		edit:    func(t *testing.T, sb *sandbox) { sb.lockState(t) },
		check: func(t *testing.T, s plan.Summary, err error, code int) {
			var toolErr *ToolError
			require.ErrorAs(t, err, &toolErr)
			assert.NotEqual(t, 0, code)
			assert.Equal(t, "state", toolErr.Kind)
			assert.Contains(t, toolErr.Message, "Could not set lock on file")
			assert.Empty(t, s.Added)
		},
	},
	{
		name:    "uncategorized",
		applied: true,
		env:     "prod",
		edit: func(t *testing.T, sb *sandbox) {
			sb.replace(t, "config.yaml", "linter:", "plan:\n  auto_categorize_changes:\n    sql: 'off'\n\nlinter:")
			sb.replace(t, "models/orders.sql", "order_date BETWEEN @start_ds AND @end_ds",
				"order_date BETWEEN @start_ds AND @end_ds AND amount > 0")
		},
		check: func(t *testing.T, s plan.Summary, err error, code int) {
			var toolErr *ToolError
			require.ErrorAs(t, err, &toolErr)
			assert.NotEqual(t, 0, code)
			assert.Equal(t, "uncategorized", toolErr.Kind)
			assert.Equal(t, []string{"dagctl_example.orders"}, s.Uncategorized())
		},
	},
}

func TestPlanGolden(t *testing.T) {
	python := testutil.Python(t)
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			sb := newSandbox(t)
			if sc.applied {
				db, _, _ := applyProd(t)
				sb.useState(t, db)
			}
			if sc.edit != nil {
				sc.edit(t, sb)
			}
			opts := sc.opts
			if opts == (Options{}) {
				opts = options
			}
			output, code := sb.run(t, SQLMesh{Python: python}.PlanCommand(sc.env, sc.flags, opts))

			summary, err := ParseResult(strings.NewReader(output))
			got, unexpected := planGoldenOf(summary, err, code)
			require.NoError(t, unexpected, "output:\n%s", output)
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
			assert.JSONEq(t, string(want), string(marshal(t, got)), "live sqlmesh run differs from %s (make golden rewrites it)", jsonPath)

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
	ExitCode int        `json:"exit_code"`
	Progress []Progress `json:"progress"`
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

func withoutDurations(ps []Progress) []Progress {
	out := append([]Progress(nil), ps...)
	for i := range out {
		out[i].Duration = 0
	}
	return out
}

// batchesOf lists each model's batches as "action start end", in the order they ran (independent models run
// concurrently, so only the order within a model is fixed).
func batchesOf(ps []Progress) map[string][]string {
	out := map[string][]string{}
	for _, p := range ps {
		out[p.Model] = append(out[p.Model], strings.TrimSpace(p.Action+" "+p.Start+" "+p.End))
	}
	return out
}

type applyScenario struct {
	name  string
	edit  func(t *testing.T, sb *sandbox)
	flags plan.Flags
	// batches is what the apply must have run (see batchesOf); code its exit code.
	batches map[string][]string
	code    int
	check   func(t *testing.T, ps []Progress, output string)
}

var applyScenarios = []applyScenario{
	{
		// The first apply of the example to prod (the state every "applied" plan scenario starts from).
		name: "prod",
		batches: map[string][]string{
			"dagctl_example.raw_orders":      {"insert seed file"},
			"dagctl_example.orders":          {"insert 2024-01-01 2024-01-07", "insert 2024-01-08 2024-01-14", "insert 2024-01-15 2024-01-21"},
			"dagctl_example.customer_totals": {"full refresh"},
			"dagctl_example.top_customers":   {"recreate view"},
		},
		check: func(t *testing.T, ps []Progress, output string) {
			for _, p := range ps {
				if p.Model == "dagctl_example.orders" {
					assert.Equal(t, 3, p.Batches)
					assert.Equal(t, 2, p.AuditsPassed, "assert_positive_amount and not_null")
				}
			}
		},
	},
	{
		name:  "restatement",
		flags: plan.Flags{RestateModels: []string{"dagctl_example.orders"}, Start: "2024-01-08", End: "2024-01-14"},
		batches: map[string][]string{
			"dagctl_example.orders":          {"insert 2024-01-08 2024-01-14"},
			"dagctl_example.customer_totals": {"full refresh"},
			"dagctl_example.top_customers":   {"recreate view"},
		},
	},
	{
		// A blocking audit fails on the second week: that batch prints no progress line, its children are
		// skipped, and sqlmesh exits 1.
		name: "audit_failure",
		edit: func(t *testing.T, sb *sandbox) {
			sb.replace(t, "seeds/raw_orders.csv", "9,2,2024-01-10,4.75", "9,2,2024-01-10,-4.75")
		},
		batches: map[string][]string{
			"dagctl_example.raw_orders": {"insert seed file"},
			"dagctl_example.orders":     {"insert 2024-01-01 2024-01-07", "insert 2024-01-15 2024-01-21"},
		},
		code: 1,
		check: func(t *testing.T, ps []Progress, output string) {
			assert.Contains(t, output, "'assert_positive_amount' audit error: 1 row failed")
			assert.Contains(t, output, "Error: Plan application failed.")
		},
	},
}

func TestApplyProgressGolden(t *testing.T) {
	python := testutil.Python(t)
	for _, sc := range applyScenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			db, output, code := applyProd(t)
			if sc.name != "prod" {
				sb := newSandbox(t)
				sb.useState(t, db)
				if sc.edit != nil {
					sc.edit(t, sb)
				}
				output, code = sb.run(t, SQLMesh{Python: python}.ApplyCommand("prod", sc.flags, options))
			}
			progress := progressOf(output)
			// Durations differ from run to run; they are not stored (ParseProgress's unit tests cover them).
			got := applyGolden{ExitCode: code, Progress: withoutDurations(progress)}
			assert.Equal(t, sc.code, code)
			assert.Equal(t, sc.batches, batchesOf(progress))
			if sc.check != nil {
				sc.check(t, progress, output)
			}
			if t.Failed() {
				t.Logf("output:\n%s", output)
			}

			outPath, jsonPath := filepath.Join("testdata", "apply_"+sc.name+".out"), filepath.Join("testdata", "apply_"+sc.name+".json")
			if updateGolden {
				writeGolden(t, outPath, []byte(output))
				writeGolden(t, jsonPath, marshal(t, got))
				return
			}
			var want applyGolden
			require.NoError(t, json.Unmarshal(readGolden(t, jsonPath), &want))
			assert.Equal(t, want.ExitCode, got.ExitCode)
			// Concurrent models finish in any order; nothing else may differ.
			assert.ElementsMatch(t, want.Progress, got.Progress)
			// The stored output parses to exactly the stored progress.
			assert.Equal(t, want.Progress, withoutDurations(progressOf(string(readGolden(t, outPath)))))
		})
	}
}

func marshal(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep "->" and "<" readable in the golden files
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
