package repoconfig

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mustParse(t *testing.T, yaml string) Config {
	t.Helper()
	cfg, err := Parse(Path, []byte(yaml))
	require.NoError(t, err)
	return cfg
}

func TestMergeTakesProtectionFromBaseAndProjectsFromHead(t *testing.T) {
	base := mustParse(t, `version: 1
projects:
  - {name: old, path: old}
environments:
  - name: prod
    required_approvals: 2
    approvers: [org/leads]
    appliers: [org/platform]
  - name: dev
job:
  timeout: 30m
  secrets: [dev-creds]
  pass_env: [DEV_TOKEN]
pr_environment: pr_{number}
`)
	// The PR tries to loosen prod, add an environment, drop dev, reach another secret and rename PR envs.
	head := mustParse(t, `version: 1
projects:
  - {name: new, path: new, framework: dbt}
environments:
  - name: prod
    protected: false
    required_approvals: 0
    apply_on: comment
    plan_on_pr: false
  - name: yolo
job:
  timeout: 24h
  secrets: [prod-admin-creds]
  pass_env: [PROD_TOKEN]
  image: evil:latest
plan_drafts: true
pr_environment: x_{number}
`)
	got := Merge(base, head)
	assert.Equal(t, Config{
		Version:  1,
		Projects: []Project{{Name: "new", Path: "new", Framework: DBT, DBT: &DBTProject{Commands: []string{"dbt build"}}}},
		Environments: []Environment{
			{Name: "prod", Protected: true, RequiredApprovals: 2, Approvers: []string{"org/leads"},
				Appliers: []string{"org/platform"}, PlanOnPR: false, ApplyOn: []ApplyTrigger{ApplyOnMerge}},
			{Name: "dev", PlanOnPR: true, ApplyOn: []ApplyTrigger{ApplyOnComment}},
		},
		Job: Job{Timeout: 30 * time.Minute, Env: map[string]string{}, Secrets: []string{"dev-creds"},
			PassEnv: []string{"DEV_TOKEN"}},
		PlanDrafts:    true,
		PREnvironment: "pr_{number}",
	}, got)
}

func TestMergeWithoutBaseConfigUsesDefaults(t *testing.T) {
	head := mustParse(t, "version: 1\nenvironments:\n  - {name: prod, protected: false}\n")
	got := Merge(Default(), head)
	prod, ok := got.Environment("prod")
	require.True(t, ok)
	assert.True(t, prod.Protected)
	assert.Equal(t, 1, prod.RequiredApprovals)
	assert.Equal(t, []ApplyTrigger{ApplyOnMerge}, prod.ApplyOn)
	_, ok = got.Environment("dev")
	assert.True(t, ok, "dev comes from the default base")
}

func TestMergeDoesNotShareSlicesWithItsInputs(t *testing.T) {
	base := mustParse(t, "version: 1\nenvironments:\n  - {name: prod, approvers: [a]}\njob: {env: {A: b}, secrets: [s]}\n")
	head := mustParse(t, "version: 1\nprojects: [{path: p}]\n")
	got := Merge(base, head)
	got.Environments[0].Approvers[0] = "changed"
	got.Environments[0].ApplyOn[0] = ApplyOnComment
	got.Job.Env["A"] = "changed"
	got.Job.Secrets[0] = "changed"
	got.Projects[0].Name = "changed"
	assert.Equal(t, "a", base.Environments[0].Approvers[0])
	assert.Equal(t, ApplyOnMerge, base.Environments[0].ApplyOn[0])
	assert.Equal(t, "b", base.Job.Env["A"])
	assert.Equal(t, "s", base.Job.Secrets[0])
	assert.Equal(t, "p", head.Projects[0].Name)
}
