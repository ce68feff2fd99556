package kubebuild

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/dagctl/dagctl-bot/internal/image"
)

const (
	commit = "3f2c1a9e0b4d5f6a7b8c9d0e1f2a3b4c5d6e7f80"
	digest = "sha256:7e1b5a0d0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e"
)

func metadata() string {
	return `{"containerimage.digest":"` + digest + `","image.name":"registry.example/acme/marts:1.4.0-3f2c1a9e0b4d"}`
}

func request() image.Request {
	return image.Request{
		Source:     image.Source{CloneURL: "https://forge.example/acme/data.git", Commit: commit},
		Repository: "registry.example/acme/marts",
		Tag:        "1.4.0-3f2c1a9e0b4d",
	}
}

func TestState(t *testing.T) {
	job := func(conds ...batchv1.JobCondition) *batchv1.Job {
		return &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{Name: "dagctl-image-0123456789abcdef", UID: "job-uid"},
			Spec:       batchv1.JobSpec{ActiveDeadlineSeconds: ptr.To[int64](1800)},
			Status:     batchv1.JobStatus{Conditions: conds},
		}
	}
	complete := batchv1.JobCondition{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}
	failedCond := batchv1.JobCondition{Type: batchv1.JobFailed, Status: corev1.ConditionTrue,
		Reason: batchv1.JobReasonBackoffLimitExceeded, Message: "Job has reached the specified backoff limit"}
	deadline := batchv1.JobCondition{Type: batchv1.JobFailed, Status: corev1.ConditionTrue,
		Reason: batchv1.JobReasonDeadlineExceeded, Message: "Job was active longer than specified deadline"}
	pod := func(phase corev1.PodPhase, checkout, build corev1.ContainerState) *corev1.Pod {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "build-pod", CreationTimestamp: metav1.NewTime(time.Unix(100, 0)),
				OwnerReferences: []metav1.OwnerReference{{Kind: "Job", Name: "dagctl-image-0123456789abcdef", UID: "job-uid", Controller: ptr.To(true)}}},
			Status: corev1.PodStatus{Phase: phase,
				InitContainerStatuses: []corev1.ContainerStatus{{Name: "checkout", Image: "alpine/git", State: checkout}},
				ContainerStatuses:     []corev1.ContainerStatus{{Name: "buildkit", Image: "moby/buildkit:v0.32.2-rootless", State: build}}},
		}
		return p
	}
	exited := func(code int32, reason, message string) corev1.ContainerState {
		return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason, Message: message}}
	}
	waiting := func(reason string) corev1.ContainerState {
		return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: reason + ": the message"}}
	}
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	pushed := pod(corev1.PodSucceeded, exited(0, "Completed", ""), exited(0, "Completed", metadata()))
	longLog := strings.Repeat("#7 [2/3] RUN pip install -r requirements.txt\n", 30) + "ERROR: failed to solve: process \"/bin/sh -c pip install\" did not complete successfully: exit code: 1\n"

	for _, tc := range []struct {
		name  string
		job   *batchv1.Job
		pods  []*corev1.Pod
		phase Phase
		is    error
		says  []string
		never []string
	}{
		{name: "no job", job: nil, phase: PhaseNone},
		{name: "suspended", job: func() *batchv1.Job { j := job(); j.Spec.Suspend = ptr.To(true); return j }(), phase: PhaseSuspended},
		{name: "pending without a pod", job: job(), phase: PhaseRunning},
		{name: "checking out", job: job(), pods: []*corev1.Pod{pod(corev1.PodPending, running, waiting("PodInitializing"))}, phase: PhaseRunning},
		{name: "a first pull failure is retried", job: job(), pods: []*corev1.Pod{pod(corev1.PodPending, waiting("ErrImagePull"), waiting("PodInitializing"))}, phase: PhaseRunning},
		{name: "pushed", job: job(complete), pods: []*corev1.Pod{pushed}, phase: PhaseSucceeded},
		{name: "complete before the pod's last status arrived", job: job(complete),
			pods: []*corev1.Pod{pod(corev1.PodRunning, exited(0, "Completed", ""), running)}, phase: PhaseRunning},
		{name: "the build image cannot be pulled", job: job(), phase: PhaseFailed, is: ErrCannotStart,
			pods: []*corev1.Pod{pod(corev1.PodPending, exited(0, "Completed", ""), waiting("ImagePullBackOff"))},
			says: []string{"container buildkit (moby/buildkit:v0.32.2-rootless): ImagePullBackOff: ImagePullBackOff: the message"}},
		{name: "the git image name is invalid", job: job(), phase: PhaseFailed, is: ErrCannotStart,
			pods: []*corev1.Pod{pod(corev1.PodPending, waiting("InvalidImageName"), waiting("PodInitializing"))},
			says: []string{"container checkout (alpine/git): InvalidImageName"}},
		{name: "the deadline", job: job(deadline), pods: []*corev1.Pod{pod(corev1.PodFailed, exited(0, "Completed", ""), exited(137, "Error", ""))},
			phase: PhaseFailed, is: ErrTimeout, says: []string{"after 1800s"}},
		{name: "the deadline while the pod waited for a missing Secret", job: job(deadline),
			pods:  []*corev1.Pod{pod(corev1.PodPending, waiting("ContainerCreating"), waiting("PodInitializing"))},
			phase: PhaseFailed, is: ErrTimeout,
			says: []string{"after 1800s (activeDeadlineSeconds): container checkout was still waiting (ContainerCreating): check that the Secrets the pod mounts exist (kubectl describe pod build-pod)"}},
		{name: "the deadline before the pod started", job: job(deadline),
			pods:  []*corev1.Pod{{ObjectMeta: pushed.ObjectMeta, Status: corev1.PodStatus{Phase: corev1.PodPending}}},
			phase: PhaseFailed, is: ErrTimeout, says: []string{"pod build-pod never started"}},
		{name: "the checkout failed", job: job(failedCond), phase: PhaseFailed, is: ErrFailed,
			pods: []*corev1.Pod{pod(corev1.PodFailed, exited(128, "Error", "fatal: could not read Username"), waiting("PodInitializing"))},
			says: []string{"the checkout of " + commit + " failed (Error, exit 128):\nfatal: could not read Username"}},
		{name: "the Dockerfile failed: the log's tail", job: job(failedCond), phase: PhaseFailed, is: ErrFailed,
			pods:  []*corev1.Pod{pod(corev1.PodFailed, exited(0, "Completed", ""), exited(1, "Error", longLog))},
			says:  []string{"(Error, exit 1):\n#7 [2/3] RUN pip", "ERROR: failed to solve"},
			never: []string{strings.Repeat("#7 [2/3] RUN pip install -r requirements.txt\n", 20)}},
		{name: "out of memory", job: job(failedCond), phase: PhaseFailed, is: ErrFailed,
			pods: []*corev1.Pod{pod(corev1.PodFailed, exited(0, "Completed", ""), exited(137, "OOMKilled", ""))},
			says: []string{"ran out of memory (OOMKilled)"}},
		{name: "evicted", job: job(failedCond), phase: PhaseFailed, is: ErrFailed,
			pods: []*corev1.Pod{func() *corev1.Pod {
				p := pod(corev1.PodFailed, exited(0, "Completed", ""), running)
				p.Status.Reason, p.Status.Message = "Evicted", "The node was low on resource: ephemeral-storage."
				return p
			}()},
			says: []string{"evicted: The node was low on resource: ephemeral-storage."}},
		{name: "failed, the pod gone", job: job(failedCond), phase: PhaseFailed, is: ErrFailed,
			says: []string{"BackoffLimitExceeded: Job has reached the specified backoff limit (its pod is gone)"}},
		{name: "complete, the pod gone: no digest", job: job(complete), phase: PhaseFailed, is: ErrGone,
			says: []string{"which held the pushed digest, is gone"}},
		{name: "complete without metadata", job: job(complete), phase: PhaseFailed, is: ErrFailed,
			pods: []*corev1.Pod{pod(corev1.PodSucceeded, exited(0, "Completed", ""), exited(0, "Completed", "done\n"))},
			says: []string{"left no digest"}},
		{name: "another Job's pod is not this build's", job: job(complete), phase: PhaseFailed, is: ErrGone,
			pods: []*corev1.Pod{func() *corev1.Pod { p := pushed.DeepCopy(); p.OwnerReferences[0].UID = "other"; return p }()}},
		{name: "the newest pod decides", job: job(complete), phase: PhaseSucceeded,
			pods: []*corev1.Pod{func() *corev1.Pod {
				p := pod(corev1.PodFailed, exited(1, "Error", "old"), waiting("PodInitializing"))
				p.CreationTimestamp = metav1.NewTime(time.Unix(50, 0))
				return p
			}(), pushed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := State(request(), tc.job, tc.pods)
			assert.Equal(t, tc.phase, s.Phase)
			if tc.phase == PhaseSucceeded {
				assert.Equal(t, image.Result{
					Reference: "registry.example/acme/marts@" + digest, Digest: digest,
					Tagged: "registry.example/acme/marts:1.4.0-3f2c1a9e0b4d",
				}, s.Result)
			}
			if tc.is == nil {
				assert.NoError(t, s.Err)
				return
			}
			require.Error(t, s.Err)
			assert.True(t, errors.Is(s.Err, tc.is), "%v is not %v", s.Err, tc.is)
			for _, want := range tc.says {
				assert.Contains(t, s.Err.Error(), want)
			}
			for _, not := range tc.never {
				assert.NotContains(t, s.Err.Error(), not)
			}
		})
	}
}
