package planner

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/testutil"
)

func TestPlanCommand(t *testing.T) {
	d := DBT{Python: "/venv/bin/python"}
	argv := d.PlanCommand("prod", Options{Target: "production", ProfilesDir: "profiles", ResultChunkBytes: 500})
	assert.Equal(t, []string{"/venv/bin/python", "-c", HelperSource(), "plan", "--env", "prod", "--target", "production",
		"--profiles-dir", "profiles", "--result-chunk-bytes", "500"}, argv)
	assert.Equal(t, []string{"python3", "-c", HelperSource(), "plan", "--env", "dev"}, DBT{Python: "python3"}.PlanCommand("dev", Options{}))
	assert.True(t, strings.HasPrefix(Marker, jobs.ResultPrefix), "the result line is kept aside as the job streams")
	assert.True(t, strings.HasPrefix(ApplyMarker, jobs.ResultPrefix))
}

func TestApplyCommandRunsThePlansExactCommands(t *testing.T) {
	d := DBT{Python: "python3"}
	p := &plan.DBT{Scope: plan.ScopeSelective, Commands: []string{
		"dbt seed --target prod --select state:modified+ --state .dagctl/prod-state",
		"dbt build --target prod --select state:modified+ --state .dagctl/prod-state",
	}}
	assert.Equal(t, []string{"python3", "-c", HelperSource(), "apply", "--env", "prod", "--scope", "selective", "--artifacts", ArtifactsDir,
		"--command", p.Commands[0], "--command", p.Commands[1]}, d.ApplyCommand("prod", p, Options{}))
	assert.Equal(t, []string{"python3", "-c", HelperSource(), "apply", "--env", "prod", "--scope", "build_only", "--artifacts", ArtifactsDir},
		d.ApplyCommand("prod", &plan.DBT{Scope: plan.ScopeBuildOnly}, Options{}), "build_only runs no dbt command")
	assert.Equal(t, []string{"python3", "-c", HelperSource(), "apply", "--env", "prod", "--scope", "", "--artifacts", ArtifactsDir},
		d.ApplyCommand("prod", nil, Options{}), "without a plan the helper is told no scope, which it refuses")
}

func line(json string) string { return "noise\n" + Marker + " " + json + "\n" }

func TestParseResult(t *testing.T) {
	ok := `{"schema":1,"dbt_version":"1.11.2","ok":true,"plan":{"environment":"prod","compared_with":"production",` +
		`"nodes":[{"unique_id":"model.p.b","resource_type":"model","name":"b","path":"models/b.sql","reasons":["body","config"]},` +
		`{"unique_id":"model.p.a","resource_type":"model","name":"a","path":"models/a.sql","reasons":["new"]}],` +
		`"removed":[{"unique_id":"model.p.gone","resource_type":"model","name":"gone","path":"models/gone.sql"}],` +
		`"downstream":["model.p.z","model.p.a","test.p.t"]}}`
	s, err := ParseResult(strings.NewReader(line(ok)))
	require.NoError(t, err)
	assert.Equal(t, "dbt", s.Tool)
	assert.Equal(t, "1.11.2", s.ToolVersion)
	assert.Equal(t, "prod", s.Environment)
	require.NotNil(t, s.DBT)
	assert.Equal(t, []plan.Node{
		{UniqueID: "model.p.a", Name: "a", ResourceType: "model", Path: "models/a.sql", Reasons: []plan.NodeReason{plan.ReasonNew}},
		{UniqueID: "model.p.b", Name: "b", ResourceType: "model", Path: "models/b.sql", Reasons: []plan.NodeReason{plan.ReasonBody, plan.ReasonConfig}},
		{UniqueID: "model.p.gone", Name: "gone", ResourceType: "model", Path: "models/gone.sql", Reasons: []plan.NodeReason{plan.ReasonRemoved}},
	}, s.DBT.Nodes)
	assert.Equal(t, []string{"model.p.z", "test.p.t"}, s.DBT.Downstream, "downstream beyond the changed nodes, sorted")
	assert.Equal(t, plan.ScopeSelective, s.DBT.ManifestScope)
	assert.Equal(t, "model.p.gone", s.DBT.Removed()[0].UniqueID)
	assert.False(t, s.HasChanges(), "the manifest's side alone is no deploy: the bot's rules decide")

	// A long result in parts, after an earlier result line: the last complete one counts.
	var parts strings.Builder
	parts.WriteString(Marker + ` {"schema":1,"ok":false,"dbt_version":"1.11.2","error":{"kind":"internal","type":"X","message":"earlier"}}` + "\n")
	for i, n := 0, 1; i < len(ok); i, n = i+40, n+1 {
		end := min(i+40, len(ok))
		parts.WriteString(Marker + " part " + itoa(n) + "/" + itoa((len(ok)+39)/40) + " " + ok[i:end] + "\n")
	}
	s2, err := ParseResult(strings.NewReader(parts.String()))
	require.NoError(t, err)
	assert.Equal(t, s, s2)

	none := `{"schema":1,"dbt_version":"1.11.2","ok":true,"plan":{"environment":"prod","compared_with":"none","note":"The base commit does not parse",` +
		`"nodes":[{"unique_id":"seed.p.s","resource_type":"seed","name":"s","reasons":["new"]}],"removed":[],"downstream":[]}}`
	s, err = ParseResult(strings.NewReader(line(none)))
	require.NoError(t, err)
	assert.Equal(t, plan.ScopeAll, s.DBT.ManifestScope, "nothing to compare with: everything is built")
	assert.Contains(t, s.Explain, "The base commit does not parse")

	nothing := `{"schema":1,"dbt_version":"1.11.2","ok":true,"plan":{"environment":"prod","compared_with":"base","nodes":[],"removed":[],"downstream":[]}}`
	s, err = ParseResult(strings.NewReader(line(nothing)))
	require.NoError(t, err)
	assert.Equal(t, plan.ScopeNone, s.DBT.ManifestScope)
	assert.Empty(t, s.DBT.Nodes)
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

func TestParseResultFailures(t *testing.T) {
	compile := `{"schema":1,"dbt_version":"1.11.2","ok":false,"error":{"kind":"compile","type":"CompilationError",` +
		`"message":"Compilation Error in model a (models/a.sql)\n  line 4","file":"models/a.sql"}}`
	_, err := ParseResult(strings.NewReader(line(compile)))
	var toolErr *ToolError
	require.ErrorAs(t, err, &toolErr)
	assert.Equal(t, ToolError{Kind: "compile", Type: "CompilationError", Message: "Compilation Error in model a (models/a.sql)\n  line 4", File: "models/a.sql"}, *toolErr)

	node := func(n string) string {
		return `{"schema":1,"dbt_version":"1","ok":true,"plan":{"environment":"prod","compared_with":"production","nodes":[` + n + `]}}`
	}
	for name, tc := range map[string]struct{ out, want string }{
		"no result line":       {"dbt: command not found\n", ErrNoResult.Error()},
		"malformed":            {line(`{"schema":`), "malformed"},
		"no schema":            {line(`{"ok":true}`), "no schema version"},
		"other schema":         {line(`{"schema":2,"ok":true}`), "schema version 2"},
		"failure without why":  {line(`{"schema":1,"ok":false}`), "without an error"},
		"success without plan": {line(`{"schema":1,"dbt_version":"1","ok":true}`), "without a plan"},
		"no version":           {line(`{"schema":1,"ok":true,"plan":{"environment":"prod"}}`), "no dbt version"},
		"no environment":       {line(`{"schema":1,"dbt_version":"1","ok":true,"plan":{"compared_with":"base"}}`), "no environment"},
		"unknown comparison":   {line(`{"schema":1,"dbt_version":"1","ok":true,"plan":{"environment":"prod","compared_with":"pr"}}`), `"pr"`},
		"unknown reason":       {line(node(`{"unique_id":"model.p.a","resource_type":"model","name":"a","reasons":["vibes"]}`)), `unknown reason "vibes"`},
		"no reason":            {line(node(`{"unique_id":"model.p.a","resource_type":"model","name":"a","reasons":[]}`)), "for no reason"},
		"no unique id":         {line(node(`{"resource_type":"model","name":"a","reasons":["new"]}`)), "without a unique_id"},
		"listed twice": {line(node(`{"unique_id":"model.p.a","resource_type":"model","name":"a","reasons":["new"]},` +
			`{"unique_id":"model.p.a","resource_type":"model","name":"a","reasons":["body"]}`)), "listed twice"},
		"incomplete parts":  {Marker + " part 1/2 {\"schema\":1\n", "got 1 of 2 parts"},
		"part out of order": {Marker + " part 2/2 x\n", "without the parts before it"},
	} {
		t.Run(name, func(t *testing.T) {
			s, err := ParseResult(strings.NewReader(tc.out))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.False(t, errors.As(err, new(*ToolError)), "only the helper's own failures are tool errors")
			assert.Nil(t, s.DBT)
		})
	}
}

// A line of dbt's JSON log, as dbt 1.11 prints it (node_info trimmed to what is read).
func event(name, data string) string {
	return `{"data": {` + data + `}, "info": {"category": "", "code": "Q012", "level": "info", "msg": "x", "name": "` + name + `", "ts": "2026-12-02T15:33:18Z"}}`
}

func TestParseProgress(t *testing.T) {
	node := func(id, typ, status string) string {
		return `"node_info": {"unique_id": "` + id + `", "resource_type": "` + typ + `", "node_status": "` + status + `"}`
	}
	for name, tc := range map[string]struct {
		line string
		want Progress
		ok   bool
	}{
		"model": {event("LogModelResult", `"index": 2, "total": 13, "status": "OK", `+node("model.p.a", "model", "success")),
			Progress{UniqueID: "model.p.a", ResourceType: "model", Status: "success", Index: 2, Total: 13}, true},
		"test counts num_models": {event("LogTestResult", `"index": 5, "num_models": 13, "status": "fail", `+node("test.p.t", "test", "fail")),
			Progress{UniqueID: "test.p.t", ResourceType: "test", Status: "fail", Index: 5, Total: 13}, true},
		"skipped": {event("SkippingDetails", `"index": 9, "total": 13, `+node("model.p.c", "model", "skipped")),
			Progress{UniqueID: "model.p.c", ResourceType: "model", Status: "skipped", Index: 9, Total: 13}, true},
		"seed without node status": {event("LogSeedResult", `"index": 1, "total": 1, "status": "SUCCESS", "relation": "raw"`),
			Progress{UniqueID: "raw", Status: "success", Index: 1, Total: 1}, true},
		"a start is no progress": {event("LogStartLine", `"index": 1, "total": 13, `+node("model.p.a", "model", "started")), Progress{}, false},
		"other events":           {event("MainReportVersion", `"version": "1.11.2"`), Progress{}, false},
		"index beyond total":     {event("LogModelResult", `"index": 14, "total": 13, `+node("model.p.a", "model", "success")), Progress{}, false},
		"no node":                {event("LogModelResult", `"index": 1, "total": 13`), Progress{}, false},
		"text":                   {"dagctl: command 1 of 2: dbt build", Progress{}, false},
		"a result line":          {ApplyMarker + ` {"schema":1}`, Progress{}, false},
		"JSON that is not a log": {`{"info": 1}`, Progress{}, false},
	} {
		t.Run(name, func(t *testing.T) {
			got, ok := ParseProgress(tc.line)
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestParseApplyResult(t *testing.T) {
	res, err := ParseApplyResult(strings.NewReader(ApplyMarker + ` {"schema":1,"dbt_version":"1.11.2","ok":true,"commands":[{"command":"dbt build","success":true}]}` + "\n"))
	require.NoError(t, err)
	assert.Equal(t, ApplyResult{DBTVersion: "1.11.2", Commands: []AppliedCommand{{Command: "dbt build", Success: true}}}, res)

	res, err = ParseApplyResult(strings.NewReader(ApplyMarker + ` {"schema":1,"ok":false,"commands":[{"command":"dbt seed","success":false}],"error":{"kind":"apply","type":"ApplyFailed","message":"m"}}` + "\n"))
	var toolErr *ToolError
	require.ErrorAs(t, err, &toolErr)
	assert.Equal(t, "apply", toolErr.Kind)
	assert.Len(t, res.Commands, 1)

	_, err = ParseApplyResult(strings.NewReader(Marker + ` {"schema":1,"ok":true}` + "\n"))
	assert.ErrorContains(t, err, "no "+ApplyMarker, "a plan's result is no apply's")
	_, err = ParseApplyResult(strings.NewReader(ApplyMarker + ` {"schema":3,"ok":true}` + "\n"))
	assert.ErrorContains(t, err, "out of step")
}

// The helper refuses what is not a dbt command and an apply without its plan's commands, and says so on its
// result line; nothing runs. It needs no dbt project, only the interpreter.
func TestTheApplyHelperRefusesWhatIsNoPlan(t *testing.T) {
	python := testutil.Python(t)
	for name, tc := range map[string]struct {
		plan *plan.DBT
		want string
	}{
		"no plan":         {nil, "is not a scope this helper applies"},
		"all without any": {&plan.DBT{Scope: plan.ScopeAll}, "an apply of scope all needs the plan's commands"},
		"not dbt":         {&plan.DBT{Scope: plan.ScopeAll, Commands: []string{"rm -rf /"}}, `'rm -rf /' is not a dbt command`},
	} {
		t.Run(name, func(t *testing.T) {
			sb := &sandbox{root: t.TempDir()}
			sb.project = sb.root
			out, code := sb.run(t, DBT{Python: python}.ApplyCommand("prod", tc.plan, Options{}))
			assert.Equal(t, 1, code)
			_, err := ParseApplyResult(strings.NewReader(out))
			var toolErr *ToolError
			require.ErrorAs(t, err, &toolErr, out)
			assert.Equal(t, "usage", toolErr.Kind)
			assert.Contains(t, toolErr.Message, tc.want)
			_, statErr := os.Stat(filepath.Join(sb.project, ArtifactsDir))
			assert.True(t, errors.Is(statErr, os.ErrNotExist), "nothing ran")
		})
	}
}

// A comparison variable that is set but wrong is the executor's mistake: the plan fails before dbt parses
// anything, rather than planning against nothing (which would show every node as new).
func TestThePlanHelperRefusesAStateItCannotRead(t *testing.T) {
	python := testutil.Python(t)
	empty := t.TempDir()
	for name, tc := range map[string]struct{ env, want string }{
		"a state without a manifest": {StateEnv + "=" + empty, "holds no manifest.json"},
		"a base that is not there":   {BaseDirEnv + "=" + filepath.Join(empty, "missing"), "is not a directory"},
	} {
		t.Run(name, func(t *testing.T) {
			sb := &sandbox{root: t.TempDir(), env: []string{tc.env}}
			sb.project = sb.root
			out, code := sb.run(t, DBT{Python: python}.PlanCommand("prod", Options{}))
			assert.Equal(t, 1, code)
			_, err := ParseResult(strings.NewReader(out))
			var toolErr *ToolError
			require.ErrorAs(t, err, &toolErr, out)
			assert.Equal(t, "state", toolErr.Kind)
			assert.Contains(t, toolErr.Message, tc.want)
			assert.NotContains(t, out, "dbt parse", "nothing was parsed")
		})
	}
}

// The package helper runs `dbt deps` (a local package here: no network) and hands the project back as a tar:
// the project's files, the installed package's files (not the symlink dbt made to its source), without dbt's
// target/ and logs/; over the cap it fails, saying so, and leaves no tar.
func TestThePackageHelperHandsBackTheProjectWithItsPackages(t *testing.T) {
	python := testutil.Python(t)
	sb := newSandbox(t, "")
	pkg := filepath.Join(sb.root, "shared")
	require.NoError(t, os.MkdirAll(filepath.Join(pkg, "macros"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(pkg, "dbt_project.yml"), []byte("name: shared\nversion: \"1.0.0\"\nconfig-version: 2\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(pkg, "macros", "shout.sql"), []byte("{% macro shout(x) %}upper({{ x }}){% endmacro %}\n"), 0o644))
	sb.write(t, "packages.yml", "packages:\n  - local: ../shared\n")
	sb.write(t, "logs/dbt.log", "old")

	out, code := sb.run(t, DBT{Python: python}.PackageCommand(64<<20, Options{}))
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, PackageMarker+" ")
	assert.Contains(t, out, `"deps":true`)
	f, err := os.Open(filepath.Join(sb.project, PackageArtifact))
	require.NoError(t, err)
	defer f.Close()
	names := map[string]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		names[strings.TrimPrefix(h.Name, "./")] = h.Typeflag
	}
	assert.Equal(t, byte(tar.TypeReg), names["models/staging/stg_orders.sql"], "the project's files")
	assert.Equal(t, byte(tar.TypeReg), names["packages.yml"])
	assert.Equal(t, byte(tar.TypeReg), names["dbt_packages/shared/macros/shout.sql"], "the package's files, not a link to its source")
	for name := range names {
		assert.False(t, strings.HasPrefix(name, "target/") || strings.HasPrefix(name, "logs/"), "%s: dbt's generated directories are left out", name)
	}

	out, code = sb.run(t, DBT{Python: python}.PackageCommand(1024, Options{}))
	assert.Equal(t, 1, code)
	assert.Contains(t, out, `"kind":"too_large"`)
	assert.Contains(t, out, "over the 1024 bytes a job hands back")
	_, err = os.Stat(filepath.Join(sb.project, PackageArtifact))
	assert.True(t, errors.Is(err, os.ErrNotExist), "no tar is left over the cap")
}
