// Package kubebuild is the image.Builder of `builder: dockerfile`: it runs image.DockerfileJob, a rootless
// BuildKit Job, in the cluster the Kubernetes executor uses, waits for it and reads the pushed digest from the
// build container's termination message. The decision over the Job and its pods is State, plain data; Builder
// is the thin part that creates, watches and deletes.
//
// A build is one Job per image and commit (its name is a hash of both): Build called again for the same
// request, by this process or by one started after a crash, follows the Job that runs, returns the result of
// one that pushed, and starts again over one that failed. The clone token travels in a Secret of its own per
// attempt, owned by the Job (the garbage collector deletes it with the Job); the Job is created suspended and
// released once the Secret exists, so its pod never waits for a missing Secret. Finished Jobs are deleted by
// the TTL controller (ttlSecondsAfterFinished, DefaultTTL), cancelled and stuck ones by Build.
package kubebuild

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/dagctl/dagctl-bot/internal/image"
)

// Labels of a build's Job and pod. They are not the executor's dagctl.dev/instance: its orphan sweep deletes
// every Job of that label that no run owns.
const (
	// LabelInstance tells this bot's builds apart from another installation's in the same namespace.
	LabelInstance = "dagctl.dev/build-instance"
	// LabelBuild is the Job's name, on the Job and its pods: what Find and the watch select by.
	LabelBuild = "dagctl.dev/build"
	// executorInstanceLabel is the Kubernetes executor's instance label (kube.LabelInstance).
	executorInstanceLabel = "dagctl.dev/instance"

	// image.DockerfileJob's annotations: the image pushed (repository:tag) and the commit built.
	annotationImage  = "dagctl.dev/image"
	annotationCommit = "dagctl.dev/commit"
)

// DefaultTTL is how long a finished build's Job (and its pod, with the digest) is kept when the settings say
// nothing: long enough for a restarted bot to read the result, short enough not to pile up.
const DefaultTTL = time.Hour

// waitGrace is how long Build waits past the Job's deadline for the Job controller to say so.
const waitGrace = 2 * time.Minute

// cloneTokenKey is the key of the clone token in its Secret (image.Source.TokenSecret), and cloneTokenVolume
// the volume DockerfileJob mounts it from.
const (
	cloneTokenKey    = "token"
	cloneTokenVolume = "clone-token"
)

// Settings are the operator's settings of Dockerfile builds.
type Settings struct {
	image.DockerfileSettings
	// Instance marks this bot's builds (LabelInstance; default "dagctl-bot").
	Instance string
	// CloneTokenSecret and CloneTokenUser are a Secret of Namespace with a clone token under "token" and its
	// user, for requests that bring no token of their own (a GitLab read_repository token). GitHub's
	// installation tokens expire within the hour: pass them per request (image.Source.Token).
	CloneTokenSecret, CloneTokenUser string
	// Detach says whether a cancellation, by its cause, leaves the Job running for the next process to
	// re-attach to (the bot shutting down); nil: every cancellation deletes the Job.
	Detach func(cause error) bool
	Logger *slog.Logger
}

// Builder runs Dockerfile builds as Kubernetes Jobs. It implements image.Builder.
type Builder struct {
	client kubernetes.Interface
	s      Settings
}

var _ image.Builder = (*Builder)(nil)

// New checks the settings and fills in their defaults; it talks to the cluster only when it builds.
func New(client kubernetes.Interface, s Settings) (*Builder, error) {
	switch {
	case client == nil:
		return nil, errors.New("kubebuild: no Kubernetes client")
	case s.Namespace == "":
		return nil, errors.New("kubebuild: no namespace for image builds")
	case s.GitImage == "":
		return nil, errors.New("kubebuild: no git image for the builds' checkout")
	case s.RegistrySecret == "":
		return nil, errors.New("kubebuild: no registry Secret (kubernetes.io/dockerconfigjson) to push with")
	case (s.CloneTokenSecret == "") != (s.CloneTokenUser == ""):
		return nil, errors.New("kubebuild: a clone token Secret needs its user, and a user its Secret")
	}
	if _, ok := s.Labels[executorInstanceLabel]; ok {
		return nil, fmt.Errorf("kubebuild: the label %s is the executor's: its orphan sweep would delete the builds", executorInstanceLabel)
	}
	if s.Instance == "" {
		s.Instance = "dagctl-bot"
	}
	if errs := validation.IsValidLabelValue(s.Instance); len(errs) > 0 {
		return nil, fmt.Errorf("kubebuild: instance %q is not a label value: %s", s.Instance, errs[0])
	}
	if s.TTLAfterFinished <= 0 {
		s.TTLAfterFinished = DefaultTTL
	}
	if s.Timeout <= 0 {
		s.Timeout = image.DefaultDockerfileTimeout
	}
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	return &Builder{client: client, s: s}, nil
}

// Build runs the request's build, or follows the one that already runs for it, and returns the pushed image.
// It returns when the Job ends, when it cannot start (ErrCannotStart: it is deleted), after the timeout
// (ErrTimeout) or when ctx ends (ErrCancelled: the Job is deleted, unless Settings.Detach keeps it).
func (b *Builder) Build(ctx context.Context, req image.Request) (image.Result, error) {
	req, job, secret, err := b.plan(req)
	if err != nil {
		return image.Result{}, err
	}
	// Another caller may create or delete the Job of this request meanwhile (two applies of one commit, a
	// failed Job's deletion still under way): look again, a few times.
	for attempt := 1; ; attempt++ {
		existing, status, err := b.find(ctx, req, job)
		if errors.Is(err, errDeleting) && attempt < maxAttempts {
			if err := pause(ctx); err != nil {
				return image.Result{}, err
			}
			continue
		}
		if err != nil {
			return image.Result{}, err
		}
		switch status.Phase {
		case PhaseSucceeded:
			b.s.Logger.Info("image build found finished", "job", existing.Name, "image", status.Result.Reference)
			return status.Result, nil
		case PhaseRunning:
			b.s.Logger.Info("image build re-attached", "job", existing.Name)
			return b.follow(ctx, req, existing)
		case PhaseSuspended:
			// Its creator died before releasing it: the Secret it names is made from this request's token.
			if err := b.release(ctx, existing, suspendedSecret(existing, secret)); err != nil {
				return image.Result{}, err
			}
			return b.follow(ctx, req, existing)
		case PhaseFailed:
			// A failed build is not a result to keep returning: the request asks again, so it builds again.
			b.s.Logger.Info("image build failed before; building again", "job", existing.Name, "err", status.Err)
			if err := b.delete(ctx, existing); err != nil {
				return image.Result{}, err
			}
		}
		created, err := b.client.BatchV1().Jobs(b.s.Namespace).Create(ctx, job, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) && attempt < maxAttempts {
			if err := pause(ctx); err != nil {
				return image.Result{}, err
			}
			continue
		}
		if err != nil {
			return image.Result{}, fmt.Errorf("kubebuild: creating build job %s: %w", job.Name, err)
		}
		if err := b.release(ctx, created, secret); err != nil {
			_ = b.delete(context.WithoutCancel(ctx), created)
			return image.Result{}, err
		}
		b.s.Logger.Info("image build started", "job", created.Name, "namespace", created.Namespace,
			"image", job.Annotations[annotationImage])
		return b.follow(ctx, req, created)
	}
}

// maxAttempts bounds how often Build looks again at a Job that another caller creates or deletes.
const maxAttempts = 40

var errDeleting = errors.New("kubebuild: the build's Job is being deleted")

func pause(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrCancelled, context.Cause(ctx))
	case <-time.After(250 * time.Millisecond):
		return nil
	}
}

// Find says where the request's build is, without waiting: a restarted bot's way to know whether a build it
// started runs, pushed or failed. PhaseNone: there is none.
func (b *Builder) Find(ctx context.Context, req image.Request) (Status, error) {
	req, job, _, err := b.plan(req)
	if err != nil {
		return Status{}, err
	}
	_, status, err := b.find(ctx, req, job)
	return status, err
}

// JobName is the name of the request's build Job: one per image (repository:tag) and commit, the build's id.
func (b *Builder) JobName(req image.Request) (string, error) {
	_, job, _, err := b.plan(req)
	if err != nil {
		return "", err
	}
	return job.Name, nil
}

// plan is the request's Job, and the clone token Secret to create for it (nil: none). The Secret's name is
// new each time, so that a Job started again never meets the Secret of the one before.
func (b *Builder) plan(req image.Request) (image.Request, *batchv1.Job, *corev1.Secret, error) {
	var secret *corev1.Secret
	switch src := &req.Source; {
	case src.Token != "":
		if src.TokenUser == "" {
			src.TokenUser = "x-access-token"
		}
		src.TokenSecret = "" // named below, once the Job's name is known
	case src.TokenSecret == "" && b.s.CloneTokenSecret != "":
		src.TokenUser, src.TokenSecret = b.s.CloneTokenUser, b.s.CloneTokenSecret
	}
	token := req.Source.Token
	req.Source.Token = ""
	if token != "" {
		// DockerfileJob wants a Secret's name; the real one is made from the Job's name below.
		req.Source.TokenSecret = "dagctl-clone-token"
	}
	job, err := image.DockerfileJob(b.s.DockerfileSettings, req)
	if err != nil {
		return req, nil, nil, err
	}
	labels := map[string]string{LabelInstance: b.s.Instance, LabelBuild: job.Name}
	job.Labels = merged(job.Labels, labels)
	job.Spec.Template.Labels = merged(job.Spec.Template.Labels, labels)
	job.Spec.TTLSecondsAfterFinished = ptr.To(int32(b.s.TTLAfterFinished.Seconds()))
	if token != "" {
		name := job.Name + "-clone-" + nonce()
		req.Source.TokenSecret = name
		for i := range job.Spec.Template.Spec.Volumes {
			if v := &job.Spec.Template.Spec.Volumes[i]; v.Name == cloneTokenVolume && v.Secret != nil {
				v.Secret.SecretName = name
			}
		}
		job.Spec.Suspend = ptr.To(true)
		secret = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: job.Namespace, Labels: merged(nil, job.Labels)},
			Type:       corev1.SecretTypeOpaque,
			Immutable:  ptr.To(true),
			Data:       map[string][]byte{cloneTokenKey: []byte(token)},
		}
	}
	return req, job, secret, nil
}

// find reads the request's Job (planned: as plan made it) and its pods from the API.
func (b *Builder) find(ctx context.Context, req image.Request, planned *batchv1.Job) (*batchv1.Job, Status, error) {
	name := planned.Name
	job, err := b.client.BatchV1().Jobs(b.s.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, Status{Phase: PhaseNone}, nil
	}
	if err != nil {
		return nil, Status{}, fmt.Errorf("kubebuild: looking for build job %s: %w", name, err)
	}
	if job.Labels[LabelInstance] != b.s.Instance ||
		job.Annotations[annotationImage] != planned.Annotations[annotationImage] ||
		job.Annotations[annotationCommit] != planned.Annotations[annotationCommit] {
		return nil, Status{}, fmt.Errorf("kubebuild: job %s is not this bot's build of %s at %s", job.Name,
			planned.Annotations[annotationImage], planned.Annotations[annotationCommit])
	}
	if job.DeletionTimestamp != nil {
		return nil, Status{}, fmt.Errorf("%w: job %s", errDeleting, name)
	}
	list, err := b.client.CoreV1().Pods(b.s.Namespace).List(ctx, metav1.ListOptions{LabelSelector: buildSelector(name)})
	if err != nil {
		return nil, Status{}, fmt.Errorf("kubebuild: listing the pods of build job %s: %w", name, err)
	}
	pods := make([]*corev1.Pod, 0, len(list.Items))
	for i := range list.Items {
		pods = append(pods, &list.Items[i])
	}
	return job, State(req, job, pods), nil
}

// release creates the Job's clone token Secret, owned by the Job, and lets the Job run.
func (b *Builder) release(ctx context.Context, job *batchv1.Job, secret *corev1.Secret) error {
	if job.Spec.Suspend == nil || !*job.Spec.Suspend {
		return nil
	}
	if secret == nil {
		return fmt.Errorf("kubebuild: build job %s waits for its clone token, and the request has none", job.Name)
	}
	secret.OwnerReferences = []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: job.Name, UID: job.UID}}
	if _, err := b.client.CoreV1().Secrets(b.s.Namespace).Create(ctx, secret, metav1.CreateOptions{}); err != nil &&
		!apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("kubebuild: creating the clone token Secret of build job %s: %w", job.Name, err)
	}
	if _, err := b.client.BatchV1().Jobs(b.s.Namespace).Patch(ctx, job.Name, types.MergePatchType,
		[]byte(`{"spec":{"suspend":false}}`), metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("kubebuild: starting build job %s: %w", job.Name, err)
	}
	return nil
}

// suspendedSecret is the clone token Secret a suspended Job waits for, with the token of planned (the
// Secret this request would have made); nil when either has none.
func suspendedSecret(job *batchv1.Job, planned *corev1.Secret) *corev1.Secret {
	if planned == nil {
		return nil
	}
	for _, v := range job.Spec.Template.Spec.Volumes {
		if v.Name == cloneTokenVolume && v.Secret != nil {
			s := planned.DeepCopy()
			s.Name = v.Secret.SecretName
			return s
		}
	}
	return nil
}

// follow waits for the Job's end, watching it and its pods.
func (b *Builder) follow(ctx context.Context, req image.Request, job *batchv1.Job) (image.Result, error) {
	changed := make(chan struct{}, 1)
	notify := func(any) {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	handler := cache.ResourceEventHandlerFuncs{AddFunc: notify, UpdateFunc: func(_, o any) { notify(o) }, DeleteFunc: notify}
	selector := buildSelector(job.Name)
	factory := informers.NewSharedInformerFactoryWithOptions(b.client, 0,
		informers.WithNamespace(b.s.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = selector }))
	jobs, pods := factory.Batch().V1().Jobs(), factory.Core().V1().Pods()
	for _, inf := range []cache.SharedIndexInformer{jobs.Informer(), pods.Informer()} {
		if _, err := inf.AddEventHandler(handler); err != nil {
			return image.Result{}, err
		}
	}
	stop := make(chan struct{})
	defer func() { close(stop); factory.Shutdown() }()
	factory.Start(stop)
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return image.Result{}, b.cancelled(ctx, job, fmt.Sprintf("watching %v", typ))
		}
	}
	limit := time.NewTimer(b.s.Timeout + waitGrace)
	defer limit.Stop()
	for {
		current, err := jobs.Lister().Jobs(b.s.Namespace).Get(job.Name)
		if err != nil || current.UID != job.UID {
			current = nil // deleted (and perhaps created again by another caller)
		}
		all, _ := pods.Lister().Pods(b.s.Namespace).List(labels.Everything())
		status := State(req, current, all)
		switch {
		case status.Phase == PhaseNone:
			return image.Result{}, fmt.Errorf("%w: job %s was deleted before it finished", ErrGone, job.Name)
		case status.Phase == PhaseSucceeded:
			b.s.Logger.Info("image build pushed", "job", job.Name, "image", status.Result.Reference)
			return status.Result, nil
		case status.Phase == PhaseFailed:
			if errors.Is(status.Err, ErrCannotStart) {
				// It would sit until its deadline; the TTL controller only removes finished Jobs.
				_ = b.delete(context.WithoutCancel(ctx), current)
			}
			b.s.Logger.Info("image build failed", "job", job.Name, "err", status.Err)
			return image.Result{}, status.Err
		}
		select {
		case <-changed:
		case <-limit.C:
			_ = b.delete(context.WithoutCancel(ctx), job)
			return image.Result{}, fmt.Errorf("%w: job %s did not finish within %s; deleted", ErrTimeout, job.Name, b.s.Timeout+waitGrace)
		case <-ctx.Done():
			return image.Result{}, b.cancelled(ctx, job, "")
		}
	}
}

// cancelled deletes the Job of a build whose caller gave up, unless Detach keeps it.
func (b *Builder) cancelled(ctx context.Context, job *batchv1.Job, while string) error {
	cause := context.Cause(ctx)
	if cause == nil {
		cause = errors.New(while)
	}
	if b.s.Detach != nil && b.s.Detach(cause) {
		return fmt.Errorf("%w: %w (job %s left running)", ErrCancelled, cause, job.Name)
	}
	if err := b.delete(context.WithoutCancel(ctx), job); err != nil {
		return fmt.Errorf("%w: %w; %w", ErrCancelled, cause, err)
	}
	return fmt.Errorf("%w: %w (job %s deleted)", ErrCancelled, cause, job.Name)
}

// delete deletes a build's Job with background propagation: the garbage collector removes its pod and Secret.
// The UID precondition spares a Job of the same name created meanwhile.
func (b *Builder) delete(ctx context.Context, job *batchv1.Job) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	uid := job.UID
	err := b.client.BatchV1().Jobs(b.s.Namespace).Delete(ctx, job.Name, metav1.DeleteOptions{
		PropagationPolicy: ptr.To(metav1.DeletePropagationBackground),
		Preconditions:     &metav1.Preconditions{UID: &uid},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("kubebuild: deleting build job %s: %w", job.Name, err)
	}
	return nil
}

func buildSelector(name string) string {
	return labels.SelectorFromSet(labels.Set{LabelBuild: name}).String()
}

func merged(a, b map[string]string) map[string]string {
	out := make(map[string]string, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func nonce() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
