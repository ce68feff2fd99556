package repoconfig

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseWithRulesRefusesAnImageBuilderAtItsLine(t *testing.T) {
	const yaml = `version: 1
projects:
  - path: marts
    framework: dbt
    image:
      repository: ghcr.io/acme/marts
      builder: dockerfile
  - path: finance
    framework: dbt
    image:
      base: ghcr.io/dbt-labs/dbt-postgres:1.11.0
      repository: ghcr.io/acme/finance
`
	onlyLayers := Rules{RefuseImageBuilder: func(b ImageBuilder) string {
		if b == BuildDockerfile {
			return "needs the Kubernetes executor"
		}
		return ""
	}}
	_, err := ParseWithRules(Path, []byte(yaml), onlyLayers)
	require.Error(t, err)
	assert.Equal(t, ".dagctl/config.yaml:7: projects[0].image.builder: dockerfile needs the Kubernetes executor", err.Error())

	cfg, err := ParseWithRules(Path, []byte(yaml), Rules{})
	require.NoError(t, err, "without the rule every builder is allowed")
	assert.Equal(t, BuildDockerfile, cfg.Projects[0].DBT.Image.Builder)

	refuseAll := Rules{RefuseImageBuilder: func(ImageBuilder) string { return "is not configured on this bot" }}
	_, err = ParseWithRules(Path, []byte(yaml), refuseAll)
	require.Error(t, err)
	assert.Contains(t, err.Error(), ".dagctl/config.yaml:7: projects[0].image.builder: dockerfile is not configured on this bot")
	assert.Contains(t, err.Error(), ".dagctl/config.yaml:11: projects[1].image.builder: layers is not configured on this bot", "the default, at its image")
}
