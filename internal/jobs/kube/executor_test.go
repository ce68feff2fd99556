package kube

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func getJob(t *testing.T, ns, runID string) *batchv1.Job {
	t.Helper()
	list, err := testClient.BatchV1().Jobs(ns).List(context.Background(), metav1.ListOptions{LabelSelector: LabelRunID + "=" + labelValue(runID)})
	require.NoError(t, err)
	require.Len(t, list.Items, 1)
	return &list.Items[0]
}

func waitForPod(t *testing.T, ns, runID string) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	waitUntil(t, "the job controller creates the pod", func() bool {
		pods, err := testClient.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: LabelRunID + "=" + labelValue(runID)})
		if err != nil || len(pods.Items) == 0 {
			return false
		}
		pod = &pods.Items[0]
		return true
	})
	return pod
}

func wait(t *testing.T, h jobs.Handle) jobs.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := h.Wait(ctx)
	require.NoError(t, err)
	return res
}

func TestStartCreatesTheJobOfARun(t *testing.T) {
	ns := newNamespace(t)
	b := newBot(t)
	node := startNode(t, ns)
	repo := newGitRepo(t)
	cfg := testConfig(ns, b.server.URL)
	cfg.TTLAfterFinished = 90 * time.Minute
	cfg.JobSecrets = []string{"warehouse-credentials"}
	cfg.Resources = corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")},
	}
	e := b.startExecutor(t, testClient, cfg)

	runID := "run/01JABCDEF: plan of acme/warehouse#42 on prod, with a run id far too long for a label value"
	spec := planSpec(repo, runID, "sqlmesh", "plan", "--no-prompts")
	spec.Image = "ghcr.io/acme/sqlmesh:custom"
	spec.Timeout = 90 * time.Second
	spec.Secrets = []string{"warehouse-credentials"}
	spec.Env["PATH"] = "/bot/only/bin"
	node.Hold(runID)
	h, err := e.Start(context.Background(), spec, nil)
	require.NoError(t, err)
	assert.Equal(t, runID, h.ID())

	job := getJob(t, ns, runID)
	assert.Equal(t, runID, job.Annotations[AnnotationRunID])
	assert.LessOrEqual(t, len(job.Name), 52)
	assert.True(t, strings.HasPrefix(job.Name, "dagctl-plan-run-01jabcdef-"), job.Name)
	for key, want := range map[string]string{
		"dagctl.dev/repo": "acme-warehouse", "dagctl.dev/pr": "42", "dagctl.dev/sha": repo.SHA,
		"dagctl.dev/environment": "prod", "dagctl.dev/kind": "plan", "dagctl.dev/instance": "dagctl-bot",
	} {
		assert.Equal(t, want, job.Labels[key], key)
	}
	assert.Len(t, job.Labels[LabelRunID], 63, "a long run id is shortened and hashed")
	assert.Equal(t, "acme/warehouse", job.Annotations["dagctl.dev/repo"], "the exact value is kept")

	js := job.Spec
	assert.False(t, *js.Suspend, "released once its secret exists")
	assert.Equal(t, int32(0), *js.BackoffLimit)
	assert.Equal(t, int64(90), *js.ActiveDeadlineSeconds)
	assert.Equal(t, int32(90*60), *js.TTLSecondsAfterFinished)
	pod := js.Template.Spec
	assert.Equal(t, corev1.RestartPolicyNever, pod.RestartPolicy)
	assert.False(t, *pod.AutomountServiceAccountToken)
	assert.False(t, *pod.EnableServiceLinks)
	assert.True(t, *pod.SecurityContext.RunAsNonRoot)
	require.Len(t, pod.InitContainers, 1)
	require.Len(t, pod.Containers, 1)
	checkout, main := pod.InitContainers[0], pod.Containers[0]
	assert.Equal(t, cfg.RunnerImage, checkout.Image)
	assert.Equal(t, []string{testRunnerPath, "job-run", "checkout"}, checkout.Command)
	assert.Equal(t, "ghcr.io/acme/sqlmesh:custom", main.Image)
	assert.Equal(t, []string{"/dagctl/bin/dagctl-bot", "job-run", "run", "--", "sqlmesh", "plan", "--no-prompts"}, main.Command)
	assert.Equal(t, "/dagctl/workspace/project", main.WorkingDir)
	for _, c := range []corev1.Container{checkout, main} {
		sc := c.SecurityContext
		assert.True(t, *sc.RunAsNonRoot, c.Name)
		assert.True(t, *sc.ReadOnlyRootFilesystem, c.Name)
		assert.False(t, *sc.AllowPrivilegeEscalation, c.Name)
		assert.Equal(t, []corev1.Capability{"ALL"}, sc.Capabilities.Drop, c.Name)
		assert.Equal(t, "500m", c.Resources.Requests.Cpu().String(), c.Name)
		assert.Equal(t, "1Gi", c.Resources.Limits.Memory().String(), c.Name)
	}
	env := map[string]corev1.EnvVar{}
	for _, v := range main.Env {
		env[v.Name] = v
	}
	assert.Equal(t, "bar", env["FOO"].Value)
	assert.NotContains(t, env, "PATH", "the image's PATH applies, not the bot's")
	assert.Equal(t, "/tmp", env["HOME"].Value, "a writable home on a read-only root")
	assert.Equal(t, job.Name, env[envReportToken].ValueFrom.SecretKeyRef.Name)
	_, hasCloneToken := env[envCloneToken]
	assert.False(t, hasCloneToken, "the clone token stays out of the container that runs PR code")
	require.Len(t, main.EnvFrom, 1)
	assert.Equal(t, "warehouse-credentials", main.EnvFrom[0].SecretRef.Name)

	secret, err := testClient.CoreV1().Secrets(ns).Get(context.Background(), job.Name, metav1.GetOptions{})
	require.NoError(t, err)
	require.Len(t, secret.OwnerReferences, 1)
	assert.Equal(t, job.UID, secret.OwnerReferences[0].UID, "the secret is garbage-collected with the job")
	assert.Equal(t, repo.Token, string(secret.Data[secretKeyCloneToken]))
	assert.Equal(t, RunToken(testTokenKey, runID), string(secret.Data[secretKeyReportToken]))

	// Cancel deletes the Job, its Pod and, through the garbage collector, its Secret.
	waitForPod(t, ns, runID)
	require.NoError(t, h.Cancel(context.Background()))
	res := wait(t, h)
	assert.Equal(t, jobs.Result{ExitCode: -1, Reason: ReasonCancelled}, jobs.Result{ExitCode: res.ExitCode, Reason: res.Reason})
	_, err = testClient.BatchV1().Jobs(ns).Get(context.Background(), job.Name, metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "Wait returns once the job is gone: %v", err)
	pods, err := testClient.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	assert.Empty(t, pods.Items, "foreground deletion removed the pod first")
	waitUntil(t, "the garbage collector deletes the secret", func() bool {
		_, err := testClient.CoreV1().Secrets(ns).Get(context.Background(), job.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
}

func TestAPlanRunsToSuccess(t *testing.T) {
	ns := newNamespace(t)
	b := newBot(t)
	startNode(t, ns)
	repo := newGitRepo(t)
	cfg := testConfig(ns, b.server.URL)
	cfg.JobSecrets = []string{"warehouse"}
	e := b.startExecutor(t, testClient, cfg)
	_, err := testClient.CoreV1().Secrets(ns).Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "warehouse"},
		StringData: map[string]string{"WAREHOUSE_PASSWORD": "hunter2"},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	spec := planSpec(repo, "run-success", "sh", "-c",
		`cat model.sql; echo "FOO=$FOO"; echo "password=$WAREHOUSE_PASSWORD"; echo to-stderr >&2; env`)
	spec.Secrets = []string{"warehouse"}
	var out lineSink
	h, err := e.Start(context.Background(), spec, out.sink)
	require.NoError(t, err)
	res := wait(t, h)

	assert.True(t, res.Succeeded(), "%+v\n%s", res, strings.Join(out.texts(), "\n"))
	assert.True(t, out.has("select 1 as pr_head"), "the PR's commit is checked out, not the branch tip: %q", out.texts())
	assert.True(t, out.has("FOO=bar"))
	assert.True(t, out.has("password=hunter2"), "secrets named in the spec arrive through envFrom")
	assert.Contains(t, out.lines, jobs.Line{Stream: "stderr", Text: "to-stderr"})
	for _, line := range out.texts() {
		assert.NotContains(t, line, repo.Token, "the clone token never reaches the command")
		assert.NotContains(t, line, RunToken(testTokenKey, "run-success"))
		assert.False(t, strings.HasPrefix(line, runnerEnvPrefix), "runner variable leaked: %s", line)
	}
	assert.True(t, jobComplete(getJob(t, ns, "run-success")))
}

func TestAFailingCommandReportsItsExitCode(t *testing.T) {
	ns := newNamespace(t)
	b := newBot(t)
	startNode(t, ns)
	repo := newGitRepo(t)
	e := b.startExecutor(t, testClient, testConfig(ns, b.server.URL))

	var out lineSink
	h, err := e.Start(context.Background(), planSpec(repo, "run-fails", "sh", "-c", "echo 'Error: model broken' >&2; exit 3"), out.sink)
	require.NoError(t, err)
	res := wait(t, h)
	assert.Equal(t, 3, res.ExitCode)
	assert.Empty(t, res.Reason)
	assert.Contains(t, out.lines, jobs.Line{Stream: "stderr", Text: "Error: model broken"})
	failed, _ := jobFailed(getJob(t, ns, "run-fails"))
	assert.True(t, failed)
}

func TestAttachToAnUnknownRunIsGone(t *testing.T) {
	ns := newNamespace(t)
	b := newBot(t)
	e := b.startExecutor(t, testClient, testConfig(ns, b.server.URL))
	_, err := e.Attach(context.Background(), "never-started", nil)
	assert.True(t, errors.Is(err, jobs.ErrGone), "%v", err)
}
