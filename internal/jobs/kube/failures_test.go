package kube

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dagctl/dagctl-bot/internal/jobs/kube/kubetest"
)

// Pod failures a kubelet would report become results with a reason.
func TestPodFailuresBecomeReasons(t *testing.T) {
	ns := newNamespace(t)
	b := newBot(t)
	node := startNode(t, ns)
	repo := newGitRepo(t)
	e := b.startExecutor(t, testClient, testConfig(ns, b.server.URL))

	cases := []struct {
		name     string
		status   func(pod *corev1.Pod) func(*corev1.PodStatus)
		want     jobs.Result
		wantLine string
	}{
		{
			name: "oom-killed",
			status: func(pod *corev1.Pod) func(*corev1.PodStatus) {
				return func(s *corev1.PodStatus) {
					s.Phase = corev1.PodFailed
					s.InitContainerStatuses = []corev1.ContainerStatus{kubetest.TerminatedStatus(pod.Spec.InitContainers[0], 0, "")}
					s.ContainerStatuses = []corev1.ContainerStatus{kubetest.TerminatedWith(pod.Spec.Containers[0], 137, "OOMKilled", "")}
				}
			},
			want:     jobs.Result{ExitCode: 137, Reason: ReasonOOMKilled},
			wantLine: "kubernetes: a container ran out of memory (OOMKilled); raise the job's memory limit",
		},
		{
			name: "evicted",
			status: func(pod *corev1.Pod) func(*corev1.PodStatus) {
				return func(s *corev1.PodStatus) {
					s.Phase = corev1.PodFailed
					s.Reason = "Evicted"
					s.Message = "The node was low on resource: memory."
				}
			},
			want:     jobs.Result{ExitCode: -1, Reason: ReasonEvicted},
			wantLine: "kubernetes: pod evicted: The node was low on resource: memory.",
		},
		{
			name: "image-pull-back-off",
			status: func(pod *corev1.Pod) func(*corev1.PodStatus) {
				return func(s *corev1.PodStatus) {
					s.Phase = corev1.PodPending
					s.InitContainerStatuses = []corev1.ContainerStatus{kubetest.TerminatedStatus(pod.Spec.InitContainers[0], 0, "")}
					s.ContainerStatuses = []corev1.ContainerStatus{kubetest.WaitingStatus(pod.Spec.Containers[0], "ImagePullBackOff")}
				}
			},
			want:     jobs.Result{ExitCode: -1, Reason: "ImagePullBackOff"},
			wantLine: "kubernetes: container job: ImagePullBackOff: ImagePullBackOff (test)",
		},
		{
			name: "missing-secret",
			status: func(pod *corev1.Pod) func(*corev1.PodStatus) {
				return func(s *corev1.PodStatus) {
					s.Phase = corev1.PodPending
					s.InitContainerStatuses = []corev1.ContainerStatus{kubetest.TerminatedStatus(pod.Spec.InitContainers[0], 0, "")}
					s.ContainerStatuses = []corev1.ContainerStatus{kubetest.WaitingStatus(pod.Spec.Containers[0], "CreateContainerConfigError")}
				}
			},
			want:     jobs.Result{ExitCode: -1, Reason: "CreateContainerConfigError"},
			wantLine: "kubernetes: container job: CreateContainerConfigError: CreateContainerConfigError (test)",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			node.On(tc.name, func(ctx context.Context, pod *corev1.Pod) { node.SetStatus(pod, tc.status(pod)) })
			var out lineSink
			h, err := e.Start(context.Background(), planSpec(repo, tc.name, "true"), out.sink)
			require.NoError(t, err)
			res := wait(t, h)
			assert.Equal(t, tc.want, jobs.Result{ExitCode: res.ExitCode, Reason: res.Reason})
			assert.True(t, out.has(tc.wantLine), "%q", out.texts())
			assert.False(t, res.Succeeded())
		})
	}

	t.Run("a stuck pod's job is deleted", func(t *testing.T) {
		waitUntil(t, "the image-pull-back-off job is deleted", func() bool {
			_, err := testClient.BatchV1().Jobs(ns).Get(context.Background(), jobName(jobs.Spec{RunID: "image-pull-back-off", Kind: jobs.KindPlan}), metav1.GetOptions{})
			return apierrors.IsNotFound(err)
		})
	})
}

func TestTimeoutEndsTheJob(t *testing.T) {
	ns := newNamespace(t)
	b := newBot(t)
	startNode(t, ns)
	repo := newGitRepo(t)
	e := b.startExecutor(t, testClient, testConfig(ns, b.server.URL))

	spec := planSpec(repo, "run-timeout", "sh", "-c", "echo started; exec sleep 600")
	spec.Timeout = time.Second
	var out lineSink
	h, err := e.Start(context.Background(), spec, out.sink)
	require.NoError(t, err)
	res := wait(t, h)
	assert.Equal(t, ReasonTimeout, res.Reason)
	assert.Equal(t, -1, res.ExitCode)
}

func TestACommitThatCannotBeFetchedFailsTheCheckout(t *testing.T) {
	ns := newNamespace(t)
	b := newBot(t)
	startNode(t, ns)
	repo := newGitRepo(t)
	e := b.startExecutor(t, testClient, testConfig(ns, b.server.URL))

	spec := planSpec(repo, "run-bad-sha", "true")
	spec.Source.SHA = strings.Repeat("ab", 20)
	var out lineSink
	h, err := e.Start(context.Background(), spec, out.sink)
	require.NoError(t, err)
	res := wait(t, h)
	assert.Equal(t, ReasonCheckoutFailed, res.Reason)
	assert.NotZero(t, res.ExitCode)
	joined := strings.Join(out.texts(), "\n")
	assert.Contains(t, joined, "dagctl: checking out "+spec.Source.SHA+": ", "the checkout's error reaches the sink")
}

func TestCancelStopsARunningCommand(t *testing.T) {
	ns := newNamespace(t)
	b := newBot(t)
	startNode(t, ns)
	repo := newGitRepo(t)
	e := b.startExecutor(t, testClient, testConfig(ns, b.server.URL))

	stopped := filepath.Join(t.TempDir(), "stopped")
	spec := planSpec(repo, "run-cancel", "sh", "-c", `trap 'echo term > "$STOPPED"; exit 143' TERM; echo running; while :; do sleep 0.05; done`)
	spec.Env["STOPPED"] = stopped
	var out lineSink
	h, err := e.Start(context.Background(), spec, out.sink)
	require.NoError(t, err)
	waitUntil(t, "the command runs", func() bool { return out.has("running") })

	require.NoError(t, h.Cancel(context.Background()))
	res := wait(t, h)
	assert.Equal(t, jobs.Result{ExitCode: -1, Reason: ReasonCancelled}, jobs.Result{ExitCode: res.ExitCode, Reason: res.Reason})
	waitUntil(t, "the command got SIGTERM", func() bool {
		b, err := os.ReadFile(stopped)
		return err == nil && strings.TrimSpace(string(b)) == "term"
	})
	list, err := testClient.BatchV1().Jobs(ns).List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	assert.Empty(t, list.Items)
}
