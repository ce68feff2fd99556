package serverconfig

import (
	"fmt"
	"log/slog"
	"net/url"
	"strings"
)

// LogValue implements slog.LogValuer: every setting, with secrets shown as "[redacted]" (or empty when unset).
// URLs cannot hold credentials (Load refuses them); user information is still masked in case a Config was built
// by hand.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(c.attrs()...)
}

// String renders the settings as "key=value" pairs, redacted like LogValue.
func (c Config) String() string {
	var parts []string
	var walk func(prefix string, attrs []slog.Attr)
	walk = func(prefix string, attrs []slog.Attr) {
		for _, a := range attrs {
			v := a.Value.Resolve()
			if v.Kind() == slog.KindGroup {
				walk(prefix+a.Key+".", v.Group())
				continue
			}
			parts = append(parts, fmt.Sprintf("%s%s=%q", prefix, a.Key, v.String()))
		}
	}
	walk("", c.attrs())
	return strings.Join(parts, " ")
}

// GoString implements fmt.GoStringer, so that %#v is redacted too.
func (c Config) GoString() string { return "serverconfig.Config{" + c.String() + "}" }

// Format implements fmt.Formatter: every verb prints String (GoString for %#v), so no verb prints a field raw.
func (c Config) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprint(f, c.GoString())
		return
	}
	fmt.Fprint(f, c.String())
}

func (c Config) attrs() []slog.Attr {
	return []slog.Attr{
		slog.String("listen", c.Listen),
		slog.String("db", c.DB),
		slog.Int64("run_log_max_bytes", c.RunLogMaxBytes),
		slog.Duration("delivery_retry_for", c.RetryFor),
		slog.Duration("command_expiry", c.CommandExpiry),
		slog.Duration("recover_interval", c.RecoverInterval),
		slog.Group("retain",
			slog.Duration("delivery_bodies", c.Retention.DeliveryBodies),
			slog.Duration("deliveries", c.Retention.Deliveries),
			slog.Duration("run_logs", c.Retention.RunLogs),
		),
		slog.String("executor", string(c.Executor)),
		slog.String("public_url", redactURL(c.PublicURL)),
		slog.Group("github",
			slog.Int64("app_id", c.GitHub.AppID),
			slog.Any("private_key", c.GitHub.PrivateKey),
			slog.Any("webhook_secret", c.GitHub.WebhookSecret),
			slog.String("api_url", redactURL(c.GitHub.APIURL)),
		),
		slog.Group("gitlab",
			slog.String("url", redactURL(c.GitLab.URL)),
			slog.Any("token", c.GitLab.Token),
			slog.Any("webhook_secret", c.GitLab.WebhookSecret),
			slog.Any("clone_token", c.GitLab.CloneToken),
		),
		slog.String("repo_allowlist", c.RepoAllowlist.String()),
		slog.Any("metrics_token", c.MetricsToken),
		slog.String("sqlmesh", c.SQLMesh),
		slog.String("workdir", c.WorkDir),
		slog.String("job_env", strings.Join(c.JobEnv, ",")),
		slog.String("job_setup", c.JobSetup.String()),
		slog.String("job_uids", c.JobUsers.String()),
		slog.Group("kubernetes",
			slog.String("namespace", c.Kubernetes.Namespace),
			slog.String("image", c.Kubernetes.Image),
			slog.String("job_secrets", strings.Join(c.Kubernetes.JobSecrets, ",")),
			slog.String("job_secrets_selector", c.Kubernetes.JobSecretsSelector),
			slog.String("bot_secrets", strings.Join(c.Kubernetes.BotSecrets, ",")),
		),
		slog.String("log_level", c.LogLevel.String()),
	}
}

// String is the DAGCTL_JOB_UIDS value (with the group, if any).
func (u JobUsers) String() string {
	s := string(u.Mode)
	if u.Mode == JobUsersRange {
		s = fmt.Sprintf("%d-%d", u.First, u.Last)
	}
	if s == "" {
		s = string(JobUsersAuto)
	}
	if u.Group != 0 {
		s += fmt.Sprintf(" group %d", u.Group)
	}
	return s
}

// redactURL hides the user information of a URL with credentials in it (a DSN, https://TOKEN@host); anything
// else is returned as it is.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	u.User = url.User("xxxxx")
	return u.String()
}
