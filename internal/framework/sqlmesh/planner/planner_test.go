package planner

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/testutil"
)

func TestPlanCommandRunsTheEmbeddedHelper(t *testing.T) {
	s := SQLMesh{Python: "/venv/bin/python"}
	argv := s.PlanCommand("dev", plan.Flags{
		ForwardOnly:   true,
		RestateModels: []string{"db.a", "db.b"},
		Start:         "2024-01-01",
		End:           "2024-01-07",
	}, Options{Gateway: "warehouse", ExecutionTime: "2024-01-08", ResultChunkBytes: 4096})

	require.Greater(t, len(argv), 3)
	assert.Equal(t, []string{"/venv/bin/python", "-c"}, argv[:2])
	assert.Equal(t, HelperSource(), argv[2])
	assert.Contains(t, argv[2], "::dagctl-plan::", "the helper prints the marker ParseResult looks for")
	assert.Equal(t, []string{
		"plan", "--env", "dev", "--gateway", "warehouse", "--result-chunk-bytes", "4096",
		"--forward-only", "--restate-model", "db.a", "--restate-model", "db.b",
		"--start", "2024-01-01", "--end", "2024-01-07", "--execution-time", "2024-01-08",
	}, argv[3:])
}

func TestApplyCommandIsTheRealCLI(t *testing.T) {
	s := SQLMesh{Python: "/venv/bin/python"}
	assert.Equal(t, []string{"/venv/bin/sqlmesh", "plan", "prod", "--auto-apply", "--no-prompts"},
		s.ApplyCommand("prod", plan.Flags{}, Options{}))
	assert.Equal(t, []string{
		"/venv/bin/sqlmesh", "--gateway", "warehouse", "plan", "prod", "--auto-apply", "--no-prompts",
		"--restate-model", "db.a", "--start", "2024-01-01", "--end", "2024-01-07",
	}, s.ApplyCommand("prod", plan.Flags{RestateModels: []string{"db.a"}, Start: "2024-01-01", End: "2024-01-07"},
		Options{Gateway: "warehouse", ResultChunkBytes: 10}))
}

func TestExecutableOfABareInterpreterIsOnThePath(t *testing.T) {
	assert.Equal(t, "sqlmesh", SQLMesh{Python: "python3"}.Executable())
	assert.Equal(t, "/opt/venv/bin/sqlmesh", SQLMesh{Python: "/opt/venv/bin/python3"}.Executable())
}

func TestEnvTurnsOffAnalyticsAndFixesTheConsole(t *testing.T) {
	env := SQLMesh{}.Env()
	assert.Equal(t, "1", env["SQLMESH__DISABLE_ANONYMIZED_ANALYTICS"])
	assert.Equal(t, "ci", env["SQLMESH_RUNTIME_ENVIRONMENT"])
	assert.Equal(t, "200", env["COLUMNS"])
	assert.Equal(t, "1", env["PYTHONUNBUFFERED"])
}

// resultLine builds a helper result line around a plan object (written on several lines for reading).
func resultLine(planJSON string) string {
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(planJSON)); err != nil {
		compact.WriteString(planJSON) // deliberately broken JSON stays as it is
	}
	return fmt.Sprintf(`%s {"schema":1,"sqlmesh_version":"0.236.4","ok":true,"plan":%s}`, Marker, compact.String())
}

const day = int64(24 * time.Hour / time.Millisecond)

func TestParseResultMapsCategoriesAndBackfills(t *testing.T) {
	jan1 := int64(1704067200000)
	planJSON := fmt.Sprintf(`{
		"environment":"dev","is_dev":true,"is_new_environment":true,"create_from":"prod","forward_only":false,
		"added":[{"model":"db.new","kind":"FULL","change_category":"BREAKING"}],
		"removed":[{"model":"db.gone","kind":"VIEW"}],
		"directly_modified":[
			{"model":"db.b","kind":"INCREMENTAL_BY_TIME_RANGE","change_category":"NON_BREAKING","diff":"--- \n\n+++ \n\n@@ -1 +1 @@\n\n-a\n+b","children":["db.z","db.c"]},
			{"model":"db.a","kind":"FULL","change_category":"BREAKING","forward_only":true}
		],
		"indirectly_modified":[{"model":"db.c","kind":"VIEW","change_category":"INDIRECT_NON_BREAKING"},
			{"model":"db.z","kind":"FULL","change_category":"INDIRECT_BREAKING"}],
		"metadata_updated":[{"model":"db.m","kind":"FULL","change_category":"METADATA"}],
		"restated_models":[],
		"backfills":[
			{"model":"db.b","kind":"INCREMENTAL_BY_TIME_RANGE","incremental":true,"intervals":[[%d,%d],[%d,%d]]},
			{"model":"db.c","kind":"VIEW","view":true,"intervals":[[%d,%d]]},
			{"model":"db.a","kind":"FULL","intervals":[[%d,%d]]},
			{"model":"db.p","kind":"INCREMENTAL_BY_TIME_RANGE","incremental":true,"preview":true,"intervals":[[%d,%d]]}
		],
		"explain":"Explained plan"}`,
		jan1, jan1+7*day, jan1+10*day, jan1+10*day+3600000,
		jan1-300*day, jan1+21*day, jan1-300*day, jan1+21*day, jan1+20*day, jan1+21*day)

	s, err := ParseResult(strings.NewReader("human output\n" + resultLine(planJSON) + "\n"))
	require.NoError(t, err)
	assert.Equal(t, plan.Summary{
		Tool: "sqlmesh", ToolVersion: "0.236.4", Environment: "dev",
		CreatesEnvironment: true, CreateFrom: "prod",
		Start: "2024-01-01", End: "2024-01-22",
		Added:   []plan.Change{{Model: "db.new", Kind: "FULL", Category: plan.Breaking}},
		Removed: []plan.Change{{Model: "db.gone", Kind: "VIEW"}},
		DirectlyModified: []plan.Change{
			{Model: "db.a", Kind: "FULL", Category: plan.ForwardOnly},
			{Model: "db.b", Kind: "INCREMENTAL_BY_TIME_RANGE", Category: plan.NonBreaking,
				Diff: "--- \n+++ \n@@ -1 +1 @@\n-a\n+b", Children: []string{"db.c", "db.z"}},
		},
		IndirectlyModified: []plan.Change{
			{Model: "db.c", Kind: "VIEW", Category: plan.IndirectNonBreaking},
			{Model: "db.z", Kind: "FULL", Category: plan.IndirectBreaking},
		},
		MetadataUpdated: []plan.Change{{Model: "db.m", Kind: "FULL", Category: plan.Metadata}},
		Backfills: []plan.Backfill{
			{Model: "db.a", Kind: plan.BackfillFullRefresh},
			{Model: "db.b", Kind: plan.BackfillIntervals, Intervals: []plan.Interval{
				{Start: "2024-01-01", End: "2024-01-08"},
				{Start: "2024-01-11", End: "2024-01-11 01:00:00"},
			}},
			{Model: "db.c", Kind: plan.BackfillRecreateView},
			{Model: "db.p", Kind: plan.BackfillPreview, Intervals: []plan.Interval{{Start: "2024-01-21", End: "2024-01-22"}}},
		},
		Explain: "Explained plan",
	}, s)
}

func TestParseResultNoChangesInANewDevEnvironment(t *testing.T) {
	s, err := ParseResult(strings.NewReader(resultLine(`{"environment":"dev","is_dev":true,"no_changes_reason":"Creating a new environment requires a change"}`)))
	require.NoError(t, err)
	assert.Equal(t, plan.Summary{Tool: "sqlmesh", ToolVersion: "0.236.4", Environment: "dev"}, s)
	assert.Equal(t, plan.StatusNoChanges, plan.Outcome(s))
}

func TestParseResultReportsTheToolsError(t *testing.T) {
	out := Marker + ` {"schema":1,"sqlmesh_version":"0.236.4","ok":false,"error":{"kind":"config","type":"ConfigError","message":"Failed: SUM(amount ` + "\\u001b[4mAS\\u001b[0m" + ` total)"}}`
	s, err := ParseResult(strings.NewReader(out))
	var toolErr *ToolError
	require.ErrorAs(t, err, &toolErr)
	assert.Equal(t, ToolError{Kind: "config", Type: "ConfigError", Message: "Failed: SUM(amount AS total)"}, *toolErr)
	assert.Equal(t, "sqlmesh plan failed (config, ConfigError): Failed: SUM(amount AS total)", err.Error())
	assert.Equal(t, plan.Summary{}, s)
}

func TestParseResultKeepsThePlanOfUncategorizedChanges(t *testing.T) {
	out := Marker + ` {"schema":1,"sqlmesh_version":"0.236.4","ok":false,` +
		`"plan":{"environment":"prod","directly_modified":[{"model":"db.a","kind":"FULL","change_category":null}]},` +
		`"error":{"kind":"uncategorized","type":"UncategorizedPlanError","message":"Can't apply a plan with uncategorized changes."}}`
	s, err := ParseResult(strings.NewReader(out))
	var toolErr *ToolError
	require.ErrorAs(t, err, &toolErr)
	assert.Equal(t, "uncategorized", toolErr.Kind)
	assert.Equal(t, []string{"db.a"}, s.Uncategorized())
}

func TestParseResultRefusesWhatItCannotTrust(t *testing.T) {
	for name, tc := range map[string]struct {
		output string
		want   string
	}{
		"no marker":         {"Error: something broke\n", ErrNoResult.Error()},
		"empty output":      {"", ErrNoResult.Error()},
		"malformed json":    {Marker + ` {"schema":1,"ok":tru`, "malformed ::dagctl-plan:: result line"},
		"no schema":         {Marker + ` {"ok":true,"plan":{"environment":"prod"}}`, "has no schema version"},
		"newer schema":      {Marker + ` {"schema":2,"ok":true,"plan":{"environment":"prod"}}`, "schema version 2; this bot reads version 1"},
		"ok without plan":   {Marker + ` {"schema":1,"sqlmesh_version":"0.236.4","ok":true}`, "success without a plan"},
		"failure, no error": {Marker + ` {"schema":1,"ok":false}`, "failure without an error"},
		"no version":        {Marker + ` {"schema":1,"ok":true,"plan":{"environment":"prod"}}`, "no sqlmesh version"},
		"no environment":    {resultLine(`{"added":[]}`), "has no environment"},
		"unknown category": {resultLine(`{"environment":"prod","directly_modified":[{"model":"db.a","change_category":"SIDEWAYS"}]}`),
			`directly modified: model db.a has unknown change category "SIDEWAYS"`},
		"nameless model":     {resultLine(`{"environment":"prod","added":[{"kind":"FULL"}]}`), "added: a model without a name"},
		"inverted interval":  {resultLine(`{"environment":"prod","backfills":[{"model":"db.a","incremental":true,"intervals":[[5,5]]}]}`), "empty or inverted interval"},
		"incomplete parts":   {Marker + " part 1/2 {\"schema\":1,\n", "incomplete: got 1 of 2 parts"},
		"missing first part": {Marker + " part 2/2 x\n", "part 2/2 without the parts before it"},
		"parts out of order": {Marker + " part 1/3 {\n" + Marker + " part 3/3 }\n", "part 3/3 out of order (expected 2/3)"},
		"bad part header":    {Marker + " part one/two x\n", `malformed ::dagctl-plan:: part header "one/two"`},
	} {
		t.Run(name, func(t *testing.T) {
			s, err := ParseResult(strings.NewReader(tc.output))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Equal(t, plan.Summary{}, s, "no half-made summary next to an error")
			var toolErr *ToolError
			assert.False(t, errors.As(err, &toolErr), "not the tool's error: %v", err)
		})
	}
	_, err := ParseResult(strings.NewReader("nothing here"))
	assert.ErrorIs(t, err, ErrNoResult)
}

func TestParseResultJoinsPartsAndTakesTheLastResult(t *testing.T) {
	whole := resultLine(`{"environment":"prod","explain":"` + strings.Repeat("x", 100_000) + `"}`)
	text := strings.TrimPrefix(whole, Marker+" ")
	var out strings.Builder
	out.WriteString(resultLine(`{"environment":"stale"}`) + "\n")
	const size = 30_000
	n := (len(text) + size - 1) / size
	for i := 0; i < n; i++ {
		end := min((i+1)*size, len(text))
		fmt.Fprintf(&out, "%s part %d/%d %s\r\n", Marker, i+1, n, text[i*size:end])
		out.WriteString("interleaved line\n")
	}
	s, err := ParseResult(strings.NewReader(out.String()))
	require.NoError(t, err)
	assert.Equal(t, "prod", s.Environment)
	assert.Len(t, s.Explain, 100_000)

	// One long line is read whole too: the reader has no line limit.
	s, err = ParseResult(strings.NewReader(whole))
	require.NoError(t, err)
	assert.Len(t, s.Explain, 100_000)
}

func TestParseProgress(t *testing.T) {
	for name, tc := range map[string]struct {
		line string
		want Progress
	}{
		"markdown interval with audits": {
			"[2/3] dagctl_example.orders            [insert 2024-01-08 - 2024-01-14, audits passed 2]                             0.03s   ",
			Progress{Model: "dagctl_example.orders", Batch: 2, Batches: 3, Action: "insert", Start: "2024-01-08", End: "2024-01-14",
				AuditsPassed: 2, Duration: 30 * time.Millisecond},
		},
		"terminal console marks": {
			"[ 9/12] db.events   [insert 2024-01-01 00:00:00 - 2024-01-02 23:59:59 (1.2k rows, 3.4 KiB), audits ✔3 ❌1]   12.50s",
			Progress{Model: "db.events", Batch: 9, Batches: 12, Action: "insert", Start: "2024-01-01 00:00:00", End: "2024-01-02 23:59:59",
				Stats: "1.2k rows, 3.4 KiB", AuditsPassed: 3, AuditsFailed: 1, Duration: 12500 * time.Millisecond},
		},
		"hourly within a day": {
			"[1/1] db.hourly   [insert 2024-01-01 10:00:00-10:59:59]   0.10s",
			Progress{Model: "db.hourly", Batch: 1, Batches: 1, Action: "insert", Start: "2024-01-01 10:00:00", End: "2024-01-01 10:59:59",
				Duration: 100 * time.Millisecond},
		},
		"seed with stats": {
			"[1/1] dagctl_example.raw_orders        [insert seed file (16 rows)]      0.05s",
			Progress{Model: "dagctl_example.raw_orders", Batch: 1, Batches: 1, Action: "insert seed file", Stats: "16 rows",
				Duration: 50 * time.Millisecond},
		},
		"view in a dev environment": {
			"[1/1] dagctl_example__dev.top_customers     [recreate view]      0.02s   ",
			Progress{Model: "dagctl_example__dev.top_customers", Batch: 1, Batches: 1, Action: "recreate view", Duration: 20 * time.Millisecond},
		},
	} {
		t.Run(name, func(t *testing.T) {
			got, ok := ParseProgress(tc.line)
			require.True(t, ok)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestParseProgressIgnoresOtherLines(t *testing.T) {
	for _, line := range []string{
		"",
		"**Models needing backfill:**",
		"* `dagctl_example.orders`: [2024-01-01 - 2024-01-21]",
		"Executing model batches ━━━━━━━━━━━━━━━━━━━━━━━━━━╸              66.7% • 4/6 • 0:00:00",
		"[1] [Breaking] Backfill dagctl_example.orders and indirectly modified children",
		// A line wrapped at 80 columns (COLUMNS not set) is not half-read.
		"[1/3] dagctl_example.orders            [insert 2024-01-01 - 2024-01-07, audits ",
		"passed 2]                             0.04s   ",
		"[4/3] db.a   [full refresh]   0.01s",
	} {
		_, ok := ParseProgress(line)
		assert.False(t, ok, "%q", line)
	}
}

// The helper reports failures before sqlmesh even loads as result lines too.
func TestHelperReportsFailuresBeforeSQLMeshLoads(t *testing.T) {
	python := testutil.Python(t)
	for name, tc := range map[string]struct {
		argv []string
		kind string
	}{
		// -S leaves site-packages out: an interpreter without sqlmesh.
		"sqlmesh missing": {[]string{python, "-S", "-c", HelperSource(), "plan", "--env", "dev"}, "setup"},
		"bad arguments":   {[]string{python, "-c", HelperSource(), "plan", "--forward-only"}, "usage"},
	} {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(tc.argv[0], tc.argv[1:]...)
			cmd.Dir = t.TempDir()
			out, err := cmd.Output()
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit)
			assert.Equal(t, 1, exit.ExitCode())
			_, err = ParseResult(bytes.NewReader(out))
			var toolErr *ToolError
			require.ErrorAs(t, err, &toolErr, "output: %s", out)
			assert.Equal(t, tc.kind, toolErr.Kind)
		})
	}
}
