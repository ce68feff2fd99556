package kube

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The bot restarts while a job runs: the runner keeps its lines while the bot is down, and the new process
// attaches, gets them, and reports the end.
func TestABotRestartMidJobReattachesAndFinishesTheReport(t *testing.T) {
	ns := newNamespace(t)
	b := newBot(t)
	startNode(t, ns)
	repo := newGitRepo(t)
	cfg := testConfig(ns, b.server.URL)
	first := b.startExecutor(t, testClient, cfg)

	goOn := filepath.Join(t.TempDir(), "go-on")
	spec := planSpec(repo, "run-restart", "sh", "-c",
		`echo before; while [ ! -e "$GO_ON" ]; do sleep 0.05; done; echo after; echo more >&2; exit 4`)
	spec.Env["GO_ON"] = goOn
	var before lineSink
	h1, err := first.Start(context.Background(), spec, before.sink)
	require.NoError(t, err)
	waitUntil(t, "the first bot gets the first line", func() bool { return before.has("before") })

	b.stop(first)
	_, err = h1.Wait(context.Background())
	assert.True(t, errors.Is(err, ErrClosed), "%v", err)

	// The command goes on and ends while the bot is down; its report waits.
	require.NoError(t, os.WriteFile(goOn, nil, 0o644))
	second := b.startExecutor(t, testClient, cfg)
	var after lineSink
	h2, err := second.Attach(context.Background(), "run-restart", after.sink)
	require.NoError(t, err)
	res := wait(t, h2)

	assert.Equal(t, 4, res.ExitCode)
	assert.Empty(t, res.Reason)
	assert.True(t, after.has("after"), "%q", after.texts())
	assert.Contains(t, after.lines, jobs.Line{Stream: "stderr", Text: "more"})
	assert.False(t, after.has("before"), "lines delivered before the restart are not repeated")
}

// The bot is down for the whole job and beyond the runner's grace: the result and the last lines come from the
// termination message; once the Pod is gone, from the Job status alone.
func TestAttachAfterTheJobEndedUsesTheTerminationMessage(t *testing.T) {
	ns := newNamespace(t)
	b := newBot(t)
	startNode(t, ns)
	repo := newGitRepo(t)
	cfg := testConfig(ns, b.server.URL)
	cfg.ReportGrace = 300 * time.Millisecond
	first := b.startExecutor(t, testClient, cfg)

	h1, err := first.Start(context.Background(), planSpec(repo, "run-unreported", "sh", "-c", "echo the-output; exit 2"), nil)
	require.NoError(t, err)
	b.stop(first)
	_, err = h1.Wait(context.Background())
	require.ErrorIs(t, err, ErrClosed)
	waitUntil(t, "the job fails", func() bool {
		failed, _ := jobFailed(getJob(t, ns, "run-unreported"))
		return failed
	})

	second := b.startExecutor(t, testClient, cfg)
	var out lineSink
	h2, err := second.Attach(context.Background(), "run-unreported", out.sink)
	require.NoError(t, err)
	res := wait(t, h2)
	assert.Equal(t, 2, res.ExitCode)
	assert.Empty(t, res.Reason)
	assert.True(t, out.has("the-output"), "the termination message's tail stands in for the lost lines: %q", out.texts())
	b.stop(second)

	pod := waitForPod(t, ns, "run-unreported")
	require.NoError(t, testClient.CoreV1().Pods(ns).Delete(context.Background(), pod.Name, metav1.DeleteOptions{}))
	waitUntil(t, "the pod is gone", func() bool {
		pods, err := testClient.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
		return err == nil && len(pods.Items) == 0
	})
	third := b.startExecutor(t, testClient, cfg)
	var gone lineSink
	h3, err := third.Attach(context.Background(), "run-unreported", gone.sink)
	require.NoError(t, err)
	res = wait(t, h3)
	assert.Equal(t, jobs.Result{ExitCode: -1, Reason: ReasonFailed}, jobs.Result{ExitCode: res.ExitCode, Reason: res.Reason})
	assert.NotEmpty(t, gone.texts(), "the sink is told why the exit code is unknown")
}

func TestCleanOrphansDeletesJobsNoRunKnows(t *testing.T) {
	ns := newNamespace(t)
	b := newBot(t)
	node := startNode(t, ns)
	repo := newGitRepo(t)
	cfg := testConfig(ns, b.server.URL)
	first := b.startExecutor(t, testClient, cfg)
	for _, id := range []string{"attached", "known", "orphan"} {
		node.Hold(id)
		_, err := first.Start(context.Background(), planSpec(repo, id, "true"), nil)
		require.NoError(t, err)
	}
	// Another installation's Job in the same namespace is none of this bot's business.
	otherCfg := cfg
	otherCfg.Instance = "other-bot"
	other, err := New(context.Background(), testClient, otherCfg)
	require.NoError(t, err)
	defer other.Close()
	node.Hold("other")
	_, err = other.Start(context.Background(), planSpec(repo, "other", "true"), nil)
	require.NoError(t, err)
	b.stop(first)

	second := b.startExecutor(t, testClient, cfg)
	_, err = second.Attach(context.Background(), "attached", nil)
	require.NoError(t, err)
	deleted, err := second.CleanOrphans(context.Background(), func(runID string) bool { return runID == "known" })
	require.NoError(t, err)
	assert.Equal(t, []string{"orphan"}, deleted)

	waitUntil(t, "the orphan's job is gone", func() bool {
		list, err := testClient.BatchV1().Jobs(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return false
		}
		var ids []string
		for _, j := range list.Items {
			ids = append(ids, j.Annotations[AnnotationRunID])
		}
		return assert.ObjectsAreEqual([]string{"attached", "known", "other"}, sorted(ids))
	})
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

var _ = corev1.PodPending
