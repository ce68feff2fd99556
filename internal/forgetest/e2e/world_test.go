package e2e_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/forgetest/e2e"
)

func names(ks []e2e.Kind) []string {
	var out []string
	for _, k := range ks {
		out = append(out, k.Name)
	}
	return out
}

func TestForgesAreChosenByName(t *testing.T) {
	for _, tc := range []struct{ env, want []string }{
		{[]string{""}, []string{"github", "gitlab"}},
		{[]string{"  "}, []string{"github", "gitlab"}},
		{[]string{"gitlab"}, []string{"gitlab"}},
		{[]string{"github"}, []string{"github"}},
		{[]string{"GitLab, github"}, []string{"gitlab", "github"}},
		{[]string{"github,github,"}, []string{"github"}},
	} {
		got, err := e2e.SelectForges(tc.env[0], e2e.AllForges)
		require.NoError(t, err, "%q", tc.env[0])
		assert.Equal(t, tc.want, names(got), "%q", tc.env[0])
	}
}

func TestAnUnknownForgeNameFailsLoudly(t *testing.T) {
	for _, env := range []string{"gitlba", "github,bitbucket", ","} {
		_, err := e2e.SelectForges(env, e2e.AllForges)
		require.Error(t, err, "%q", env)
		assert.Contains(t, err.Error(), e2e.ForgesEnv)
	}
}
