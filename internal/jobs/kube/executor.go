package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/dagctl/dagctl-bot/internal/jobs"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

// ErrClosed is what Wait returns when the executor was closed before the job ended; the job goes on in the
// cluster, and a new executor can Attach to it.
var ErrClosed = errors.New("kube: executor closed")

// Executor runs jobs as Kubernetes Jobs. It implements jobs.Executor; its Handler receives the Pods' reports.
type Executor struct {
	cfg    Config
	client kubernetes.Interface

	// secretSelector allows Secrets by their labels (Config.JobSecretsSelector); nil: none.
	secretSelector labels.Selector

	jobs   batchlisters.JobLister
	pods   corelisters.PodLister
	cancel context.CancelFunc
	closed chan struct{}

	mu       sync.Mutex
	runs     map[string]*handle // followed by this process, by run id
	finished map[string]bool    // decided here; late reports get 410 Gone
	// artifacts keeps reported artifacts across restarts (KeepArtifactsIn); nil: in memory only.
	artifacts jobs.ArtifactStore
}

// KeepArtifactsIn makes the executor keep every artifact a Pod reports in store before it answers the report,
// and take them from there for a run it follows that ended without reporting to it: the report reached a
// previous process of the bot, which died before its caller read the result. Call it before following runs.
func (e *Executor) KeepArtifactsIn(store jobs.ArtifactStore) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.artifacts = store
}

func (e *Executor) artifactStore() jobs.ArtifactStore {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.artifacts
}

var _ jobs.Executor = (*Executor)(nil)

// syncTimeout bounds the first listing of Jobs and Pods.
const syncTimeout = 2 * time.Minute

// New starts watching this installation's Jobs and Pods in cfg.Namespace and returns once the watch is in sync.
// Close stops it.
// It is long because the informers, their handlers and the wait for their sync belong together.
func New(ctx context.Context, client kubernetes.Interface, cfg Config) (*Executor, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	// Fail fast and clearly when the bot may not see its Jobs (RBAC, a missing namespace); an informer would
	// only retry for ever.
	if _, err := client.BatchV1().Jobs(cfg.Namespace).List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
		return nil, fmt.Errorf("kube: listing jobs in namespace %s: %w", cfg.Namespace, err)
	}
	if _, err := client.CoreV1().Pods(cfg.Namespace).List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
		return nil, fmt.Errorf("kube: listing pods in namespace %s: %w", cfg.Namespace, err)
	}
	secretSelector, err := parseSecretSelector(cfg.JobSecretsSelector)
	if err != nil {
		return nil, err
	}
	watchCtx, cancel := context.WithCancel(context.Background())
	e := &Executor{
		cfg:            cfg,
		client:         client,
		secretSelector: secretSelector,
		cancel:         cancel,
		closed:         make(chan struct{}),
		runs:           map[string]*handle{},
		finished:       map[string]bool{},
	}
	selector := labels.SelectorFromSet(labels.Set{LabelInstance: labelValue(cfg.Instance)}).String()
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithNamespace(cfg.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = selector }))
	jobInformer := factory.Batch().V1().Jobs()
	podInformer := factory.Core().V1().Pods()
	e.jobs = jobInformer.Lister()
	e.pods = podInformer.Lister()
	if _, err := jobInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { e.jobEvent(obj, false) },
		UpdateFunc: func(_, obj any) { e.jobEvent(obj, false) },
		DeleteFunc: func(obj any) { e.jobEvent(obj, true) },
	}); err != nil {
		cancel()
		return nil, err
	}
	if _, err := podInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    e.podEvent,
		UpdateFunc: func(_, obj any) { e.podEvent(obj) },
		DeleteFunc: e.podEvent,
	}); err != nil {
		cancel()
		return nil, err
	}
	factory.Start(watchCtx.Done())
	go func() {
		<-watchCtx.Done()
		factory.Shutdown()
	}()
	syncCtx, stopWaiting := context.WithTimeout(ctx, syncTimeout)
	defer stopWaiting()
	for typ, ok := range factory.WaitForCacheSync(syncCtx.Done()) {
		if !ok {
			cancel()
			return nil, fmt.Errorf("kube: watching %v in namespace %s did not sync: %w", typ, cfg.Namespace, context.Cause(syncCtx))
		}
	}
	return e, nil
}

// RunsImages: a job runs in a container of the image its spec names (jobs.Spec.Image), so an apply runs on the
// deploy image the bot built.
func (e *Executor) RunsImages() bool { return true }

// Close stops watching. Jobs keep running; pending Waits return ErrClosed.
func (e *Executor) Close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	select {
	case <-e.closed:
		return
	default:
	}
	close(e.closed)
	e.cancel()
}

// Start creates the run's Job and its token Secret and returns a handle that follows it.
func (e *Executor) Start(ctx context.Context, spec jobs.Spec, sink jobs.Sink) (jobs.Handle, error) {
	if spec.RunID == "" {
		return nil, errors.New("kube: run without id")
	}
	job, err := e.buildJob(spec)
	if err != nil {
		return nil, err
	}
	// The bot checked job.secrets when it read the config; the executor does again, for every caller.
	values, err := e.checkSecrets(ctx, spec.RunID, spec.Secrets)
	if err != nil {
		return nil, err
	}
	h := e.follow(spec.RunID, job.Name, maskValues(sink, values))
	h.setInputs(spec.Inputs)
	h.setCollect(spec.Collect)
	created, err := e.client.BatchV1().Jobs(e.cfg.Namespace).Create(ctx, job, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		// A retried Start: the Job of this run exists already, which is fine if it is really this run's.
		created, err = e.client.BatchV1().Jobs(e.cfg.Namespace).Get(ctx, job.Name, metav1.GetOptions{})
		if err == nil && created.Annotations[AnnotationRunID] != spec.RunID {
			err = fmt.Errorf("kube: job %s belongs to run %q", job.Name, created.Annotations[AnnotationRunID])
		}
	}
	if err != nil {
		e.unfollow(h)
		return nil, fmt.Errorf("kube: creating job for run %s: %w", spec.RunID, err)
	}
	if err := e.release(ctx, created, spec); err != nil {
		e.unfollow(h)
		// Without its Secret the Job would stay suspended for ever.
		e.deleteJob(context.WithoutCancel(ctx), created.Name, created.UID)
		return nil, fmt.Errorf("kube: starting job %s for run %s: %w", created.Name, spec.RunID, err)
	}
	e.cfg.Logger.Info("kubernetes job started", "run", spec.RunID, "job", created.Name, "namespace", e.cfg.Namespace)
	return h, nil
}

// release gives the suspended Job its Secret and lets it run.
func (e *Executor) release(ctx context.Context, job *batchv1.Job, spec jobs.Spec) error {
	if job.Spec.Suspend == nil || !*job.Spec.Suspend {
		return nil
	}
	_, err := e.client.CoreV1().Secrets(e.cfg.Namespace).Create(ctx, e.buildSecret(job, spec), metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	_, err = e.client.BatchV1().Jobs(e.cfg.Namespace).Patch(ctx, job.Name, types.MergePatchType,
		[]byte(`{"spec":{"suspend":false}}`), metav1.PatchOptions{})
	return err
}

// Attach follows a Job started earlier, by this process or by a previous one. A Job that is already finished
// gives its result at once: from the Pod's termination message while the Pod exists, else from the Job status.
func (e *Executor) Attach(ctx context.Context, id string, sink jobs.Sink) (jobs.Handle, error) {
	list, err := e.client.BatchV1().Jobs(e.cfg.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: labels.SelectorFromSet(labels.Set{
			LabelInstance: labelValue(e.cfg.Instance),
			LabelRunID:    labelValue(id),
		}).String(),
	})
	if err != nil {
		return nil, fmt.Errorf("kube: looking for the job of run %s: %w", id, err)
	}
	var job *batchv1.Job
	for i := range list.Items {
		if list.Items[i].Annotations[AnnotationRunID] == id {
			job = &list.Items[i]
		}
	}
	if job == nil {
		return nil, fmt.Errorf("kube: no job for run %s: %w", id, jobs.ErrGone)
	}
	if job.Spec.Suspend != nil && *job.Spec.Suspend {
		// The bot died between creating the Job and releasing it; the clone token is gone with it.
		e.deleteJob(ctx, job.Name, job.UID)
		return nil, fmt.Errorf("kube: job %s of run %s never started: %w", job.Name, id, jobs.ErrGone)
	}
	h := e.follow(id, job.Name, maskValues(sink, e.rereadSecrets(ctx, id, job)))
	var collect []string
	if a := job.Annotations[AnnotationCollect]; a != "" {
		if err := json.Unmarshal([]byte(a), &collect); err != nil || jobs.CheckCollect(collect) != nil {
			// The bot wrote it; what else it says is not to be trusted for paths.
			collect = nil
			e.cfg.Logger.Warn("kubernetes job has an unreadable artifact list", "run", id, "job", job.Name)
		}
	}
	h.setCollect(collect)
	h.evaluate(job, false)
	return h, nil
}

// CleanOrphans deletes this installation's Jobs whose run is neither followed here nor known to the caller
// (typically: not an unfinished run in the database), with their Pods and Secrets. It returns the run ids of
// the deleted Jobs. Call it after re-attaching the known runs, e.g. at start-up and then now and then.
func (e *Executor) CleanOrphans(ctx context.Context, known func(runID string) bool) ([]string, error) {
	list, err := e.client.BatchV1().Jobs(e.cfg.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: labels.SelectorFromSet(labels.Set{LabelInstance: labelValue(e.cfg.Instance)}).String(),
	})
	if err != nil {
		return nil, fmt.Errorf("kube: listing jobs: %w", err)
	}
	var deleted []string
	var errs []error
	for _, job := range list.Items {
		runID := job.Annotations[AnnotationRunID]
		if job.DeletionTimestamp != nil || e.following(runID) || (runID != "" && known(runID)) {
			continue
		}
		if err := e.deleteJob(ctx, job.Name, job.UID); err != nil {
			errs = append(errs, err)
			continue
		}
		e.cfg.Logger.Info("orphaned kubernetes job deleted", "run", runID, "job", job.Name)
		deleted = append(deleted, runID)
	}
	return deleted, errors.Join(errs...)
}

// deleteJob deletes a Job, its Pods first (foreground), and its Secret through the garbage collector. The UID
// precondition keeps a Job of the same name created meanwhile alive.
func (e *Executor) deleteJob(ctx context.Context, name string, uid types.UID) error {
	opts := metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationForeground)}
	if uid != "" {
		opts.Preconditions = &metav1.Preconditions{UID: &uid}
	}
	err := e.client.BatchV1().Jobs(e.cfg.Namespace).Delete(ctx, name, opts)
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("kube: deleting job %s: %w", name, err)
	}
	return nil
}

func (e *Executor) follow(runID, jobName string, sink jobs.Sink) *handle {
	if sink == nil {
		sink = func(jobs.Line) {}
	}
	e.mu.Lock()
	h, ok := e.runs[runID]
	if !ok {
		h = &handle{e: e, runID: runID, jobName: jobName, sink: sink, started: time.Now(), done: make(chan struct{})}
		e.runs[runID] = h
		delete(e.finished, runID)
	}
	e.mu.Unlock()
	if ok {
		// Attached again in the same process: the newest caller gets the lines. (A handle's lock is never taken
		// while holding the executor's: finish takes them the other way round.)
		h.mu.Lock()
		h.sink = sink
		h.mu.Unlock()
	}
	return h
}

func (e *Executor) unfollow(h *handle) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.runs[h.runID] == h {
		delete(e.runs, h.runID)
	}
}

// finishedRun records a decided run, so that its Pod's late reports are answered 410 Gone. The set is bounded:
// forgetting an old entry only makes a late Pod retry until its grace period ends.
func (e *Executor) finishedRun(h *handle) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.runs[h.runID] == h {
		delete(e.runs, h.runID)
	}
	if len(e.finished) >= 10000 {
		clear(e.finished)
	}
	e.finished[h.runID] = true
}

func (e *Executor) following(runID string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, ok := e.runs[runID]
	return ok
}

func (e *Executor) lookup(runID string) (h *handle, finished bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.runs[runID], e.finished[runID]
}

func (e *Executor) jobEvent(obj any, deleted bool) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	job, ok := obj.(*batchv1.Job)
	if !ok {
		return
	}
	if h, _ := e.lookup(job.Annotations[AnnotationRunID]); h != nil && h.jobName == job.Name {
		h.evaluate(job, deleted)
	}
}

func (e *Executor) podEvent(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	h, _ := e.lookup(pod.Annotations[AnnotationRunID])
	if h == nil {
		return
	}
	job, err := e.jobs.Jobs(e.cfg.Namespace).Get(h.jobName)
	if err != nil {
		return // the Job's own event follows
	}
	h.evaluate(job, false)
}

// podsOf returns the Pods of a Job from the watch cache, newest first.
func (e *Executor) podsOf(job *batchv1.Job) []*corev1.Pod {
	all, err := e.pods.Pods(e.cfg.Namespace).List(labels.SelectorFromSet(labels.Set{
		LabelInstance: labelValue(e.cfg.Instance),
		LabelRunID:    job.Labels[LabelRunID],
	}))
	if err != nil {
		return nil
	}
	var pods []*corev1.Pod
	for _, p := range all {
		if metav1.IsControlledBy(p, job) {
			pods = append(pods, p)
		}
	}
	for i := 1; i < len(pods); i++ {
		for j := i; j > 0 && pods[j].CreationTimestamp.After(pods[j-1].CreationTimestamp.Time); j-- {
			pods[j], pods[j-1] = pods[j-1], pods[j]
		}
	}
	return pods
}

// podLog reads a container's log, for runs whose output did not arrive over HTTP. It returns nil when the log
// cannot be read (no kubelet has it any more); the termination message's tail stands in then.
func (e *Executor) podLog(pod, container string) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := e.client.CoreV1().Pods(e.cfg.Namespace).GetLogs(pod, &corev1.PodLogOptions{
		Container: container, TailLines: ptr.To[int64](maxLogLines), LimitBytes: ptr.To[int64](maxLogBytes),
	}).DoRaw(ctx)
	if err != nil {
		e.cfg.Logger.Debug("pod log not readable", "pod", pod, "container", container, "err", err)
		return nil
	}
	text := strings.TrimRight(string(b), "\n")
	if text == "" {
		return []string{}
	}
	return strings.Split(text, "\n")
}

const (
	maxLogLines = 5000
	maxLogBytes = 4 << 20
)
