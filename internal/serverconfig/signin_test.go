package serverconfig

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSignInSettings(t *testing.T) {
	e, _ := newEnv(t)
	e[EnvGitHubClientID] = "Iv1.abc"
	e[EnvGitHubClientSecret] = "gh-client-secret"
	e[EnvGitLabToken], e[EnvGitLabWebhookSecret] = "glpat-x", "hook"
	e[EnvGitLabOAuthAppID] = "app-1"
	e[EnvGitLabOAuthSecret] = "gl-oauth-secret"
	e[EnvSessionKeys] = strings.Repeat("a", 32) + ", " + strings.Repeat("b", 64)
	cfg, err := load(t, e)
	require.NoError(t, err)
	assert.Equal(t, "Iv1.abc", cfg.GitHub.ClientID)
	assert.Equal(t, "gh-client-secret", cfg.GitHub.ClientSecret.Reveal())
	assert.Equal(t, "app-1", cfg.GitLab.OAuthAppID)
	assert.Equal(t, "gl-oauth-secret", cfg.GitLab.OAuthSecret.Reveal())
	require.Len(t, cfg.SessionKeys, 2)
	assert.Equal(t, strings.Repeat("b", 64), cfg.SessionKeys[1].Reveal())
	printed := fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg)
	for _, secret := range []string{"gh-client-secret", "gl-oauth-secret", strings.Repeat("a", 32)} {
		assert.NotContains(t, printed, secret)
	}

	e, _ = newEnv(t)
	cfg, err = load(t, e)
	require.NoError(t, err)
	assert.Empty(t, cfg.SessionKeys, "default: a key kept in the database")
	assert.Empty(t, cfg.GitHub.ClientID)
}

func TestSignInSettingsRefused(t *testing.T) {
	for name, tc := range map[string]struct {
		set  map[string]string
		want string
	}{
		"a client id without its secret": {map[string]string{EnvGitHubClientID: "Iv1.abc"}, EnvGitHubClientSecret},
		"a client secret without its id": {map[string]string{EnvGitHubClientSecret: "s"}, EnvGitHubClientID},
		"a GitLab application without GitLab": {map[string]string{EnvGitLabOAuthAppID: "a", EnvGitLabOAuthSecret: "s"},
			EnvGitLabOAuthAppID},
		"a short session key": {map[string]string{EnvSessionKeys: strings.Repeat("a", 32) + ",short"}, "key 2 has 5 characters"},
	} {
		t.Run(name, func(t *testing.T) {
			e, _ := newEnv(t)
			for k, v := range tc.set {
				e[k] = v
			}
			_, err := load(t, e)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), strings.Repeat("a", 32), "a key is never echoed")
		})
	}
}
