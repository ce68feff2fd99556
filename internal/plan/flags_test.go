package plan

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestFlagsSet(t *testing.T) {
	assert.Empty(t, Flags{}.Set())
	assert.Empty(t, Flags{RestateModels: []string{}}.Set(), "an empty restatement list is none")
	assert.Equal(t, []Flag{FlagForwardOnly, FlagRestateModel, FlagStart, FlagEnd},
		Flags{ForwardOnly: true, RestateModels: []string{"a"}, Start: "2024-01-01", End: "2024-02-01"}.Set())
	assert.Equal(t, []Flag{FlagEnd}, Flags{End: "1 week ago"}.Set())
}
