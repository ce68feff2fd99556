package kube

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The runner reads Spec.Collect's files once the command has ended and posts them with the result; a bot that
// restarted meanwhile takes them too (the list is on the Job), and a link out of the project is refused.
func TestAJobHandsBackItsArtifactsAcrossARestart(t *testing.T) {
	ns := newNamespace(t)
	b := newBot(t)
	startNode(t, ns)
	repo := newGitRepo(t)
	cfg := testConfig(ns, b.server.URL)
	first := b.startExecutor(t, testClient, cfg)
	secret := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secret, []byte("not for the bot to take"), 0o600))
	goOn := filepath.Join(t.TempDir(), "go-on")

	spec := planSpec(repo, "run-artifacts", "sh", "-c", `mkdir -p target
		echo started
		while [ ! -e "$GO_ON" ]; do sleep 0.05; done
		yes '{"nodes": {}}' | head -n 200000 | tr -d '\n' > target/manifest.json
		ln -s "$SECRET" target/secret.json`)
	spec.Env["GO_ON"], spec.Env["SECRET"] = goOn, secret
	spec.Collect = []string{"target/manifest.json", "target/secret.json", "target/catalog.json"}
	var before lineSink
	_, err := first.Start(context.Background(), spec, before.sink)
	require.NoError(t, err)
	waitUntil(t, "the job starts", func() bool { return before.has("started") })
	b.stop(first)

	second := b.startExecutor(t, testClient, cfg)
	h, err := second.Attach(context.Background(), "run-artifacts", nil)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(goOn, nil, 0o644))
	res := wait(t, h)

	require.True(t, res.Succeeded(), "%+v", res)
	require.Len(t, res.Artifacts, 1, "%v", res.ArtifactErrors)
	assert.True(t, strings.Repeat(`{"nodes": {}}`, 200_000) == string(res.Artifacts["target/manifest.json"]),
		"the manifest, whole: %d bytes", len(res.Artifacts["target/manifest.json"]))
	assert.Contains(t, res.ArtifactErrors["target/secret.json"], "refused")
	assert.Contains(t, res.ArtifactErrors["target/catalog.json"], "no such file")
}

// The Pod's report reached a process of the bot that died before its caller read the result (the Pod, answered,
// reports to no one again): the process that attaches after the restart takes the artifacts the first kept in
// the store (real SQLite), only the paths asked for. Without a store they are lost, saying so.
func TestArtifactsReportedToAProcessThatDiedAreTakenFromTheStoreAfterTheRestart(t *testing.T) {
	ns := newNamespace(t)
	b := newBot(t)
	startNode(t, ns)
	repo := newGitRepo(t)
	cfg := testConfig(ns, b.server.URL)
	store, err := db.Open(filepath.Join(t.TempDir(), "dagctl.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })

	first := b.startExecutor(t, testClient, cfg)
	first.KeepArtifactsIn(store)
	spec := planSpec(repo, "run-kept", "sh", "-c", `mkdir -p target && printf '{"nodes": {}}' > target/manifest.json`)
	spec.Collect = []string{"target/manifest.json", "target/catalog.json"}
	h, err := first.Start(context.Background(), spec, nil)
	require.NoError(t, err)
	res := wait(t, h)
	require.True(t, res.Succeeded(), "%+v", res)
	require.Len(t, res.Artifacts, 1, "the first process took the report: %v", res.ArtifactErrors)
	b.stop(first) // ... and dies before its caller stored what the job left

	second := b.startExecutor(t, testClient, cfg)
	second.KeepArtifactsIn(store)
	h, err = second.Attach(context.Background(), "run-kept", nil)
	require.NoError(t, err)
	res = wait(t, h)
	require.True(t, res.Succeeded(), "%+v", res)
	assert.Equal(t, map[string][]byte{"target/manifest.json": []byte(`{"nodes": {}}`)}, res.Artifacts)
	assert.Contains(t, res.ArtifactErrors["target/catalog.json"], "no such file")
	b.stop(second)

	forgetful := b.startExecutor(t, testClient, cfg)
	h, err = forgetful.Attach(context.Background(), "run-kept", nil)
	require.NoError(t, err)
	res = wait(t, h)
	assert.Nil(t, res.Artifacts, "without a store the report is lost with the process that took it")
	assert.Contains(t, res.ArtifactErrors["target/manifest.json"], "did not reach the bot")
}

// What the Pod reports is PR code's word: the bot keeps only the paths it asked for, within the cap, and
// accounts for every path it asked for.
func TestAReportedResultKeepsOnlyTheArtifactsAskedFor(t *testing.T) {
	h := &handle{collect: []string{"target/manifest.json", "target/run_results.json", "target/catalog.json", "target/big.json"}}

	h.report(jobs.Result{ExitCode: 0,
		Artifacts: map[string][]byte{
			"target/manifest.json": []byte(`{}`),
			"../../etc/passwd":     []byte("root:x:0:0"),
			"target/big.json":      make([]byte, jobs.MaxArtifactBytes+1),
		},
		ArtifactErrors: map[string]string{"target/run_results.json": "the job left no such file", "other": "x"},
	})

	assert.Equal(t, map[string][]byte{"target/manifest.json": []byte(`{}`)}, h.reported.Artifacts)
	assert.Equal(t, map[string]string{
		"target/run_results.json": "the job left no such file",
		"target/catalog.json":     "the job did not report it",
		"target/big.json":         "the file is 67108865 bytes, over the cap of 67108864",
	}, h.reported.ArtifactErrors)

	none := &handle{}
	none.report(jobs.Result{Artifacts: map[string][]byte{"target/manifest.json": []byte(`{}`)}})
	assert.Nil(t, none.reported.Artifacts, "a run that collects nothing takes nothing")
}

func TestAJobsArtifactsMustStayInTheProject(t *testing.T) {
	e := &Executor{cfg: testConfig("ns", "http://bot")}
	spec := planSpec(gitRepo{URL: "http://git/repo.git", SHA: strings.Repeat("ab", 20)}, "run-bad-collect", "true")
	spec.Collect = []string{"../secrets.env"}
	_, err := e.buildJob(spec)
	assert.ErrorContains(t, err, "clean relative path")
}
