package kubebuild

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/dagctl/dagctl-bot/internal/image"
	"github.com/dagctl/dagctl-bot/internal/jobs/kube"
	"github.com/dagctl/dagctl-bot/internal/jobs/kube/kubetest"
)

// One real control plane for the package (kubetest: kube-apiserver and kube-controller-manager's Job, garbage
// collector and TTL controllers); there is no kubelet, the tests play the node.
var testEnv *kubetest.Env

func TestMain(m *testing.M) {
	os.Exit(kubetest.Main(m, func(env *kubetest.Env) { testEnv = env }))
}

const token = "ghs_cloneTokenOfTheBuild"

type world struct {
	t      *testing.T
	client kubernetes.Interface
	ns     string
	node   *kubetest.Node
}

func newWorld(t *testing.T) *world {
	ns := testEnv.Namespace(t)
	node := kubetest.StartNode(t, testEnv.Client, ns, kubetest.NodeConfig{
		Run: func(context.Context, []string, []string) int {
			t.Errorf("node: a build pod has no behaviour")
			return 1
		},
		TerminationLogEnv: "UNUSED",
		RunIDAnnotation:   annotationCommit, // the node's behaviours are by commit
	})
	return &world{t: t, client: testEnv.Client, ns: ns, node: node}
}

func (w *world) settings() Settings {
	return Settings{
		DockerfileSettings: image.DockerfileSettings{
			Namespace:      w.ns,
			GitImage:       "alpine/git:2.49.1",
			RegistrySecret: "marts-push",
			Labels:         map[string]string{"app.kubernetes.io/instance": "prod-bot"},
		},
		Instance: "prod-bot",
	}
}

func (w *world) builder(edit ...func(*Settings)) *Builder {
	s := w.settings()
	for _, e := range edit {
		e(&s)
	}
	b, err := New(w.client, s)
	require.NoError(w.t, err)
	return b
}

// buildRequest is a build of a commit of its own, so that the node tells the tests' pods apart.
func buildRequest() image.Request {
	b := make([]byte, 20)
	_, _ = rand.Read(b)
	sha := hex.EncodeToString(b)
	return image.Request{
		Source: image.Source{CloneURL: "https://forge.example/acme/data.git", Commit: sha, Subdir: "marts",
			Token: token},
		Repository: "registry.example/acme/marts",
		Tag:        "1.4.0-" + sha[:12],
		Labels:     image.Labels(sha, "1.4.0", "https://forge.example/acme/data"),
	}
}

// checkoutThen plays the checkout as succeeded, then ends the build container as end says (nil: it keeps
// running until the pod is deleted).
func (w *world) checkoutThen(req image.Request, end func(c corev1.Container) (corev1.PodPhase, corev1.ContainerStatus)) {
	w.node.On(req.Source.Commit, func(ctx context.Context, pod *corev1.Pod) {
		checkout, build := pod.Spec.InitContainers[0], pod.Spec.Containers[0]
		w.node.SetStatus(pod, func(s *corev1.PodStatus) {
			s.Phase = corev1.PodRunning
			s.InitContainerStatuses = []corev1.ContainerStatus{kubetest.TerminatedStatus(checkout, 0, "")}
			s.ContainerStatuses = []corev1.ContainerStatus{kubetest.RunningStatus(build)}
		})
		if end == nil {
			<-ctx.Done()
			return
		}
		phase, status := end(build)
		w.node.SetStatus(pod, func(s *corev1.PodStatus) {
			s.Phase = phase
			s.ContainerStatuses = []corev1.ContainerStatus{status}
		})
	})
}

func pushes(c corev1.Container) (corev1.PodPhase, corev1.ContainerStatus) {
	return corev1.PodSucceeded, kubetest.TerminatedStatus(c, 0, metadata())
}

func (w *world) job(name string) (*batchv1.Job, error) {
	return w.client.BatchV1().Jobs(w.ns).Get(context.Background(), name, metav1.GetOptions{})
}

func (w *world) jobName(b *Builder, req image.Request) string {
	name, err := b.JobName(req)
	require.NoError(w.t, err)
	return name
}

func (w *world) eventuallyGone(name string) {
	w.t.Helper()
	require.Eventually(w.t, func() bool {
		_, err := w.job(name)
		return apierrors.IsNotFound(err)
	}, 30*time.Second, 100*time.Millisecond, "job %s still exists", name)
}

func wantResult(req image.Request) image.Result {
	return image.Result{Reference: req.Repository + "@" + digest, Digest: digest, Tagged: req.Repository + ":" + req.Tag}
}

func TestABuildThatPushesReturnsItsDigest(t *testing.T) {
	w := newWorld(t)
	b := w.builder()
	req := buildRequest()
	w.checkoutThen(req, pushes)

	res, err := b.Build(context.Background(), req)
	require.NoError(t, err)
	assert.Equal(t, wantResult(req), res)

	// What the apiserver stored: DockerfileJob's hardened spec, labelled to be found again, cleaned up by TTL.
	job, err := w.job(w.jobName(b, req))
	require.NoError(t, err)
	assert.Equal(t, "prod-bot", job.Labels[LabelInstance])
	assert.Equal(t, job.Name, job.Labels[LabelBuild])
	assert.Equal(t, job.Name, job.Spec.Template.Labels[LabelBuild], "the pods are selected by it")
	assert.NotContains(t, job.Labels, "dagctl.dev/instance", "the executor's orphan sweep deletes what carries it")
	assert.Equal(t, "registry.example/acme/marts:"+req.Tag, job.Annotations[annotationImage])
	assert.Equal(t, int32(3600), *job.Spec.TTLSecondsAfterFinished)
	assert.Equal(t, int32(0), *job.Spec.BackoffLimit)
	assert.False(t, *job.Spec.Suspend, "released once its Secret existed")

	pod := job.Spec.Template.Spec
	assert.False(t, *pod.AutomountServiceAccountToken, "the Dockerfile gets no API credentials")
	assert.False(t, *pod.EnableServiceLinks)
	assert.True(t, *pod.SecurityContext.RunAsNonRoot)
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	require.NotNil(t, volumes["docker-config"].Secret)
	assert.Equal(t, "marts-push", volumes["docker-config"].Secret.SecretName)
	require.NotNil(t, volumes["clone-token"].Secret)
	cloneSecret := volumes["clone-token"].Secret.SecretName
	assert.Regexp(t, "^"+job.Name+"-clone-[0-9a-f]{8}$", cloneSecret)

	mounts := func(c corev1.Container) map[string]bool {
		m := map[string]bool{}
		for _, vm := range c.VolumeMounts {
			m[vm.Name] = true
		}
		return m
	}
	require.Len(t, pod.InitContainers, 1)
	require.Len(t, pod.Containers, 1)
	checkout, build := pod.InitContainers[0], pod.Containers[0]
	assert.Equal(t, map[string]bool{"workspace": true, "clone-token": true}, mounts(checkout), "no push credentials in the checkout")
	assert.Equal(t, map[string]bool{"workspace": true, "buildkitd": true, "docker-config": true}, mounts(build), "no clone token in the build")
	assert.False(t, *checkout.SecurityContext.AllowPrivilegeEscalation)
	assert.False(t, *build.SecurityContext.Privileged)
	assert.Equal(t, corev1.SeccompProfileTypeUnconfined, build.SecurityContext.SeccompProfile.Type, "BuildKit's rootless example")
	for _, c := range []corev1.Container{checkout, build} {
		assert.Empty(t, c.EnvFrom, c.Name)
		for _, e := range c.Env {
			assert.Nil(t, e.ValueFrom, "%s %s: credentials are files, never variables", c.Name, e.Name)
			assert.NotContains(t, e.Value, token, "%s %s", c.Name, e.Name)
		}
	}
	assert.NotContains(t, job.String(), token, "the token is in its Secret alone")

	// The clone token's Secret: the token alone, owned by the Job, so the garbage collector deletes it with it.
	secret, err := w.client.CoreV1().Secrets(w.ns).Get(context.Background(), cloneSecret, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, map[string][]byte{"token": []byte(token)}, secret.Data)
	assert.True(t, *secret.Immutable)
	require.Len(t, secret.OwnerReferences, 1)
	assert.Equal(t, job.UID, secret.OwnerReferences[0].UID)

	// Asked again (a restarted apply), the finished build is the answer: no second Job.
	again, err := b.Build(context.Background(), req)
	require.NoError(t, err)
	assert.Equal(t, res, again)
	same, err := w.job(job.Name)
	require.NoError(t, err)
	assert.Equal(t, job.UID, same.UID)
}

func TestAFailedBuildSaysWhyAndIsBuiltAgainWhenAskedAgain(t *testing.T) {
	w := newWorld(t)
	b := w.builder()
	req := buildRequest()
	log := "#7 [2/3] RUN pip install -r requirements.txt\n#7 ERROR: No matching distribution found for dbt-snowflak\n" +
		"ERROR: failed to solve: process \"/bin/sh -c pip install -r requirements.txt\" did not complete successfully: exit code: 1\n"
	w.checkoutThen(req, func(c corev1.Container) (corev1.PodPhase, corev1.ContainerStatus) {
		return corev1.PodFailed, kubetest.TerminatedStatus(c, 1, log)
	})

	_, err := b.Build(context.Background(), req)
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrFailed)
	assert.Contains(t, err.Error(), "(Error, exit 1):\n#7 [2/3] RUN pip install")
	assert.Contains(t, err.Error(), "No matching distribution found for dbt-snowflak")
	assert.NotContains(t, err.Error(), token)
	name := w.jobName(b, req)
	failedJob, err := w.job(name)
	require.NoError(t, err, "a failed Job is kept for its TTL")
	status, err := b.Find(context.Background(), req)
	require.NoError(t, err)
	assert.Equal(t, PhaseFailed, status.Phase)
	assert.ErrorIs(t, status.Err, ErrFailed)

	// The next apply asks again: the failed Job is replaced, and this time the build pushes.
	w.checkoutThen(req, pushes)
	res, err := b.Build(context.Background(), req)
	require.NoError(t, err)
	assert.Equal(t, wantResult(req), res)
	rebuilt, err := w.job(name)
	require.NoError(t, err)
	assert.NotEqual(t, failedJob.UID, rebuilt.UID)
}

func TestACheckoutThatFailsSaysSo(t *testing.T) {
	w := newWorld(t)
	b := w.builder()
	req := buildRequest()
	w.node.On(req.Source.Commit, func(_ context.Context, pod *corev1.Pod) {
		w.node.SetStatus(pod, func(s *corev1.PodStatus) {
			s.Phase = corev1.PodFailed
			s.InitContainerStatuses = []corev1.ContainerStatus{kubetest.TerminatedStatus(pod.Spec.InitContainers[0], 128,
				"fatal: could not read Username for 'https://forge.example': terminal prompts disabled")}
			s.ContainerStatuses = []corev1.ContainerStatus{kubetest.WaitingStatus(pod.Spec.Containers[0], "PodInitializing")}
		})
	})
	_, err := b.Build(context.Background(), req)
	assert.ErrorIs(t, err, ErrFailed)
	assert.ErrorContains(t, err, "the checkout of "+req.Source.Commit+" failed (Error, exit 128):\nfatal: could not read Username")
}

func TestACancelledBuildDeletesItsJob(t *testing.T) {
	w := newWorld(t)
	b := w.builder()
	req := buildRequest()
	running := make(chan struct{})
	w.node.On(req.Source.Commit, func(ctx context.Context, pod *corev1.Pod) {
		w.node.SetStatus(pod, func(s *corev1.PodStatus) {
			s.Phase = corev1.PodRunning
			s.ContainerStatuses = []corev1.ContainerStatus{kubetest.RunningStatus(pod.Spec.Containers[0])}
		})
		close(running)
		<-ctx.Done() // until the pod is deleted
	})
	ctx, cancel := context.WithCancelCause(context.Background())
	go func() {
		<-running
		cancel(errors.New("cancelled by bob"))
	}()
	_, err := b.Build(ctx, req)
	assert.ErrorIs(t, err, ErrCancelled)
	assert.ErrorContains(t, err, "cancelled by bob")
	name := w.jobName(b, req)
	w.eventuallyGone(name)
	require.Eventually(t, func() bool {
		pods, err := w.client.CoreV1().Pods(w.ns).List(context.Background(), metav1.ListOptions{LabelSelector: buildSelector(name)})
		return err == nil && len(pods.Items) == 0
	}, 30*time.Second, 100*time.Millisecond, "the garbage collector deletes the pod with its Job")
}

func TestAPodThatCannotPullFailsAtOnceAndIsDeleted(t *testing.T) {
	w := newWorld(t)
	b := w.builder()
	req := buildRequest()
	w.node.On(req.Source.Commit, func(_ context.Context, pod *corev1.Pod) {
		w.node.SetStatus(pod, func(s *corev1.PodStatus) {
			s.InitContainerStatuses = []corev1.ContainerStatus{kubetest.TerminatedStatus(pod.Spec.InitContainers[0], 0, "")}
			s.ContainerStatuses = []corev1.ContainerStatus{kubetest.WaitingStatus(pod.Spec.Containers[0], "ImagePullBackOff")}
		})
	})
	_, err := b.Build(context.Background(), req)
	assert.ErrorIs(t, err, ErrCannotStart)
	assert.ErrorContains(t, err, "container buildkit (moby/buildkit:v0.32.2-rootless): ImagePullBackOff")
	w.eventuallyGone(w.jobName(b, req))
}

func TestABuildOverItsDeadlineTimesOut(t *testing.T) {
	w := newWorld(t)
	b := w.builder(func(s *Settings) { s.Timeout = 2 * time.Second })
	req := buildRequest()
	w.checkoutThen(req, nil) // runs until its pod is deleted
	_, err := b.Build(context.Background(), req)
	assert.ErrorIs(t, err, ErrTimeout)
	assert.ErrorContains(t, err, "after 2s")
}

func TestARestartedBotReattachesToTheBuildItStarted(t *testing.T) {
	w := newWorld(t)
	shutdown := errors.New("shutting down")
	first := w.builder(func(s *Settings) { s.Detach = func(cause error) bool { return errors.Is(cause, shutdown) } })
	req := buildRequest()
	running := make(chan struct{})
	finish := make(chan struct{})
	w.node.On(req.Source.Commit, func(ctx context.Context, pod *corev1.Pod) {
		w.node.SetStatus(pod, func(s *corev1.PodStatus) {
			s.Phase = corev1.PodRunning
			s.InitContainerStatuses = []corev1.ContainerStatus{kubetest.TerminatedStatus(pod.Spec.InitContainers[0], 0, "")}
			s.ContainerStatuses = []corev1.ContainerStatus{kubetest.RunningStatus(pod.Spec.Containers[0])}
		})
		close(running)
		select {
		case <-finish:
		case <-ctx.Done():
			return
		}
		w.node.SetStatus(pod, func(s *corev1.PodStatus) {
			_, status := pushes(pod.Spec.Containers[0])
			s.Phase, s.ContainerStatuses = corev1.PodSucceeded, []corev1.ContainerStatus{status}
		})
	})
	ctx, cancel := context.WithCancelCause(context.Background())
	go func() { <-running; cancel(shutdown) }()
	_, err := first.Build(ctx, req)
	assert.ErrorIs(t, err, ErrCancelled)
	assert.ErrorContains(t, err, "left running")

	// The next process finds the build running and follows it to its digest.
	next := w.builder()
	status, err := next.Find(context.Background(), req)
	require.NoError(t, err)
	assert.Equal(t, PhaseRunning, status.Phase)
	job, err := w.job(w.jobName(next, req))
	require.NoError(t, err)
	close(finish)
	res, err := next.Build(context.Background(), req)
	require.NoError(t, err)
	assert.Equal(t, wantResult(req), res)
	after, err := w.job(job.Name)
	require.NoError(t, err)
	assert.Equal(t, job.UID, after.UID, "the same Job, not a second build")
	status, err = next.Find(context.Background(), req)
	require.NoError(t, err)
	assert.Equal(t, Status{Phase: PhaseSucceeded, Result: res}, status)
}

func TestAJobLeftSuspendedByACrashIsReleasedWithTheNewToken(t *testing.T) {
	w := newWorld(t)
	b := w.builder()
	req := buildRequest()
	// The bot died between creating the Job and its Secret.
	_, job, _, err := b.plan(req)
	require.NoError(t, err)
	_, err = w.client.BatchV1().Jobs(w.ns).Create(context.Background(), job, metav1.CreateOptions{})
	require.NoError(t, err)
	status, err := b.Find(context.Background(), req)
	require.NoError(t, err)
	assert.Equal(t, PhaseSuspended, status.Phase)

	req.Source.Token = "ghs_aNewerToken"
	w.checkoutThen(req, pushes)
	res, err := b.Build(context.Background(), req)
	require.NoError(t, err)
	assert.Equal(t, wantResult(req), res)
	var secretName string
	for _, v := range job.Spec.Template.Spec.Volumes {
		if v.Name == "clone-token" {
			secretName = v.Secret.SecretName
		}
	}
	secret, err := w.client.CoreV1().Secrets(w.ns).Get(context.Background(), secretName, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, []byte("ghs_aNewerToken"), secret.Data["token"])
}

func TestTheExecutorsOrphanSweepLeavesBuildsAlone(t *testing.T) {
	w := newWorld(t)
	b := w.builder()
	req := buildRequest()
	w.checkoutThen(req, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := b.Build(ctx, req); done <- err }()
	name := w.jobName(b, req)
	require.Eventually(t, func() bool { _, err := w.job(name); return err == nil }, 30*time.Second, 50*time.Millisecond)

	exec, err := kube.New(context.Background(), w.client, kube.Config{
		Namespace: w.ns, PublicURL: "http://bot.invalid", TokenKey: []byte("0123456789abcdef0123"),
		RunnerImage: "ghcr.io/dagctl/dagctl-bot:test", Instance: "prod-bot",
	})
	require.NoError(t, err)
	defer exec.Close()
	deleted, err := exec.CleanOrphans(context.Background(), func(string) bool { return false })
	require.NoError(t, err)
	assert.Empty(t, deleted)
	_, err = w.job(name)
	assert.NoError(t, err, "the build's Job is still there")
	cancel()
	assert.ErrorIs(t, <-done, ErrCancelled)
}

func TestNewRefusesIncompleteSettings(t *testing.T) {
	w := newWorld(t)
	for _, tc := range []struct {
		edit func(*Settings)
		want string
	}{
		{func(s *Settings) { s.Namespace = "" }, "no namespace"},
		{func(s *Settings) { s.GitImage = "" }, "no git image"},
		{func(s *Settings) { s.RegistrySecret = "" }, "no registry Secret"},
		{func(s *Settings) { s.CloneTokenSecret = "clone" }, "needs its user"},
		{func(s *Settings) { s.Labels = map[string]string{"dagctl.dev/instance": "prod-bot"} }, "orphan sweep"},
		{func(s *Settings) { s.Instance = "prod bot" }, "not a label value"},
	} {
		s := w.settings()
		tc.edit(&s)
		_, err := New(w.client, s)
		assert.ErrorContains(t, err, tc.want)
	}
}

func TestTwoCallersOfOneBuildShareItsJob(t *testing.T) {
	w := newWorld(t)
	req := buildRequest()
	pods := make(chan string, 4)
	release := make(chan struct{})
	w.node.On(req.Source.Commit, func(ctx context.Context, pod *corev1.Pod) {
		pods <- pod.Name
		select {
		case <-release:
		case <-ctx.Done():
			return
		}
		w.node.SetStatus(pod, func(s *corev1.PodStatus) {
			_, status := pushes(pod.Spec.Containers[0])
			s.Phase = corev1.PodSucceeded
			s.InitContainerStatuses = []corev1.ContainerStatus{kubetest.TerminatedStatus(pod.Spec.InitContainers[0], 0, "")}
			s.ContainerStatuses = []corev1.ContainerStatus{status}
		})
	})
	results := make(chan error, 2)
	for range 2 {
		go func() {
			res, err := w.builder().Build(context.Background(), req)
			if err == nil && res != wantResult(req) {
				err = errors.New("another result: " + res.Reference)
			}
			results <- err
		}()
	}
	<-pods
	// Give the second caller time to meet the first one's Job (whenever it comes, it must not start another).
	time.Sleep(500 * time.Millisecond)
	close(release)
	for range 2 {
		assert.NoError(t, <-results)
	}
	assert.Empty(t, pods, "one Job, one pod")
}

func TestAFinishedBuildIsCleanedUpWithItsSecret(t *testing.T) {
	w := newWorld(t)
	b := w.builder(func(s *Settings) { s.TTLAfterFinished = time.Second })
	req := buildRequest()
	w.checkoutThen(req, pushes)
	_, err := b.Build(context.Background(), req)
	require.NoError(t, err)
	name := w.jobName(b, req)
	job, err := w.job(name)
	require.NoError(t, err)
	var secretName string
	for _, v := range job.Spec.Template.Spec.Volumes {
		if v.Name == cloneTokenVolume {
			secretName = v.Secret.SecretName
		}
	}
	require.NotEmpty(t, secretName)

	w.eventuallyGone(name) // the TTL controller
	require.Eventually(t, func() bool {
		_, err := w.client.CoreV1().Secrets(w.ns).Get(context.Background(), secretName, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}, 30*time.Second, 100*time.Millisecond, "the garbage collector deletes the clone token with its Job")
	status, err := b.Find(context.Background(), req)
	require.NoError(t, err)
	assert.Equal(t, PhaseNone, status.Phase)
}
