package kubee2e_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dagctl/dagctl-bot/internal/repoconfig"
	"github.com/dagctl/dagctl-bot/internal/testutil"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// leakKey is what a PR's model could do with the bot's Secret mounted: print the App's private key, base64-encoded
// so that the redaction of the key's own text does not catch it.
const leakKey = `import base64
import os
import sys

print("leak: " + base64.b64encode(os.environ.get("DAGCTL_GITHUB_PRIVATE_KEY", "none").encode()).decode(), file=sys.stderr, flush=True)
`

// A base config that names the bot's own Secret in job.secrets is a config error on the PR, at the line and key
// that name it, and no Job is created, so none mounts it.
func TestJobSecretsNamingTheBotsOwnSecretIsAConfigError(t *testing.T) {
	example, err := os.ReadFile(filepath.Join(testutil.RepoRoot(), "examples", "sqlmesh", ".dagctl", "config.yaml"))
	require.NoError(t, err)
	config := strings.TrimRight(string(example), "\n") + "\n  secrets:\n    - " + botAppSecret + "\n"
	line := strings.Count(config, "\n") // the last line names it
	w := newWorld(t, map[string]string{repoconfig.Path: config})
	w.PR(1, "macro", "alice", map[string]string{"models/leak.py": leakKey})
	require.Equal(t, 202, w.send(w.PREvent(vcs.PROpened, 1)).Status)

	require.Eventually(t, func() bool { return w.Sticky(1) != "" }, 2*time.Minute, 50*time.Millisecond, "the PR gets its sticky comment")
	w.waitJobs()
	sticky := w.Sticky(1)
	assert.Contains(t, sticky, fmt.Sprintf(`.dagctl/config.yaml:%d: job.secrets[0]: "%s" is one of the bot's own Secrets`, line, botAppSecret), sticky)
	assert.Contains(t, sticky, "(on the default branch)")

	list, err := cluster.Client.BatchV1().Jobs(w.ns).List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	for _, job := range list.Items {
		for _, c := range job.Spec.Template.Spec.Containers {
			for _, from := range c.EnvFrom {
				assert.NotEqual(t, botAppSecret, from.SecretRef.Name, "job %s mounts the bot's Secret", job.Name)
			}
		}
	}
	assert.Empty(t, list.Items, "nothing is planned until the config is fixed")
	encoded := base64.StdEncoding.EncodeToString(w.GitHub().PEM)[:40]
	for _, c := range w.Statuses() {
		assert.NotContains(t, c.Summary+c.Text, encoded, c.Name)
	}
}
