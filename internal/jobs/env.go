package jobs

import (
	"sort"
	"strings"
)

// EnvRequest is everything BuildEnv needs to decide a job's environment.
type EnvRequest struct {
	// Bot is the bot's own environment (see EnvMap). Only the base variables and names that are both allowed
	// by the operator and requested by the repository are taken from it.
	Bot map[string]string
	// Allowed are the names the operator lets jobs have (DAGCTL_JOB_ENV, see ParseNames).
	Allowed []string
	// Literal are the repository config's literal variables (job.env). They are PR code's own values.
	Literal map[string]string
	// PassEnv are the names the repository config asks for (job.pass_env); only allowed ones pass.
	PassEnv []string
	// Required are the command's own variables (for example the planner's non-TTY settings). They win over
	// everything else.
	Required map[string]string
	// Home is the job's HOME. Empty leaves HOME out, and the executor gives the job a fresh, empty home of its
	// own (the local executor: a directory inside the job's scratch directory).
	Home string
	// Secrets are values that must never reach the job, whatever the variable is called: the job's clone
	// token and any other credential the caller holds. A variable whose value contains one is refused.
	Secrets []string
}

// Refused is a variable BuildEnv kept out of the job, with the reason, so that the caller can warn.
type Refused struct {
	Name   string
	Reason string
}

// Reasons for refusing a variable.
const (
	RefusedBotCredential = "is one of the bot's own credentials"
	RefusedBotSetting    = "is the bot's own setting (DAGCTL_*)"
	RefusedNotAllowed    = "is not allowed by the operator (DAGCTL_JOB_ENV)"
	RefusedSecretValue   = "holds a credential of the bot"
)

// defaultPath is the job's PATH when the bot has none.
const defaultPath = "/usr/local/bin:/usr/bin:/bin"

// BuildEnv returns exactly a job's environment, and the variables it refused.
//
// The job gets a minimal base (PATH from the bot, HOME from req.Home, LANG=C.UTF-8, TZ=UTC), then, from the
// bot's environment, each name in PassEnv that the operator allows, then the literal variables, then the
// command's required ones. PR code decides PassEnv and Literal, so it can copy from the bot only what the
// operator allowed. The bot's credentials never pass, even when allowed: DAGCTL_GITHUB_* and DAGCTL_GITLAB_*
// (private key, webhook secrets, tokens) from any source, any other DAGCTL_* setting from the bot's
// environment, and any variable whose value contains one of req.Secrets.
// It is long because the rules above are applied in one pass, in that order; each rule is a few lines.
func BuildEnv(req EnvRequest) (env map[string]string, refused []Refused) {
	env = map[string]string{
		"PATH": defaultPath,
		"LANG": "C.UTF-8",
		"TZ":   "UTC",
	}
	if p := req.Bot["PATH"]; p != "" {
		env["PATH"] = p
	}
	if req.Home != "" {
		env["HOME"] = req.Home
	}

	refusedNames := map[string]string{}
	refuse := func(name, reason string) {
		delete(env, name) // a refused name is not in the job, whatever an earlier source gave it
		if _, seen := refusedNames[name]; !seen {
			refusedNames[name] = reason
		}
	}
	secrets := nonEmpty(req.Secrets)
	holdsSecret := func(value string) bool {
		for _, s := range secrets {
			if strings.Contains(value, s) {
				return true
			}
		}
		return false
	}
	set := func(name, value string, fromBot bool) {
		switch {
		case isBotCredential(name):
			refuse(name, RefusedBotCredential)
		case fromBot && isBotSetting(name):
			refuse(name, RefusedBotSetting)
		case holdsSecret(value):
			refuse(name, RefusedSecretValue)
		default:
			env[name] = value
		}
	}

	allowed := map[string]bool{}
	for _, name := range req.Allowed {
		allowed[name] = true
	}
	for _, name := range req.PassEnv {
		if !allowed[name] {
			refuse(name, RefusedNotAllowed)
			continue
		}
		if value, ok := req.Bot[name]; ok {
			set(name, value, true)
		} else if isBotCredential(name) {
			refuse(name, RefusedBotCredential) // say so even when the bot does not have it right now
		}
	}
	for _, name := range sortedKeys(req.Literal) {
		set(name, req.Literal[name], false)
	}
	for _, name := range sortedKeys(req.Required) {
		set(name, req.Required[name], false)
	}

	for _, name := range sortedKeys(refusedNames) {
		refused = append(refused, Refused{Name: name, Reason: refusedNames[name]})
	}
	return env, refused
}

// isBotCredential reports whether a name is one of the bot's forge credentials, which no job may ever see.
func isBotCredential(name string) bool {
	upper := strings.ToUpper(name)
	return strings.HasPrefix(upper, "DAGCTL_GITHUB_") || strings.HasPrefix(upper, "DAGCTL_GITLAB_")
}

// isBotSetting reports whether a name is the bot's own configuration (database URL, job environment, ...).
func isBotSetting(name string) bool {
	return strings.HasPrefix(strings.ToUpper(name), "DAGCTL_")
}

// EnvMap turns an os.Environ-style slice into a map; a later entry wins, as in the process itself.
func EnvMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			continue
		}
		m[name] = value
	}
	return m
}

// EnvList turns an environment map into a sorted os/exec-style slice. It never returns nil, because a nil
// exec.Cmd.Env means "inherit the bot's environment".
func EnvList(env map[string]string) []string {
	list := make([]string, 0, len(env))
	for _, name := range sortedKeys(env) {
		list = append(list, name+"="+env[name])
	}
	return list
}

// ParseNames splits a comma-separated list of variable names (DAGCTL_JOB_ENV), dropping blanks and repeats.
func ParseNames(s string) []string {
	var names []string
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		name := strings.TrimSpace(part)
		if name == "" || seen[name] {
			continue
		}
		seen[name] = true
		names = append(names, name)
	}
	return names
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func nonEmpty(values []string) []string {
	var out []string
	for _, v := range values {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

// PassedValues are the values a job gets from the operator's allowed variables (PassEnv) and from the repository's
// literal variables, as BuildEnv gives them: what the job's output is masked of. The base (PATH, HOME, ...) and
// the command's own variables are not: they are no one's secret.
func PassedValues(req EnvRequest) []string {
	env, _ := BuildEnv(req)
	var values []string
	names := append(append([]string(nil), req.PassEnv...), sortedKeys(req.Literal)...)
	for _, name := range names {
		if _, own := req.Required[name]; own {
			continue
		}
		if v, ok := env[name]; ok {
			values = append(values, v)
		}
	}
	return values
}
