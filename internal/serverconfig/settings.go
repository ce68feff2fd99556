package serverconfig

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/dagctl/dagctl-bot/internal/allowlist"
	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/image"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
	"github.com/dagctl/dagctl-bot/internal/retry"
)

// setting is one server setting; the table below is the single list that flags, help and docs come from.
type setting struct {
	env, flag, def, usage string
	secret                bool
}

// DefaultDB is where serve keeps its database without DAGCTL_DB (`deliveries` opens the same).
const DefaultDB = "./dagctl-data/dagctl.db"

// Environment variable names of the settings.
const (
	EnvListen               = "DAGCTL_LISTEN"
	EnvDB                   = "DAGCTL_DB"
	EnvRunLogMaxBytes       = "DAGCTL_RUN_LOG_MAX_BYTES"
	EnvRetainDeliveryBodies = "DAGCTL_RETAIN_DELIVERY_BODIES"
	EnvRetainRunLogs        = "DAGCTL_RETAIN_RUN_LOGS"
	EnvRetainDeliveries     = "DAGCTL_RETAIN_DELIVERIES"
	EnvDeliveryRetryFor     = "DAGCTL_DELIVERY_RETRY_FOR"
	EnvCommandExpiry        = "DAGCTL_COMMAND_EXPIRY"
	EnvExecutor             = "DAGCTL_EXECUTOR"
	EnvPublicURL            = "DAGCTL_PUBLIC_URL"
	EnvGitHubAppID          = "DAGCTL_GITHUB_APP_ID"
	EnvGitHubPrivateKey     = "DAGCTL_GITHUB_PRIVATE_KEY"
	EnvGitHubWebhookSecret  = "DAGCTL_GITHUB_WEBHOOK_SECRET"
	EnvGitHubAPIURL         = "DAGCTL_GITHUB_API_URL"
	EnvGitHubClientID       = "DAGCTL_GITHUB_CLIENT_ID"
	EnvGitHubClientSecret   = "DAGCTL_GITHUB_CLIENT_SECRET"
	EnvGitLabOAuthAppID     = "DAGCTL_GITLAB_OAUTH_APP_ID"
	EnvGitLabOAuthSecret    = "DAGCTL_GITLAB_OAUTH_SECRET"
	EnvSessionKeys          = "DAGCTL_SESSION_KEYS"
	EnvGitLabURL            = "DAGCTL_GITLAB_URL"
	EnvGitLabToken          = "DAGCTL_GITLAB_TOKEN"
	EnvGitLabWebhookSecret  = "DAGCTL_GITLAB_WEBHOOK_SECRET"
	EnvGitLabCloneToken     = "DAGCTL_GITLAB_CLONE_TOKEN"
	EnvRepoAllowlist        = "DAGCTL_REPO_ALLOWLIST"
	EnvSQLMesh              = "DAGCTL_SQLMESH"
	EnvWorkDir              = "DAGCTL_WORKDIR"
	EnvJobEnv               = "DAGCTL_JOB_ENV"
	EnvJobSetup             = "DAGCTL_JOB_SETUP"
	EnvJobUIDs              = "DAGCTL_JOB_UIDS"
	EnvJobGroup             = "DAGCTL_JOB_GROUP"
	EnvK8sNamespace         = "DAGCTL_K8S_NAMESPACE"
	EnvK8sImage             = "DAGCTL_K8S_IMAGE"
	EnvK8sJobSecrets        = "DAGCTL_K8S_JOB_SECRETS"
	// EnvK8sJobSecretsSelector is a label selector of Secrets jobs may mount.
	EnvK8sJobSecretsSelector = "DAGCTL_K8S_JOB_SECRETS_SELECTOR"
	EnvK8sBotSecrets         = "DAGCTL_K8S_BOT_SECRETS"
	EnvBuildNamespace        = "DAGCTL_BUILD_NAMESPACE"
	EnvBuildKitImage         = "DAGCTL_BUILDKIT_IMAGE"
	EnvBuildGitImage         = "DAGCTL_BUILD_GIT_IMAGE"
	EnvBuildPushSecret       = "DAGCTL_BUILD_PUSH_SECRET"
	EnvBuildTimeout          = "DAGCTL_BUILD_TIMEOUT"
	EnvLogLevel              = "DAGCTL_LOG_LEVEL"
	EnvRecoverInterval       = "DAGCTL_RECOVER_INTERVAL"
	EnvMetricsToken          = "DAGCTL_METRICS_TOKEN"
)

func settings() []setting {
	return []setting{
		{env: EnvListen, flag: "listen", def: ":8080", usage: "HTTP listen address for webhooks and health checks"},
		{env: EnvDB, flag: "db", def: DefaultDB, usage: "SQLite database file, in a directory of its own"},
		{env: EnvRunLogMaxBytes, flag: "run-log-max-bytes", def: strconv.Itoa(db.DefaultRunLogMaxBytes),
			usage: "bytes of a run's stored log at most: beyond them its middle is dropped for one line saying how much"},
		{env: EnvDeliveryRetryFor, flag: "delivery-retry-for", def: retry.DefaultFor.String(),
			usage: "how long a delivery or a forge write is retried after its first failure (at least 1h) before it is given up: a delivery is then kept as dead"},
		{env: EnvCommandExpiry, flag: "command-expiry", def: "15m0s",
			usage: "a comment command handled later than this after the forge received the comment is not run; the PR is told"},
		{env: EnvRetainDeliveryBodies, flag: "retain-delivery-bodies", def: "168h",
			usage: "how long a handled webhook delivery's body is kept (its row stays); 0 keeps it forever"},
		{env: EnvRetainDeliveries, flag: "retain-deliveries", def: "720h",
			usage: "how long a handled webhook delivery's row (its id, event and times) is kept; at least 96h (the forge lists deliveries for redelivery for 3 days), or 0 to keep forever"},
		{env: EnvRetainRunLogs, flag: "retain-run-logs", def: "2160h",
			usage: "how long a finished run's log is kept (the run, its plan and approvals stay); 0 keeps it forever"},
		{env: EnvExecutor, flag: "executor", def: string(ExecutorLocal), usage: "where jobs run: local or kubernetes"},
		{env: EnvPublicURL, flag: "public-url", usage: "the bot's external base URL, for links in checks and comments"},
		{env: EnvGitHubAppID, flag: "github-app-id", usage: "GitHub App id; setting it enables GitHub"},
		{env: EnvGitHubPrivateKey, flag: "github-private-key", secret: true,
			usage: "GitHub App private key: PEM text or the path of a PEM file (RSA)"},
		{env: EnvGitHubWebhookSecret, flag: "github-webhook-secret", secret: true, usage: "GitHub webhook secret"},
		{env: EnvGitHubAPIURL, flag: "github-api-url", def: "https://api.github.com/",
			usage: "GitHub REST API base URL (GitHub Enterprise Server: https://HOST/api/v3/)"},
		{env: EnvGitHubClientID, flag: "github-client-id",
			usage: "the GitHub App's client id, for signing in to the web pages; default the one /setup stored"},
		{env: EnvGitHubClientSecret, flag: "github-client-secret", secret: true,
			usage: "the GitHub App's client secret, for signing in to the web pages; default the one /setup stored"},
		{env: EnvGitLabURL, flag: "gitlab-url", def: "https://gitlab.com", usage: "GitLab base URL"},
		{env: EnvGitLabToken, flag: "gitlab-token", secret: true, usage: "GitLab access token of the bot user; setting it enables GitLab"},
		{env: EnvGitLabWebhookSecret, flag: "gitlab-webhook-secret", secret: true, usage: "GitLab webhook secret token"},
		{env: EnvGitLabCloneToken, flag: "gitlab-clone-token", secret: true,
			usage: "GitLab token jobs clone with (read_repository scope); without it they clone with the api token, and the bot warns"},
		{env: EnvGitLabOAuthAppID, flag: "gitlab-oauth-app-id",
			usage: "application id of a GitLab OAuth application (scope read_user), for signing in to the web pages"},
		{env: EnvGitLabOAuthSecret, flag: "gitlab-oauth-secret", secret: true,
			usage: "secret of that GitLab OAuth application"},
		{env: EnvSessionKeys, flag: "session-keys", secret: true,
			usage: "comma-separated keys (each at least 32 characters) sealing web session cookies: the first seals, all open; default a random key kept in the database"},
		{env: EnvRepoAllowlist, flag: "repo-allowlist",
			usage: "comma-separated forge:path repositories the bot serves (github:acme/*,gitlab:group/sub/*,gitlab:group/**); default every repository"},
		{env: EnvSQLMesh, flag: "sqlmesh", def: "sqlmesh",
			usage: "sqlmesh executable; resolved on PATH at start with the local executor"},
		{env: EnvWorkDir, flag: "workdir", def: filepath.Join(os.TempDir(), "dagctl"), usage: "scratch directory for checkouts"},
		{env: EnvJobEnv, flag: "job-env",
			usage: "comma-separated names of the bot's environment variables that jobs may receive (via job.pass_env)"},
		{env: EnvJobSetup, flag: "job-setup",
			usage: "which job.setup steps jobs may run: any, or comma-separated command prefixes (pip install -r requirements.txt,dbt deps); default none"},
		{env: EnvJobUIDs, flag: "job-uids", def: string(JobUsersAuto),
			usage: "uids local jobs run as, one per running job: auto (20000-20999 when the bot can), off, or FIRST-LAST"},
		{env: EnvJobGroup, flag: "job-group", usage: "a group id every local job also belongs to, for files jobs share"},
		{env: EnvK8sNamespace, flag: "k8s-namespace", def: "default", usage: "Kubernetes namespace for job pods and job.secrets"},
		{env: EnvK8sImage, flag: "k8s-image", usage: "default job image for the kubernetes executor (required with it)"},
		{env: EnvK8sJobSecrets, flag: "k8s-job-secrets",
			usage: "comma-separated names of Secrets that repositories may name in job.secrets (kubernetes executor)"},
		{env: EnvK8sJobSecretsSelector, flag: "k8s-job-secrets-selector",
			usage: "label selector of more Secrets that repositories may name in job.secrets (the bot reads them to check)"},
		{env: EnvK8sBotSecrets, flag: "k8s-bot-secrets",
			usage: "comma-separated names of the bot's own Secrets in the jobs namespace, which jobs never get (the chart sets it)"},
		{env: EnvBuildNamespace, flag: "build-namespace",
			usage: "Kubernetes namespace of the builder: dockerfile image builds and their push Secret (default the jobs' namespace)"},
		{env: EnvBuildKitImage, flag: "buildkit-image", def: image.DefaultBuildKitImage,
			usage: "rootless BuildKit image of builder: dockerfile builds (pin it by digest)"},
		{env: EnvBuildGitImage, flag: "build-git-image",
			usage: "image with sh and git that checks the commit out for a builder: dockerfile build (required for them)"},
		{env: EnvBuildPushSecret, flag: "build-push-secret",
			usage: "kubernetes.io/dockerconfigjson Secret builder: dockerfile builds push with (required for them; never one jobs may mount)"},
		{env: EnvBuildTimeout, flag: "build-timeout", def: image.DefaultDockerfileTimeout.String(),
			usage: "how long a builder: dockerfile build may run"},
		{env: EnvLogLevel, flag: "log-level", def: "info", usage: "log level: debug, info, warn or error"},
		{env: EnvRecoverInterval, flag: "recover-interval", def: DefaultRecoverInterval.String(),
			usage: "how often the bot asks the forge for webhooks it missed and plans open PRs with no plan of their head (0: only at start)"},
		{env: EnvMetricsToken, flag: "metrics-token", secret: true,
			usage: "a bearer token GET /metrics requires (Authorization: Bearer <token>); default none: /metrics is open"},
	}
}

// retention reads a retention setting: a duration of at least a minute, or 0 for forever.
func retention(errs *errList, in inputs, env string) time.Duration {
	v, s := in[env].value, settingFor(env)
	d, err := time.ParseDuration(v)
	if v == "0" {
		d, err = 0, nil
	}
	if err != nil || d < 0 || (d > 0 && d < time.Minute) {
		errs.add(s, "%q is not a duration of at least 1m like 168h, or 0 to keep forever", v)
		return 0
	}
	return d
}

type input struct {
	value    string
	explicit bool // given by flag or environment, not the default
}

type inputs map[string]input

func settingFor(env string) setting {
	for _, s := range settings() {
		if s.env == env {
			return s
		}
	}
	panic("serverconfig: no setting " + env)
}

var (
	envVarNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// Kubernetes namespaces are DNS labels.
	dnsLabelRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	// Kubernetes secret names are DNS subdomains.
	secretNameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
)

// build reads every setting into a Config in one pass, in the order of the settings table; it is long because there are many settings, each a few lines.
func build(in inputs, getenv func(string) string) (Config, error) {
	var errs errList
	get := func(env string) (string, setting) { return in[env].value, settingFor(env) }
	var c Config

	v, s := get(EnvListen)
	if _, _, err := net.SplitHostPort(v); err != nil {
		errs.add(s, "%q is not a host:port address like :8080", v)
	}
	c.Listen = v

	v, s = get(EnvDB)
	if strings.TrimSpace(v) == "" {
		errs.add(s, "must not be blank")
	}
	c.DB = v

	v, s = get(EnvRunLogMaxBytes)
	if n, err := strconv.ParseInt(v, 10, 64); err != nil || n < 4096 {
		errs.add(s, "%q is not a number of bytes of at least 4096", v)
	} else {
		c.RunLogMaxBytes = n
	}

	v, s = get(EnvDeliveryRetryFor)
	if d, err := time.ParseDuration(v); err != nil || d < time.Hour {
		errs.add(s, "%q is not a duration of at least 1h (like 24h)", v)
	} else {
		c.RetryFor = d
	}
	v, s = get(EnvCommandExpiry)
	if d, err := time.ParseDuration(v); err != nil || d < time.Minute {
		errs.add(s, "%q is not a duration of at least 1m (like 15m)", v)
	} else {
		c.CommandExpiry = d
	}
	c.Retention.DeliveryBodies = retention(&errs, in, EnvRetainDeliveryBodies)
	c.Retention.RunLogs = retention(&errs, in, EnvRetainRunLogs)
	// A delivery's id must outlive the forge's redelivery list, or the recovery asks for it again.
	if c.Retention.Deliveries = retention(&errs, in, EnvRetainDeliveries); c.Retention.Deliveries > 0 && c.Retention.Deliveries < 96*time.Hour {
		errs.add(settingFor(EnvRetainDeliveries), "%s is shorter than 96h: the forge lists deliveries for redelivery for 3 days", c.Retention.Deliveries)
	}

	v, s = get(EnvExecutor)
	switch e := Executor(v); e {
	case ExecutorLocal, ExecutorKubernetes:
		c.Executor = e
	default:
		errs.add(s, "%q is not one of %s, %s", v, ExecutorLocal, ExecutorKubernetes)
	}

	if v, s = get(EnvPublicURL); v != "" {
		if u, ok := httpURL(&errs, s, v); ok {
			c.PublicURL = strings.TrimRight(u, "/")
		}
	}

	buildGitHub(&c, &errs, in)
	buildGitLab(&c, &errs, in)
	buildSignIn(&c, &errs, in)
	if repos, err := allowlist.Parse(in[EnvRepoAllowlist].value); err != nil {
		errs.add(settingFor(EnvRepoAllowlist), "%s", err)
	} else {
		c.RepoAllowlist = repos
	}

	v, s = get(EnvSQLMesh)
	c.SQLMesh = v
	if c.Executor == ExecutorLocal {
		if path, err := lookPath(v, getenv("PATH")); err != nil {
			errs.add(s, "%s (run `make tools`, or point %s at the sqlmesh executable)", err, EnvSQLMesh)
		} else {
			c.SQLMesh = path
		}
	}

	v, s = get(EnvWorkDir)
	if abs, err := filepath.Abs(v); err != nil || strings.TrimSpace(v) == "" {
		errs.add(s, "%q is not a usable directory path", v)
	} else {
		c.WorkDir = abs
	}

	v, s = get(EnvJobEnv)
	seen := map[string]bool{}
	for _, part := range strings.Split(v, ",") {
		name := strings.TrimSpace(part)
		switch {
		case name == "" || seen[name]:
		case !envVarNameRE.MatchString(name):
			errs.add(s, "%q is not a variable name", name)
		case strings.HasPrefix(strings.ToUpper(name), "DAGCTL_"):
			// The bot's own settings include its credentials; they must never be passable to PR code.
			errs.add(s, "%s cannot be passed to jobs: DAGCTL_* variables are the bot's own", name)
		default:
			seen[name] = true
			c.JobEnv = append(c.JobEnv, name)
		}
	}

	v, s = get(EnvJobSetup)
	if allow, err := repoconfig.ParseSetupAllowlist(v); err != nil {
		errs.add(s, "%v", err)
	} else {
		c.JobSetup = allow
	}

	buildJobUsers(&c, &errs, in)

	v, s = get(EnvK8sNamespace)
	if len(v) > 63 || !dnsLabelRE.MatchString(v) {
		errs.add(s, "%q is not a Kubernetes namespace name", v)
	}
	c.Kubernetes.Namespace = v
	v, s = get(EnvK8sImage)
	if strings.ContainsAny(v, " \t\r\n") {
		errs.add(s, "%q is not an image reference", v)
	}
	if v == "" && c.Executor == ExecutorKubernetes {
		errs.add(s, "is required with the kubernetes executor")
	}
	c.Kubernetes.Image = v
	buildJobSecrets(&c, &errs, in)
	buildBuilds(&c, &errs, in)

	v, s = get(EnvLogLevel)
	if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
		errs.add(s, "%q is not one of debug, info, warn, error", v)
	}

	v, s = get(EnvRecoverInterval)
	if d, err := time.ParseDuration(v); err != nil || d < 0 {
		errs.add(s, "%q is not a duration (5m, 1h, 0)", v)
	} else {
		c.RecoverInterval = d
	}
	c.MetricsToken = Secret(in[EnvMetricsToken].value)

	if err := errs.err(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// maxJobID is the largest uid or gid a job may have (2^31-2: -1 as uint32 means "unchanged" to the kernel).
const maxJobID = 1<<31 - 2

func buildJobUsers(c *Config, errs *errList, in inputs) {
	v, s := strings.TrimSpace(in[EnvJobUIDs].value), settingFor(EnvJobUIDs)
	switch mode := JobUsersMode(v); mode {
	case JobUsersAuto, JobUsersOff:
		c.JobUsers.Mode = mode
	default:
		first, last, ok := strings.Cut(v, "-")
		a, errA := strconv.ParseUint(strings.TrimSpace(first), 10, 32)
		b, errB := strconv.ParseUint(strings.TrimSpace(last), 10, 32)
		switch {
		case !ok || errA != nil || errB != nil:
			errs.add(s, "%q is not auto, off or a uid range like 20000-20999", v)
		case a == 0 || a > b || b > maxJobID:
			errs.add(s, "%q must be a range of uids from 1 to %d, first to last", v, maxJobID)
		default:
			c.JobUsers = JobUsers{Mode: JobUsersRange, First: uint32(a), Last: uint32(b)}
		}
	}
	v, s = strings.TrimSpace(in[EnvJobGroup].value), settingFor(EnvJobGroup)
	if v == "" {
		return
	}
	g, err := strconv.ParseUint(v, 10, 32)
	switch {
	case err != nil || g == 0 || g > maxJobID:
		errs.add(s, "%q is not a group id (1 to %d)", v, maxJobID)
	case c.JobUsers.Mode == JobUsersRange && uint32(g) >= c.JobUsers.First && uint32(g) <= c.JobUsers.Last:
		errs.add(s, "%d is in the job uid range, whose ids are the jobs' own groups", g)
	default:
		c.JobUsers.Group = uint32(g)
	}
}

// buildJobSecrets reads which Secrets jobs may mount (names, a label selector) and which are the bot's own.
func buildJobSecrets(c *Config, errs *errList, in inputs) {
	secretNames := func(env string) []string {
		var names []string
		seen := map[string]bool{}
		for _, part := range strings.Split(in[env].value, ",") {
			name := strings.TrimSpace(part)
			switch {
			case name == "" || seen[name]:
			case len(name) > 253 || !secretNameRE.MatchString(name):
				errs.add(settingFor(env), "%q is not a Kubernetes secret name", name)
			default:
				seen[name] = true
				names = append(names, name)
			}
		}
		return names
	}
	k := &c.Kubernetes
	k.JobSecrets = secretNames(EnvK8sJobSecrets)
	k.BotSecrets = secretNames(EnvK8sBotSecrets)
	for _, name := range k.JobSecrets {
		if slices.Contains(k.BotSecrets, name) {
			errs.add(settingFor(EnvK8sJobSecrets), "%s is one of the bot's own Secrets (%s): jobs never get it", name, EnvK8sBotSecrets)
		}
	}
	v := in[EnvK8sJobSecretsSelector].value
	if _, err := labels.Parse(v); err != nil {
		errs.add(settingFor(EnvK8sJobSecretsSelector), "%q is not a label selector", v)
	}
	k.JobSecretsSelector = strings.TrimSpace(v)
}

// buildBuilds reads the settings of Dockerfile image builds.
func buildBuilds(c *Config, errs *errList, in inputs) {
	b := &c.Builds
	v, s := strings.TrimSpace(in[EnvBuildNamespace].value), settingFor(EnvBuildNamespace)
	if v != "" && (len(v) > 63 || !dnsLabelRE.MatchString(v)) {
		errs.add(s, "%q is not a Kubernetes namespace name", v)
	}
	b.Namespace = v
	if b.Namespace == "" {
		b.Namespace = c.Kubernetes.Namespace
	}
	for _, env := range []string{EnvBuildKitImage, EnvBuildGitImage} {
		if v := in[env].value; strings.ContainsAny(v, " \t\r\n") {
			errs.add(settingFor(env), "%q is not an image reference", v)
		}
	}
	b.BuildKitImage = in[EnvBuildKitImage].value
	b.GitImage = strings.TrimSpace(in[EnvBuildGitImage].value)
	v, s = strings.TrimSpace(in[EnvBuildPushSecret].value), settingFor(EnvBuildPushSecret)
	switch {
	case v != "" && (len(v) > 253 || !secretNameRE.MatchString(v)):
		errs.add(s, "%q is not a Kubernetes secret name", v)
	case v != "" && b.Namespace == c.Kubernetes.Namespace && slices.Contains(c.Kubernetes.JobSecrets, v):
		// The PR code of every plan job could mount the push credentials.
		errs.add(s, "%s is a Secret jobs may mount (%s): give builds a push Secret of their own", v, EnvK8sJobSecrets)
	default:
		b.PushSecret = v
	}
	if (b.GitImage == "") != (v == "") {
		errs.add(s, "%s and %s go together: builder: dockerfile needs both", EnvBuildGitImage, EnvBuildPushSecret)
	}
	v, s = in[EnvBuildTimeout].value, settingFor(EnvBuildTimeout)
	if d, err := time.ParseDuration(v); err != nil || d < time.Minute {
		errs.add(s, "%q is not a duration of at least 1m (like 30m)", v)
	} else {
		b.Timeout = d
	}
}

func buildGitHub(c *Config, errs *errList, in inputs) {
	g := &c.GitHub
	v, s := in[EnvGitHubAppID].value, settingFor(EnvGitHubAppID)
	if v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			errs.add(s, "%q is not a GitHub App id (a positive number)", v)
		} else {
			g.AppID = id
		}
	}
	keySetting := settingFor(EnvGitHubPrivateKey)
	if v := in[EnvGitHubPrivateKey].value; v != "" {
		if pemText, err := loadPrivateKey(v); err != nil {
			errs.add(keySetting, "%s", err)
		} else {
			g.PrivateKey = Secret(pemText)
		}
	}
	g.WebhookSecret = Secret(in[EnvGitHubWebhookSecret].value)
	if u, ok := httpURL(errs, settingFor(EnvGitHubAPIURL), in[EnvGitHubAPIURL].value); ok {
		// go-github resolves paths against the base URL, which only works with a trailing slash.
		g.APIURL = strings.TrimRight(u, "/") + "/"
	}

	// Any GitHub credential given means the app is configured by settings: then all three are needed. The API
	// URL alone is not: a GitHub Enterprise Server bot sets it and then creates its app through /setup.
	anyGiven := in[EnvGitHubAppID].explicit || in[EnvGitHubPrivateKey].explicit ||
		in[EnvGitHubWebhookSecret].explicit
	if !anyGiven {
		return
	}
	for _, env := range []string{EnvGitHubAppID, EnvGitHubPrivateKey, EnvGitHubWebhookSecret} {
		if !in[env].explicit {
			errs.add(settingFor(env), "is required for GitHub (another DAGCTL_GITHUB_* setting is set)")
		}
	}
}

func buildGitLab(c *Config, errs *errList, in inputs) {
	g := &c.GitLab
	if u, ok := httpURL(errs, settingFor(EnvGitLabURL), in[EnvGitLabURL].value); ok {
		g.URL = strings.TrimRight(u, "/")
	}
	g.Token = Secret(in[EnvGitLabToken].value)
	g.WebhookSecret = Secret(in[EnvGitLabWebhookSecret].value)
	g.CloneToken = Secret(in[EnvGitLabCloneToken].value)
	anyGiven := in[EnvGitLabURL].explicit || in[EnvGitLabToken].explicit || in[EnvGitLabWebhookSecret].explicit ||
		in[EnvGitLabCloneToken].explicit
	if !anyGiven {
		return
	}
	for _, env := range []string{EnvGitLabToken, EnvGitLabWebhookSecret} {
		if !in[env].explicit {
			errs.add(settingFor(env), "is required for GitLab (another DAGCTL_GITLAB_* setting is set)")
		}
	}
}

// httpURL checks an absolute http(s) URL. Messages show it without a password.
func httpURL(errs *errList, s setting, v string) (string, bool) {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		shown := "the value"
		if err == nil {
			shown = strconv.Quote(redactURL(v))
		}
		errs.add(s, "%s is not an http(s) URL", shown)
		return "", false
	}
	if u.User != nil {
		// Credentials belong in the Secret settings, where they cannot leak through a printed URL.
		errs.add(s, "%q must not contain credentials; use the token and secret settings", redactURL(v))
		return "", false
	}
	return v, true
}

// loadPrivateKey returns the PEM text of an RSA private key given as PEM text or as a file path. Its errors
// never contain the value: a mangled key pasted into the setting must not end up in a log.
func loadPrivateKey(v string) (string, error) {
	text := v
	if !strings.Contains(v, "-----BEGIN") {
		b, err := os.ReadFile(v)
		if err != nil {
			var pathErr *fs.PathError
			if errors.As(err, &pathErr) {
				err = pathErr.Err
			}
			return "", errors.New("is neither PEM text nor a readable file: " + err.Error())
		}
		text = string(b)
	} else if !strings.Contains(v, "\n") && strings.Contains(v, `\n`) {
		// Some deployment tools can only pass one line; accept the key with its newlines escaped.
		text = strings.ReplaceAll(v, `\n`, "\n")
	}
	block, _ := pem.Decode([]byte(text))
	if block == nil {
		return "", errors.New("does not contain a PEM block")
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		if _, err := x509.ParsePKCS1PrivateKey(block.Bytes); err != nil {
			return "", errors.New("is not a valid RSA private key (PKCS#1)")
		}
	case "PRIVATE KEY":
		key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return "", errors.New("is not a valid private key (PKCS#8)")
		}
		if _, ok := key.(*rsa.PrivateKey); !ok {
			return "", errors.New("is not an RSA key; GitHub App keys are RSA")
		}
	default:
		return "", errors.New("is a PEM " + strconv.Quote(block.Type) + " block, not an RSA private key")
	}
	return text, nil
}

// lookPath finds an executable like exec.LookPath, but on the PATH given (from getenv), and returns it
// absolute, so that later changes of directory or PATH do not change which sqlmesh runs.
func lookPath(name, pathEnv string) (string, error) {
	if name == "" {
		return "", errors.New("must not be blank")
	}
	if strings.ContainsRune(name, filepath.Separator) {
		if err := executable(name); err != nil {
			return "", err
		}
		return filepath.Abs(name)
	}
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" {
			continue // an empty PATH entry means the current directory; never pick up ./sqlmesh by accident
		}
		candidate := filepath.Join(dir, name)
		if executable(candidate) == nil {
			return filepath.Abs(candidate)
		}
	}
	return "", errors.New(strconv.Quote(name) + " not found on PATH")
}

func executable(path string) error {
	info, err := os.Stat(path)
	switch {
	case err != nil:
		return errors.New(strconv.Quote(path) + " does not exist")
	case info.IsDir():
		return errors.New(strconv.Quote(path) + " is a directory")
	case info.Mode().Perm()&0o111 == 0:
		return errors.New(strconv.Quote(path) + " is not executable")
	}
	return nil
}

// buildSignIn reads the web sign-in's OAuth clients (each id with its secret) and session keys.
func buildSignIn(c *Config, errs *errList, in inputs) {
	pair := func(idEnv, secretEnv string) (string, Secret) {
		id, secret := strings.TrimSpace(in[idEnv].value), in[secretEnv].value
		if (id == "") != (secret == "") {
			missing := secretEnv
			if id == "" {
				missing = idEnv
			}
			errs.add(settingFor(missing), "is required with %s", map[string]string{idEnv: secretEnv, secretEnv: idEnv}[missing])
			return "", ""
		}
		return id, Secret(secret)
	}
	c.GitHub.ClientID, c.GitHub.ClientSecret = pair(EnvGitHubClientID, EnvGitHubClientSecret)
	c.GitLab.OAuthAppID, c.GitLab.OAuthSecret = pair(EnvGitLabOAuthAppID, EnvGitLabOAuthSecret)
	if c.GitLab.OAuthAppID != "" && !c.GitLab.Enabled() {
		errs.add(settingFor(EnvGitLabOAuthAppID), "signs in to GitLab, which is not configured (set %s)", EnvGitLabToken)
	}
	for i, k := range strings.Split(in[EnvSessionKeys].value, ",") {
		k = strings.TrimSpace(k)
		switch {
		case k == "" && in[EnvSessionKeys].value == "":
		case len(k) < 32:
			errs.add(settingFor(EnvSessionKeys), "key %d has %d characters, fewer than 32 (openssl rand -hex 32 makes one)", i+1, len(k))
		default:
			c.SessionKeys = append(c.SessionKeys, Secret(k))
		}
	}
}
