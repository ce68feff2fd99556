package prstate

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

func TestCheckNames(t *testing.T) {
	cfg := repoconfig.Default()
	assert.Equal(t, "dagctl/plan: prod", CheckName(CheckPlan, cfg, "default", "prod"))
	cfg.Projects = append(cfg.Projects, repoconfig.Project{Name: "marts", Path: "marts"})
	assert.Equal(t, "dagctl/apply: marts/prod", CheckName(CheckApply, cfg, "marts", "prod"))
}

func TestCurrentPlansAreTheNewestHeadsLatest(t *testing.T) {
	plans := []db.Plan{
		{ID: 1, HeadSHA: "a", Project: "p", Environment: "prod"},
		{ID: 2, HeadSHA: "b", Project: "p", Environment: "prod"},
		{ID: 3, HeadSHA: "b", Project: "p", Environment: "dev"},
		{ID: 4, HeadSHA: "b", Project: "p", Environment: "prod"}, // re-planned by command
	}
	got := CurrentPlans(plans)
	require.Len(t, got, 2)
	assert.Equal(t, int64(4), got[0].ID)
	assert.Equal(t, int64(3), got[1].ID)
}

// A PR environment compares with, and builds on, production's last deploy: prod, else the first protected
// environment; any other plan with its own environment's.
func TestStateEnvironment(t *testing.T) {
	envs := func(es ...repoconfig.Environment) repoconfig.Config { return repoconfig.Config{Environments: es} }
	assert.Equal(t, "prod", ProductionEnvironment(envs(repoconfig.Environment{Name: "dev"}, repoconfig.Environment{Name: "prod"})))
	assert.Equal(t, "live", ProductionEnvironment(envs(repoconfig.Environment{Name: "dev"}, repoconfig.Environment{Name: "live", Protected: true})))
	assert.Equal(t, "", ProductionEnvironment(envs(repoconfig.Environment{Name: "dev"})))

	pc := PlanContext{PR: vcs.PullRequest{Number: 7}, Env: repoconfig.Environment{Name: "pr_7"}, PREnvironment: true, StateFrom: "prod"}
	assert.Equal(t, "prod", pc.StateEnvironment())
	assert.Equal(t, 7, pc.PRNumber())
	pc.StateFrom = ""
	assert.Equal(t, "pr_7", pc.StateEnvironment(), "no production environment: its own")
	dev := PlanContext{PR: vcs.PullRequest{Number: 7}, Env: repoconfig.Environment{Name: "dev"}, StateFrom: "prod"}
	assert.Equal(t, "dev", dev.StateEnvironment())
	assert.Equal(t, 0, dev.PRNumber(), "not the PR's own environment")
}
