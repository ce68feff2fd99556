package kube

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{
		"DAGCTL_K8S_NAMESPACE":          "jobs",
		"DAGCTL_K8S_IMAGE":              "ghcr.io/dagctl/sqlmesh:0.236.4",
		"DAGCTL_K8S_RUNNER_IMAGE":       "ghcr.io/dagctl/dagctl-bot:1",
		"DAGCTL_PUBLIC_URL":             "https://dagctl.example.com",
		"DAGCTL_K8S_TOKEN_KEY":          "0123456789abcdef",
		"DAGCTL_K8S_JOB_TTL":            "30m",
		"DAGCTL_K8S_JOB_RESOURCES":      `{"limits":{"memory":"3Gi"}}`,
		"DAGCTL_K8S_IMAGE_PULL_SECRETS": "a, b,,",
	}
	cfg, err := ConfigFromEnv(func(k string) string { return env[k] })
	require.NoError(t, err)
	assert.Equal(t, "jobs", cfg.Namespace)
	assert.Equal(t, "https://dagctl.example.com", cfg.PublicURL, "without a report URL, pods use the public one")
	assert.Equal(t, 30*time.Minute, cfg.TTLAfterFinished)
	assert.Equal(t, "3Gi", cfg.Resources.Limits.Memory().String())
	assert.Equal(t, []string{"a", "b"}, cfg.ImagePullSecrets)

	env["DAGCTL_K8S_REPORT_URL"] = "http://dagctl.dagctl.svc:80"
	cfg, err = ConfigFromEnv(func(k string) string { return env[k] })
	require.NoError(t, err)
	assert.Equal(t, "http://dagctl.dagctl.svc:80", cfg.PublicURL)

	for name, bad := range map[string]string{
		"DAGCTL_K8S_JOB_TTL":         "soon",
		"DAGCTL_K8S_JOB_RESOURCES":   "{",
		"DAGCTL_K8S_JOB_RUN_AS_USER": "0",
		"DAGCTL_K8S_REPORT_GRACE":    "10",
	} {
		broken := map[string]string{name: bad}
		_, err := ConfigFromEnv(func(k string) string { return broken[k] })
		assert.ErrorContains(t, err, name)
	}
}

func TestNewSaysWhatIsMissing(t *testing.T) {
	for _, tc := range []struct {
		change func(*Config)
		want   string
	}{
		{func(c *Config) { c.Namespace = "" }, "DAGCTL_K8S_NAMESPACE"},
		{func(c *Config) { c.PublicURL = "" }, "DAGCTL_PUBLIC_URL"},
		{func(c *Config) { c.TokenKey = []byte("short") }, "DAGCTL_K8S_TOKEN_KEY"},
		{func(c *Config) { c.RunnerImage = "" }, "DAGCTL_K8S_RUNNER_IMAGE"},
	} {
		cfg := testConfig("default", "http://bot")
		tc.change(&cfg)
		_, err := New(context.Background(), testClient, cfg)
		assert.ErrorContains(t, err, tc.want)
	}
}
