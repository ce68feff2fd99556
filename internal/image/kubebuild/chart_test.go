package kubebuild

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/dagctl/dagctl-bot/internal/jobs/kube/kubetest"
	"github.com/dagctl/dagctl-bot/internal/serverconfig"
)

// renderChart runs `helm template` of charts/dagctl-bot (helm beside the control plane's binaries).
func renderChart(t *testing.T, namespace string, set ...string) []*unstructured.Unstructured {
	t.Helper()
	_, file, _, _ := goruntime.Caller(0)
	chart := filepath.Join(filepath.Dir(file), "..", "..", "..", "charts", "dagctl-bot")
	args := []string{"template", "dagctl-bot", chart, "--namespace", namespace, "--kube-version", "v1.33.13"}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(filepath.Join(testEnv.AssetsDir, "helm"), args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "helm template (make helm puts helm beside the control plane): %s", stderr.String())
	var objects []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(out), 4096)
	for {
		var obj map[string]any
		err := dec.Decode(&obj)
		if errors.Is(err, io.EOF) {
			return objects
		}
		require.NoError(t, err)
		if len(obj) > 0 {
			objects = append(objects, &unstructured.Unstructured{Object: obj})
		}
	}
}

// named decodes the object of that kind and name.
func named(t *testing.T, objects []*unstructured.Unstructured, kind, name string, into any) {
	t.Helper()
	for _, o := range objects {
		if o.GetKind() == kind && o.GetName() == name {
			require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, into))
			return
		}
	}
	t.Fatalf("the chart renders no %s %s", kind, name)
}

// The chart's Role in a namespace of the builds' own is enough for everything the builder does, through a
// client impersonating the chart's ServiceAccount: a build with its clone token Secret, a failed build built
// again, a build that cannot start, a cancel. And the bot reads no Secret there.
func TestChartRoleIsEnoughForTheBuilds(t *testing.T) {
	botNS := testEnv.Namespace(t)
	w := newWorld(t) // the builds' namespace
	objects := renderChart(t, botNS, "builds.namespace="+w.ns, "builds.gitImage=alpine/git:2.49.1", "builds.pushSecret=marts-push")
	var sa corev1.ServiceAccount
	var role rbacv1.Role
	var binding rbacv1.RoleBinding
	var deploy appsv1.Deployment
	named(t, objects, "ServiceAccount", "dagctl-bot", &sa)
	named(t, objects, "Role", "dagctl-bot-builds", &role)
	named(t, objects, "RoleBinding", "dagctl-bot-builds", &binding)
	named(t, objects, "Deployment", "dagctl-bot", &deploy)
	require.Equal(t, w.ns, role.Namespace)
	ctx := context.Background()
	_, err := testEnv.Client.CoreV1().ServiceAccounts(botNS).Create(ctx, &sa, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = testEnv.Client.RbacV1().Roles(w.ns).Create(ctx, &role, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = testEnv.Client.RbacV1().RoleBindings(w.ns).Create(ctx, &binding, metav1.CreateOptions{})
	require.NoError(t, err)

	// The bot's settings, from the Deployment's environment, say where and how to build.
	env := map[string]string{}
	for _, v := range deploy.Spec.Template.Spec.Containers[0].Env {
		env[v.Name] = v.Value
	}
	cfg, err := serverconfig.Load(nil, func(k string) string { return env[k] })
	require.NoError(t, err)
	assert.Equal(t, serverconfig.Builds{Namespace: w.ns, BuildKitImage: "moby/buildkit:v0.32.2-rootless",
		GitImage: "alpine/git:2.49.1", PushSecret: "marts-push", Timeout: 30 * time.Minute}, cfg.Builds)

	asBot := rest.CopyConfig(testEnv.Config)
	asBot.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + botNS + ":" + sa.Name}
	w.client = kubernetes.NewForConfigOrDie(asBot)
	b := w.builder()

	pushed := buildRequest()
	w.checkoutThen(pushed, pushes)
	res, err := b.Build(ctx, pushed)
	require.NoError(t, err)
	assert.Equal(t, wantResult(pushed), res)

	failsFirst := buildRequest()
	w.checkoutThen(failsFirst, func(c corev1.Container) (corev1.PodPhase, corev1.ContainerStatus) {
		return corev1.PodFailed, kubetest.TerminatedStatus(c, 1, "ERROR: failed to solve")
	})
	_, err = b.Build(ctx, failsFirst)
	assert.ErrorIs(t, err, ErrFailed)
	w.checkoutThen(failsFirst, pushes)
	_, err = b.Build(ctx, failsFirst)
	assert.NoError(t, err, "the failed Job deleted, a new one built")

	stuckPull := buildRequest()
	w.node.On(stuckPull.Source.Commit, func(_ context.Context, pod *corev1.Pod) {
		w.node.SetStatus(pod, func(s *corev1.PodStatus) {
			s.InitContainerStatuses = []corev1.ContainerStatus{kubetest.WaitingStatus(pod.Spec.InitContainers[0], "ImagePullBackOff")}
		})
	})
	_, err = b.Build(ctx, stuckPull)
	assert.ErrorIs(t, err, ErrCannotStart)
	w.eventuallyGone(w.jobName(b, stuckPull))

	cancelled := buildRequest()
	w.checkoutThen(cancelled, nil)
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = b.Build(cctx, cancelled)
	assert.ErrorIs(t, err, ErrCancelled)
	assert.NotContains(t, err.Error(), "forbidden")
	w.eventuallyGone(w.jobName(b, cancelled))

	_, err = w.client.CoreV1().Secrets(w.ns).List(ctx, metav1.ListOptions{})
	assert.True(t, apierrors.IsForbidden(err), "the bot lists no Secret: %v", err)
	_, err = w.client.CoreV1().Secrets(w.ns).Get(ctx, "marts-push", metav1.GetOptions{})
	assert.True(t, apierrors.IsForbidden(err), "nor reads the push Secret: %v", err)
}
