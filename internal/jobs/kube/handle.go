package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/dagctl/dagctl-bot/internal/jobs"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// Reasons of a Result that did not come from the command's own exit code.
const (
	ReasonTimeout   = "timeout"   // activeDeadlineSeconds passed (the job's Timeout)
	ReasonCancelled = "cancelled" // Cancel
	ReasonOOMKilled = "OOMKilled" // a container went over its memory limit
	ReasonEvicted   = "Evicted"   // the node evicted the Pod (memory or disk pressure, drain)
	// ReasonCheckoutFailed: the init container could not fetch the commit; its output says why.
	ReasonCheckoutFailed = "CheckoutFailed"
	// ReasonJobDeleted: someone else deleted the Job before it finished.
	ReasonJobDeleted = "JobDeleted"
	// ReasonFailed: the Job failed and nothing says more (its Pod is gone); the exit code is unknown.
	ReasonFailed = "Failed"
	// ReasonInputsLost: the bot restarted before the Pod fetched the job's inputs, which only the process that
	// started the job holds; nothing ran, and the job can be started again.
	ReasonInputsLost = "InputsLost"
)

// exitInputsLost is the init container's exit code when the bot no longer has the run's inputs (EX_TEMPFAIL).
const exitInputsLost = 75

// stuckReasons are container waiting states that do not resolve by waiting: the job fails at once instead of
// sitting Pending until its deadline. ImagePullBackOff comes after a pull failed at least once.
var stuckReasons = map[string]bool{
	"ImagePullBackOff":           true,
	"InvalidImageName":           true,
	"ErrImageNeverPull":          true,
	"CreateContainerConfigError": true, // e.g. a Secret named in job.secrets does not exist
}

// handle follows one run's Job.
type handle struct {
	e       *Executor
	runID   string
	jobName string
	started time.Time
	done    chan struct{}

	mu        sync.Mutex
	sink      jobs.Sink
	nextSeq   int64        // the next line number the Pod reports; lower numbers are resent duplicates
	gotLines  bool         // lines arrived over HTTP, so the termination message's tail is not needed
	reported  *jobs.Result // the result the Pod posted
	cancelled bool         // Cancel deleted the Job; its disappearance decides
	deciding  bool         // the result is known; the Pod's log is being read
	decided   bool
	result    jobs.Result
	// inputs are the job's Spec.Inputs, served to its Pod until the run is decided; only the process that
	// started the run has them (inputsKnown), not one that attached to it after a restart.
	inputs      map[string][]byte
	inputsKnown bool
	collect     []string // Spec.Collect: the only artifacts taken from the Pod
}

func (h *handle) setCollect(paths []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.collect = paths
}

// collectCount is how many artifacts the run may report, for the result's body limit.
func (h *handle) collectCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.collect)
}

func (h *handle) setInputs(inputs map[string][]byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.inputs, h.inputsKnown = inputs, true
}

// inputsOf returns the job's inputs, and false when this process does not have them.
func (h *handle) inputsOf() (map[string][]byte, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.inputs, h.inputsKnown && !h.decided
}

func (h *handle) ID() string { return h.runID }

func (h *handle) Wait(ctx context.Context) (jobs.Result, error) {
	select {
	case <-h.done:
		return h.result, nil
	case <-ctx.Done():
		return jobs.Result{}, ctx.Err()
	case <-h.e.closed:
		select {
		case <-h.done:
			return h.result, nil
		default:
			return jobs.Result{}, ErrClosed
		}
	}
}

// Cancel deletes the Job with its Pod (foreground); Wait returns "cancelled" once the Job is gone, so that no
// container of the run is still working when the caller moves on (e.g. releases an apply lock).
func (h *handle) Cancel(ctx context.Context) error {
	h.mu.Lock()
	if h.decided || h.deciding {
		h.mu.Unlock()
		return nil
	}
	h.cancelled = true
	h.mu.Unlock()
	if err := h.e.deleteJob(ctx, h.jobName, ""); err != nil {
		return err
	}
	if _, err := h.e.jobs.Jobs(h.e.cfg.Namespace).Get(h.jobName); err != nil {
		// Already gone from the watch cache, so no deletion event will come for it.
		h.evaluate(nil, true)
	}
	return nil
}

// lines takes a batch the Pod reported, dropping lines that were delivered before.
func (h *handle) lines(seq int64, lines []jobs.Line) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.decided || h.deciding {
		return
	}
	skip := h.nextSeq - seq
	if skip >= int64(len(lines)) {
		return
	}
	if skip > 0 {
		lines = lines[skip:]
		seq += skip
	}
	for _, l := range lines {
		h.sink(l)
	}
	h.nextSeq = seq + int64(len(lines))
	h.gotLines = true
}

// report takes the result the Pod posted. Its artifacts are PR code's word: only the paths of Spec.Collect are
// kept, each within MaxArtifactBytes, and every path of it is either an artifact or an error. It returns the
// result taken when the run collects artifacts (to keep across restarts), else nil.
func (h *handle) report(r jobs.Result) *jobs.Result {
	h.mu.Lock()
	defer h.mu.Unlock()
	reported, errs := map[string][]byte{}, map[string]string{}
	for _, p := range h.collect {
		content, ok := r.Artifacts[p]
		switch {
		case ok && len(content) > jobs.MaxArtifactBytes:
			errs[p] = fmt.Sprintf("the file is %d bytes, over the cap of %d", len(content), jobs.MaxArtifactBytes)
		case ok:
			reported[p] = content
		case r.ArtifactErrors[p] != "":
			errs[p] = r.ArtifactErrors[p]
		default:
			errs[p] = "the job did not report it"
		}
	}
	r.Artifacts, r.ArtifactErrors = nil, nil
	if len(h.collect) > 0 {
		r.Artifacts, r.ArtifactErrors = reported, errs
	}
	h.reported = &r
	if len(h.collect) == 0 {
		return nil
	}
	return &r
}

// evaluate looks at the Job (nil when deleted) and its Pods and decides the result once the Job has ended.
func (h *handle) evaluate(job *batchv1.Job, deleted bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.decided || h.deciding {
		return
	}
	if deleted {
		reason := ReasonJobDeleted
		if h.cancelled {
			reason = ReasonCancelled
		}
		h.finish(jobs.Result{ExitCode: -1, Reason: reason, Duration: time.Since(h.started)})
		return
	}
	if h.cancelled {
		return // the deletion event decides
	}
	pods := h.e.podsOf(job)
	if reason, message, ok := stuck(pods); ok {
		h.conclude(ending{result: jobs.Result{ExitCode: -1, Reason: reason, Duration: time.Since(h.started)},
			notes: []string{message}}, nil)
		// Best effort: the TTL controller is the backstop.
		go func() { _ = h.e.deleteJob(context.Background(), job.Name, job.UID) }()
		return
	}
	failed, failReason := jobFailed(job)
	complete := jobComplete(job)
	if !failed && !complete {
		return
	}
	if failReason != "DeadlineExceeded" && len(pods) > 0 && !podDone(pods[0]) {
		return // the Pod's last status has not reached the watch yet; its event comes next
	}
	end := h.resultOf(job, pods, complete, failReason)
	if h.gotLines || end.logPod == "" {
		h.conclude(end, nil)
		return
	}
	// No output came over HTTP (the runner could not reach the bot): read the container's log, if a kubelet
	// still has it, without holding the lock.
	h.deciding = true
	h.mu.Unlock()
	lines := h.e.podLog(end.logPod, end.logContainer)
	h.mu.Lock()
	h.conclude(end, lines)
}

// ending is how a Job ended and what the sink should still be told about it.
type ending struct {
	result jobs.Result
	notes  []string // Kubernetes' explanation (eviction, OOM, image pull), always passed on
	tail   []string // the termination message's last lines, for when no output arrived over HTTP
	// logPod and logContainer name the log to read when no output arrived over HTTP.
	logPod, logContainer string
}

// resultOf says how a finished Job ended. The most specific explanation wins: a deadline or an eviction or the
// OOM killer over what the runner reported (it saw only its child being killed), the runner's own report over
// the termination message, and that over the bare Job status.
// It is long because the ranking above is one decision, read top to bottom.
func (h *handle) resultOf(job *batchv1.Job, pods []*corev1.Pod, complete bool, failReason string) ending {
	duration := jobDuration(job, h.started)
	if h.reported != nil {
		duration = h.reported.Duration
	}
	if failReason == "DeadlineExceeded" {
		return ending{result: jobs.Result{ExitCode: -1, Reason: ReasonTimeout, Duration: jobDuration(job, h.started)}}
	}
	if len(pods) == 0 {
		switch {
		case h.reported != nil:
			return ending{result: *h.reported}
		case complete:
			return ending{result: jobs.Result{ExitCode: 0, Duration: duration}}
		}
		return ending{result: jobs.Result{ExitCode: -1, Reason: ReasonFailed, Duration: duration},
			notes: []string{"kubernetes: the job failed and its pod is gone; the exit code is unknown"}}
	}
	pod := pods[0]
	checkout := terminated(pod.Status.InitContainerStatuses, initContainerName)
	main := terminated(pod.Status.ContainerStatuses, mainContainerName)
	end := ending{logPod: pod.Name, logContainer: mainContainerName}
	if main == nil {
		end.logPod = ""
	}
	switch {
	case pod.Status.Reason == ReasonEvicted:
		end.result = jobs.Result{ExitCode: -1, Reason: ReasonEvicted, Duration: duration}
		end.notes = []string{"kubernetes: pod evicted: " + pod.Status.Message}
		return end
	case main != nil && main.Reason == ReasonOOMKilled, checkout != nil && checkout.Reason == ReasonOOMKilled:
		code := 137
		if main != nil && main.Reason == ReasonOOMKilled {
			code = int(main.ExitCode)
		}
		end.result = jobs.Result{ExitCode: code, Reason: ReasonOOMKilled, Duration: duration}
		end.notes = []string{"kubernetes: a container ran out of memory (OOMKilled); raise the job's memory limit"}
		return end
	case checkout != nil && checkout.ExitCode == exitInputsLost:
		end.result = jobs.Result{ExitCode: -1, Reason: ReasonInputsLost, Duration: duration}
		end.tail = parseTermination(checkout.Message).Tail
		end.logPod, end.logContainer = pod.Name, initContainerName
		return end
	case checkout != nil && checkout.ExitCode != 0:
		end.result = jobs.Result{ExitCode: int(checkout.ExitCode), Reason: ReasonCheckoutFailed, Duration: duration}
		end.tail = parseTermination(checkout.Message).Tail
		end.logPod, end.logContainer = pod.Name, initContainerName
		return end
	case h.reported != nil:
		end.result = *h.reported
		return end
	case main != nil:
		msg := parseTermination(main.Message)
		end.tail = msg.Tail
		end.result = jobs.Result{ExitCode: int(main.ExitCode), Duration: duration}
		if msg.Result != nil {
			end.result = jobs.Result{ExitCode: msg.Result.ExitCode, Reason: msg.Result.Reason,
				Duration: time.Duration(msg.Result.DurationMS) * time.Millisecond}
		}
		return end
	case complete:
		end.result = jobs.Result{ExitCode: 0, Duration: duration}
		return end
	}
	end.result = jobs.Result{ExitCode: -1, Reason: ReasonFailed, Duration: duration}
	return end
}

// conclude tells the sink what it has not heard yet and decides the result. logLines is the container's log
// (empty when not read or not readable): it beats the termination message's tail, being complete.
func (h *handle) conclude(end ending, logLines []string) {
	output := end.tail
	if len(logLines) > 0 {
		output = logLines
	}
	if !h.gotLines {
		for _, text := range output {
			h.sink(jobs.Line{Stream: "stderr", Text: text})
		}
	}
	for _, text := range end.notes {
		h.sink(jobs.Line{Stream: "stderr", Text: text})
	}
	h.finish(end.result)
}

func (h *handle) finish(r jobs.Result) {
	h.decided = true
	h.result = r
	h.inputs = nil // a decided run's Pod gets nothing more
	if len(h.collect) > 0 && r.Artifacts == nil && r.ArtifactErrors == nil {
		// Decided without the runner's report to this process: a previous one may have taken and kept it
		// before it died; else there is none (a deadline, an eviction, the bot unreachable for the Pod).
		h.result.Artifacts, h.result.ArtifactErrors = h.keptArtifacts()
		if h.result.Artifacts == nil && h.result.ArtifactErrors == nil {
			h.result.ArtifactErrors = jobs.NotCollected(h.collect, "not collected: the job's report did not reach the bot")
		}
	}
	close(h.done)
	h.e.finishedRun(h)
	h.e.cfg.Logger.Info("kubernetes job finished", "run", h.runID, "job", h.jobName,
		"exit_code", r.ExitCode, "reason", r.Reason, "duration", r.Duration)
}

// keptArtifacts are the artifacts a previous process kept of the run's report (Executor.KeepArtifactsIn), only
// the paths asked for; nil when none were kept.
func (h *handle) keptArtifacts() (map[string][]byte, map[string]string) {
	store := h.e.artifactStore()
	if store == nil {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), keptArtifactsTimeout)
	defer cancel()
	artifacts, errs, ok, err := store.KeptArtifacts(ctx, h.runID)
	if err != nil {
		h.e.cfg.Logger.Warn("reading a job's kept artifacts", "run", h.runID, "err", err)
	}
	if !ok || err != nil {
		return nil, nil
	}
	kept := &handle{collect: h.collect}
	r := kept.report(jobs.Result{Artifacts: artifacts, ArtifactErrors: errs})
	return r.Artifacts, r.ArtifactErrors
}

// keptArtifactsTimeout bounds the read of kept artifacts, which a handle's lock waits for.
const keptArtifactsTimeout = 30 * time.Second

func jobComplete(job *batchv1.Job) bool {
	for _, c := range job.Status.Conditions {
		if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func jobFailed(job *batchv1.Job) (bool, string) {
	for _, c := range job.Status.Conditions {
		if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
			return true, c.Reason
		}
	}
	return false, ""
}

func jobDuration(job *batchv1.Job, started time.Time) time.Duration {
	if job.Status.StartTime == nil {
		return time.Since(started)
	}
	end := time.Now()
	if job.Status.CompletionTime != nil {
		end = job.Status.CompletionTime.Time
	}
	return end.Sub(job.Status.StartTime.Time)
}

func podDone(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

func terminated(statuses []corev1.ContainerStatus, name string) *corev1.ContainerStateTerminated {
	for _, s := range statuses {
		if s.Name == name {
			return s.State.Terminated
		}
	}
	return nil
}

// stuck finds a container that waits for something that will not come by itself.
func stuck(pods []*corev1.Pod) (reason, message string, ok bool) {
	for _, pod := range pods {
		for _, s := range append(append([]corev1.ContainerStatus{}, pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...) {
			if w := s.State.Waiting; w != nil && stuckReasons[w.Reason] {
				return w.Reason, fmt.Sprintf("kubernetes: container %s: %s: %s", s.Name, w.Reason, w.Message), true
			}
		}
	}
	return "", "", false
}

// wireResult is how the runner reports a result, over HTTP and in the termination message.
type wireResult struct {
	ExitCode   int    `json:"exitCode"`
	Reason     string `json:"reason,omitempty"`
	DurationMS int64  `json:"durationMs"`
	// Artifacts and ArtifactErrors are Spec.Collect's files, over HTTP only (never in the termination message).
	Artifacts      map[string][]byte `json:"artifacts,omitempty"`
	ArtifactErrors map[string]string `json:"artifactErrors,omitempty"`
}

// terminationMessage is what the runner leaves in /dev/termination-log for a bot that could not be reached:
// the result and the last lines of output, within Kubernetes' 4096 bytes.
type terminationMessage struct {
	Result *wireResult `json:"result,omitempty"`
	Tail   []string    `json:"tail,omitempty"`
}

// parseTermination reads a termination message; anything else (FallbackToLogsOnError puts the log's last lines
// there when the runner itself crashed) is kept as output.
func parseTermination(s string) terminationMessage {
	var m terminationMessage
	if s == "" {
		return m
	}
	if err := json.Unmarshal([]byte(s), &m); err == nil && (m.Result != nil || m.Tail != nil) {
		return m
	}
	return terminationMessage{Tail: strings.Split(strings.TrimRight(s, "\n"), "\n")}
}
