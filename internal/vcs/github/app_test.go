package github_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/forgetest/githubfake"
	"github.com/dagctl/dagctl-bot/internal/vcs"
	"github.com/dagctl/dagctl-bot/internal/vcs/github"
)

func TestAPIURLs(t *testing.T) {
	t.Setenv(github.APIURLEnv, "")
	for _, tc := range []struct{ in, base, upload string }{
		{"", "https://api.github.com/", "https://uploads.github.com/"},
		{"https://api.github.com", "https://api.github.com/", "https://uploads.github.com/"},
		{"https://api.github.com/", "https://api.github.com/", "https://uploads.github.com/"},
		{"https://ghe.example.com", "https://ghe.example.com/api/v3/", "https://ghe.example.com/api/uploads/"},
		{"https://ghe.example.com/", "https://ghe.example.com/api/v3/", "https://ghe.example.com/api/uploads/"},
		{"https://ghe.example.com/api/v3", "https://ghe.example.com/api/v3/", "https://ghe.example.com/api/uploads/"},
		{"https://ghe.example.com/api/v3/", "https://ghe.example.com/api/v3/", "https://ghe.example.com/api/uploads/"},
		{"http://127.0.0.1:8080/api/v3", "http://127.0.0.1:8080/api/v3/", "http://127.0.0.1:8080/api/uploads/"},
		{"https://api.acme.ghe.com", "https://api.acme.ghe.com/", "https://uploads.acme.ghe.com/"},
	} {
		base, upload, err := github.APIURLs(tc.in)
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.base, base, tc.in)
		assert.Equal(t, tc.upload, upload, tc.in)
	}

	t.Setenv(github.APIURLEnv, "https://ghe.internal")
	base, _, err := github.APIURLs("")
	require.NoError(t, err)
	assert.Equal(t, "https://ghe.internal/api/v3/", base, "from DAGCTL_GITHUB_API_URL")

	_, _, err = github.APIURLs("not a url")
	assert.Error(t, err)
}

func TestAPIURLFromEnvironment(t *testing.T) {
	e := newEnv(t)
	e.openPR()
	pemBytes, _ := appKey(t)
	t.Setenv(github.APIURLEnv, e.fake.URL()) // the server root: /api/v3 is added
	inst, err := github.NewInstallation(github.Config{AppID: testAppID, PrivateKey: pemBytes}, testInstallationID)
	require.NoError(t, err)
	pr, err := inst.PullRequest(e.ctx, e.repo, 1)
	require.NoError(t, err)
	assert.Equal(t, 1, pr.Number)
}

func TestNewAppRejectsBadConfig(t *testing.T) {
	pemBytes, _ := appKey(t)
	_, err := github.NewApp(github.Config{PrivateKey: pemBytes})
	assert.ErrorContains(t, err, "app id")
	_, err = github.NewApp(github.Config{AppID: 1, PrivateKey: []byte("not a key")})
	assert.ErrorContains(t, err, "private key")
}

func TestExchangeManifestCode(t *testing.T) {
	fake := githubfake.New(t)
	pemBytes, _, err := githubfake.GenerateAppKey()
	require.NoError(t, err)
	fake.AddManifestCode("code-123", githubfake.ManifestApp{
		ID: 9001, Slug: "dagctl-acme", Name: "dagctl (acme)", Owner: "acme", PEM: string(pemBytes),
		WebhookSecret: "whsec", ClientID: "Iv1.abc", ClientSecret: "shh",
	})
	fake.AddInstallation(githubfake.Installation{ID: 5, AppID: 9001, Account: "acme"})
	fake.AddRepo("acme", "warehouse", "", "")

	creds, err := github.ExchangeManifestCode(t.Context(), fake.APIURL(), "code-123")
	require.NoError(t, err)
	assert.Equal(t, github.AppCredentials{
		ID: 9001, Slug: "dagctl-acme", Name: "dagctl (acme)", Owner: "acme",
		HTMLURL: fake.URL() + "/apps/dagctl-acme", PEM: string(pemBytes), WebhookSecret: "whsec",
		ClientID: "Iv1.abc", ClientSecret: "shh",
	}, creds)

	_, err = github.ExchangeManifestCode(t.Context(), fake.APIURL(), "code-123")
	assert.ErrorIs(t, err, vcs.ErrNotFound, "a code is redeemed once")

	// The credentials are enough to act as the new app.
	inst, err := github.NewInstallation(github.Config{
		AppID: creds.ID, PrivateKey: []byte(creds.PEM), APIURL: fake.APIURL(),
	}, 5)
	require.NoError(t, err)
	token, err := inst.CloneToken(t.Context(), vcs.Repo{Owner: "acme", Name: "warehouse"})
	require.NoError(t, err)
	assert.Regexp(t, `^ghs_9001_`, token)
}
