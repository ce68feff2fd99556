package kubetest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
)

// NodeConfig is what the node needs from the kube package (which cannot be imported here: its own tests use
// this package).
type NodeConfig struct {
	// Run runs `dagctl-bot job-run ARGS...` with the container's environment and returns its exit code: kube.RunInPod.
	Run func(ctx context.Context, args []string, env []string) int
	// TerminationLogEnv names the variable telling Run where to write the termination message instead of
	// /dev/termination-log: kube.EnvTerminationLog.
	TerminationLogEnv string
	// RunIDAnnotation is the Pod annotation holding the run id, for On and Hold: kube.AnnotationRunID.
	RunIDAnnotation string
	// ImageEnv is the environment the images set, before the container's own (default: this process's PATH).
	ImageEnv []string
}

// tmpMount is the containers' /tmp volume; the node leaves paths under it alone.
const tmpMount = "/tmp"

// Node plays the kubelet for one namespace: for every new Pod it runs the init container and then the job
// container through the real runner (NodeConfig.Run), in temporary directories standing in for the Pod's
// volumes, with the environment the containers would get (values, Secret references, envFrom), and it reports
// the container states and the Pod phase through the status subresource, termination messages included. When a
// Pod is deleted it stops what runs for it, as a kubelet sends SIGTERM.
type Node struct {
	t      testing.TB
	client kubernetes.Interface
	ns     string
	cfg    NodeConfig

	mu        sync.Mutex
	behaviors map[string]func(ctx context.Context, pod *corev1.Pod) // by run id; default: run it
	running   map[types.UID]context.CancelFunc
	wg        sync.WaitGroup
}

// StartNode starts a node for the namespace; it stops when the test ends, stopping what it runs.
func StartNode(t testing.TB, client kubernetes.Interface, ns string, cfg NodeConfig) *Node {
	t.Helper()
	require.NotNil(t, cfg.Run, "kubetest: NodeConfig.Run")
	require.NotEmpty(t, cfg.TerminationLogEnv, "kubetest: NodeConfig.TerminationLogEnv")
	if cfg.ImageEnv == nil {
		cfg.ImageEnv = []string{"PATH=" + os.Getenv("PATH")}
	}
	n := &Node{t: t, client: client, ns: ns, cfg: cfg,
		behaviors: map[string]func(context.Context, *corev1.Pod){}, running: map[types.UID]context.CancelFunc{}}
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(ns))
	podInformer := factory.Core().V1().Pods().Informer()
	_, err := podInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			pod := obj.(*corev1.Pod)
			if pod.Status.Phase != corev1.PodPending || pod.DeletionTimestamp != nil {
				return
			}
			n.start(pod)
		},
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if pod, ok := obj.(*corev1.Pod); ok {
				n.stop(pod.UID)
			}
		},
	})
	require.NoError(t, err)
	stop := make(chan struct{})
	factory.Start(stop)
	factory.WaitForCacheSync(stop)
	t.Cleanup(func() {
		close(stop)
		factory.Shutdown()
		n.mu.Lock()
		for _, cancel := range n.running {
			cancel()
		}
		n.mu.Unlock()
		n.wg.Wait()
	})
	return n
}

// On sets what the node does with the Pod of a run instead of running it.
func (n *Node) On(runID string, behavior func(ctx context.Context, pod *corev1.Pod)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.behaviors[runID] = behavior
}

// Hold leaves the run's Pod Pending, for tests that set its status themselves.
func (n *Node) Hold(runID string) { n.On(runID, func(context.Context, *corev1.Pod) {}) }

func (n *Node) start(pod *corev1.Pod) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.running[pod.UID]; ok {
		return
	}
	behavior := n.behaviors[pod.Annotations[n.cfg.RunIDAnnotation]]
	if behavior == nil {
		behavior = n.run
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.running[pod.UID] = cancel
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		behavior(ctx, pod.DeepCopy())
	}()
}

func (n *Node) stop(uid types.UID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if cancel, ok := n.running[uid]; ok {
		cancel()
	}
}

// RunThen is a behavior (On) that runs the Pod for real and calls between once its job container has exited
// (its runner has reported to the bot), before the Pod's status says so: for a test that stops the bot there.
func (n *Node) RunThen(between func()) func(ctx context.Context, pod *corev1.Pod) {
	return func(ctx context.Context, pod *corev1.Pod) { n.runPod(ctx, pod, between) }
}

// run runs both containers of the Pod for real.
func (n *Node) run(ctx context.Context, pod *corev1.Pod) { n.runPod(ctx, pod, nil) }

func (n *Node) runPod(ctx context.Context, pod *corev1.Pod, between func()) {
	t := n.t
	volumes := map[string]string{}
	base, err := os.MkdirTemp("", "pod-")
	if err != nil {
		t.Errorf("node: %v", err)
		return
	}
	defer os.RemoveAll(base)
	for _, v := range pod.Spec.Volumes {
		volumes[v.Name] = filepath.Join(base, v.Name)
		_ = os.MkdirAll(volumes[v.Name], 0o755)
	}
	initC, mainC := pod.Spec.InitContainers[0], pod.Spec.Containers[0]
	n.SetStatus(pod, func(s *corev1.PodStatus) {
		s.Phase = corev1.PodPending
		s.InitContainerStatuses = []corev1.ContainerStatus{RunningStatus(initC)}
		s.ContainerStatuses = []corev1.ContainerStatus{WaitingStatus(mainC, "PodInitializing")}
	})

	code, message := n.runContainer(ctx, pod, initC, volumes, base)
	if ctx.Err() != nil {
		return // the Pod was deleted
	}
	if code != 0 {
		n.SetStatus(pod, func(s *corev1.PodStatus) {
			s.Phase = corev1.PodFailed
			s.InitContainerStatuses = []corev1.ContainerStatus{TerminatedStatus(initC, code, message)}
		})
		return
	}
	n.SetStatus(pod, func(s *corev1.PodStatus) {
		s.Phase = corev1.PodRunning
		s.InitContainerStatuses = []corev1.ContainerStatus{TerminatedStatus(initC, 0, message)}
		s.ContainerStatuses = []corev1.ContainerStatus{RunningStatus(mainC)}
	})
	// The job container's entry point is the binary the init container copied; it must be there.
	if _, err := os.Stat(hostPath(mainC, volumes, mainC.Command[0])); err != nil {
		t.Errorf("node: the runner was not copied into the pod: %v", err)
	}
	code, message = n.runContainer(ctx, pod, mainC, volumes, base)
	if ctx.Err() != nil {
		return
	}
	if between != nil {
		between()
	}
	n.SetStatus(pod, func(s *corev1.PodStatus) {
		s.Phase = corev1.PodSucceeded
		if code != 0 {
			s.Phase = corev1.PodFailed
		}
		s.ContainerStatuses = []corev1.ContainerStatus{TerminatedStatus(mainC, code, message)}
	})
}

// runContainer runs `dagctl-bot job-run ...` the way the container's command says, and returns its exit code
// and termination message.
func (n *Node) runContainer(ctx context.Context, pod *corev1.Pod, c corev1.Container, volumes map[string]string, base string) (int, string) {
	t := n.t
	if len(c.Command) < 3 || c.Command[1] != "job-run" {
		t.Errorf("node: container %s does not run `dagctl-bot job-run`: %q", c.Name, c.Command)
		return 1, ""
	}
	env := append([]string(nil), n.cfg.ImageEnv...)
	for _, from := range c.EnvFrom {
		secret, err := n.client.CoreV1().Secrets(pod.Namespace).Get(ctx, from.SecretRef.Name, metav1.GetOptions{})
		if err != nil {
			t.Errorf("node: envFrom %s: %v", from.SecretRef.Name, err)
			return 1, ""
		}
		for k, v := range secret.Data {
			env = append(env, k+"="+string(v))
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			secret, err := n.client.CoreV1().Secrets(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
			if err != nil {
				t.Errorf("node: secret %s: %v", ref.Name, err)
				return 1, ""
			}
			v, ok := secret.Data[ref.Key]
			if !ok && (ref.Optional == nil || !*ref.Optional) {
				t.Errorf("node: secret %s has no key %s", ref.Name, ref.Key)
				return 1, ""
			}
			if ok {
				env = append(env, e.Name+"="+string(v))
			}
		case e.ValueFrom != nil:
			t.Errorf("node: unsupported env source for %s", e.Name)
		default:
			env = append(env, e.Name+"="+hostPath(c, volumes, e.Value))
		}
	}
	termLog := filepath.Join(base, c.Name+".termination-log")
	env = append(env, n.cfg.TerminationLogEnv+"="+termLog)
	code := n.cfg.Run(ctx, c.Command[2:], env)
	message, _ := os.ReadFile(termLog)
	return code, string(message)
}

// hostPath maps a path inside the container to the directory standing in for its volume. The /tmp volume is
// left alone: the test's own paths live there, and what the job writes there does not matter.
func hostPath(c corev1.Container, volumes map[string]string, p string) string {
	for _, m := range c.VolumeMounts {
		if m.MountPath == tmpMount {
			continue
		}
		if p == m.MountPath || strings.HasPrefix(p, m.MountPath+"/") {
			return volumes[m.Name] + strings.TrimPrefix(p, m.MountPath)
		}
	}
	return p
}

// SetStatus changes the Pod's status as a kubelet would.
func (n *Node) SetStatus(pod *corev1.Pod, change func(*corev1.PodStatus)) {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		current, err := n.client.CoreV1().Pods(pod.Namespace).Get(context.Background(), pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		change(&current.Status)
		_, err = n.client.CoreV1().Pods(pod.Namespace).UpdateStatus(context.Background(), current, metav1.UpdateOptions{})
		return err
	})
	if err != nil && !apierrors.IsNotFound(err) {
		n.t.Errorf("node: updating the status of pod %s: %v", pod.Name, err)
	}
}

// RunningStatus is a started, ready container.
func RunningStatus(c corev1.Container) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: c.Name, Image: c.Image, Started: ptr.To(true), Ready: true,
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}}
}

// WaitingStatus is a container waiting for the reason (PodInitializing, ImagePullBackOff, ...).
func WaitingStatus(c corev1.Container, reason string) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: c.Name, Image: c.Image,
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: reason + " (test)"}}}
}

// TerminatedStatus is a container that exited with the code (Completed or Error) and termination message.
func TerminatedStatus(c corev1.Container, code int, message string) corev1.ContainerStatus {
	reason := "Completed"
	if code != 0 {
		reason = "Error"
	}
	return TerminatedWith(c, int32(code), reason, message)
}

// TerminatedWith is a container that terminated with the code and reason (OOMKilled, ...).
func TerminatedWith(c corev1.Container, code int32, reason, message string) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: c.Name, Image: c.Image, State: corev1.ContainerState{
		Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason, Message: message,
			StartedAt: metav1.Now(), FinishedAt: metav1.Now()}}}
}
