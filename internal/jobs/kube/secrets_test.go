package kube

import (
	"context"
	"encoding/base64"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The operator's allowance for job.secrets in a test: two names (one of them the bot's own, which stays refused)
// and a selector.
const jobSecretLabel = "example.com/dagctl-job-secret"

func allowingConfig(ns, publicURL string) Config {
	cfg := testConfig(ns, publicURL)
	cfg.JobSecrets = []string{"warehouse", "dagctl-bot"}
	cfg.JobSecretsSelector = jobSecretLabel + "=yes"
	cfg.BotSecrets = []string{"dagctl-bot", "dagctl-bot-job-token-key"}
	return cfg
}

func createSecret(t *testing.T, ns, name string, labels map[string]string, data map[string]string) {
	t.Helper()
	_, err := testClient.CoreV1().Secrets(ns).Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, StringData: data,
	}, metav1.CreateOptions{})
	require.NoError(t, err)
}

func TestJobsMayMountOnlyTheSecretsTheOperatorAllows(t *testing.T) {
	ns := newNamespace(t)
	b := newBot(t)
	node := startNode(t, ns)
	repo := newGitRepo(t)
	e := b.startExecutor(t, testClient, allowingConfig(ns, b.server.URL))
	allowedByLabel := map[string]string{jobSecretLabel: "yes"}
	createSecret(t, ns, "warehouse", nil, map[string]string{"WAREHOUSE_PASSWORD": "pw-by-name"})
	createSecret(t, ns, "labelled", allowedByLabel, map[string]string{"LABELLED": "pw-by-label"})
	createSecret(t, ns, "unlabelled", map[string]string{jobSecretLabel: "no"}, map[string]string{"X": "y"})
	createSecret(t, ns, "dagctl-bot", allowedByLabel, map[string]string{"DAGCTL_GITHUB_PRIVATE_KEY": "the-app-key"})
	createSecret(t, ns, "dagctl-bot-job-token-key", allowedByLabel, map[string]string{"DAGCTL_K8S_TOKEN_KEY": "the-token-key"})
	// A run's token Secret, created by the executor, labelled by the selector's label too (as an operator might
	// label everything in a namespace).
	node.Hold("held-run")
	_, err := e.Start(context.Background(), planSpec(repo, "held-run", "true"), nil)
	require.NoError(t, err)
	runSecret := getJob(t, ns, "held-run").Name
	sec, err := testClient.CoreV1().Secrets(ns).Get(context.Background(), runSecret, metav1.GetOptions{})
	require.NoError(t, err)
	sec.Labels[jobSecretLabel] = "yes"
	_, err = testClient.CoreV1().Secrets(ns).Update(context.Background(), sec, metav1.UpdateOptions{})
	require.NoError(t, err)
	createSecret(t, ns, "copied-run-token", map[string]string{jobSecretLabel: "yes", LabelInstance: "other-bot"}, map[string]string{"report-token": "x"})

	for name, want := range map[string]string{
		"warehouse":                "",
		"labelled":                 "",
		"unlabelled":               refusedNotAllowed,
		"missing":                  refusedNotAllowed, // like one that does not match: a config cannot probe the namespace
		"dagctl-bot":               refusedBotSecret,  // even though named and labelled
		"dagctl-bot-job-token-key": refusedBotSecret,
		runSecret:                  refusedBotSecret,
		"dagctl-plan-7-0123456789": refusedBotSecret, // a run's token Secret by its name, without reading it
		"copied-run-token":         refusedBotSecret,
	} {
		why, err := e.RefuseSecret(context.Background(), name)
		require.NoError(t, err, name)
		assert.Equal(t, want, why, name)
	}

	// Start refuses a job that names one, whoever built its spec: no Job is created.
	spec := planSpec(repo, "mounts-the-bot", "true")
	spec.Secrets = []string{"warehouse", "dagctl-bot"}
	_, err = e.Start(context.Background(), spec, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `job.secrets: "dagctl-bot" is one of the bot's own Secrets`)
	list, err := testClient.BatchV1().Jobs(ns).List(context.Background(), metav1.ListOptions{LabelSelector: LabelRunID + "=mounts-the-bot"})
	require.NoError(t, err)
	assert.Empty(t, list.Items)
}

// The values of a Secret the executor read (to check its labels) are masked in the job's output, with their
// encodings; a Secret allowed by name is never read.
func TestValuesOfSecretsTheExecutorReadAreMasked(t *testing.T) {
	ns := newNamespace(t)
	b := newBot(t)
	startNode(t, ns)
	repo := newGitRepo(t)
	e := b.startExecutor(t, testClient, allowingConfig(ns, b.server.URL))
	const value = "pw by label/with?chars"
	createSecret(t, ns, "labelled", map[string]string{jobSecretLabel: "yes"}, map[string]string{"LABELLED": value})

	spec := planSpec(repo, "prints-its-secret", "sh", "-c", `echo "plain=$LABELLED"; printf %s "$LABELLED" | base64; echo "$LABELLED" | base64`)
	spec.Secrets = []string{"labelled"}
	var out lineSink
	h, err := e.Start(context.Background(), spec, out.sink)
	require.NoError(t, err)
	res := wait(t, h)
	require.True(t, res.Succeeded(), "%+v %q", res, out.texts())

	assert.True(t, out.has("plain=***"), "%q", out.texts())
	text := strings.Join(out.texts(), "\n")
	for _, form := range []string{value, base64.StdEncoding.EncodeToString([]byte(value)), base64.StdEncoding.EncodeToString([]byte(value + "\n"))[:28], url.QueryEscape(value)} {
		assert.NotContains(t, text, form)
	}
}

// After a restart, the new process reads the Secrets again and masks what the job prints from then on.
func TestValuesOfSecretsAreMaskedAfterARestartToo(t *testing.T) {
	ns := newNamespace(t)
	b := newBot(t)
	startNode(t, ns)
	repo := newGitRepo(t)
	cfg := allowingConfig(ns, b.server.URL)
	first := b.startExecutor(t, testClient, cfg)
	createSecret(t, ns, "labelled", map[string]string{jobSecretLabel: "yes"}, map[string]string{"LABELLED": "pw-by-label-123"})

	goOn := filepath.Join(t.TempDir(), "go-on")
	spec := planSpec(repo, "restart-secret", "sh", "-c",
		`echo "before=$LABELLED"; while [ ! -e "$GO_ON" ]; do sleep 0.05; done; echo "after=$LABELLED"`)
	spec.Env["GO_ON"] = goOn
	spec.Secrets = []string{"labelled"}
	var before lineSink
	_, err := first.Start(context.Background(), spec, before.sink)
	require.NoError(t, err)
	waitUntil(t, "the first bot gets the first line", func() bool { return before.has("before=***") })
	b.stop(first)

	second := b.startExecutor(t, testClient, cfg)
	var after lineSink
	h, err := second.Attach(context.Background(), "restart-secret", after.sink)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(goOn, nil, 0o644))
	require.True(t, wait(t, h).Succeeded())
	assert.True(t, after.has("after=***"), "%q", after.texts())
}
