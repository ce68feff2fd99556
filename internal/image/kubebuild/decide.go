package kubebuild

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dagctl/dagctl-bot/internal/image"
)

// Errors a build can end with; the error Build returns wraps one of them and says more.
var (
	// ErrFailed: the build ran and failed (the checkout, the Dockerfile, the push).
	ErrFailed = errors.New("image: the Dockerfile build failed")
	// ErrCannotStart: the build's pod waits for something that does not come by waiting (an image that
	// cannot be pulled, a missing Secret).
	ErrCannotStart = errors.New("image: the Dockerfile build cannot start")
	// ErrTimeout: the build ran over its timeout.
	ErrTimeout = errors.New("image: the Dockerfile build timed out")
	// ErrCancelled: the caller's context ended; the Job was deleted.
	ErrCancelled = errors.New("image: the Dockerfile build was cancelled")
	// ErrGone: the Job (or its pod, with the digest) disappeared before its result was read.
	ErrGone = errors.New("image: the Dockerfile build's Job is gone")
)

// Phase is where a build's Job is.
type Phase string

const (
	PhaseNone      Phase = ""          // no Job for the request
	PhaseSuspended Phase = "suspended" // created, its clone token Secret not yet (the creator died in between)
	PhaseRunning   Phase = "running"   // pending or running
	PhaseSucceeded Phase = "succeeded"
	PhaseFailed    Phase = "failed"
)

// Status is what a build's Job and pods say, read by State.
type Status struct {
	Phase  Phase
	Result image.Result // PhaseSucceeded
	Err    error        // PhaseFailed: why, wrapping one of the Err* values
}

// Done says whether the build has ended.
func (s Status) Done() bool { return s.Phase == PhaseSucceeded || s.Phase == PhaseFailed }

// Container names of image.DockerfileJob's pod.
const (
	checkoutContainer = "checkout"
	buildContainer    = "buildkit"
)

// stuckReasons are waiting states that do not resolve by waiting; the build fails at once instead of sitting
// until its deadline. ImagePullBackOff comes after a pull failed at least once (ErrImagePull, the first
// failure, is retried by the kubelet).
var stuckReasons = map[string]bool{
	"ImagePullBackOff":           true,
	"InvalidImageName":           true,
	"ErrImageNeverPull":          true,
	"CreateContainerConfigError": true,
}

// messageLines is how much of a termination message an error keeps: the failing step is at its end.
const (
	messageLines = 20
	messageBytes = 2048
)

// State decides a build from its Job (nil: there is none, or it was deleted) and the Job's pods, as plain
// data: the result from the build container's termination message (buildctl's metadata), or why it failed,
// the most specific explanation first.
func State(req image.Request, job *batchv1.Job, pods []*corev1.Pod) Status {
	if job == nil {
		return Status{Phase: PhaseNone}
	}
	if job.Spec.Suspend != nil && *job.Spec.Suspend {
		return Status{Phase: PhaseSuspended}
	}
	pods = newestFirst(controlledBy(job, pods))
	if reason, ok := stuck(pods); ok {
		return failed(fmt.Errorf("%w: %s", ErrCannotStart, reason))
	}
	failedCond, complete := condition(job, batchv1.JobFailed), condition(job, batchv1.JobComplete)
	switch {
	case failedCond != nil && failedCond.Reason == batchv1.JobReasonDeadlineExceeded:
		return failed(fmt.Errorf("%w after %ds (activeDeadlineSeconds)%s", ErrTimeout, deadline(job), neverStarted(pods)))
	case failedCond == nil && complete == nil:
		return Status{Phase: PhaseRunning}
	}
	if len(pods) == 0 {
		if complete != nil {
			return failed(fmt.Errorf("%w: job %s completed, but its pod, which held the pushed digest, is gone", ErrGone, job.Name))
		}
		return failed(fmt.Errorf("%w: job %s: %s: %s (its pod is gone)", ErrFailed, job.Name, failedCond.Reason, failedCond.Message))
	}
	pod := pods[0]
	if pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed {
		return Status{Phase: PhaseRunning} // the pod's last status has not been seen yet; its event comes
	}
	checkout := terminated(pod.Status.InitContainerStatuses, checkoutContainer)
	build := terminated(pod.Status.ContainerStatuses, buildContainer)
	switch {
	case pod.Status.Reason == "Evicted":
		return failed(fmt.Errorf("%w: the pod was evicted: %s", ErrFailed, pod.Status.Message))
	case checkout != nil && checkout.ExitCode != 0:
		return failed(fmt.Errorf("%w: the checkout of %s failed (%s, exit %d)%s", ErrFailed, req.Source.Commit,
			checkout.Reason, checkout.ExitCode, tail(checkout.Message)))
	case build != nil && build.Reason == "OOMKilled":
		return failed(fmt.Errorf("%w: the build ran out of memory (OOMKilled): raise the builds' memory limit", ErrFailed))
	case build != nil && build.ExitCode != 0:
		return failed(fmt.Errorf("%w (%s, exit %d)%s", ErrFailed, build.Reason, build.ExitCode, tail(build.Message)))
	case build != nil && complete != nil:
		res, err := image.ResultFromMetadata(req, build.Message)
		if err != nil {
			return failed(fmt.Errorf("%w: the build ended but left no digest: %w", ErrFailed, err))
		}
		return Status{Phase: PhaseSucceeded, Result: res}
	case complete != nil:
		return failed(fmt.Errorf("%w: job %s completed, but its pod has no status of the build container", ErrGone, job.Name))
	}
	return failed(fmt.Errorf("%w: job %s: %s: %s", ErrFailed, job.Name, failedCond.Reason, failedCond.Message))
}

func failed(err error) Status { return Status{Phase: PhaseFailed, Err: err} }

func condition(job *batchv1.Job, typ batchv1.JobConditionType) *batchv1.JobCondition {
	for i, c := range job.Status.Conditions {
		if c.Type == typ && c.Status == corev1.ConditionTrue {
			return &job.Status.Conditions[i]
		}
	}
	return nil
}

func deadline(job *batchv1.Job) int64 {
	if job.Spec.ActiveDeadlineSeconds == nil {
		return 0
	}
	return *job.Spec.ActiveDeadlineSeconds
}

func controlledBy(job *batchv1.Job, pods []*corev1.Pod) []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range pods {
		if metav1.IsControlledBy(p, job) {
			out = append(out, p)
		}
	}
	return out
}

func newestFirst(pods []*corev1.Pod) []*corev1.Pod {
	sort.SliceStable(pods, func(i, j int) bool {
		return pods[j].CreationTimestamp.Before(&pods[i].CreationTimestamp)
	})
	return pods
}

func terminated(statuses []corev1.ContainerStatus, name string) *corev1.ContainerStateTerminated {
	for _, s := range statuses {
		if s.Name == name {
			return s.State.Terminated
		}
	}
	return nil
}

// stuck finds a container of a running pod that waits for something that will not come by itself.
func stuck(pods []*corev1.Pod) (string, bool) {
	for _, pod := range pods {
		if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		for _, s := range append(append([]corev1.ContainerStatus{}, pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...) {
			if w := s.State.Waiting; w != nil && stuckReasons[w.Reason] {
				return fmt.Sprintf("container %s (%s): %s: %s", s.Name, s.Image, w.Reason, w.Message), true
			}
		}
	}
	return "", false
}

// neverStarted says, for a build over its deadline, which container was still waiting and for what: a Secret
// volume that does not exist (the push Secret, the clone token's) keeps a Pod in ContainerCreating, which
// only the node's events explain.
func neverStarted(pods []*corev1.Pod) string {
	if len(pods) == 0 {
		return ""
	}
	for _, s := range append(append([]corev1.ContainerStatus{}, pods[0].Status.InitContainerStatuses...), pods[0].Status.ContainerStatuses...) {
		if w := s.State.Waiting; w != nil && w.Reason != "PodInitializing" {
			return fmt.Sprintf(": container %s was still waiting (%s): check that the Secrets the pod mounts exist "+
				"(kubectl describe pod %s)", s.Name, w.Reason, pods[0].Name)
		}
	}
	if pods[0].Status.Phase == corev1.PodPending && len(pods[0].Status.ContainerStatuses) == 0 && len(pods[0].Status.InitContainerStatuses) == 0 {
		return fmt.Sprintf(": pod %s never started (unscheduled, or its volumes could not be mounted: do the Secrets it mounts exist?)", pods[0].Name)
	}
	return ""
}

// tail is the end of a termination message, for an error: a failed container's message is the log's tail
// (FallbackToLogsOnError), whose last lines say what failed.
func tail(message string) string {
	message = strings.TrimRight(message, "\n")
	if message == "" {
		return ""
	}
	lines := strings.Split(message, "\n")
	if len(lines) > messageLines {
		lines = lines[len(lines)-messageLines:]
	}
	out := strings.Join(lines, "\n")
	if len(out) > messageBytes {
		out = "…" + out[len(out)-messageBytes:]
	}
	return ":\n" + out
}
