package prstate

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
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
