package repoconfig

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const dbtExample = `version: 1
projects:
  - path: dbt/marts
    framework: dbt
    version: 1.4.0
    commands: [dbt seed, dbt build --full-refresh]
    target: {prod: prod_tgt, dev: ci}
    profiles_dir: ./profiles/
    image:
      base: ghcr.io/dbt-labs/dbt-postgres:1.11.0
      repository: ghcr.io/acme/marts
      builder: dockerfile
      dockerfile: docker/Dockerfile
    pr_environment:
      schema: dbt_pr_{number}
      target: ci
    decide: files
`

func TestParseDBTProject(t *testing.T) {
	cfg, err := Parse(Path, []byte(dbtExample))
	require.NoError(t, err)
	require.Len(t, cfg.Projects, 1)
	assert.Equal(t, &DBTProject{
		Version:     "1.4.0",
		Commands:    []string{"dbt seed", "dbt build --full-refresh"},
		Targets:     map[string]string{"prod": "prod_tgt", "dev": "ci"},
		ProfilesDir: "profiles",
		Image: &DBTImage{Base: "ghcr.io/dbt-labs/dbt-postgres:1.11.0", Repository: "ghcr.io/acme/marts",
			Builder: BuildDockerfile, Dockerfile: "docker/Dockerfile"},
		PREnvironment: &DBTPREnvironment{Schema: "dbt_pr_{number}", Target: "ci"},
		Decide:        DecideFiles,
	}, cfg.Projects[0].DBT)
	d := cfg.Projects[0].DBT
	assert.Equal(t, "prod_tgt", d.TargetFor("prod"))
	assert.Equal(t, "staging", d.TargetFor("staging"), "an environment not listed uses the target of its name")
	assert.Equal(t, "dbt_pr_42", d.PREnvironment.SchemaFor(42))
}

func TestParseDBTDefaults(t *testing.T) {
	cfg, err := Parse(Path, []byte("version: 1\nprojects:\n  - {path: marts, framework: dbt, version: 2, image: {base: 'duckdb/dbt@sha256:"+strings.Repeat("a", 64)+"', repository: 'localhost:5000/marts'}}\n  - {path: w}\n"))
	require.NoError(t, err)
	assert.Equal(t, &DBTProject{Version: "2", Commands: []string{"dbt build"},
		Image: &DBTImage{Base: "duckdb/dbt@sha256:" + strings.Repeat("a", 64), Repository: "localhost:5000/marts",
			Builder: BuildLayers, Dockerfile: "Dockerfile"}}, cfg.Projects[0].DBT)
	assert.Nil(t, cfg.Projects[1].DBT, "a sqlmesh project has no dbt settings")
	assert.True(t, SelectsNodes("dbt build --full-refresh"))
	assert.False(t, SelectsNodes("dbt run-operation grant_select"))
}

func TestParseDBTProblems(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"dbt keys on a sqlmesh project", "version: 1\nprojects:\n  - path: w\n    version: 1.0\n    decide: files\n", []string{
			".dagctl/config.yaml:4: projects[0].version: is only for projects with framework: dbt",
			".dagctl/config.yaml:5: projects[0].decide: is only for projects with framework: dbt"}},
		{"version", "version: 1\nprojects:\n  - {framework: dbt, version: 'v 1'}\n", []string{
			`.dagctl/config.yaml:3: projects[0].version: "v 1" is not a version (letters, digits, ".", "_", "+" and "-", starting with a letter or digit, at most 64)`}},
		{"commands", "version: 1\nprojects:\n  - framework: dbt\n    commands:\n      - dbt build; curl evil\n      - make deploy\n      - dbt destroy\n      - dbt build --select tag:x\n      - dbt run --target=prod\n      - dbt\n", []string{
			`.dagctl/config.yaml:5: projects[0].commands[0]: "dbt build; curl evil": "build;" is not a dbt command an apply runs (build, compile, docs, run, run-operation, seed, snapshot, source, test)`,
			".dagctl/config.yaml:6: projects[0].commands[1]: \"make deploy\" is not a dbt command (e.g. `dbt build`)",
			`.dagctl/config.yaml:7: projects[0].commands[2]: "dbt destroy": "destroy" is not a dbt command an apply runs (build, compile, docs, run, run-operation, seed, snapshot, source, test)`,
			`.dagctl/config.yaml:8: projects[0].commands[3]: "dbt build --select tag:x": the bot sets --select itself (from target, profiles_dir and the deploy's scope)`,
			`.dagctl/config.yaml:9: projects[0].commands[4]: "dbt run --target=prod": the bot sets --target itself (from target, profiles_dir and the deploy's scope)`,
			".dagctl/config.yaml:10: projects[0].commands[5]: \"dbt\" is not a dbt command (e.g. `dbt build`)"}},
		{"shell in a command", "version: 1\nprojects:\n  - {framework: dbt, commands: ['dbt build $(id)']}\n", []string{
			`.dagctl/config.yaml:3: projects[0].commands[0]: "dbt build $(id)": "$(id)" is not a plain word (commands run without a shell: letters, digits and _./=:@%+,-)`}},
		{"empty commands", "version: 1\nprojects:\n  - {framework: dbt, commands: []}\n", []string{
			".dagctl/config.yaml:3: projects[0].commands: must list at least one dbt command (or leave commands out for `dbt build`)"}},
		{"targets", "version: 1\nprojects:\n  - framework: dbt\n    target:\n      prdo: prod\n      dev: 'a b'\n", []string{
			`.dagctl/config.yaml:5: projects[0].target.prdo: "prdo" is not an environment of this file (prod, dev)`,
			`.dagctl/config.yaml:6: projects[0].target.dev: "a b" is not a dbt target name (letters, digits, "_" and "-")`}},
		{"profiles_dir leaves the repository", "version: 1\nprojects:\n  - {path: a, framework: dbt, profiles_dir: ../../etc}\n", []string{
			`.dagctl/config.yaml:3: projects[0].profiles_dir: "../../etc" leaves the repository`}},
		{"decide", "version: 1\nprojects:\n  - {framework: dbt, decide: state}\n", []string{
			`.dagctl/config.yaml:3: projects[0].decide: "state" is not one of manifest, files`}},
		{"image", "version: 1\nprojects:\n  - framework: dbt\n    image:\n      repository: ghcr.io/acme/marts:latest\n      builder: kaniko\n      dockerfile: /Dockerfile\n      colour: red\n", []string{
			".dagctl/config.yaml:5: projects[0].image.base: is required with builder layers: the dbt runtime image the project is added to",
			`.dagctl/config.yaml:5: projects[0].image.repository: "ghcr.io/acme/marts:latest" is not an image repository (registry/path, lower case, without a tag or digest)`,
			`.dagctl/config.yaml:6: projects[0].image.builder: "kaniko" is not one of layers, dockerfile`,
			`.dagctl/config.yaml:7: projects[0].image.dockerfile: "/Dockerfile" must be relative to the repository root`,
			`.dagctl/config.yaml:8: projects[0].image.colour: unknown key (known keys: base, repository, builder, dockerfile)`}},
		{"image repository without a registry", "version: 1\nprojects:\n  - framework: dbt\n    image: {base: 'ghcr.io/dbt-labs/dbt-duckdb:1.9.0', repository: acme/marts}\n", []string{
			`.dagctl/config.yaml:4: projects[0].image.repository: "acme/marts" names no registry: start with its host (ghcr.io/acme/marts, localhost:5000/acme/marts)`}},
		{"image without repository, bad base", "version: 1\nprojects:\n  - framework: dbt\n    image: {base: 'Not An Image'}\n", []string{
			".dagctl/config.yaml:4: projects[0].image.repository: is required: where the deploy image is pushed (registry/path)",
			`.dagctl/config.yaml:4: projects[0].image.base: "Not An Image" is not an image reference (registry/repository[:tag][@sha256:digest], lower case)`}},
		{"pr_environment", "version: 1\nprojects:\n  - {framework: dbt, pr_environment: {schema: analytics}}\n  - {name: b, framework: dbt, pr_environment: {schema: 'pr-{number}', target: 'x y'}}\n  - {name: c, framework: dbt, pr_environment: {target: ci}}\n", []string{
			`.dagctl/config.yaml:3: projects[0].pr_environment.schema: "analytics" must contain {number}, e.g. dbt_pr_{number} (one schema per PR)`,
			`.dagctl/config.yaml:4: projects[1].pr_environment.schema: "pr-{number}" does not make a schema name (letters, digits and "_", not starting with a digit)`,
			`.dagctl/config.yaml:4: projects[1].pr_environment.target: "x y" is not a dbt target name (letters, digits, "_" and "-")`,
			".dagctl/config.yaml:5: projects[2].pr_environment.schema: is required, e.g. dbt_pr_{number}"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(Path, []byte(tt.yaml))
			var cfgErr *Error
			require.True(t, errors.As(err, &cfgErr), "want *Error, got %v", err)
			assert.Equal(t, tt.want, strings.Split(err.Error(), "\n"))
		})
	}
}

// A PR must not point the bot's registry credentials, or its pre-review Slim CI build, somewhere the default
// branch did not say.
func TestMergeKeepsTheBasesImageRepositoryAndPREnvironment(t *testing.T) {
	base := mustParse(t, `version: 1
projects:
  - name: marts
    framework: dbt
    version: "1.0"
    image: {base: "dbt/runtime:1", repository: ghcr.io/acme/marts}
    pr_environment: {schema: "dbt_pr_{number}"}
  - {name: bare, framework: dbt}
`)
	head := mustParse(t, `version: 1
projects:
  - name: marts
    framework: dbt
    version: "1.1"
    commands: [dbt run]
    image: {base: "dbt/runtime:2", repository: ghcr.io/other-team/prod-image}
    pr_environment: {schema: "analytics_{number}", target: prod}
  - name: bare
    framework: dbt
    image: {base: "dbt/runtime:2", repository: ghcr.io/other-team/prod-image}
  - name: added
    framework: dbt
    image: {base: "dbt/runtime:2", repository: ghcr.io/acme/added}
    pr_environment: {schema: "main_{number}"}
`)
	got := Merge(base, head)
	marts := got.Projects[0].DBT
	assert.Equal(t, "1.1", marts.Version, "the version is the change under review")
	assert.Equal(t, []string{"dbt run"}, marts.Commands)
	assert.Equal(t, "dbt/runtime:2", marts.Image.Base)
	assert.Equal(t, "ghcr.io/acme/marts", marts.Image.Repository)
	assert.Equal(t, &DBTPREnvironment{Schema: "dbt_pr_{number}"}, marts.PREnvironment)
	assert.Equal(t, "", got.Projects[1].DBT.Image.Repository, "the base pushes this project nowhere")
	assert.Equal(t, "", got.Projects[2].DBT.Image.Repository, "a project the default branch lacks pushes nowhere until merged")
	assert.Equal(t, "dbt/runtime:2", got.Projects[2].DBT.Image.Base)
	assert.Nil(t, got.Projects[2].DBT.PREnvironment, "a new project builds no PR schema until the default branch names it (its cleanup drops it)")
	assert.Nil(t, got.Projects[1].DBT.PREnvironment)

	marts.Commands[0] = "changed"
	assert.Equal(t, []string{"dbt run"}, head.Projects[0].DBT.Commands, "Merge copies")
}

// The PR's own environment: the repository's pattern, else pr_{number} when a dbt project builds PR schemas;
// sqlmesh projects are planned in it only with the repository's pr_environment, dbt projects only with their own.
func TestPREnvironmentOfDBTProjects(t *testing.T) {
	cfg := mustParse(t, `version: 1
projects:
  - {name: warehouse, framework: sqlmesh}
  - {name: marts, framework: dbt, path: marts, pr_environment: {schema: "dbt_pr_{number}", target: ci}}
  - {name: bare, framework: dbt, path: bare}
`)
	assert.Equal(t, "pr_42", cfg.PREnvironmentFor(42), "the default pattern")
	assert.False(t, cfg.BuildsPREnvironment(cfg.Projects[0]), "no repository pr_environment: sqlmesh has none")
	assert.True(t, cfg.BuildsPREnvironment(cfg.Projects[1]))
	assert.False(t, cfg.BuildsPREnvironment(cfg.Projects[2]), "a dbt project without pr_environment builds no PR schema")

	cfg.PREnvironment = "review_{number}"
	assert.Equal(t, "review_42", cfg.PREnvironmentFor(42))
	assert.True(t, cfg.BuildsPREnvironment(cfg.Projects[0]))
	assert.False(t, cfg.BuildsPREnvironment(cfg.Projects[2]))

	assert.Equal(t, "", mustParse(t, "version: 1\n").PREnvironmentFor(42), "neither: no PR environment")
}
