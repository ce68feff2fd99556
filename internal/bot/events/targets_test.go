package events

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/command"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

func config() repoconfig.Config {
	cfg := repoconfig.Default()
	return cfg
}

func TestTargets(t *testing.T) {
	cfg := config()
	pr := vcs.PullRequest{Number: 4}
	targets, note := AutoTargets(cfg, pr)
	assert.Empty(t, note)
	require.Len(t, targets, 2)
	assert.Equal(t, "prod", targets[0].Env.Name)

	_, note = AutoTargets(cfg, vcs.PullRequest{Number: 4, Fork: true, HeadSHA: sha40})
	assert.Contains(t, note, "`/dagctl plan --sha "+sha40+"`", "a fork's note names its head in full")
	_, note = AutoTargets(cfg, vcs.PullRequest{Number: 4, Draft: true})
	assert.Equal(t, NoteDraft, note)
	cfg.PlanDrafts = true
	targets, _ = AutoTargets(cfg, vcs.PullRequest{Number: 4, Draft: true})
	assert.Len(t, targets, 2)

	cfg.PREnvironment = "pr_{number}"
	targets, err := CommandTargets(cfg, pr, "pr_4")
	require.NoError(t, err)
	require.Len(t, targets, 1)
	assert.True(t, targets[0].Env.AppliesOn(repoconfig.ApplyOnComment))
	assert.False(t, targets[0].Env.Protected)
	_, err = CommandTargets(cfg, pr, "staging")
	assert.EqualError(t, err, "environment `staging` is not configured; this PR has `prod`, `dev`, `pr_4`")
}

// sha40 is a full commit SHA.
const sha40 = "0123456789abcdef0123456789abcdef01234567"

func TestPinRefusal(t *testing.T) {
	moved := "fedcba9876543210fedcba9876543210fedcba98"
	bare := command.Command{Verb: command.Plan}
	dev := command.Command{Verb: command.Plan, Env: "dev"}
	pinned := func(c command.Command, sha string) command.Command { c.SHA = sha; return c }
	fork := vcs.PullRequest{Number: 4, Fork: true, HeadSHA: sha40}
	own := vcs.PullRequest{Number: 4, HeadSHA: sha40}

	assert.Empty(t, PinRefusal(own, bare), "a PR of the repository is planned at its head")
	assert.Empty(t, PinRefusal(own, pinned(dev, sha40)))
	assert.Empty(t, PinRefusal(fork, pinned(bare, sha40)), "a fork at the commit named")

	refusal := PinRefusal(fork, bare)
	assert.Contains(t, refusal, "Nothing was planned")
	assert.Contains(t, refusal, "`/dagctl plan --sha "+sha40+"`")
	for _, pr := range []vcs.PullRequest{fork, own} {
		refusal = PinRefusal(pr, pinned(dev, moved))
		assert.Contains(t, refusal, "head moved")
		assert.Contains(t, refusal, "`/dagctl plan dev --sha "+sha40+"`", "the command for the new head, same environment")
	}
}

// A dbt project with pr_environment is built in the PR's own environment (pr_{number} when the repository sets
// no pattern), with nothing to apply there; the sqlmesh project beside it, and a dbt project without
// pr_environment, are not planned in it.
func TestThePREnvironmentOfDBTProjects(t *testing.T) {
	cfg, err := repoconfig.Parse(repoconfig.Path, []byte(`version: 1
projects:
  - {name: warehouse, path: ., framework: sqlmesh}
  - {name: marts, path: marts, framework: dbt, pr_environment: {schema: "dbt_pr_{number}"}}
  - {name: bare, path: bare, framework: dbt}
`))
	require.NoError(t, err)
	targets, note := AutoTargets(cfg, vcs.PullRequest{Number: 4})
	require.Empty(t, note)
	var names []string
	for _, tg := range targets {
		names = append(names, tg.Project.Name+"/"+tg.Env.Name)
		if tg.Env.Name == "pr_4" {
			assert.Empty(t, tg.Env.ApplyOn, "the PR build is the plan: nothing is applied to it")
			assert.False(t, tg.Env.NeedsApproval())
		}
	}
	assert.Equal(t, []string{"warehouse/prod", "marts/prod", "bare/prod", "warehouse/dev", "marts/dev", "bare/dev", "marts/pr_4"}, names)

	targets, err = CommandTargets(cfg, vcs.PullRequest{Number: 4}, "pr_4")
	require.NoError(t, err)
	require.Len(t, targets, 1)
	assert.Equal(t, "marts", targets[0].Project.Name)

	cfg.PREnvironment = "pr_{number}" // the repository's own: sqlmesh is planned in it too
	targets, _ = CommandTargets(cfg, vcs.PullRequest{Number: 4}, "pr_4")
	require.Len(t, targets, 2)
	assert.Equal(t, "warehouse", targets[0].Project.Name)
	assert.Equal(t, []repoconfig.ApplyTrigger{repoconfig.ApplyOnComment}, targets[0].Env.ApplyOn, "sqlmesh's PR environment is applied by comment")
	assert.Empty(t, targets[1].Env.ApplyOn)
}
