package kube

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"testing"

	"github.com/dagctl/dagctl-bot/internal/jobs"
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
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// chartDir is charts/dagctl-bot in the repository.
func chartDir() string {
	_, file, _, _ := goruntime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "charts", "dagctl-bot")
}

// helmBinary is $DAGCTL_HELM, else helm next to the control plane binaries (`make helm` puts it there).
func helmBinary(t *testing.T) string {
	t.Helper()
	path := os.Getenv("DAGCTL_HELM")
	if path == "" {
		path = filepath.Join(assetsDir, "helm")
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("helm not found at %s (%v): run `make helm` (or `make test`), or set DAGCTL_HELM", path, err)
	}
	return path
}

// renderChart runs `helm template` and decodes the manifests.
func renderChart(t *testing.T, namespace string, set ...string) []*unstructured.Unstructured {
	t.Helper()
	args := []string{"template", "dagctl-bot", chartDir(), "--namespace", namespace, "--kube-version", "v1.33.13"}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(helmBinary(t), args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "helm template: %s", stderr.String())

	var objects []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(out), 4096)
	for {
		var obj map[string]any
		err := dec.Decode(&obj)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		if len(obj) == 0 {
			continue
		}
		objects = append(objects, &unstructured.Unstructured{Object: obj})
	}
	require.NotEmpty(t, objects)
	return objects
}

func find(t *testing.T, objects []*unstructured.Unstructured, kind string, into any) {
	t.Helper()
	for _, o := range objects {
		if o.GetKind() == kind {
			require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, into))
			return
		}
	}
	t.Fatalf("the chart renders no %s", kind)
}

// The rendered chart is valid for a real API server: every object passes a server-side dry-run apply.
func TestChartAppliesToTheAPIServer(t *testing.T) {
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(discovery.NewDiscoveryClientForConfigOrDie(restConfig)))
	dyn := dynamic.NewForConfigOrDie(restConfig)
	variants := map[string][]string{
		"defaults": nil,
		"ingress, existing secret, no persistence": {"ingress.enabled=true", "ingress.className=nginx",
			"ingress.tls[0].secretName=tls", "ingress.tls[0].hosts[0]=dagctl.example.com",
			"secrets.existingSecret=app", "persistence.enabled=false", "config.publicURL=https://dagctl.example.com"},
		"credentials from values, jobs elsewhere": {"secrets.github.appID=12345", "secrets.github.webhookSecret=s3cret",
			"jobs.serviceAccountName=warehouse", "jobs.imagePullSecrets[0]=registry", "config.jobEnv[0]=DBT_PROFILES_DIR"},
		"job secrets allowed": {"jobs.secrets.allowed[0]=warehouse", "jobs.secrets.allowed[1]=dbt-profiles",
			"jobs.secrets.selector=example.com/dagctl-job=yes"},
	}
	// The bot's own Secrets, which the chart names so that jobs never get them.
	botSecrets := map[string]string{
		"defaults": "dagctl-bot,dagctl-bot-job-token-key",
		"ingress, existing secret, no persistence": "app,dagctl-bot-job-token-key",
		"credentials from values, jobs elsewhere":  "dagctl-bot,dagctl-bot-job-token-key",
		"job secrets allowed":                      "dagctl-bot,dagctl-bot-job-token-key",
	}
	for name, set := range variants {
		t.Run(name, func(t *testing.T) {
			ns := newNamespace(t)
			objects := renderChart(t, ns, set...)
			for _, obj := range objects {
				mapping, err := mapper.RESTMapping(obj.GroupVersionKind().GroupKind(), obj.GroupVersionKind().Version)
				require.NoError(t, err, obj.GetKind())
				data, err := obj.MarshalJSON()
				require.NoError(t, err)
				_, err = dyn.Resource(mapping.Resource).Namespace(obj.GetNamespace()).Patch(context.Background(), obj.GetName(),
					"application/apply-patch+yaml", data, metav1.PatchOptions{FieldManager: "chart-check", DryRun: []string{metav1.DryRunAll}, Force: ptrTrue()})
				assert.NoError(t, err, "%s %s", obj.GetKind(), obj.GetName())
			}

			var deploy appsv1.Deployment
			find(t, objects, "Deployment", &deploy)
			assert.Equal(t, int32(1), *deploy.Spec.Replicas, "SQLite has one writer")
			assert.Equal(t, appsv1.RecreateDeploymentStrategyType, deploy.Spec.Strategy.Type)
			c := deploy.Spec.Template.Spec.Containers[0]
			env := map[string]string{}
			for _, v := range c.Env {
				env[v.Name] = v.Value
			}
			assert.Equal(t, "kubernetes", env["DAGCTL_EXECUTOR"])
			assert.Equal(t, ns, env["DAGCTL_K8S_NAMESPACE"])
			assert.Equal(t, "/data/dagctl.db", env["DAGCTL_DB"])
			assert.NotEmpty(t, env["DAGCTL_K8S_IMAGE"])
			assert.Equal(t, botSecrets[name], env["DAGCTL_K8S_BOT_SECRETS"])
			var role rbacv1.Role
			find(t, objects, "Role", &role)
			var secretVerbs []string
			for _, rule := range role.Rules {
				if slices.Contains(rule.Resources, "secrets") {
					secretVerbs = append(secretVerbs, rule.Verbs...)
				}
			}
			if name == "job secrets allowed" {
				assert.Equal(t, "warehouse,dbt-profiles", env["DAGCTL_K8S_JOB_SECRETS"])
				assert.Equal(t, "example.com/dagctl-job=yes", env["DAGCTL_K8S_JOB_SECRETS_SELECTOR"])
				assert.Equal(t, []string{"create", "get"}, secretVerbs, "the selector needs to read a Secret's labels")
			} else {
				assert.NotContains(t, env, "DAGCTL_K8S_JOB_SECRETS", "nothing can be mounted by default")
				assert.NotContains(t, env, "DAGCTL_K8S_JOB_SECRETS_SELECTOR")
				assert.Equal(t, []string{"create"}, secretVerbs, "without a selector the bot reads no Secret")
			}
			assert.Equal(t, "/healthz", c.LivenessProbe.HTTPGet.Path)
			assert.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path)

			// The bot's own settings parse: the executor can be configured from exactly this environment.
			vars := map[string]string{"DAGCTL_K8S_TOKEN_KEY": "a-key-of-at-least-sixteen-bytes"}
			for k, v := range env {
				vars[k] = v
			}
			cfg, err := ConfigFromEnv(func(k string) string { return vars[k] })
			require.NoError(t, err)
			assert.Equal(t, ns, cfg.Namespace)
			assert.Equal(t, "http://dagctl-bot."+ns+".svc:80", cfg.PublicURL)
		})
	}
}

// The chart's Role is enough for everything the executor does: the executor runs with a client impersonating
// the chart's ServiceAccount, bound to the chart's Role, through a whole job, an attach, a cancel and an orphan
// clean-up. Anything missing from the Role fails here.
func TestChartRoleIsEnoughForTheExecutor(t *testing.T) {
	botNS, jobsNS := newNamespace(t), newNamespace(t)
	const selector = "example.com/dagctl-job=yes" // the most the Role grants: get on secrets too
	objects := renderChart(t, botNS, "jobs.namespace="+jobsNS, "jobs.secrets.selector="+selector)
	var sa corev1.ServiceAccount
	var role rbacv1.Role
	var binding rbacv1.RoleBinding
	find(t, objects, "ServiceAccount", &sa)
	find(t, objects, "Role", &role)
	find(t, objects, "RoleBinding", &binding)
	require.Equal(t, jobsNS, role.Namespace)
	ctx := context.Background()
	_, err := testClient.CoreV1().ServiceAccounts(botNS).Create(ctx, &sa, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = testClient.RbacV1().Roles(jobsNS).Create(ctx, &role, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = testClient.RbacV1().RoleBindings(jobsNS).Create(ctx, &binding, metav1.CreateOptions{})
	require.NoError(t, err)

	asBot := rest.CopyConfig(restConfig)
	asBot.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + botNS + ":" + sa.Name}
	botClient := kubernetes.NewForConfigOrDie(asBot)

	// Without the binding the bot says so at start, instead of waiting for a watch that never syncs.
	stranger := rest.CopyConfig(restConfig)
	stranger.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + botNS + ":nobody"}
	_, err = New(ctx, kubernetes.NewForConfigOrDie(stranger), testConfig(jobsNS, "http://bot.invalid"))
	require.Error(t, err)
	assert.True(t, apierrors.IsForbidden(err), "%v", err)

	b := newBot(t)
	node := startNode(t, jobsNS)
	repo := newGitRepo(t)
	cfg := testConfig(jobsNS, b.server.URL)
	cfg.JobSecretsSelector = selector
	first := b.startExecutor(t, botClient, cfg)
	createSecret(t, jobsNS, "labelled", map[string]string{"example.com/dagctl-job": "yes"}, map[string]string{"LABELLED": "pw-by-label"})

	var out lineSink
	spec := planSpec(repo, "rbac-plan", "sh", "-c", `cat model.sql; echo "labelled=$LABELLED"`)
	spec.Secrets = []string{"labelled"} // checked through the API: allowed by its labels
	h, err := first.Start(ctx, spec, out.sink)
	require.NoError(t, err)
	res := wait(t, h)
	assert.True(t, res.Succeeded(), "%+v %q", res, out.texts())
	assert.True(t, out.has("select 1 as pr_head"))
	assert.True(t, out.has("labelled=***"), "%q", out.texts())

	node.Hold("rbac-cancel")
	cancelled, err := first.Start(ctx, planSpec(repo, "rbac-cancel", "true"), nil)
	require.NoError(t, err)
	node.Hold("rbac-orphan")
	_, err = first.Start(ctx, planSpec(repo, "rbac-orphan", "true"), nil)
	require.NoError(t, err)
	require.NoError(t, cancelled.Cancel(ctx))
	assert.Equal(t, ReasonCancelled, wait(t, cancelled).Reason)
	b.stop(first)

	second := b.startExecutor(t, botClient, cfg)
	attached, err := second.Attach(ctx, "rbac-plan", nil)
	require.NoError(t, err)
	assert.True(t, wait(t, attached).Succeeded())
	deleted, err := second.CleanOrphans(ctx, func(runID string) bool { return runID == "rbac-plan" })
	require.NoError(t, err)
	assert.Equal(t, []string{"rbac-orphan"}, deleted)

	// Reading a pod's log is allowed (this control plane has no kubelet to serve it, hence no log itself).
	pod := waitForPod(t, jobsNS, "rbac-plan")
	_, err = botClient.CoreV1().Pods(jobsNS).GetLogs(pod.Name, &corev1.PodLogOptions{Container: mainContainerName}).DoRaw(ctx)
	assert.False(t, apierrors.IsForbidden(err), "%v", err)

	// And nothing more than needed: the bot cannot list Secrets, nor read any without the selector.
	_, err = botClient.CoreV1().Secrets(jobsNS).List(ctx, metav1.ListOptions{})
	assert.True(t, apierrors.IsForbidden(err), "%v", err)
	_, err = botClient.CoreV1().Pods(jobsNS).List(ctx, metav1.ListOptions{})
	assert.NoError(t, err)
	_, err = botClient.BatchV1().Jobs(botNS).List(ctx, metav1.ListOptions{})
	assert.True(t, apierrors.IsForbidden(err), "the Role covers the jobs namespace only: %v", err)
	_ = jobs.ErrGone
}

func ptrTrue() *bool { v := true; return &v }

// The chart's ServiceMonitor is off by default; on, it scrapes /metrics on the Service's http port, selecting
// the bot's Service by its labels, with the bearer token's Secret when one is named.
func TestChartServiceMonitorIsOptional(t *testing.T) {
	for _, o := range renderChart(t, "dagctl") {
		assert.NotEqual(t, "ServiceMonitor", o.GetKind(), "none by default: the CRD may not exist")
	}
	objects := renderChart(t, "dagctl", "metrics.serviceMonitor.enabled=true", "metrics.serviceMonitor.labels.release=kps",
		"metrics.serviceMonitor.bearerTokenSecret.name=dagctl-bot", "metrics.serviceMonitor.bearerTokenSecret.key=DAGCTL_METRICS_TOKEN")
	var svc corev1.Service
	find(t, objects, "Service", &svc)
	var monitor *unstructured.Unstructured
	for _, o := range objects {
		if o.GetKind() == "ServiceMonitor" {
			monitor = o
		}
	}
	require.NotNil(t, monitor, "the chart renders no ServiceMonitor")
	assert.Equal(t, "monitoring.coreos.com/v1", monitor.GetAPIVersion())
	assert.Equal(t, "kps", monitor.GetLabels()["release"])
	selector, _, err := unstructured.NestedStringMap(monitor.Object, "spec", "selector", "matchLabels")
	require.NoError(t, err)
	require.NotEmpty(t, selector)
	for k, v := range selector {
		assert.Equal(t, v, svc.Labels[k], "the ServiceMonitor selects the bot's Service (label %s)", k)
	}
	endpoints, _, err := unstructured.NestedSlice(monitor.Object, "spec", "endpoints")
	require.NoError(t, err)
	require.Len(t, endpoints, 1)
	ep := endpoints[0].(map[string]any)
	assert.Equal(t, "/metrics", ep["path"])
	assert.Equal(t, "http", ep["port"])
	assert.Equal(t, "http", svc.Spec.Ports[0].Name, "the port the ServiceMonitor names")
	key, _, err := unstructured.NestedString(ep, "authorization", "credentials", "key")
	require.NoError(t, err)
	assert.Equal(t, "DAGCTL_METRICS_TOKEN", key)
}
