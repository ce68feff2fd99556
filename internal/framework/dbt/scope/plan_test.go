package scope

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
)

const projectYML = "name: shop\nprofile: shop\nvars:\n  currency: EUR\n"

func configYAML(version string, extra string) string {
	v := ""
	if version != "" {
		v = "    version: " + version + "\n"
	}
	return "version: 1\nprojects:\n  - name: shop\n    path: shop\n    framework: dbt\n" + v + extra +
		"  - {name: lake, path: lake}\n"
}

// baseTree is the shop project as last deployed, at version 1.0.
func baseTree() map[string]string {
	return map[string]string{
		repoconfig.Path:                      configYAML("1.0", ""),
		"shop/dbt_project.yml":               projectYML,
		"shop/models/staging/stg_orders.sql": "select 1",
		"shop/models/marts/revenue.sql":      "select 2",
		"shop/models/schema.yml":             "version: 2",
		"shop/macros/cents.sql":              "{% macro cents() %}{% endmacro %}",
		"shop/seeds/raw_orders.csv":          "id\n1",
		"shop/Dockerfile":                    "FROM dbt",
		"lake/models/a.sql":                  "select 3",
		"README.md":                          "hi",
	}
}

func commit(t *testing.T, tree map[string]string) *Commit {
	t.Helper()
	c := &Commit{Files: map[string]string{}}
	for p, content := range tree {
		c.Files[p] = content // the content stands for its blob hash
	}
	if yml, ok := tree["shop/dbt_project.yml"]; ok {
		c.ProjectYML = []byte(yml)
	}
	if text, ok := tree[repoconfig.Path]; ok {
		cfg, err := repoconfig.Parse(repoconfig.Path, []byte(text))
		require.NoError(t, err)
		c.Config = &cfg
	}
	return c
}

// fill plans the shop project with the head tree changed by edit (a value of "" removes the path).
func fill(t *testing.T, base map[string]string, edit map[string]string, d plan.DBT, prodManifest bool) plan.DBT {
	t.Helper()
	head := map[string]string{}
	for p, c := range base {
		head[p] = c
	}
	for p, c := range edit {
		if c == "" {
			delete(head, p)
		} else {
			head[p] = c
		}
	}
	h := commit(t, head)
	in := Input{Head: *h, Environment: "prod", HasProdManifest: prodManifest, StateDir: ".dagctl/prod-state"}
	for _, p := range h.Config.Projects {
		if p.Name == "shop" {
			in.Project = p
		}
	}
	if base != nil {
		in.Base = commit(t, base)
	}
	require.NoError(t, Fill(&d, in))
	return d
}

func TestFill(t *testing.T) {
	bump := map[string]string{repoconfig.Path: configYAML("1.1", "")}
	with := func(m map[string]string, more map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			out[k] = v
		}
		for k, v := range more {
			out[k] = v
		}
		return out
	}
	tests := []struct {
		name         string
		base         map[string]string
		edit         map[string]string
		manifest     plan.Scope
		prodManifest bool
		want         plan.DBT
	}{
		{name: "first deploy: no base commit, everything is built", base: nil, edit: nil, want: plan.DBT{
			Version: "1.0", Deploy: true, FileScope: plan.ScopeAll, Scope: plan.ScopeAll, DecidedBy: ByFiles,
			ScopeReason: "first deploy: everything is built", Commands: []string{"dbt build --target prod"}}},
		{name: "a model change with a bump: selective by both rules", base: baseTree(),
			edit:     with(bump, map[string]string{"shop/models/staging/stg_orders.sql": "select 10"}),
			manifest: plan.ScopeSelective, prodManifest: true, want: plan.DBT{
				Version: "1.1", PreviousVersion: "1.0", Deploy: true, ManifestScope: plan.ScopeSelective,
				Files:     []plan.FileChange{{Path: "shop/models/staging/stg_orders.sql", Type: plan.FileModel, Change: Modified}},
				FileScope: plan.ScopeSelective, Scope: plan.ScopeSelective, DecidedBy: ByManifest,
				ScopeReason: "dbt's state comparison with the production manifest (the default when one exists)",
				Commands:    []string{"dbt build --target prod --select state:modified+ --state .dagctl/prod-state"}}},
		{name: "a macro change: all by the files, selective by the manifest, which decides", base: baseTree(),
			edit:     with(bump, map[string]string{"shop/macros/cents.sql": "{% macro cents(x) %}{% endmacro %}"}),
			manifest: plan.ScopeSelective, prodManifest: true, want: plan.DBT{
				Version: "1.1", PreviousVersion: "1.0", Deploy: true, ManifestScope: plan.ScopeSelective,
				Files:     []plan.FileChange{{Path: "shop/macros/cents.sql", Type: plan.FileMacro, Change: Modified}},
				FileScope: plan.ScopeAll, Scope: plan.ScopeSelective, DecidedBy: ByManifest,
				ScopeReason: "dbt's state comparison with the production manifest (the default when one exists)",
				Commands:    []string{"dbt build --target prod --select state:modified+ --state .dagctl/prod-state"}}},
		{name: "the same macro change before any production manifest: the files decide", base: baseTree(),
			edit:     with(bump, map[string]string{"shop/macros/cents.sql": "{% macro cents(x) %}{% endmacro %}"}),
			manifest: plan.ScopeSelective, want: plan.DBT{
				Version: "1.1", PreviousVersion: "1.0", Deploy: true, ManifestScope: plan.ScopeSelective,
				Files:     []plan.FileChange{{Path: "shop/macros/cents.sql", Type: plan.FileMacro, Change: Modified}},
				FileScope: plan.ScopeAll, Scope: plan.ScopeAll, DecidedBy: ByFiles,
				ScopeReason: "no production manifest yet: dbt's state comparison has nothing to compare with",
				Commands:    []string{"dbt build --target prod"}}},
		{name: "a model change before any production manifest: the files say selective, a full build runs", base: baseTree(),
			edit:     with(bump, map[string]string{"shop/models/staging/stg_orders.sql": "select 10"}),
			manifest: plan.ScopeSelective, want: plan.DBT{
				Version: "1.1", PreviousVersion: "1.0", Deploy: true, ManifestScope: plan.ScopeSelective,
				Files:     []plan.FileChange{{Path: "shop/models/staging/stg_orders.sql", Type: plan.FileModel, Change: Modified}},
				FileScope: plan.ScopeSelective, Scope: plan.ScopeAll, DecidedBy: ByFiles,
				ScopeReason: NoStateFullBuild, Commands: []string{"dbt build --target prod"}}},
		{name: "a removed model and YAML", base: baseTree(),
			edit:     with(bump, map[string]string{"shop/models/marts/revenue.sql": "", "shop/models/schema.yml": "version: 2\n# x"}),
			manifest: plan.ScopeSelective, prodManifest: true, want: plan.DBT{
				Version: "1.1", PreviousVersion: "1.0", Deploy: true, ManifestScope: plan.ScopeSelective,
				Files: []plan.FileChange{{Path: "shop/models/marts/revenue.sql", Type: plan.FileModel, Change: Removed},
					{Path: "shop/models/schema.yml", Type: plan.FileProperties, Change: Modified}},
				FileScope: plan.ScopeAll, Scope: plan.ScopeSelective, DecidedBy: ByManifest,
				ScopeReason: "dbt's state comparison with the production manifest (the default when one exists)",
				Commands:    []string{"dbt build --target prod --select state:modified+ --state .dagctl/prod-state"}}},
		{name: "infra only: build_only", base: baseTree(),
			edit:     with(bump, map[string]string{"shop/Dockerfile": "FROM dbt:2", "shop/requirements.txt": "dbt-duckdb"}),
			manifest: plan.ScopeNone, prodManifest: true, want: plan.DBT{
				Version: "1.1", PreviousVersion: "1.0", Deploy: true, ManifestScope: plan.ScopeNone,
				Files: []plan.FileChange{{Path: "shop/Dockerfile", Type: plan.FileInfra, Change: Modified},
					{Path: "shop/requirements.txt", Type: plan.FileInfra, Change: Added}},
				FileScope: plan.ScopeBuildOnly, Scope: plan.ScopeBuildOnly, DecidedBy: ByManifest,
				ScopeReason: "dbt's state comparison with the production manifest (the default when one exists); no node changed, so only the image is rebuilt"}},
		{name: "the config changed besides the version: infra", base: baseTree(),
			edit: map[string]string{repoconfig.Path: configYAML("1.1", "    commands: [dbt seed, dbt build]\n")}, want: plan.DBT{
				Version: "1.1", PreviousVersion: "1.0", Deploy: true,
				Files:     []plan.FileChange{{Path: repoconfig.Path, Type: plan.FileInfra, Change: Modified}},
				FileScope: plan.ScopeBuildOnly, Scope: plan.ScopeBuildOnly, DecidedBy: ByFiles, ScopeReason: "no manifest diff was made"}},
		{name: "a version bump with nothing else: a deploy with nothing to run", base: baseTree(), edit: bump,
			manifest: plan.ScopeNone, prodManifest: true, want: plan.DBT{
				Version: "1.1", PreviousVersion: "1.0", Deploy: true, ManifestScope: plan.ScopeNone,
				FileScope: plan.ScopeNone, Scope: plan.ScopeNone, DecidedBy: ByManifest,
				ScopeReason: "dbt's state comparison with the production manifest (the default when one exists)"}},
		{name: "no bump: informational, though a model changed", base: baseTree(),
			edit:     map[string]string{"shop/models/staging/stg_orders.sql": "select 10"},
			manifest: plan.ScopeSelective, prodManifest: true, want: plan.DBT{
				Version: "1.0", PreviousVersion: "1.0", Deploy: false, ManifestScope: plan.ScopeSelective,
				Files:     []plan.FileChange{{Path: "shop/models/staging/stg_orders.sql", Type: plan.FileModel, Change: Modified}},
				FileScope: plan.ScopeSelective, Scope: plan.ScopeNone, DecidedBy: ByManifest,
				ScopeReason: "dbt's state comparison with the production manifest (the default when one exists)"}},
		{name: "another project's changes are not this one's", base: baseTree(),
			edit: with(bump, map[string]string{"lake/models/a.sql": "select 30", "README.md": "bye",
				repoconfig.Path: strings.Replace(configYAML("1.1", ""), "{name: lake, path: lake}", "{name: lake, path: lake, gateway: x}", 1)}),
			want: plan.DBT{Version: "1.1", PreviousVersion: "1.0", Deploy: true, FileScope: plan.ScopeNone,
				Scope: plan.ScopeNone, DecidedBy: ByFiles, ScopeReason: "no manifest diff was made"}},
		{name: "vars changed: the manifest cannot see them, the files decide", base: baseTree(),
			edit:     with(bump, map[string]string{"shop/dbt_project.yml": strings.Replace(projectYML, "EUR", "USD", 1)}),
			manifest: plan.ScopeNone, prodManifest: true, want: plan.DBT{
				Version: "1.1", PreviousVersion: "1.0", Deploy: true, ManifestScope: plan.ScopeNone,
				Files:     []plan.FileChange{{Path: "shop/dbt_project.yml", Type: plan.FileProject, Change: Modified}},
				FileScope: plan.ScopeAll, Scope: plan.ScopeAll, DecidedBy: ByFiles,
				ScopeReason: "the vars in `dbt_project.yml` changed, which dbt's state comparison cannot see",
				Commands:    []string{"dbt build --target prod"}}},
		{name: "moved model paths: removed files by the base's layout, added by the head's", base: baseTree(),
			edit: with(bump, map[string]string{"shop/dbt_project.yml": projectYML + "model-paths: [src]\n",
				"shop/models/marts/revenue.sql": "", "shop/src/revenue.sql": "select 2"}),
			want: plan.DBT{Version: "1.1", PreviousVersion: "1.0", Deploy: true,
				Files: []plan.FileChange{{Path: "shop/dbt_project.yml", Type: plan.FileProject, Change: Modified},
					{Path: "shop/models/marts/revenue.sql", Type: plan.FileModel, Change: Removed},
					{Path: "shop/src/revenue.sql", Type: plan.FileModel, Change: Added}},
				FileScope: plan.ScopeAll, Scope: plan.ScopeAll, DecidedBy: ByFiles, ScopeReason: "no manifest diff was made",
				Commands: []string{"dbt build --target prod"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := tt.base
			edit := tt.edit
			if base == nil {
				edit = baseTree() // the head is the whole project, with nothing to compare with
			}
			got := fill(t, base, edit, plan.DBT{ManifestScope: tt.manifest}, tt.prodManifest)
			if tt.base == nil {
				got.Files = nil // every file is added; what matters is the scope
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

// A PR that only says it bumped nothing cannot deploy, and one whose head has no version never does.
func TestWithoutAVersionNothingDeploys(t *testing.T) {
	base := baseTree()
	base[repoconfig.Path] = configYAML("", "")
	got := fill(t, base, map[string]string{"shop/models/staging/stg_orders.sql": "select 10"}, plan.DBT{}, false)
	assert.False(t, got.Deploy)
	assert.Equal(t, plan.ScopeNone, got.Scope)
	assert.Empty(t, got.Commands)
}

func TestFillNamesABadProjectFile(t *testing.T) {
	h := commit(t, baseTree())
	h.ProjectYML = []byte("name: shop\nmodel-paths: 3\n")
	err := Fill(&plan.DBT{}, Input{Project: repoconfig.Project{Name: "shop", Path: "shop", Framework: repoconfig.DBT}, Head: *h})
	require.Error(t, err)
	assert.Equal(t, "shop/dbt_project.yml:2: model-paths must be a list of paths", err.Error())
}
