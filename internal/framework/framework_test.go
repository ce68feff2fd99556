package framework

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
)

func TestUnknownFrameworkIsAClearError(t *testing.T) {
	r, err := NewRegistry()
	require.NoError(t, err)
	_, err = r.For(repoconfig.Project{Name: "shop", Framework: repoconfig.DBT})
	require.Error(t, err)
	assert.Equal(t, "project shop: framework dbt is not supported by this dagctl-bot (it runs no framework)", err.Error())

	_, _, err = JobSettings{Frameworks: r}.Spec(JobRequest{Project: repoconfig.Project{Name: "shop", Framework: repoconfig.DBT}})
	assert.ErrorContains(t, err, "framework dbt is not supported", "no job is built for it")
}

// A framework that takes no plan flags (dbt) refuses sqlmesh's at command time, by name.
func TestFlagsAFrameworkDoesNotTakeAreAUsageError(t *testing.T) {
	err := checkFlags(repoconfig.DBT, nil, "shop", plan.Flags{RestateModels: []string{"orders"}})
	var fe *FlagError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, []plan.Flag{plan.FlagRestateModel}, fe.Refused)
	assert.Equal(t, "project `shop` is a dbt project: `--restate-model` is not for dbt (it takes no plan flags)", err.Error())

	err = checkFlags(repoconfig.DBT, []plan.Flag{plan.FlagStart}, "shop", plan.Flags{ForwardOnly: true, Start: "2024-01-01", End: "2024-02-01"})
	assert.EqualError(t, err, "project `shop` is a dbt project: `--forward-only`, `--end` are not for dbt (it takes only `--start`)")

	assert.NoError(t, checkFlags(repoconfig.DBT, nil, "shop", plan.Flags{}), "no flags is always fine")
	assert.NoError(t, checkFlags(repoconfig.SQLMesh, []plan.Flag{plan.FlagForwardOnly, plan.FlagRestateModel, plan.FlagStart, plan.FlagEnd},
		"shop", plan.Flags{ForwardOnly: true, RestateModels: []string{"a"}, Start: "x", End: "y"}))
}

func TestMeaningOfASummary(t *testing.T) {
	withCategories := func() plan.Summary {
		return plan.Summary{
			DirectlyModified:   []plan.Change{{Model: "a", Category: plan.Breaking}, {Model: "b", Category: plan.NoCategory}},
			IndirectlyModified: []plan.Change{{Model: "c", Category: plan.IndirectBreaking}},
		}
	}
	s := withCategories()
	Meaning(false, &s)
	assert.Empty(t, s.Uncategorized(), "a framework without categories never has an uncategorised change")
	for _, c := range append(s.DirectlyModified, s.IndirectlyModified...) {
		assert.Equal(t, plan.NoCategory, c.Category, c.Model)
	}

	s = withCategories()
	Meaning(true, &s)
	assert.Equal(t, []string{"b"}, s.Uncategorized(), "a categorising framework's no-category change fails closed")
	assert.Equal(t, plan.Breaking, s.DirectlyModified[0].Category)
}
