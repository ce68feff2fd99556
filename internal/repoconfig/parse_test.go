package repoconfig

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const fullExample = `version: 1
projects:
  - name: warehouse
    path: ./sqlmesh/warehouse/
    framework: sqlmesh
    gateway: duckdb
  - path: dbt/marts
    framework: dbt
environments:
  - name: prod
    approvers: ["@alice", my-org/data-leads]
    appliers: [my-org/data-platform]
    required_approvals: 2
  - name: staging
    protected: true
    apply_on: [comment, merge]
  - name: dev
    plan_on_pr: false
    apply_on: comment
job:
  image: ghcr.io/acme/dagctl-runner:1.2
  timeout: 30m
  env:
    SQLMESH_DEBUG: "1"
    RETRIES: 3
    EMPTY:
  pass_env: [SNOWFLAKE_ACCOUNT]
  secrets: [warehouse-creds]
plan_drafts: true
pr_environment: pr_{number}
deploy_branches: [release, refs/heads/hotfix]
`

func TestParseFullExample(t *testing.T) {
	cfg, err := Parse(Path, []byte(fullExample))
	require.NoError(t, err)
	assert.Equal(t, Config{
		Version: 1,
		Projects: []Project{
			{Name: "warehouse", Path: "sqlmesh/warehouse", Framework: SQLMesh, Gateway: "duckdb"},
			{Name: "marts", Path: "dbt/marts", Framework: DBT, DBT: &DBTProject{Commands: []string{"dbt build"}}},
		},
		Environments: []Environment{
			{Name: "prod", Protected: true, RequiredApprovals: 2, Approvers: []string{"alice", "my-org/data-leads"},
				Appliers: []string{"my-org/data-platform"}, PlanOnPR: true, ApplyOn: []ApplyTrigger{ApplyOnMerge}},
			{Name: "staging", Protected: true, RequiredApprovals: 1, PlanOnPR: true,
				ApplyOn: []ApplyTrigger{ApplyOnComment, ApplyOnMerge}},
			{Name: "dev", PlanOnPR: false, ApplyOn: []ApplyTrigger{ApplyOnComment}},
		},
		Job: Job{
			Image:   "ghcr.io/acme/dagctl-runner:1.2",
			Timeout: 30 * time.Minute,
			Env:     map[string]string{"SQLMESH_DEBUG": "1", "RETRIES": "3", "EMPTY": ""},
			PassEnv: []string{"SNOWFLAKE_ACCOUNT"},
			Secrets: []string{"warehouse-creds"},
		},
		PlanDrafts:     true,
		PREnvironment:  "pr_{number}",
		DeployBranches: []string{"release", "hotfix"},
	}, cfg)
	assert.Equal(t, "pr_42", cfg.PREnvironmentFor(42))
	assert.True(t, cfg.IsDeployBranch("main", "main"))
	assert.True(t, cfg.IsDeployBranch("release", "main"))
	assert.False(t, cfg.IsDeployBranch("feature", "main"))
	assert.False(t, cfg.IsDeployBranch("", ""))
}

func TestParseDefaults(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want func(*Config)
	}{
		{"only the version", "version: 1\n", func(*Config) {}},
		{"null sections are left out", "version: 1\nprojects:\nenvironments: ~\njob:\n", func(*Config) {}},
		{"empty job", "version: 1\njob: {}\n", func(*Config) {}},
		{"project defaults", "version: 1\nprojects:\n  - path: .\n", func(c *Config) {}},
		{"project name from path", "version: 1\nprojects:\n  - path: a/b/analytics.v2\n", func(c *Config) {
			c.Projects = []Project{{Name: "analytics.v2", Path: "a/b/analytics.v2", Framework: SQLMesh}}
		}},
		{"path is cleaned without leaving the repo", "version: 1\nprojects:\n  - path: a/../b//c/\n", func(c *Config) {
			c.Projects = []Project{{Name: "c", Path: "b/c", Framework: SQLMesh}}
		}},
		{"prod is protected by default, other names are not", "version: 1\nenvironments:\n  - name: prod\n  - name: qa\n", func(c *Config) {
			c.Environments = []Environment{
				{Name: "prod", Protected: true, RequiredApprovals: 1, PlanOnPR: true, ApplyOn: []ApplyTrigger{ApplyOnMerge}},
				{Name: "qa", PlanOnPR: true, ApplyOn: []ApplyTrigger{ApplyOnComment}},
			}
		}},
		{"an unprotected prod takes unprotected defaults", "version: 1\nenvironments:\n  - {name: prod, protected: false}\n", func(c *Config) {
			c.Environments = []Environment{{Name: "prod", PlanOnPR: true, ApplyOn: []ApplyTrigger{ApplyOnComment}}}
		}},
		{"a protected non-prod takes protected defaults", "version: 1\nenvironments:\n  - {name: qa, protected: true}\n", func(c *Config) {
			c.Environments = []Environment{{Name: "qa", Protected: true, RequiredApprovals: 1, PlanOnPR: true, ApplyOn: []ApplyTrigger{ApplyOnMerge}}}
		}},
		{"empty apply_on means never applied", "version: 1\nenvironments:\n  - {name: dev, apply_on: []}\n", func(c *Config) {
			c.Environments = []Environment{{Name: "dev", PlanOnPR: true, ApplyOn: []ApplyTrigger{}}}
		}},
		{"duplicates in lists are dropped", "version: 1\nenvironments:\n  - {name: dev, apply_on: [merge, merge], approvers: [a, '@a']}\n", func(c *Config) {
			c.Environments = []Environment{{Name: "dev", PlanOnPR: true, ApplyOn: []ApplyTrigger{ApplyOnMerge}, Approvers: []string{"a"}}}
		}},
		{"timeout at the maximum", "version: 1\njob: {timeout: 24h}\n", func(c *Config) { c.Job.Timeout = 24 * time.Hour }},
		{"aliases are followed", "version: 1\nenvironments:\n  - name: a\n    approvers: &leads [x, y]\n  - name: b\n    approvers: *leads\n", func(c *Config) {
			c.Environments = []Environment{
				{Name: "a", PlanOnPR: true, ApplyOn: []ApplyTrigger{ApplyOnComment}, Approvers: []string{"x", "y"}},
				{Name: "b", PlanOnPR: true, ApplyOn: []ApplyTrigger{ApplyOnComment}, Approvers: []string{"x", "y"}},
			}
		}},
		{"comments and a document marker", "# dagctl\n---\nversion: 1 # the only one\n", func(*Config) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := Default()
			tt.want(&want)
			got, err := Parse(Path, []byte(tt.yaml))
			require.NoError(t, err)
			assert.Equal(t, want, got)
		})
	}
}

func TestParseProblems(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // every line of Error(), in order
	}{
		{"empty file", "", []string{".dagctl/config.yaml:1: version: is required; add `version: 1`"}},
		{"wrong version", "version: 2\n", []string{".dagctl/config.yaml:1: version: 2 is not supported; the only version is 1"}},
		{"quoted version", "version: \"1\"\n", []string{`.dagctl/config.yaml:1: version: must be a whole number, not "1"`}},
		// yaml.v3 reports parser errors at the 0-based line of their context (here the "[" on line 3); the line is
		// passed on as yaml gives it.
		{"syntax error keeps yaml's line", "version: 1\nprojects:\n  - path: [a\n", []string{
			".dagctl/config.yaml:2: invalid YAML: did not find expected ',' or ']'"}},
		{"tabs", "version: 1\njob:\n\ttimeout: 1h\n", []string{
			".dagctl/config.yaml:3: invalid YAML: found character that cannot start any token"}},
		{"two documents", "version: 1\n---\nversion: 1\n", []string{
			`.dagctl/config.yaml:2: only one YAML document is allowed (remove the second "---")`}},
		{"root is a list", "- version: 1\n", []string{
			".dagctl/config.yaml:1: must be a mapping (key: value), not a list"}},
		{"unknown keys with and without a hint", "version: 1\nenvironments:\n  - name: prod\n    protectd: true\n    planOnPR: false\n    colour: red\n", []string{
			`.dagctl/config.yaml:4: environments[0].protectd: unknown key (did you mean "protected"?)`,
			`.dagctl/config.yaml:5: environments[0].planOnPR: unknown key (did you mean "plan_on_pr"?)`,
			`.dagctl/config.yaml:6: environments[0].colour: unknown key (known keys: name, protected, required_approvals, approvers, appliers, plan_on_pr, apply_on)`}},
		{"unknown top-level key", "version: 1\nenviroments: []\n", []string{
			`.dagctl/config.yaml:2: enviroments: unknown key (did you mean "environments"?)`}},
		{"duplicate key", "version: 1\nversion: 1\n", []string{
			".dagctl/config.yaml:2: version: duplicate key (first set on line 1)"}},
		{"merge keys", "version: 1\njob:\n  <<: {timeout: 1h}\n", []string{
			".dagctl/config.yaml:3: job: merge keys (<<) are not supported; write the keys out"}},
		{"apply_on value", "version: 1\nenvironments:\n  - name: dev\n  - name: prod\n    apply_on: [merge, on-merge]\n", []string{
			`.dagctl/config.yaml:5: environments[1].apply_on[1]: "on-merge" is not one of comment, merge`}},
		{"apply_on as a single string", "version: 1\nenvironments:\n  - name: prod\n    apply_on: on-merge\n", []string{
			`.dagctl/config.yaml:4: environments[0].apply_on: "on-merge" is not one of comment, merge`}},
		{"wrong kinds", "version: 1\nprojects: sqlmesh\nenvironments:\n  - name: [dev]\n    protected: yes\n    required_approvals: 1.5\njob: 5\n", []string{
			".dagctl/config.yaml:2: projects: must be a list, not a string",
			".dagctl/config.yaml:4: environments[0].name: must be a string, not a list",
			`.dagctl/config.yaml:5: environments[0].protected: must be true or false, not "yes"`,
			`.dagctl/config.yaml:6: environments[0].required_approvals: must be a whole number, not "1.5"`,
			".dagctl/config.yaml:7: job: must be a mapping (key: value), not a number"}},
		{"project paths", "version: 1\nprojects:\n  - path: ../other\n  - path: /abs\n  - path: a/../../b\n  - path: 'a\\b'\n  - path: C:/x\n  - path: ' '\n", []string{
			`.dagctl/config.yaml:3: projects[0].path: "../other" leaves the repository`,
			`.dagctl/config.yaml:4: projects[1].path: "/abs" must be relative to the repository root`,
			`.dagctl/config.yaml:5: projects[2].path: "a/../../b" leaves the repository`,
			`.dagctl/config.yaml:6: projects[3].path: "a\\b" must use forward slashes`,
			`.dagctl/config.yaml:7: projects[4].path: "C:/x" must be relative to the repository root`,
			`.dagctl/config.yaml:8: projects[5].path: must not be blank; use "." for the repository root`}},
		{"project framework, names and duplicates", "version: 1\nprojects:\n  - {name: a, framework: dbt-core}\n  - {name: 'a b'}\n  - {path: x/b}\n  - {path: y/B}\n", []string{
			`.dagctl/config.yaml:3: projects[0].framework: "dbt-core" is not one of sqlmesh, dbt`,
			`.dagctl/config.yaml:4: projects[1].name: "a b" is not a valid project name (letters, digits, ".", "_" and "-", starting with a letter or digit, at most 64)`,
			`.dagctl/config.yaml:6: projects[3].name: duplicate project name "B" (first on line 5)`}},
		{"empty lists", "version: 1\nprojects: []\nenvironments: []\n", []string{
			".dagctl/config.yaml:2: projects: must list at least one project (or leave projects out for one SQLMesh project at the root)",
			".dagctl/config.yaml:3: environments: must list at least one environment (or leave environments out for prod and dev)"}},
		{"environment names", "version: 1\nenvironments:\n  - protected: true\n  - name: 'my env'\n  - name: -dev\n  - name: dev\n  - name: Dev\n", []string{
			".dagctl/config.yaml:3: environments[0].name: is required",
			`.dagctl/config.yaml:4: environments[1].name: "my env" is not a valid environment name (letters, digits, "_" and "-", starting with a letter or digit, at most 64)`,
			`.dagctl/config.yaml:5: environments[2].name: "-dev" is not a valid environment name (letters, digits, "_" and "-", starting with a letter or digit, at most 64)`,
			`.dagctl/config.yaml:7: environments[4].name: duplicate environment name "Dev" (first on line 6)`}},
		{"approvals", "version: 1\nenvironments:\n  - {name: prod, required_approvals: 0}\n  - {name: dev, required_approvals: -1}\n", []string{
			".dagctl/config.yaml:3: environments[0].required_approvals: must be at least 1 for a protected environment (set protected: false to apply without approval)",
			".dagctl/config.yaml:4: environments[1].required_approvals: must be 0 or more, not -1"}},
		{"principals", "version: 1\nenvironments:\n  - name: prod\n    approvers: [ok, 'two words', org/, /team]\n    appliers: ['@']\n", []string{
			`.dagctl/config.yaml:4: environments[0].approvers[1]: "two words" is not a user login or an org/team slug`,
			`.dagctl/config.yaml:4: environments[0].approvers[2]: "org/" is not a user login or an org/team slug`,
			`.dagctl/config.yaml:4: environments[0].approvers[3]: "/team" is not a user login or an org/team slug`,
			`.dagctl/config.yaml:5: environments[0].appliers[0]: "@" is not a user login or an org/team slug`}},
		{"timeouts", "version: 1\njob:\n  timeout: 30\n", []string{
			`.dagctl/config.yaml:3: job.timeout: "30" is not a duration like 30m or 1h30m`}},
		{"timeout too long", "version: 1\njob:\n  timeout: 25h\n", []string{
			".dagctl/config.yaml:3: job.timeout: 25h is longer than the maximum of 24h"}},
		{"timeout zero", "version: 1\njob:\n  timeout: 0s\n", []string{
			".dagctl/config.yaml:3: job.timeout: must be longer than 0"}},
		{"job env and pass_env", "version: 1\njob:\n  env:\n    1BAD: x\n    DAGCTL_TOKEN: x\n    dagctl_x: y\n    NESTED: {a: b}\n    OK: x\n  pass_env: [OK, 'A-B', DAGCTL_GITHUB_PRIVATE_KEY, FINE]\n", []string{
			`.dagctl/config.yaml:4: job.env.1BAD: "1BAD" is not a valid variable name (letters, digits and "_", not starting with a digit)`,
			".dagctl/config.yaml:5: job.env.DAGCTL_TOKEN: DAGCTL_TOKEN is reserved: DAGCTL_* variables belong to the bot",
			".dagctl/config.yaml:6: job.env.dagctl_x: dagctl_x is reserved: DAGCTL_* variables belong to the bot",
			".dagctl/config.yaml:7: job.env.NESTED: must be a string, not a mapping",
			".dagctl/config.yaml:9: job.pass_env[0]: OK is also set in job.env; use one or the other",
			`.dagctl/config.yaml:9: job.pass_env[1]: "A-B" is not a valid variable name (letters, digits and "_", not starting with a digit)`,
			".dagctl/config.yaml:9: job.pass_env[2]: DAGCTL_GITHUB_PRIVATE_KEY is reserved: DAGCTL_* variables belong to the bot"}},
		{"secrets and image", "version: 1\njob:\n  image: 'a b'\n  secrets: [Creds, ok-1, -x]\n", []string{
			`.dagctl/config.yaml:3: job.image: "a b" is not a container image reference`,
			`.dagctl/config.yaml:4: job.secrets[0]: "Creds" is not a Kubernetes secret name (lower-case letters, digits, "-" and ".")`,
			`.dagctl/config.yaml:4: job.secrets[2]: "-x" is not a Kubernetes secret name (lower-case letters, digits, "-" and ".")`}},
		{"pr_environment", "version: 1\npr_environment: pr\n", []string{
			`.dagctl/config.yaml:2: pr_environment: "pr" must contain {number}, e.g. pr_{number}`}},
		{"pr_environment placeholder", "version: 1\npr_environment: pr_{number}_{branch}\n", []string{
			`.dagctl/config.yaml:2: pr_environment: "pr_{number}_{branch}" has a placeholder other than {number}`}},
		{"pr_environment name", "version: 1\npr_environment: pr {number}\n", []string{
			`.dagctl/config.yaml:2: pr_environment: "pr {number}" does not make a valid environment name (letters, digits, "_" and "-", starting with a letter or digit)`}},
		{"deploy_branches", "version: 1\ndeploy_branches: [release, 'a b', release, x..y]\n", []string{
			`.dagctl/config.yaml:2: deploy_branches[1]: "a b" is not a branch name`,
			`.dagctl/config.yaml:2: deploy_branches[2]: "release" is listed twice`,
			`.dagctl/config.yaml:2: deploy_branches[3]: "x..y" is not a branch name`}},
		{"plan_drafts", "version: 1\nplan_drafts: sometimes\n", []string{
			`.dagctl/config.yaml:2: plan_drafts: must be true or false, not "sometimes"`}},
		{"long values are shortened", "version: 1\nprojects:\n  - framework: " + strings.Repeat("x", 100) + "\n", []string{
			`.dagctl/config.yaml:3: projects[0].framework: "` + strings.Repeat("x", 60) + `…" is not one of sqlmesh, dbt`}},
		{"problems are sorted by line across both stages", "version: 3\nenvironments:\n  - name: dev\n    apply_on: never\n  - nme: x\n", []string{
			".dagctl/config.yaml:1: version: 3 is not supported; the only version is 1",
			`.dagctl/config.yaml:4: environments[0].apply_on: "never" is not one of comment, merge`,
			`.dagctl/config.yaml:5: environments[1].nme: unknown key (did you mean "name"?)`,
			".dagctl/config.yaml:5: environments[1].name: is required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(Path, []byte(tt.yaml))
			require.Error(t, err)
			var cfgErr *Error
			require.True(t, errors.As(err, &cfgErr), "want *Error, got %T", err)
			assert.Equal(t, tt.want, strings.Split(err.Error(), "\n"))
			for _, p := range cfgErr.Problems {
				assert.Equal(t, Path, p.File)
			}
		})
	}
}

func TestProblemsCarryColumns(t *testing.T) {
	_, err := Parse(Path, []byte("version: 1\nenvironments:\n  - name: prod\n    apply_on: [merge, on-merge]\n"))
	var cfgErr *Error
	require.ErrorAs(t, err, &cfgErr)
	require.Len(t, cfgErr.Problems, 1)
	assert.Equal(t, Problem{File: Path, Line: 4, Column: 23, Field: "environments[0].apply_on[1]",
		Msg: `"on-merge" is not one of comment, merge`}, cfgErr.Problems[0])
}

func TestErrorRenderingIsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("version: 1\nenvironments:\n")
	for range 80 {
		b.WriteString("  - name: 'bad name'\n")
	}
	_, err := Parse(Path, []byte(b.String()))
	var cfgErr *Error
	require.ErrorAs(t, err, &cfgErr)
	assert.Len(t, cfgErr.Problems, 80)
	lines := strings.Split(err.Error(), "\n")
	assert.Len(t, lines, maxRenderedProblems+1)
	assert.Equal(t, "… and 30 more problems", lines[len(lines)-1])
}

func TestParseRefusesHugeFiles(t *testing.T) {
	_, err := Parse(Path, []byte("version: 1\n"+strings.Repeat("#", MaxSize)))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the limit is 1048576")
}

func TestSuggest(t *testing.T) {
	tests := []struct{ key, want string }{
		{"protectd", "protected"},
		{"Protected", "protected"},
		{"plan-on-pr", "plan_on_pr"},
		{"requiredApprovals", "required_approvals"},
		{"aprovers", "approvers"},
		{"applier", "appliers"},
		{"apply-on", "apply_on"},
		{"nmae", "name"},
		{"colour", ""},
		{strings.Repeat("a", 200), ""},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, suggest(tt.key, environmentKeys), tt.key)
	}
}

// Aliases can make a small file stand for a huge tree; Parse must refuse it rather than walk it.
func TestParseRefusesAliasExpansion(t *testing.T) {
	var b strings.Builder
	b.WriteString("version: 1\nlogins: &many [")
	for i := range 20000 {
		fmt.Fprintf(&b, "u%d,", i)
	}
	b.WriteString("]\nenvironments:\n")
	for i := range 1000 {
		fmt.Fprintf(&b, "  - {name: e%d, approvers: *many}\n", i)
	}
	_, err := Parse(Path, []byte(b.String()))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the file expands to too many values")
}

// The server's rules are checked with the file's own: a refused secret is a problem at the line that names it.
func TestParseWithRulesRefusesSecretsWhereTheyAreNamed(t *testing.T) {
	yaml := "version: 1\njob:\n  secrets:\n    - warehouse\n    - dagctl-bot\n  timeout: 0s\n"
	rules := Rules{RefuseSecret: func(name string) string {
		if name == "dagctl-bot" {
			return "is one of the bot's own Secrets"
		}
		return ""
	}}

	_, err := ParseWithRules(Path, []byte(yaml), rules)

	require.Error(t, err)
	assert.Equal(t, []string{
		`.dagctl/config.yaml:5: job.secrets[1]: "dagctl-bot" is one of the bot's own Secrets`,
		".dagctl/config.yaml:6: job.timeout: must be longer than 0",
	}, strings.Split(err.Error(), "\n"))
	cfg, err := ParseWithRules(Path, []byte("version: 1\njob:\n  secrets: [warehouse]\n"), rules)
	require.NoError(t, err)
	assert.Equal(t, []string{"warehouse"}, cfg.Job.Secrets)
}
