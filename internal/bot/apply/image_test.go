package apply

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

func TestWhichDeploysBuildAnImage(t *testing.T) {
	withImage := repoconfig.Project{Framework: repoconfig.DBT, DBT: &repoconfig.DBTProject{Image: &repoconfig.DBTImage{Base: "b", Repository: "registry.example/acme/marts"}}}
	noRepository := repoconfig.Project{Framework: repoconfig.DBT, DBT: &repoconfig.DBTProject{Image: &repoconfig.DBTImage{Base: "b"}}}
	noImage := repoconfig.Project{Framework: repoconfig.DBT, DBT: &repoconfig.DBTProject{}}
	dbt := func(deploy bool, scope plan.Scope) *plan.Summary {
		return &plan.Summary{DBT: &plan.DBT{Deploy: deploy, Scope: scope}}
	}
	for name, tc := range map[string]struct {
		approved       *plan.Summary
		project        repoconfig.Project
		deploys, image bool
	}{
		"all":                            {dbt(true, plan.ScopeAll), withImage, true, true},
		"selective":                      {dbt(true, plan.ScopeSelective), withImage, true, true},
		"build_only":                     {dbt(true, plan.ScopeBuildOnly), withImage, true, true},
		"none":                           {dbt(true, plan.ScopeNone), withImage, false, false},
		"not a deploy":                   {dbt(false, plan.ScopeAll), withImage, false, false},
		"sqlmesh":                        {&plan.Summary{}, repoconfig.Project{}, false, false},
		"no plan":                        {nil, withImage, false, false},
		"a repository the merge blanked": {dbt(true, plan.ScopeAll), noRepository, true, false},
		"no image settings":              {dbt(true, plan.ScopeAll), noImage, true, false},
	} {
		t.Run(name, func(t *testing.T) {
			b := imageBuildOf(tc.approved, tc.project)
			assert.Equal(t, tc.deploys, b.deploys)
			assert.Equal(t, tc.image, b.image != nil)
		})
	}
}

func TestAnAppliesEndTellsTheImage(t *testing.T) {
	ok := applyEnding{conclusion: vcs.StatusSuccess, title: "Applied in 3s", note: "image built: `r@sha256:1`"}
	assert.Equal(t, "✅ `prod`: Applied in 3s\n\nImage built: `r@sha256:1`.", endReply("prod", ok))
	none := applyEnding{conclusion: vcs.StatusSuccess, title: "Applied in 3s", note: NoImageNote}
	assert.Equal(t, "✅ `prod`: Applied in 3s\n\nNo image repository configured: ran in the checkout.", endReply("prod", none))
	failed := applyEnding{conclusion: vcs.StatusFailure, title: "Building the image failed: nothing was applied", summary: "refused"}
	assert.Equal(t, "❌ `prod`: Building the image failed: nothing was applied\n\nrefused", endReply("prod", failed))
}

func TestTheProjectsFilesAreRelativeToIt(t *testing.T) {
	files := map[string]string{"dbt/models/a.sql": "1", "dbt/dbt_project.yml": "2", "README.md": "3", "dbtx/b.sql": "4"}
	assert.Equal(t, map[string]string{"models/a.sql": "1", "dbt_project.yml": "2"}, projectFiles("dbt", files))
	assert.Equal(t, files, projectFiles(".", files))
}
