package serverconfig

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every way the config (or part of it) might get printed must leave the secrets out.
func TestNoSecretValueIsPrinted(t *testing.T) {
	e, _ := newEnv(t)
	key := pkcs1PEM()
	e[EnvGitHubAppID] = "42"
	e[EnvGitHubPrivateKey] = key
	e[EnvGitHubWebhookSecret] = "gh-hook-s3cret"
	e[EnvGitLabToken] = "glpat-t0ken"
	e[EnvGitLabWebhookSecret] = "gl-hook-s3cret"
	e[EnvGitLabCloneToken] = "glpat-cl0ne"
	cfg, err := load(t, e)
	require.NoError(t, err)

	var printed []string
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		printed = append(printed,
			fmt.Sprintf(format, cfg), fmt.Sprintf(format, &cfg), fmt.Sprintf(format, cfg.GitHub),
			fmt.Sprintf(format, cfg.GitLab), fmt.Sprintf(format, cfg.GitHub.PrivateKey))
	}
	printed = append(printed, cfg.String(), fmt.Sprint(cfg.GitLab.Token))
	var text, js bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("starting", "config", cfg)
	slog.New(slog.NewJSONHandler(&js, nil)).Info("starting", "config", cfg, "github", cfg.GitHub)
	printed = append(printed, text.String(), js.String())
	asJSON, err := json.Marshal(cfg)
	require.NoError(t, err)
	printed = append(printed, string(asJSON))

	keyLines := strings.Split(strings.TrimSpace(key), "\n")
	secrets := []string{"gh-hook-s3cret", "glpat-t0ken", "gl-hook-s3cret", "glpat-cl0ne",
		keyLines[1], keyLines[len(keyLines)-2]}
	for _, out := range printed {
		for _, s := range secrets {
			require.NotContains(t, out, s)
		}
	}

	// The printed config still says what is set.
	assert.Contains(t, text.String(), "config.github.private_key=[redacted]")
	assert.Contains(t, text.String(), "config.github.app_id=42")
	assert.Contains(t, cfg.String(), `github.webhook_secret="[redacted]"`)
	assert.Contains(t, cfg.String(), `listen=":8080"`)
}

func TestUnsetSecretsPrintEmpty(t *testing.T) {
	e, _ := newEnv(t)
	cfg, err := load(t, e)
	require.NoError(t, err)
	assert.Contains(t, cfg.String(), `gitlab.token=""`)
	assert.Equal(t, "", fmt.Sprint(cfg.GitLab.Token))
}
