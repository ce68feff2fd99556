package serverconfig

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/repoconfig"
)

func TestJobSetup(t *testing.T) {
	e, _ := newEnv(t)
	cfg, err := load(t, e)
	require.NoError(t, err)
	assert.Equal(t, repoconfig.SetupAllowlist{}, cfg.JobSetup, "default: no setup step runs")

	e[EnvJobSetup] = "pip install -r requirements.txt, dbt deps"
	cfg, err = load(t, e)
	require.NoError(t, err)
	assert.Equal(t, [][]string{{"pip", "install", "-r", "requirements.txt"}, {"dbt", "deps"}}, cfg.JobSetup.Prefixes)

	cfg, err = load(t, e, "-job-setup", "any")
	require.NoError(t, err)
	assert.True(t, cfg.JobSetup.Any)

	e[EnvJobSetup] = "pip install && curl x"
	_, err = load(t, e)
	assert.ErrorContains(t, err, `DAGCTL_JOB_SETUP (-job-setup): "pip install && curl x" is not a command prefix of plain words`)
}
