// Package serverconfig holds the settings of `dagctl-bot serve`. Each setting has an environment variable and a
// flag: the environment variable replaces the built-in default, and a flag given on the command line wins over
// both. Settings that are credentials are held as Secret, and Config logs and prints without them.
package serverconfig

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/dagctl/dagctl-bot/internal/allowlist"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
)

// Executor names where jobs run.
type Executor string

// DefaultRecoverInterval is how often the bot recovers missed deliveries by default: a deploy's downtime is
// recovered within minutes of the start anyway (recovery runs at start too).
const DefaultRecoverInterval = 5 * time.Minute

const (
	// ExecutorLocal runs jobs as processes on the bot's machine (the embedded default).
	ExecutorLocal Executor = "local"
	// ExecutorKubernetes runs jobs as Kubernetes Jobs.
	ExecutorKubernetes Executor = "kubernetes"
)

// Config is the validated server configuration. Each field names its environment variable and flag.
type Config struct {
	// Listen is the HTTP listen address (webhooks, health). DAGCTL_LISTEN, -listen; default ":8080".
	Listen string
	// DB is the SQLite database file. Its directory is the bot's alone when jobs run as users of their own (see
	// JobUsers). DAGCTL_DB, -db; default "./dagctl-data/dagctl.db".
	DB string
	// RunLogMaxBytes caps each run's stored log (db.WithRunLogMaxBytes).
	RunLogMaxBytes int64
	// RetryFor is how long failing deliveries and outbox writes are retried after their first failure
	// (retry.Policy.For).
	RetryFor time.Duration
	// CommandExpiry is how late after the forge received a comment its command may still run.
	CommandExpiry time.Duration
	// RecoverInterval is how often the bot recovers what it missed (redeliveries, open PRs without a plan), on
	// top of once at start; 0: only at start. DAGCTL_RECOVER_INTERVAL, -recover-interval; default 5m.
	RecoverInterval time.Duration
	// MetricsToken, when set, is the bearer token GET /metrics requires. DAGCTL_METRICS_TOKEN, -metrics-token;
	// default unset (the metrics carry no secret and no repository name).
	MetricsToken Secret
	// Retention is how long handled deliveries' bodies and finished runs' logs are kept (0: forever).
	// DAGCTL_RETAIN_DELIVERY_BODIES, -retain-delivery-bodies; default 168h. DAGCTL_RETAIN_RUN_LOGS,
	// -retain-run-logs; default 2160h (90 days).
	Retention Retention
	// Executor runs jobs: "local" or "kubernetes". DAGCTL_EXECUTOR, -executor; default "local".
	Executor Executor
	// PublicURL is the bot's externally reachable base URL, used in links from check runs and comments; no
	// trailing slash. DAGCTL_PUBLIC_URL, -public-url; default unset (no links).
	PublicURL string
	GitHub    GitHub
	GitLab    GitLab
	// RepoAllowlist is which repositories the bot serves, on either forge (allowlist.Parse); events of others are
	// acknowledged and ignored. DAGCTL_REPO_ALLOWLIST, -repo-allowlist; default empty: every repository.
	RepoAllowlist allowlist.Repos
	// SQLMesh is the sqlmesh executable. With the local executor it is resolved on PATH at start to an absolute
	// path (and it is an error if it is missing); with the kubernetes executor it is the name inside the job's
	// image, used as given. DAGCTL_SQLMESH, -sqlmesh; default "sqlmesh" (`make run` sets .venv/bin/sqlmesh).
	SQLMesh string
	// WorkDir is the scratch directory for checkouts, absolute. DAGCTL_WORKDIR, -workdir; default
	// os.TempDir()/dagctl.
	WorkDir string
	// JobEnv names the variables of the bot's own environment that jobs may receive (through a repository's
	// job.pass_env). Nothing else of the bot's environment reaches a job. DAGCTL_* names are refused.
	// DAGCTL_JOB_ENV, -job-env (comma-separated); default none.
	JobEnv []string
	// JobSetup is which job.setup steps jobs may run (repoconfig.Rules.RefuseSetup). DAGCTL_JOB_SETUP, -job-setup:
	// "any" or comma-separated command prefixes; default none.
	JobSetup repoconfig.SetupAllowlist
	// JobUsers are the users the local executor runs jobs as. DAGCTL_JOB_UIDS, -job-uids; default auto.
	// DAGCTL_JOB_GROUP, -job-group; default none.
	JobUsers   JobUsers
	Kubernetes Kubernetes
	// Builds are the Kubernetes Jobs of `builder: dockerfile` image builds.
	Builds Builds
	// SessionKeys seal the web pages' session cookies: the first seals, all open (rotation); empty, a random key
	// kept in the store. DAGCTL_SESSION_KEYS, -session-keys (comma-separated, each at least 32 characters).
	SessionKeys []Secret
	// LogLevel is debug, info, warn or error (slog syntax, so "debug-4" works too). DAGCTL_LOG_LEVEL,
	// -log-level; default info.
	LogLevel slog.Level
}

// GitHub is the GitHub App the bot acts as. It is enabled when AppID is set; the private key and the webhook
// secret are then required.
type GitHub struct {
	// AppID is the GitHub App's id. DAGCTL_GITHUB_APP_ID, -github-app-id.
	AppID int64
	// PrivateKey is the App's private key, PEM-encoded RSA (PKCS#1 as GitHub issues it, or PKCS#8). The setting
	// takes PEM text (literal "\n" escapes are accepted) or the path of a PEM file.
	// DAGCTL_GITHUB_PRIVATE_KEY, -github-private-key.
	PrivateKey Secret
	// WebhookSecret verifies webhook signatures. DAGCTL_GITHUB_WEBHOOK_SECRET, -github-webhook-secret.
	WebhookSecret Secret
	// APIURL is the REST API base, always with a trailing slash; for GitHub Enterprise Server
	// "https://HOST/api/v3/". DAGCTL_GITHUB_API_URL, -github-api-url; default "https://api.github.com/".
	APIURL string
	// ClientID and ClientSecret are the App's OAuth client, for signing in to the web pages; unset, the ones the
	// manifest flow stored are used. DAGCTL_GITHUB_CLIENT_ID, -github-client-id; DAGCTL_GITHUB_CLIENT_SECRET,
	// -github-client-secret.
	ClientID     string
	ClientSecret Secret
}

// Enabled reports whether the bot serves GitHub.
func (g GitHub) Enabled() bool { return g.AppID != 0 }

// GitLab is the GitLab instance the bot serves. It is enabled when Token is set; the webhook secret is then
// required.
type GitLab struct {
	// URL is the instance's base URL, without a trailing slash. DAGCTL_GITLAB_URL, -gitlab-url; default
	// "https://gitlab.com".
	URL string
	// Token is the bot user's access token (api scope). DAGCTL_GITLAB_TOKEN, -gitlab-token.
	Token Secret
	// CloneToken is what jobs clone with (read_repository scope), so that the api token never reaches PR code.
	// Optional: without it jobs clone with Token, and the server warns. DAGCTL_GITLAB_CLONE_TOKEN,
	// -gitlab-clone-token.
	CloneToken Secret
	// WebhookSecret is the secret token GitLab sends with webhooks. DAGCTL_GITLAB_WEBHOOK_SECRET,
	// -gitlab-webhook-secret.
	WebhookSecret Secret
	// OAuthAppID and OAuthSecret are a GitLab OAuth application (scope read_user), for signing in to the web
	// pages. DAGCTL_GITLAB_OAUTH_APP_ID, -gitlab-oauth-app-id; DAGCTL_GITLAB_OAUTH_SECRET, -gitlab-oauth-secret.
	OAuthAppID  string
	OAuthSecret Secret
}

// Enabled reports whether the bot serves GitLab.
func (g GitLab) Enabled() bool { return g.Token.IsSet() }

// JobUsersMode says whether local jobs run as users of their own.
type JobUsersMode string

const (
	// JobUsersAuto runs jobs as uids of the default range when the bot can (root), else as the bot's user,
	// with a warning. The zero value means the same.
	JobUsersAuto JobUsersMode = "auto"
	// JobUsersOff runs jobs as the bot's user, with a warning.
	JobUsersOff JobUsersMode = "off"
	// JobUsersRange runs jobs as uids of First-Last; a bot that cannot refuses to start.
	JobUsersRange JobUsersMode = "range"
)

// JobUsers are the users the local executor runs jobs as: each running job gets a uid of the range (and a
// group of the same number) that no other running job has, so that PR code can read neither the bot's
// database nor another job's environment.
type JobUsers struct {
	// Mode: DAGCTL_JOB_UIDS=auto, off, or a range FIRST-LAST such as 20000-20999.
	Mode        JobUsersMode
	First, Last uint32
	// Group is a group id every job also belongs to, for files that jobs share on purpose (0: none).
	// DAGCTL_JOB_GROUP, -job-group.
	Group uint32
}

// Kubernetes configures the kubernetes executor.
type Kubernetes struct {
	// Namespace is where job pods run and where repositories' job.secrets are looked up. DAGCTL_K8S_NAMESPACE,
	// -k8s-namespace; default "default".
	Namespace string
	// Image is the default runtime image for jobs, used when a repository sets no job.image; required with the
	// kubernetes executor. DAGCTL_K8S_IMAGE, -k8s-image.
	Image string
	// JobSecrets are the Secrets of Namespace that repositories may name in job.secrets.
	// DAGCTL_K8S_JOB_SECRETS, -k8s-job-secrets (comma-separated); default none.
	JobSecrets []string
	// JobSecretsSelector allows the Secrets whose labels match it too; the bot reads such a Secret to check it
	// (RBAC: get on secrets) and masks its values in the job's log. DAGCTL_K8S_JOB_SECRETS_SELECTOR,
	// -k8s-job-secrets-selector; default none.
	JobSecretsSelector string
	// BotSecrets are the bot's own Secrets in Namespace (its app credentials, its token key), which jobs never
	// get, even when allowed; a name in both lists is an error. DAGCTL_K8S_BOT_SECRETS, -k8s-bot-secrets
	// (comma-separated; the chart sets it).
	BotSecrets []string
}

// Builds configures the dbt deploy images that `builder: dockerfile` builds: a rootless BuildKit Job each
// (internal/image/kubebuild), on the Kubernetes executor only. Without GitImage and PushSecret such a project
// is a config error at its line.
type Builds struct {
	// Namespace holds the build Jobs, their pods and the push Secret; a namespace of their own keeps the push
	// credentials away from every plan job. DAGCTL_BUILD_NAMESPACE, -build-namespace; default the jobs'
	// namespace (Kubernetes.Namespace).
	Namespace string
	// BuildKitImage is the rootless BuildKit image; pin it by digest. DAGCTL_BUILDKIT_IMAGE, -buildkit-image;
	// default image.DefaultBuildKitImage.
	BuildKitImage string
	// GitImage is the image (with sh and git) of the build's checkout. DAGCTL_BUILD_GIT_IMAGE, -build-git-image.
	GitImage string
	// PushSecret is the kubernetes.io/dockerconfigjson Secret of Namespace the build pushes with; it must not
	// be one that jobs may mount. DAGCTL_BUILD_PUSH_SECRET, -build-push-secret.
	PushSecret string
	// Timeout bounds a build (the Job's activeDeadlineSeconds). DAGCTL_BUILD_TIMEOUT, -build-timeout; default 30m.
	Timeout time.Duration
}

// Enabled reports whether Dockerfile builds are configured.
func (b Builds) Enabled() bool { return b.GitImage != "" && b.PushSecret != "" }

// Load reads the settings from args (the arguments after the subcommand) and getenv (os.Getenv, or a fake in
// tests). It reports every invalid setting at once. With -help it prints the settings to os.Stderr and
// returns flag.ErrHelp.
func Load(args []string, getenv func(string) string) (Config, error) {
	return LoadWithOutput(args, getenv, os.Stderr)
}

// LoadWithOutput is Load printing -help and flag errors to out.
func LoadWithOutput(args []string, getenv func(string) string, out io.Writer) (Config, error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() { Usage(fs.Output()) }
	for _, s := range settings() {
		// The flag's own default stays empty: an unset flag falls back to the environment, then the default.
		fs.String(s.flag, "", s.usage)
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("serve takes no arguments, got %q", fs.Args())
	}
	fromFlags := map[string]string{}
	fs.Visit(func(f *flag.Flag) { fromFlags[f.Name] = f.Value.String() })

	in := inputs{}
	for _, s := range settings() {
		v, explicit := fromFlags[s.flag]
		if !explicit {
			v = getenv(s.env)
			explicit = v != ""
		}
		if !explicit {
			v = s.def
		}
		in[s.env] = input{value: v, explicit: explicit}
	}
	return build(in, getenv)
}

// Usage prints every setting: flag, environment variable, default and meaning.
func Usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: dagctl-bot serve [flags]\n\n")
	fmt.Fprintf(w, "Every flag has an environment variable; the variable replaces the default and the flag wins.\n\n")
	for _, s := range settings() {
		def := ""
		if s.def != "" {
			def = fmt.Sprintf(" (default %q)", s.def)
		}
		if s.secret {
			def = " (secret: prefer the environment variable, flags show in the process list)"
		}
		fmt.Fprintf(w, "  -%s  %s%s\n", s.flag, s.env, def)
		for _, line := range strings.Split(s.usage, "\n") {
			fmt.Fprintf(w, "    \t%s\n", line)
		}
	}
}

// errList collects invalid settings, each named by its environment variable and flag.
type errList []error

func (e *errList) add(s setting, format string, args ...any) {
	*e = append(*e, fmt.Errorf("%s (-%s): %s", s.env, s.flag, fmt.Sprintf(format, args...)))
}

func (e errList) err() error { return errors.Join(e...) }

// Retention is how long the store keeps what grows with use (db.Retention).
type Retention struct {
	DeliveryBodies time.Duration
	Deliveries     time.Duration
	RunLogs        time.Duration
}
