package scope

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
)

func TestCategorize(t *testing.T) {
	custom, err := ReadLayout("dbt_project.yml", []byte("name: shop\nmodel-paths: [src/models, src]\nmacro-paths: ['./lib/']\ndata-paths: [data]\ntarget-path: build\n"))
	require.NoError(t, err)
	tests := []struct {
		layout Layout
		path   string
		want   plan.FileType
	}{
		{DefaultLayout(), "models/staging/stg_orders.sql", plan.FileModel},
		{DefaultLayout(), "models/marts/revenue.py", plan.FileModel},
		{DefaultLayout(), "models/staging/schema.yml", plan.FileProperties},
		{DefaultLayout(), "models/whatever_you_want.yaml", plan.FileProperties},
		{DefaultLayout(), "models/docs.md", plan.FileDocs},
		{DefaultLayout(), "seeds/raw_orders.csv", plan.FileSeed},
		{DefaultLayout(), "seeds/seeds.yml", plan.FileProperties},
		{DefaultLayout(), "snapshots/orders_snapshot.sql", plan.FileSnapshot},
		{DefaultLayout(), "tests/assert_positive.sql", plan.FileTest},
		{DefaultLayout(), "tests/generic/is_even.sql", plan.FileMacro},
		{DefaultLayout(), "macros/cents_to_dollars.sql", plan.FileMacro},
		{DefaultLayout(), "analyses/adhoc.sql", plan.FileAnalysis},
		{DefaultLayout(), "dbt_project.yml", plan.FileProject},
		{DefaultLayout(), "vars.yml", plan.FileProject},
		{DefaultLayout(), "profiles.yml", plan.FileProject},
		{DefaultLayout(), "packages.yml", plan.FilePackages},
		{DefaultLayout(), "package-lock.yml", plan.FilePackages},
		{DefaultLayout(), "Dockerfile", plan.FileInfra},
		{DefaultLayout(), "requirements-dev.txt", plan.FileInfra},
		{DefaultLayout(), "pyproject.toml", plan.FileInfra},
		{DefaultLayout(), "README.md", plan.FileOther},
		{DefaultLayout(), "models/notes.txt", plan.FileOther},
		{DefaultLayout(), "macros/../models/x.sql", plan.FileModel},
		{custom, "src/models/a.sql", plan.FileModel},
		{custom, "src/b.sql", plan.FileModel},
		{custom, "lib/m.sql", plan.FileMacro},
		{custom, "data/s.csv", plan.FileSeed},
		{custom, "models/old.sql", plan.FileOther}, // no longer a model path
		{custom, "macros/m.sql", plan.FileOther},
	}
	for _, tt := range tests {
		got, ok := Categorize(tt.path, tt.layout, "", "")
		assert.True(t, ok, tt.path)
		assert.Equal(t, tt.want, got, tt.path)
	}
	for _, generated := range []string{"target/manifest.json", "dbt_packages/dbt_utils/macros/x.sql", "logs/dbt.log"} {
		_, ok := Categorize(generated, DefaultLayout(), "", "")
		assert.False(t, ok, generated)
	}
	_, ok := Categorize("build/manifest.json", custom, "", "")
	assert.False(t, ok, "the project's own target-path is generated")
	got, _ := Categorize("conf/profiles.yml", DefaultLayout(), "conf", "")
	assert.Equal(t, plan.FileProject, got, "the configured profiles_dir")
	got, _ = Categorize("docker/build.containerfile", DefaultLayout(), "", "docker/build.containerfile")
	assert.Equal(t, plan.FileInfra, got, "the configured dockerfile")
}

func TestReadLayout(t *testing.T) {
	l, err := ReadLayout("dbt_project.yml", nil)
	require.NoError(t, err)
	assert.Equal(t, DefaultLayout(), l)

	l, err = ReadLayout("dbt_project.yml", []byte("model-paths: [\"{{ env_var('MODELS') }}\"]\n"))
	require.NoError(t, err)
	assert.Equal(t, "model-paths", l.Jinja)
	got, _ := Categorize("models/a.sql", l, "", "")
	assert.Equal(t, plan.FileProject, got, "with a Jinja path every file is project config")
	got, _ = Categorize("Dockerfile", l, "", "")
	assert.Equal(t, plan.FileInfra, got)

	for yml, want := range map[string]string{
		"name: [unclosed\n":                  "dbt/dbt_project.yml: invalid YAML: line 1: did not find expected ',' or ']'",
		"name: x\nmodel-paths: models\n":     "dbt/dbt_project.yml:2: model-paths must be a list of paths",
		"name: x\nseed-paths:\n  - {a: b}\n": "dbt/dbt_project.yml:3: seed-paths must be a list of paths",
		"- a\n":                              "dbt/dbt_project.yml:1: must be a mapping (key: value)",
		"target-path: [a]\n":                 "dbt/dbt_project.yml:1: target-path must be a path",
	} {
		_, err := ReadLayout("dbt/dbt_project.yml", []byte(yml))
		require.Error(t, err, yml)
		assert.Equal(t, want, err.Error(), yml)
	}
}

func TestFileScope(t *testing.T) {
	f := func(types ...plan.FileType) []plan.FileChange {
		var out []plan.FileChange
		for _, t := range types {
			out = append(out, plan.FileChange{Type: t})
		}
		return out
	}
	tests := []struct {
		name  string
		files []plan.FileChange
		first bool
		want  plan.Scope
	}{
		{"nothing", nil, false, plan.ScopeNone},
		{"a first deploy builds all", nil, true, plan.ScopeAll},
		{"a model", f(plan.FileModel), false, plan.ScopeSelective},
		{"a seed and a snapshot", f(plan.FileSeed, plan.FileSnapshot, plan.FileTest), false, plan.ScopeSelective},
		{"a macro", f(plan.FileModel, plan.FileMacro), false, plan.ScopeAll},
		{"properties YAML", f(plan.FileProperties), false, plan.ScopeAll},
		{"dbt_project.yml", f(plan.FileProject), false, plan.ScopeAll},
		{"packages", f(plan.FilePackages), false, plan.ScopeAll},
		{"docs blocks", f(plan.FileDocs), false, plan.ScopeAll},
		{"infra only", f(plan.FileInfra, plan.FileOther), false, plan.ScopeBuildOnly},
		{"infra and a model", f(plan.FileInfra, plan.FileModel), false, plan.ScopeSelective},
		{"only other files", f(plan.FileOther), false, plan.ScopeNone},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, FileScope(tt.files, tt.first), tt.name)
	}
}

func TestDecide(t *testing.T) {
	tests := []struct {
		name     string
		files    FileRule
		manifest plan.Scope
		rule     repoconfig.DecideRule
		prod     bool
		want     Decision
	}{
		{"the manifest decides by default", FileRule{Scope: plan.ScopeAll}, plan.ScopeSelective, "", true,
			Decision{plan.ScopeSelective, ByManifest, "dbt's state comparison with the production manifest (the default when one exists)"}},
		{"decide: manifest", FileRule{Scope: plan.ScopeAll}, plan.ScopeSelective, repoconfig.DecideManifest, true,
			Decision{plan.ScopeSelective, ByManifest, "dbt's state comparison with the production manifest"}},
		{"decide: files", FileRule{Scope: plan.ScopeAll}, plan.ScopeSelective, repoconfig.DecideFiles, true,
			Decision{plan.ScopeAll, ByFiles, "the project says `decide: files`"}},
		{"no production manifest", FileRule{Scope: plan.ScopeAll}, plan.ScopeSelective, repoconfig.DecideManifest, false,
			Decision{plan.ScopeAll, ByFiles, "no production manifest yet: dbt's state comparison has nothing to compare with"}},
		{"no manifest diff", FileRule{Scope: plan.ScopeSelective}, "", "", true,
			Decision{plan.ScopeSelective, ByFiles, "no manifest diff was made"}},
		{"vars the manifest cannot see", FileRule{Scope: plan.ScopeAll, Unseen: "`vars.yml` changed"}, plan.ScopeNone, "", true,
			Decision{plan.ScopeAll, ByFiles, "`vars.yml` changed, which dbt's state comparison cannot see"}},
		{"infra only: the manifest sees nothing, the image is rebuilt", FileRule{Scope: plan.ScopeBuildOnly}, plan.ScopeNone, "", true,
			Decision{plan.ScopeBuildOnly, ByManifest, "dbt's state comparison with the production manifest (the default when one exists); no node changed, so only the image is rebuilt"}},
		{"selective files without a production manifest: a full build", FileRule{Scope: plan.ScopeSelective}, plan.ScopeSelective, "", false,
			Decision{plan.ScopeAll, ByFiles, NoStateFullBuild}},
		{"selective files, decide: files, no production manifest: a full build", FileRule{Scope: plan.ScopeSelective}, plan.ScopeSelective, repoconfig.DecideFiles, false,
			Decision{plan.ScopeAll, ByFiles, NoStateFullBuild}},
		{"selective files, no manifest diff, no production manifest: a full build", FileRule{Scope: plan.ScopeSelective}, "", "", false,
			Decision{plan.ScopeAll, ByFiles, NoStateFullBuild}},
		{"vars and models unseen, no production manifest: a full build", FileRule{Scope: plan.ScopeSelective, Unseen: "`profiles.yml` changed"}, plan.ScopeNone, "", false,
			Decision{plan.ScopeAll, ByFiles, NoStateFullBuild}},
		{"build_only without a production manifest stays build_only", FileRule{Scope: plan.ScopeBuildOnly}, plan.ScopeNone, "", false,
			Decision{plan.ScopeBuildOnly, ByFiles, "no production manifest yet: dbt's state comparison has nothing to compare with"}},
		{"nothing without a production manifest stays none", FileRule{Scope: plan.ScopeNone}, "", "", false,
			Decision{plan.ScopeNone, ByFiles, "no manifest diff was made"}},
		{"nothing at all", FileRule{Scope: plan.ScopeNone}, plan.ScopeNone, "", true,
			Decision{plan.ScopeNone, ByManifest, "dbt's state comparison with the production manifest (the default when one exists)"}},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, Decide(tt.files, tt.manifest, tt.rule, tt.prod), tt.name)
	}
}

func TestCommands(t *testing.T) {
	p := repoconfig.DBTProject{Commands: []string{"dbt seed", "dbt run-operation grant_select", "dbt build --full-refresh"},
		Targets: map[string]string{"prod": "prod_tgt"}, ProfilesDir: "profiles"}
	assert.Equal(t, []string{
		"dbt seed --target prod_tgt --profiles-dir profiles --select state:modified+ --state .dagctl/prod-state",
		"dbt run-operation grant_select --target prod_tgt --profiles-dir profiles",
		"dbt build --full-refresh --target prod_tgt --profiles-dir profiles --select state:modified+ --state .dagctl/prod-state",
	}, Commands(plan.ScopeSelective, p, "prod", ".dagctl/prod-state"))
	assert.Equal(t, []string{"dbt build --target dev"}, Commands(plan.ScopeAll, repoconfig.DBTProject{}, "dev", "x"))
	assert.Nil(t, Commands(plan.ScopeBuildOnly, p, "prod", "x"))
	assert.Nil(t, Commands(plan.ScopeNone, p, "prod", "x"))
}
