package serverconfig

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// env is a fake environment. Its PATH holds a directory with an executable named sqlmesh, so that the local
// executor's start-up check can pass without depending on the machine.
type env map[string]string

func newEnv(t *testing.T) (env, string) {
	t.Helper()
	bin := t.TempDir()
	sqlmesh := filepath.Join(bin, "sqlmesh")
	require.NoError(t, os.WriteFile(sqlmesh, []byte("#!/bin/sh\n"), 0o755))
	return env{"PATH": bin}, sqlmesh
}

func (e env) get(k string) string { return e[k] }

func load(t *testing.T, e env, args ...string) (Config, error) {
	t.Helper()
	var out bytes.Buffer
	return LoadWithOutput(args, e.get, &out)
}

var rsaKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func pkcs1PEM() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey())}))
}

func TestDefaults(t *testing.T) {
	e, sqlmesh := newEnv(t)
	cfg, err := load(t, e)
	require.NoError(t, err)
	assert.Equal(t, Config{
		Listen:          ":8080",
		DB:              "./dagctl-data/dagctl.db",
		RunLogMaxBytes:  10 << 20,
		RetryFor:        24 * time.Hour,
		CommandExpiry:   15 * time.Minute,
		RecoverInterval: DefaultRecoverInterval,
		Retention:       Retention{DeliveryBodies: 7 * 24 * time.Hour, Deliveries: 30 * 24 * time.Hour, RunLogs: 90 * 24 * time.Hour},
		Executor:        ExecutorLocal,
		GitHub:          GitHub{APIURL: "https://api.github.com/"},
		GitLab:          GitLab{URL: "https://gitlab.com"},
		SQLMesh:         sqlmesh,
		WorkDir:         filepath.Join(os.TempDir(), "dagctl"),
		JobUsers:        JobUsers{Mode: JobUsersAuto},
		Kubernetes:      Kubernetes{Namespace: "default"},
		Builds:          Builds{Namespace: "default", BuildKitImage: "moby/buildkit:v0.32.2-rootless", Timeout: 30 * time.Minute},
		LogLevel:        slog.LevelInfo,
	}, cfg)
	assert.False(t, cfg.Builds.Enabled())
	assert.False(t, cfg.GitHub.Enabled())
	assert.False(t, cfg.GitLab.Enabled())
}

func TestEnvironmentFillsDefaultsAndFlagsWin(t *testing.T) {
	e, _ := newEnv(t)
	e[EnvListen] = ":9000"
	e[EnvDB] = "/var/lib/dagctl/env.db"
	e[EnvLogLevel] = "debug"
	e[EnvJobEnv] = " SNOWFLAKE_ACCOUNT, ,AWS_REGION,SNOWFLAKE_ACCOUNT"
	cfg, err := load(t, e, "-db", "/flag.db", "--log-level=warn")
	require.NoError(t, err)
	assert.Equal(t, ":9000", cfg.Listen, "from the environment")
	assert.Equal(t, "/flag.db", cfg.DB, "the flag wins over the environment")
	assert.Equal(t, slog.LevelWarn, cfg.LogLevel)
	assert.Equal(t, []string{"SNOWFLAKE_ACCOUNT", "AWS_REGION"}, cfg.JobEnv)
}

func TestGitHub(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "app.pem")
	require.NoError(t, os.WriteFile(keyFile, []byte(pkcs1PEM()), 0o600))
	pkcs8, err := x509.MarshalPKCS8PrivateKey(rsaKey())
	require.NoError(t, err)
	pkcs8PEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}))

	tests := []struct {
		name, key, apiURL, wantAPIURL string
	}{
		{"PEM text", pkcs1PEM(), "", "https://api.github.com/"},
		{"PEM file", keyFile, "https://ghe.example.com/api/v3", "https://ghe.example.com/api/v3/"},
		{"escaped newlines", strings.ReplaceAll(pkcs1PEM(), "\n", `\n`), "https://ghe.example.com/api/v3/", "https://ghe.example.com/api/v3/"},
		{"PKCS#8", pkcs8PEM, "", "https://api.github.com/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, _ := newEnv(t)
			e[EnvGitHubAppID] = "12345"
			e[EnvGitHubPrivateKey] = tt.key
			e[EnvGitHubWebhookSecret] = "hook"
			e[EnvGitHubAPIURL] = tt.apiURL
			cfg, err := load(t, e)
			require.NoError(t, err)
			assert.True(t, cfg.GitHub.Enabled())
			assert.Equal(t, int64(12345), cfg.GitHub.AppID)
			assert.Equal(t, tt.wantAPIURL, cfg.GitHub.APIURL)
			assert.Equal(t, "hook", cfg.GitHub.WebhookSecret.Reveal())
			block, _ := pem.Decode([]byte(cfg.GitHub.PrivateKey.Reveal()))
			require.NotNil(t, block)
		})
	}
}

// GitHub Enterprise Server sets the API URL first and creates the app through /setup afterwards.
func TestAPIURLAloneLeavesTheAppToSetup(t *testing.T) {
	e, _ := newEnv(t)
	e[EnvGitHubAPIURL] = "https://ghe.example.com/api/v3"
	cfg, err := load(t, e)
	require.NoError(t, err)
	assert.False(t, cfg.GitHub.Enabled())
	assert.Equal(t, "https://ghe.example.com/api/v3/", cfg.GitHub.APIURL)

	e[EnvGitHubAppID] = "12345"
	_, err = load(t, e)
	require.Error(t, err, "an app id without its key and secret is a mistake")
	assert.Contains(t, err.Error(), "DAGCTL_GITHUB_PRIVATE_KEY")
}

// A key that does not parse must not be echoed: it would end up in the bot's logs.
func TestPrivateKeyErrorsDoNotShowTheKey(t *testing.T) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ecDER, err := x509.MarshalPKCS8PrivateKey(ecKey)
	require.NoError(t, err)
	good := pkcs1PEM()
	body := strings.Join(strings.Split(good, "\n")[1:4], "") // key material, without the PEM armour
	corrupted := strings.Replace(good, body[:40], strings.Repeat("A", 40), 1)

	tests := []struct {
		name, value, wantErr string
	}{
		{"base64 without armour", body, "DAGCTL_GITHUB_PRIVATE_KEY (-github-private-key): is neither PEM text nor a readable file: "},
		{"corrupted key", corrupted, "DAGCTL_GITHUB_PRIVATE_KEY (-github-private-key): is not a valid RSA private key (PKCS#1)"},
		{"not RSA", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER})), "DAGCTL_GITHUB_PRIVATE_KEY (-github-private-key): is not an RSA key; GitHub App keys are RSA"},
		{"a certificate", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", `DAGCTL_GITHUB_PRIVATE_KEY (-github-private-key): is a PEM "CERTIFICATE" block, not an RSA private key`},
		{"missing file", "/nonexistent/app.pem", "DAGCTL_GITHUB_PRIVATE_KEY (-github-private-key): is neither PEM text nor a readable file: no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, _ := newEnv(t)
			e[EnvGitHubAppID] = "1"
			e[EnvGitHubPrivateKey] = tt.value
			e[EnvGitHubWebhookSecret] = "hook"
			_, err := load(t, e)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
			assert.NotContains(t, err.Error(), body[:20])
			assert.NotContains(t, err.Error(), body[len(body)-20:])
		})
	}
}

func TestInvalidSettingsAreAllReported(t *testing.T) {
	e, _ := newEnv(t)
	e[EnvListen] = "8080"
	e[EnvExecutor] = "docker"
	e[EnvPublicURL] = "https://bot example.com"
	e[EnvGitHubAppID] = "abc"
	e[EnvGitLabURL] = "gitlab.example.com"
	e[EnvWorkDir] = " "
	e[EnvJobEnv] = "OK,BAD-NAME,DAGCTL_GITHUB_PRIVATE_KEY"
	e[EnvJobUIDs] = "20000-19999"
	e[EnvJobGroup] = "staff"
	e[EnvK8sNamespace] = "Prod_NS"
	e[EnvLogLevel] = "loud"
	_, err := load(t, e)
	require.Error(t, err)
	assert.Equal(t, []string{
		`DAGCTL_LISTEN (-listen): "8080" is not a host:port address like :8080`,
		`DAGCTL_EXECUTOR (-executor): "docker" is not one of local, kubernetes`,
		`DAGCTL_PUBLIC_URL (-public-url): the value is not an http(s) URL`,
		`DAGCTL_GITHUB_APP_ID (-github-app-id): "abc" is not a GitHub App id (a positive number)`,
		`DAGCTL_GITHUB_PRIVATE_KEY (-github-private-key): is required for GitHub (another DAGCTL_GITHUB_* setting is set)`,
		`DAGCTL_GITHUB_WEBHOOK_SECRET (-github-webhook-secret): is required for GitHub (another DAGCTL_GITHUB_* setting is set)`,
		`DAGCTL_GITLAB_URL (-gitlab-url): "gitlab.example.com" is not an http(s) URL`,
		`DAGCTL_GITLAB_TOKEN (-gitlab-token): is required for GitLab (another DAGCTL_GITLAB_* setting is set)`,
		`DAGCTL_GITLAB_WEBHOOK_SECRET (-gitlab-webhook-secret): is required for GitLab (another DAGCTL_GITLAB_* setting is set)`,
		`DAGCTL_WORKDIR (-workdir): " " is not a usable directory path`,
		`DAGCTL_JOB_ENV (-job-env): "BAD-NAME" is not a variable name`,
		`DAGCTL_JOB_ENV (-job-env): DAGCTL_GITHUB_PRIVATE_KEY cannot be passed to jobs: DAGCTL_* variables are the bot's own`,
		`DAGCTL_JOB_UIDS (-job-uids): "20000-19999" must be a range of uids from 1 to 2147483646, first to last`,
		`DAGCTL_JOB_GROUP (-job-group): "staff" is not a group id (1 to 2147483646)`,
		`DAGCTL_K8S_NAMESPACE (-k8s-namespace): "Prod_NS" is not a Kubernetes namespace name`,
		`DAGCTL_LOG_LEVEL (-log-level): "loud" is not one of debug, info, warn, error`,
	}, strings.Split(err.Error(), "\n"))
}

func TestURLErrorsHidePasswords(t *testing.T) {
	e, _ := newEnv(t)
	e[EnvPublicURL] = "ftp://user:hunter2@bot.example.com"
	_, err := load(t, e)
	require.Error(t, err)
	assert.Equal(t, `DAGCTL_PUBLIC_URL (-public-url): "ftp://xxxxx@bot.example.com" is not an http(s) URL`, err.Error())
}

func TestURLsMustNotCarryCredentials(t *testing.T) {
	e, _ := newEnv(t)
	e[EnvGitLabURL] = "https://oauth2:url-passw0rd@gitlab.example.com"
	e[EnvGitLabToken] = "t"
	e[EnvGitLabWebhookSecret] = "h"
	_, err := load(t, e)
	require.Error(t, err)
	assert.Equal(t, `DAGCTL_GITLAB_URL (-gitlab-url): "https://xxxxx@gitlab.example.com" must not contain credentials; use the token and secret settings`, err.Error())
}

func TestPublicURLIsNormalised(t *testing.T) {
	e, _ := newEnv(t)
	e[EnvPublicURL] = "https://bot.example.com/dagctl/"
	cfg, err := load(t, e)
	require.NoError(t, err)
	assert.Equal(t, "https://bot.example.com/dagctl", cfg.PublicURL)
}

func TestSQLMeshResolution(t *testing.T) {
	t.Run("not on PATH", func(t *testing.T) {
		_, err := load(t, env{"PATH": t.TempDir()})
		require.Error(t, err)
		assert.Equal(t, "DAGCTL_SQLMESH (-sqlmesh): \"sqlmesh\" not found on PATH (run `make tools`, or point DAGCTL_SQLMESH at the sqlmesh executable)", err.Error())
	})
	t.Run("a path is checked, not searched", func(t *testing.T) {
		e, sqlmesh := newEnv(t)
		e["PATH"] = ""
		e[EnvSQLMesh] = sqlmesh
		cfg, err := load(t, e)
		require.NoError(t, err)
		assert.Equal(t, sqlmesh, cfg.SQLMesh)
	})
	t.Run("not executable", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "sqlmesh")
		require.NoError(t, os.WriteFile(file, nil, 0o644))
		_, err := load(t, env{EnvSQLMesh: file})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "is not executable")
	})
	t.Run("kubernetes uses the name inside the image", func(t *testing.T) {
		cfg, err := load(t, env{"PATH": t.TempDir(), EnvExecutor: "kubernetes", EnvK8sImage: "ghcr.io/acme/runner:1"})
		require.NoError(t, err)
		assert.Equal(t, "sqlmesh", cfg.SQLMesh)
		assert.Equal(t, Kubernetes{Namespace: "default", Image: "ghcr.io/acme/runner:1"}, cfg.Kubernetes)
	})
	t.Run("kubernetes needs an image", func(t *testing.T) {
		_, err := load(t, env{EnvExecutor: "kubernetes"})
		require.Error(t, err)
		assert.Equal(t, "DAGCTL_K8S_IMAGE (-k8s-image): is required with the kubernetes executor", err.Error())
	})
}

func TestGitLab(t *testing.T) {
	e, _ := newEnv(t)
	e[EnvGitLabURL] = "https://gitlab.example.com/"
	e[EnvGitLabToken] = "glpat-secret"
	e[EnvGitLabWebhookSecret] = "hook"
	cfg, err := load(t, e)
	require.NoError(t, err)
	assert.True(t, cfg.GitLab.Enabled())
	assert.Equal(t, "https://gitlab.example.com", cfg.GitLab.URL)
	assert.Equal(t, "glpat-secret", cfg.GitLab.Token.Reveal())
	assert.False(t, cfg.GitLab.CloneToken.IsSet(), "optional: the server warns without it")

	e[EnvGitLabCloneToken] = "glpat-read-only"
	cfg, err = load(t, e)
	require.NoError(t, err)
	assert.Equal(t, "glpat-read-only", cfg.GitLab.CloneToken.Reveal())

	// The clone token alone is a GitLab setting: the token and secret it needs are then required.
	e, _ = newEnv(t)
	e[EnvGitLabCloneToken] = "glpat-read-only"
	_, err = load(t, e)
	require.ErrorContains(t, err, "DAGCTL_GITLAB_TOKEN (-gitlab-token): is required for GitLab")
}

// A bot for GitLab alone sets DAGCTL_GITLAB_* and nothing of GitHub's: that is a whole configuration (GitHub
// stays off, its route waiting for /setup), as a bot with neither forge set is (it waits for /setup).
func TestGitLabAloneIsAWholeConfiguration(t *testing.T) {
	e, _ := newEnv(t)
	e[EnvGitLabURL] = "http://127.0.0.1:9/"
	e[EnvGitLabToken] = "glpat-api"
	e[EnvGitLabWebhookSecret] = "hook"
	e[EnvGitLabCloneToken] = "glpat-read"
	e[EnvDB] = "/tmp/dagctl-gl/dagctl.db"
	for name := range e {
		require.False(t, strings.HasPrefix(name, "DAGCTL_GITHUB_"), "no GitHub setting: %s", name)
	}
	cfg, err := load(t, e)
	require.NoError(t, err)
	assert.True(t, cfg.GitLab.Enabled())
	assert.Equal(t, "http://127.0.0.1:9", cfg.GitLab.URL)
	assert.False(t, cfg.GitHub.Enabled())
	assert.Equal(t, GitHub{APIURL: "https://api.github.com/"}, cfg.GitHub, "GitHub's defaults only")
	assert.NotContains(t, cfg.String(), "glpat-", "the tokens are not printed")

	e, _ = newEnv(t)
	cfg, err = load(t, e)
	require.NoError(t, err, "neither forge set: the bot starts and waits for /setup")
	assert.False(t, cfg.GitHub.Enabled() || cfg.GitLab.Enabled())
}

func TestRepoAllowlist(t *testing.T) {
	e, _ := newEnv(t)
	cfg, err := load(t, e)
	require.NoError(t, err)
	assert.True(t, cfg.RepoAllowlist.All(), "empty: every repository")

	e[EnvRepoAllowlist] = "github:acme/*, gitlab:group/sub/*"
	cfg, err = load(t, e)
	require.NoError(t, err)
	assert.True(t, cfg.RepoAllowlist.Allows("gitlab", "group/sub/warehouse"))
	assert.False(t, cfg.RepoAllowlist.Allows("gitlab", "other/warehouse"))
	assert.Contains(t, cfg.String(), `repo_allowlist="github:acme/*,gitlab:group/sub/*"`)

	e[EnvRepoAllowlist] = "github:acme/*,acme/warehouse"
	_, err = load(t, e)
	require.Error(t, err)
	assert.Equal(t, `DAGCTL_REPO_ALLOWLIST (-repo-allowlist): entry "acme/warehouse": want forge:path, the forge one of github, gitlab (like github:acme/* or gitlab:group/sub/*)`, err.Error())
}

func TestHelpListsEverySetting(t *testing.T) {
	e, _ := newEnv(t)
	var out bytes.Buffer
	_, err := LoadWithOutput([]string{"-help"}, e.get, &out)
	require.ErrorIs(t, err, flag.ErrHelp)
	for _, s := range settings() {
		assert.Contains(t, out.String(), "-"+s.flag+"  "+s.env)
	}
	assert.Contains(t, out.String(), `-listen  DAGCTL_LISTEN (default ":8080")`)
}

func TestHelpDoesNotShowSecretsFromTheEnvironment(t *testing.T) {
	e, _ := newEnv(t)
	e[EnvGitLabToken] = "glpat-do-not-print"
	var out bytes.Buffer
	_, err := LoadWithOutput([]string{"-h"}, e.get, &out)
	require.ErrorIs(t, err, flag.ErrHelp)
	assert.NotContains(t, out.String(), "glpat-do-not-print")
}

func TestBadFlagsAndArguments(t *testing.T) {
	e, _ := newEnv(t)
	_, err := load(t, e, "-nope")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "flag provided but not defined: -nope")
	_, err = load(t, e, "extra")
	require.Error(t, err)
	assert.False(t, errors.Is(err, flag.ErrHelp))
	assert.Contains(t, err.Error(), "serve takes no arguments")
}

func TestJobUsers(t *testing.T) {
	for _, tc := range []struct {
		uids, group string
		want        JobUsers
		wantErr     string
	}{
		{uids: "auto", want: JobUsers{Mode: JobUsersAuto}},
		{uids: "off", group: "30000", want: JobUsers{Mode: JobUsersOff, Group: 30000}},
		{uids: "20000-20999", want: JobUsers{Mode: JobUsersRange, First: 20000, Last: 20999}},
		{uids: " 5-5 ", group: "7", want: JobUsers{Mode: JobUsersRange, First: 5, Last: 5, Group: 7}},
		{uids: "0-10", wantErr: `"0-10" must be a range of uids`},
		{uids: "1-4294967295", wantErr: "must be a range of uids"},
		{uids: "20000", wantErr: `"20000" is not auto, off or a uid range like 20000-20999`},
		{uids: "yes", wantErr: "is not auto, off or a uid range"},
		{uids: "20000-20999", group: "20500", wantErr: "20500 is in the job uid range"},
		{uids: "auto", group: "0", wantErr: `"0" is not a group id`},
	} {
		t.Run(tc.uids+"/"+tc.group, func(t *testing.T) {
			e, _ := newEnv(t)
			e[EnvJobUIDs] = tc.uids
			e[EnvJobGroup] = tc.group
			cfg, err := load(t, e)
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, cfg.JobUsers)
		})
	}
}

func TestJobSecretsSettings(t *testing.T) {
	e, _ := newEnv(t)
	e[EnvK8sJobSecrets] = " warehouse, ,dbt-profiles,warehouse"
	e[EnvK8sJobSecretsSelector] = "example.com/dagctl-job-secret=yes,team in (data)"
	e[EnvK8sBotSecrets] = "dagctl-bot,dagctl-bot-job-token-key"
	cfg, err := load(t, e)
	require.NoError(t, err)
	assert.Equal(t, []string{"warehouse", "dbt-profiles"}, cfg.Kubernetes.JobSecrets)
	assert.Equal(t, "example.com/dagctl-job-secret=yes,team in (data)", cfg.Kubernetes.JobSecretsSelector)
	assert.Equal(t, []string{"dagctl-bot", "dagctl-bot-job-token-key"}, cfg.Kubernetes.BotSecrets)

	e[EnvK8sJobSecrets] = "warehouse,Bad_Name,dagctl-bot"
	e[EnvK8sJobSecretsSelector] = "a in b"
	e[EnvK8sBotSecrets] = "dagctl-bot,-x"
	_, err = load(t, e)
	require.Error(t, err)
	assert.Equal(t, []string{
		`DAGCTL_K8S_JOB_SECRETS (-k8s-job-secrets): "Bad_Name" is not a Kubernetes secret name`,
		`DAGCTL_K8S_BOT_SECRETS (-k8s-bot-secrets): "-x" is not a Kubernetes secret name`,
		`DAGCTL_K8S_JOB_SECRETS (-k8s-job-secrets): dagctl-bot is one of the bot's own Secrets (DAGCTL_K8S_BOT_SECRETS): jobs never get it`,
		`DAGCTL_K8S_JOB_SECRETS_SELECTOR (-k8s-job-secrets-selector): "a in b" is not a label selector`,
	}, strings.Split(err.Error(), "\n"))
}

func TestBuildSettings(t *testing.T) {
	e, _ := newEnv(t)
	e[EnvK8sNamespace] = "dagctl-jobs"
	e[EnvK8sJobSecrets] = "warehouse"
	e[EnvBuildGitImage] = "alpine/git:2.49.1"
	e[EnvBuildPushSecret] = "marts-push"
	cfg, err := load(t, e, "-build-timeout", "45m")
	require.NoError(t, err)
	assert.Equal(t, Builds{Namespace: "dagctl-jobs", BuildKitImage: "moby/buildkit:v0.32.2-rootless",
		GitImage: "alpine/git:2.49.1", PushSecret: "marts-push", Timeout: 45 * time.Minute}, cfg.Builds, "the jobs' namespace by default")
	assert.True(t, cfg.Builds.Enabled())

	e[EnvBuildNamespace] = "dagctl-builds"
	e[EnvBuildKitImage] = "moby/buildkit@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	e[EnvBuildPushSecret] = "warehouse"
	cfg, err = load(t, e)
	require.NoError(t, err)
	assert.Equal(t, "dagctl-builds", cfg.Builds.Namespace)
	assert.Equal(t, "warehouse", cfg.Builds.PushSecret, "a Secret of that name in another namespace is no job's")

	e[EnvBuildNamespace] = ""
	_, err = load(t, e)
	assert.EqualError(t, err, `DAGCTL_BUILD_PUSH_SECRET (-build-push-secret): warehouse is a Secret jobs may mount (DAGCTL_K8S_JOB_SECRETS): give builds a push Secret of their own`)

	e[EnvBuildNamespace] = "Builds"
	e[EnvBuildGitImage] = ""
	e[EnvBuildPushSecret] = "Bad_Name"
	e[EnvBuildTimeout] = "10s"
	_, err = load(t, e)
	require.Error(t, err)
	assert.Equal(t, []string{
		`DAGCTL_BUILD_NAMESPACE (-build-namespace): "Builds" is not a Kubernetes namespace name`,
		`DAGCTL_BUILD_PUSH_SECRET (-build-push-secret): "Bad_Name" is not a Kubernetes secret name`,
		`DAGCTL_BUILD_PUSH_SECRET (-build-push-secret): DAGCTL_BUILD_GIT_IMAGE and DAGCTL_BUILD_PUSH_SECRET go together: builder: dockerfile needs both`,
		`DAGCTL_BUILD_TIMEOUT (-build-timeout): "10s" is not a duration of at least 1m (like 30m)`,
	}, strings.Split(err.Error(), "\n"))
}

func TestRunLogMaxBytesIsANumberOfBytes(t *testing.T) {
	e, _ := newEnv(t)
	e[EnvRunLogMaxBytes] = "65536"
	cfg, err := load(t, e)
	require.NoError(t, err)
	assert.Equal(t, int64(65536), cfg.RunLogMaxBytes)

	for _, bad := range []string{"10MiB", "100", "-1"} {
		e[EnvRunLogMaxBytes] = bad
		_, err := load(t, e)
		require.Error(t, err, bad)
		assert.Contains(t, err.Error(), EnvRunLogMaxBytes)
	}
}

func TestRetryWindowAndCommandExpiryAreDurations(t *testing.T) {
	e, _ := newEnv(t)
	e[EnvDeliveryRetryFor] = "36h"
	e[EnvCommandExpiry] = "5m"
	cfg, err := load(t, e)
	require.NoError(t, err)
	assert.Equal(t, 36*time.Hour, cfg.RetryFor)
	assert.Equal(t, 5*time.Minute, cfg.CommandExpiry)

	for env, bad := range map[string]string{EnvDeliveryRetryFor: "10m", EnvCommandExpiry: "0s"} {
		e, _ := newEnv(t)
		e[env] = bad
		_, err := load(t, e)
		require.Error(t, err, bad)
		assert.Contains(t, err.Error(), env)
	}
	e, _ = newEnv(t)
	e[EnvDeliveryRetryFor] = "a day"
	_, err = load(t, e)
	assert.ErrorContains(t, err, EnvDeliveryRetryFor)
}

func TestRetentionIsADurationOrForever(t *testing.T) {
	e, _ := newEnv(t)
	e[EnvRetainDeliveryBodies] = "30m"
	e[EnvRetainRunLogs] = "0"
	e[EnvRetainDeliveries] = "0"
	cfg, err := load(t, e)
	require.NoError(t, err)
	assert.Equal(t, Retention{DeliveryBodies: 30 * time.Minute}, cfg.Retention, "0 keeps run logs and deliveries forever")

	// A delivery's id deduplicates the forge's redeliveries, which it lists for 3 days.
	e[EnvRetainDeliveries] = "72h"
	_, err = load(t, e)
	assert.ErrorContains(t, err, EnvRetainDeliveries)
	e[EnvRetainDeliveries] = "96h"
	cfg, err = load(t, e)
	require.NoError(t, err)
	assert.Equal(t, 96*time.Hour, cfg.Retention.Deliveries)

	for _, bad := range []string{"7d", "10s", "-1h"} {
		e[EnvRetainRunLogs] = bad
		_, err := load(t, e)
		require.Error(t, err, bad)
		assert.Contains(t, err.Error(), EnvRetainRunLogs, bad)
	}
}
