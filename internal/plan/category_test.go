package plan

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestNoCategoryIsNotUncategorized(t *testing.T) {
	s := Summary{DirectlyModified: []Change{
		{Model: "a", Category: NoCategory},
		{Model: "b", Category: Uncategorized},
		{Model: "c", Category: ""}, // a categorising framework that said nothing: fail closed
		{Model: "d", Category: Breaking},
	}}
	assert.Equal(t, []string{"b", "c"}, s.Uncategorized())
	assert.True(t, s.Categorized())

	dbt := Summary{DirectlyModified: []Change{{Model: "a", Category: NoCategory}}, IndirectlyModified: []Change{{Model: "b", Category: NoCategory}}}
	assert.Empty(t, dbt.Uncategorized())
	assert.False(t, dbt.Categorized())
	assert.Equal(t, "", NoCategory.Label())
}

func TestNoCategoryScopeDifferenceNamesNoCategory(t *testing.T) {
	approved := Summary{}
	now := Summary{DirectlyModified: []Change{{Model: "m", Category: NoCategory}}}
	assert.Equal(t, []string{"`m` is now directly modified"}, ScopeDifferences(approved, now))
}
