package server

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/framework"
	"github.com/dagctl/dagctl-bot/internal/framework/dbt"
	"github.com/dagctl/dagctl-bot/internal/framework/frameworktest"
	"github.com/dagctl/dagctl-bot/internal/framework/sqlmesh"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
)

// The server runs the real dbt beside sqlmesh; a framework a test registers under a built-in's name stands in
// for it instead of being refused as registered twice.
func TestTheServerRunsDBTAndATestsStandInReplacesIt(t *testing.T) {
	builtin := []framework.Framework{sqlmesh.New("/venv/bin/python"), dbt.New("/venv/bin/python")}
	reg, err := framework.NewRegistry(withFrameworks(builtin, nil)...)
	require.NoError(t, err)
	got, err := reg.For(repoconfig.Project{Name: "marts", Framework: repoconfig.DBT})
	require.NoError(t, err)
	assert.IsType(t, dbt.Framework{}, got, "the real dbt adapter")

	standIn := frameworktest.NewDBTLike("/venv/bin/python")
	reg, err = framework.NewRegistry(withFrameworks(builtin, []framework.Framework{standIn})...)
	require.NoError(t, err)
	got, err = reg.For(repoconfig.Project{Name: "marts", Framework: repoconfig.DBT})
	require.NoError(t, err)
	assert.IsType(t, frameworktest.DBTLike{}, got)
	assert.Len(t, reg.All(), 2, "sqlmesh stays")
}
