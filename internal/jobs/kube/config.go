package kube

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Config is how the executor creates Jobs. New fills in the defaults of the zero fields.
type Config struct {
	// Namespace holds the Jobs, their Pods and Secrets (DAGCTL_K8S_NAMESPACE; in a cluster, default the bot's own).
	Namespace string
	// Image runs the job's command when jobs.Spec.Image is empty (DAGCTL_K8S_IMAGE).
	Image string
	// RunnerImage holds the dagctl-bot binary at RunnerPath; the init container runs it to check the commit out
	// and to copy the binary into the Pod (DAGCTL_K8S_RUNNER_IMAGE; the chart sets the bot's own image).
	RunnerImage string
	RunnerPath  string
	// PublicURL is where Pods reach the bot's job endpoints: Pods post to PublicURL/jobs/{run-id}/lines and
	// /result. DAGCTL_K8S_REPORT_URL (the chart sets the in-cluster Service URL), else DAGCTL_PUBLIC_URL.
	PublicURL string
	// ReportGrace is how long a finished job's runner keeps trying to reach an unreachable bot before it gives
	// up and leaves only the termination message (DAGCTL_K8S_REPORT_GRACE, default 10m).
	ReportGrace time.Duration
	// TokenKey signs the per-run report tokens (DAGCTL_K8S_TOKEN_KEY). It must stay the same across restarts,
	// or a restarted bot rejects the running Pods' reports.
	TokenKey []byte
	// Instance tells this bot's Jobs apart from another installation's in the same namespace
	// (DAGCTL_K8S_INSTANCE, default "dagctl-bot").
	Instance string
	// DefaultTimeout bounds a job whose spec has none (activeDeadlineSeconds).
	DefaultTimeout time.Duration
	// TTLAfterFinished keeps a finished Job (and its Pod, with the termination message) this long, so that a
	// restarted bot can still read how it ended (DAGCTL_K8S_JOB_TTL, default 6h).
	TTLAfterFinished time.Duration
	// Resources of the job's containers (DAGCTL_K8S_JOB_RESOURCES, JSON of a ResourceRequirements).
	Resources corev1.ResourceRequirements
	// ServiceAccountName runs the Pods as that account, e.g. for workload identity to a warehouse
	// (DAGCTL_K8S_JOB_SERVICE_ACCOUNT). Its API token is never mounted either way.
	ServiceAccountName string
	// ImagePullSecrets are attached to every Pod (DAGCTL_K8S_IMAGE_PULL_SECRETS, comma-separated).
	ImagePullSecrets []string
	// RunAsUser is the numeric user of both containers (runAsNonRoot needs a number). Default 65532.
	RunAsUser int64
	// JobSecrets are the Secrets of Namespace that repositories may name in job.secrets
	// (DAGCTL_K8S_JOB_SECRETS). Default none.
	JobSecrets []string
	// JobSecretsSelector lets repositories name any Secret whose labels match it, too
	// (DAGCTL_K8S_JOB_SECRETS_SELECTOR, a label selector). The executor reads such a Secret to check its labels
	// (RBAC: get on secrets), and masks its values in the job's output. Empty: none.
	JobSecretsSelector string
	// BotSecrets are the bot's own Secrets (its app credentials, its token key: DAGCTL_K8S_BOT_SECRETS). Jobs
	// never get them, even when allowed; nor the per-run token Secrets the executor creates.
	BotSecrets []string
	Logger     *slog.Logger
}

const (
	defaultInstance   = "dagctl-bot"
	defaultRunnerPath = "/usr/local/bin/dagctl-bot"
	defaultTimeout    = 2 * time.Hour
	defaultTTL        = 6 * time.Hour
	defaultUser       = 65532 // "nonroot" in distroless images
)

func (c Config) withDefaults() (Config, error) {
	if c.Namespace == "" {
		return c, errors.New("kube: no namespace for jobs (DAGCTL_K8S_NAMESPACE)")
	}
	if c.PublicURL == "" {
		return c, errors.New("kube: no URL for pods to report to (DAGCTL_K8S_REPORT_URL or DAGCTL_PUBLIC_URL)")
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if len(c.TokenKey) < 16 {
		return c, errors.New("kube: the report token key (DAGCTL_K8S_TOKEN_KEY) must have at least 16 bytes")
	}
	if c.RunnerImage == "" {
		return c, errors.New("kube: no runner image (DAGCTL_K8S_RUNNER_IMAGE), the image holding dagctl-bot")
	}
	if c.RunnerPath == "" {
		c.RunnerPath = defaultRunnerPath
	}
	if c.Instance == "" {
		c.Instance = defaultInstance
	}
	if c.DefaultTimeout <= 0 {
		c.DefaultTimeout = defaultTimeout
	}
	if c.ReportGrace <= 0 {
		c.ReportGrace = defaultReportGrace
	}
	if c.TTLAfterFinished <= 0 {
		c.TTLAfterFinished = defaultTTL
	}
	if c.Resources.Requests == nil && c.Resources.Limits == nil {
		c.Resources = corev1.ResourceRequirements{
			Requests: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("250m"),
				corev1.ResourceMemory: resource.MustParse("512Mi"),
			},
			Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi")},
		}
	}
	if _, err := parseSecretSelector(c.JobSecretsSelector); err != nil {
		return c, fmt.Errorf("kube: the job secrets selector (DAGCTL_K8S_JOB_SECRETS_SELECTOR): %w", err)
	}
	if c.RunAsUser == 0 {
		c.RunAsUser = defaultUser
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

// inClusterNamespaceFile is where a Pod finds its own namespace.
const inClusterNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// ConfigFromEnv reads the DAGCTL_K8S_* settings and DAGCTL_PUBLIC_URL. It fails only on malformed values: the
// caller may fill in what is missing (New says what still is). Logger is left for the caller.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		Namespace:          getenv("DAGCTL_K8S_NAMESPACE"),
		Image:              getenv("DAGCTL_K8S_IMAGE"),
		RunnerImage:        getenv("DAGCTL_K8S_RUNNER_IMAGE"),
		RunnerPath:         getenv("DAGCTL_K8S_RUNNER_PATH"),
		PublicURL:          getenv("DAGCTL_K8S_REPORT_URL"),
		TokenKey:           []byte(getenv("DAGCTL_K8S_TOKEN_KEY")),
		Instance:           getenv("DAGCTL_K8S_INSTANCE"),
		ServiceAccountName: getenv("DAGCTL_K8S_JOB_SERVICE_ACCOUNT"),
	}
	if c.PublicURL == "" {
		c.PublicURL = getenv("DAGCTL_PUBLIC_URL")
	}
	if v := getenv("DAGCTL_K8S_REPORT_GRACE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return c, fmt.Errorf("DAGCTL_K8S_REPORT_GRACE: %w", err)
		}
		c.ReportGrace = d
	}
	if c.Namespace == "" {
		if b, err := os.ReadFile(inClusterNamespaceFile); err == nil {
			c.Namespace = strings.TrimSpace(string(b))
		}
	}
	if v := getenv("DAGCTL_K8S_JOB_TTL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return c, fmt.Errorf("DAGCTL_K8S_JOB_TTL: %w", err)
		}
		c.TTLAfterFinished = d
	}
	if v := getenv("DAGCTL_K8S_JOB_RESOURCES"); v != "" {
		if err := json.Unmarshal([]byte(v), &c.Resources); err != nil {
			return c, fmt.Errorf("DAGCTL_K8S_JOB_RESOURCES: %w", err)
		}
	}
	if v := getenv("DAGCTL_K8S_JOB_RUN_AS_USER"); v != "" {
		uid, err := strconv.ParseInt(v, 10, 64)
		if err != nil || uid <= 0 {
			return c, fmt.Errorf("DAGCTL_K8S_JOB_RUN_AS_USER: want a user id above 0, got %q", v)
		}
		c.RunAsUser = uid
	}
	for _, name := range strings.Split(getenv("DAGCTL_K8S_IMAGE_PULL_SECRETS"), ",") {
		if name = strings.TrimSpace(name); name != "" {
			c.ImagePullSecrets = append(c.ImagePullSecrets, name)
		}
	}
	return c, nil
}

// RESTConfig finds the credentials to talk to the API server: the Pod's service account inside a cluster,
// otherwise the kubeconfig (KUBECONFIG or ~/.kube/config, current context).
func RESTConfig() (*rest.Config, error) {
	if cfg, err := rest.InClusterConfig(); err == nil {
		return cfg, nil
	} else if !errors.Is(err, rest.ErrNotInCluster) {
		return nil, err
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kube: no in-cluster credentials and no usable kubeconfig: %w", err)
	}
	return cfg, nil
}
