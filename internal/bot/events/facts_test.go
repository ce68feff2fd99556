package events

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/bot/jobrun"
	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/deploy"
	"github.com/dagctl/dagctl-bot/internal/framework"
	"github.com/dagctl/dagctl-bot/internal/framework/frameworktest"
	"github.com/dagctl/dagctl-bot/internal/framework/sqlmesh"
	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
)

// A change without a category is refused as uncategorised only for a framework that categorises (sqlmesh),
// and the refusal names it; for one without categories (the dbt-like test framework) it is applied.
func TestUncategorisedChangesAreRefusedOnlyForAFrameworkWithCategories(t *testing.T) {
	ctx := context.Background()
	store, err := db.Open(filepath.Join(t.TempDir(), "dagctl.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	frameworks, err := framework.NewRegistry(sqlmesh.New("python"), frameworktest.NewDBTLike("python"))
	require.NoError(t, err)
	h := &Handlers{Store: store, Runner: jobrun.New(jobrun.Config{Jobs: framework.JobSettings{Frameworks: frameworks}})}

	summary := plan.Summary{Environment: "prod", DirectlyModified: []plan.Change{{Model: "db.orders"}}} // no category stored
	p, err := store.CreatePlan(ctx, db.Plan{Forge: "github", Repo: "acme/warehouse", PR: 1, Project: "default", Environment: "prod", HeadSHA: sha40})
	require.NoError(t, err)
	_, err = store.SetPlanStatus(ctx, p.ID, plan.StatusRunning)
	require.NoError(t, err)
	p, err = store.SetPlanResult(ctx, p.ID, db.PlanResult{Status: plan.StatusReady, Summary: &summary})
	require.NoError(t, err)

	decide := func(fw repoconfig.Framework) deploy.Decision {
		behind := 0
		c := candidate{plan: p, target: deploy.Target{Name: "prod", Env: deploy.Env{Name: "prod", AppliesOnTrigger: true}, SHA: sha40,
			Behind: &behind, Approval: &deploy.Approval{Approved: true}}}
		require.NoError(t, h.planFacts(ctx, &c, repoconfig.Project{Name: "default", Framework: fw}))
		return deploy.Decide(deploy.Facts{Step: deploy.StepAsked, Trigger: repoconfig.ApplyOnComment, User: "alice",
			PR: deploy.PR{HeadSHA: sha40, BaseRef: "main", DefaultBranch: "main", BaseIsDeployBranch: true}, Target: &c.target})
	}

	d := decide(repoconfig.SQLMesh)
	require.Equal(t, deploy.Refuse, d.Verdict)
	assert.Equal(t, deploy.CodeUncategorized, d.Reasons[0].Code)
	assert.Equal(t, "`prod` has changes sqlmesh cannot categorise (db.orders): categorise them in the project and push", d.Reasons[0].Message)

	d = decide(repoconfig.DBT)
	assert.Equal(t, deploy.Apply, d.Verdict, "%v %v", d.Need, d.Reasons)
}
