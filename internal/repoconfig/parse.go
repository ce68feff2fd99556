package repoconfig

import (
	"path"
	"regexp"
	"strings"
	"time"
)

// Limits and defaults of the config file.
const (
	// Version is the only config version there is.
	Version = 1
	// MaxSize bounds the file; anything larger is refused before YAML parsing.
	MaxSize = 1 << 20
	// DefaultTimeout and MaxTimeout bound job.timeout.
	DefaultTimeout = time.Hour
	MaxTimeout     = 24 * time.Hour
	// maxNameLen bounds project and environment names, which end up in check-run names and schema names.
	maxNameLen = 64
)

var (
	// Environment names: letters, digits, _ and -, starting with a letter or digit (a leading "-" would read as a
	// flag in `/dagctl plan <env>`).
	environmentNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)
	// Project names may also contain dots, so that a directory name like "analytics.v2" works as a default.
	projectNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	// One segment of a login or an org/team (or GitLab group/subgroup) slug.
	principalSegmentRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	envVarNameRE       = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// Kubernetes secret names are DNS subdomains.
	secretNameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
)

// Parse reads the config file named filename (used in messages only; normally Path) from data. The Config it
// returns is complete: every default is filled in. On failure the error is a *Error listing every problem found.
func Parse(filename string, data []byte) (Config, error) {
	return ParseWithRules(filename, data, Rules{})
}

// Rules are what the server refuses on top of the file's own checks. Each refusal is a problem at the line
// that asks for it, like any other.
type Rules struct {
	// RefuseSecret says why jobs may not mount a secret named in job.secrets ("is not allowed by ..."), or ""
	// when they may.
	RefuseSecret func(name string) string
	// RefuseSetup says why a job.setup step may not run, or "" when it may (SetupAllowlist.Refuse). Nil refuses
	// every step: setup steps run only where the operator allows them.
	RefuseSetup func(step SetupStep) string
	// RefuseImageBuilder says why a dbt project's image.builder cannot build on this server ("needs the
	// Kubernetes executor"), or "" when it can. Nil allows every builder.
	RefuseImageBuilder func(b ImageBuilder) string
}

// ParseWithRules is Parse with the server's rules checked too.
func ParseWithRules(filename string, data []byte, rules Rules) (Config, error) {
	ps := &problems{file: filename}
	if len(data) > MaxSize {
		ps.add(at{}, "the file is %d bytes; the limit is %d", len(data), MaxSize)
		return Config{}, ps.err()
	}
	raw, ok := decodeRaw(ps, data)
	if !ok {
		return Config{}, ps.err()
	}
	cfg := validate(ps, raw, rules)
	if err := ps.err(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Default is the config of a repository without a .dagctl/config.yaml: one SQLMesh project at the root, a
// protected prod applied on merge after one approval, and a dev applied by comment.
func Default() Config {
	return Config{
		Version:      Version,
		Projects:     []Project{{Name: "default", Path: ".", Framework: SQLMesh}},
		Environments: []Environment{defaultEnvironment("prod"), defaultEnvironment("dev")},
		Job:          Job{Timeout: DefaultTimeout, Env: map[string]string{}},
	}
}

// isProd says whether an environment is protected by default. sqlmesh's production environment is "prod".
func isProd(name string) bool { return strings.EqualFold(name, "prod") }

func defaultEnvironment(name string) Environment {
	e := Environment{Name: name, PlanOnPR: true, ApplyOn: []ApplyTrigger{ApplyOnComment}}
	if isProd(name) {
		e.Protected, e.RequiredApprovals, e.ApplyOn = true, 1, []ApplyTrigger{ApplyOnMerge}
	}
	return e
}

func validate(ps *problems, raw rawConfig, rules Rules) Config {
	cfg := Default()
	switch {
	case raw.Version.Bad:
	case !raw.Version.Set:
		ps.add(raw.At.child("version"), "is required; add `version: %d`", Version)
	case raw.Version.V != Version:
		ps.add(raw.Version.At, "%d is not supported; the only version is %d", raw.Version.V, Version)
	}
	if raw.Projects.Set {
		cfg.Projects = validateProjects(ps, raw.Projects)
	}
	if raw.Environments.Set {
		cfg.Environments = validateEnvironments(ps, raw.Environments)
	}
	if raw.Projects.Set {
		checkDBTTargets(ps, raw.Projects.V, cfg.Environments)
		refuseImageBuilders(ps, raw.Projects.V, rules)
	}
	if raw.Job.Set {
		cfg.Job = validateJob(ps, raw.Job.V, rules)
	}
	if raw.PlanDrafts.Set {
		cfg.PlanDrafts = raw.PlanDrafts.V
	}
	if v := raw.PREnvironment; v.Set {
		validatePREnvironment(ps, v)
		cfg.PREnvironment = v.V
	}
	if raw.DeployBranch.Set {
		cfg.DeployBranches = validateBranches(ps, raw.DeployBranch)
	}
	return cfg
}

func validateProjects(ps *problems, raw value[[]rawProject]) []Project {
	if len(raw.V) == 0 {
		ps.add(raw.At, "must list at least one project (or leave projects out for one SQLMesh project at the root)")
		return nil
	}
	var out []Project
	seen := map[string]int{}
	for _, rp := range raw.V {
		p := Project{Path: ".", Framework: SQLMesh}
		pathOK := true
		if rp.Path.Set {
			p.Path, pathOK = cleanRepoPath(ps, rp.Path)
		}
		if rp.Framework.Set {
			switch f := Framework(rp.Framework.V); f {
			case SQLMesh, DBT:
				p.Framework = f
			default:
				ps.add(rp.Framework.At, "%s is not one of %s, %s", quote(rp.Framework.V), SQLMesh, DBT)
			}
		}
		if p.Framework == DBT {
			p.DBT = validateDBT(ps, rp.DBT, p.Path)
		} else if !rp.Framework.Bad {
			for _, a := range rp.DBT.set() {
				ps.add(a, "is only for projects with framework: %s", DBT)
			}
		}
		if rp.Gateway.Set {
			p.Gateway = rp.Gateway.V
			if strings.TrimSpace(p.Gateway) != p.Gateway || p.Gateway == "" {
				ps.add(rp.Gateway.At, "%s must not be blank or have surrounding spaces", quote(p.Gateway))
			}
		}
		nameAt := rp.Name.At
		switch {
		case rp.Name.Set:
			p.Name = rp.Name.V
			if !validName(projectNameRE, p.Name) {
				ps.add(rp.Name.At, "%s is not a valid project name (letters, digits, \".\", \"_\" and \"-\", starting with a letter or digit, at most %d)", quote(p.Name), maxNameLen)
				continue
			}
		case rp.Name.Bad || !pathOK:
			continue
		default:
			p.Name = defaultProjectName(p.Path)
			nameAt = rp.At.child("name")
			if !validName(projectNameRE, p.Name) {
				ps.add(nameAt, "cannot be derived from path %s; set a name", quote(p.Path))
				continue
			}
		}
		key := strings.ToLower(p.Name)
		if first, dup := seen[key]; dup {
			ps.add(nameAt, "duplicate project name %s (first on line %d)", quote(p.Name), first)
			continue
		}
		seen[key] = rp.At.Line
		out = append(out, p)
	}
	return out
}

func validName(re *regexp.Regexp, s string) bool {
	return len(s) <= maxNameLen && re.MatchString(s)
}

func defaultProjectName(p string) string {
	if p == "." {
		return "default"
	}
	return path.Base(p)
}

// cleanRepoPath checks that a project path stays inside the repository and returns it cleaned.
func cleanRepoPath(ps *problems, v value[string]) (string, bool) {
	p := v.V
	switch {
	case strings.TrimSpace(p) == "":
		ps.add(v.At, "must not be blank; use \".\" for the repository root")
	case strings.ContainsRune(p, '\\'):
		ps.add(v.At, "%s must use forward slashes", quote(p))
	case strings.ContainsRune(p, 0):
		ps.add(v.At, "must not contain NUL characters")
	case path.IsAbs(p) || (len(p) >= 2 && p[1] == ':'):
		ps.add(v.At, "%s must be relative to the repository root", quote(p))
	default:
		c := path.Clean(p)
		if c == ".." || strings.HasPrefix(c, "../") {
			ps.add(v.At, "%s leaves the repository", quote(p))
			return "", false
		}
		return c, true
	}
	return "", false
}

func validateEnvironments(ps *problems, raw value[[]rawEnvironment]) []Environment {
	if len(raw.V) == 0 {
		ps.add(raw.At, "must list at least one environment (or leave environments out for prod and dev)")
		return nil
	}
	var out []Environment
	seen := map[string]int{}
	for _, re := range raw.V {
		if !re.Name.Set {
			if !re.Name.Bad {
				ps.add(re.At.child("name"), "is required")
			}
			continue
		}
		name := re.Name.V
		if !validName(environmentNameRE, name) {
			ps.add(re.Name.At, "%s is not a valid environment name (letters, digits, \"_\" and \"-\", starting with a letter or digit, at most %d)", quote(name), maxNameLen)
			continue
		}
		// sqlmesh treats environment names case-insensitively, so Dev and dev would be the same environment.
		if first, dup := seen[strings.ToLower(name)]; dup {
			ps.add(re.Name.At, "duplicate environment name %s (first on line %d)", quote(name), first)
			continue
		}
		seen[strings.ToLower(name)] = re.Name.At.Line
		out = append(out, validateEnvironment(ps, re))
	}
	return out
}

func validateEnvironment(ps *problems, re rawEnvironment) Environment {
	e := Environment{Name: re.Name.V, Protected: isProd(re.Name.V), PlanOnPR: true}
	if re.Protected.Set {
		e.Protected = re.Protected.V
	}
	// Defaults follow protection, whether it was written or defaulted.
	e.RequiredApprovals, e.ApplyOn = 0, []ApplyTrigger{ApplyOnComment}
	if e.Protected {
		e.RequiredApprovals, e.ApplyOn = 1, []ApplyTrigger{ApplyOnMerge}
	}
	if v := re.RequiredApprovals; v.Set {
		switch {
		case v.V < 0:
			ps.add(v.At, "must be 0 or more, not %d", v.V)
		case v.V == 0 && e.Protected:
			ps.add(v.At, "must be at least 1 for a protected environment (set protected: false to apply without approval)")
		default:
			e.RequiredApprovals = v.V
		}
	}
	e.Approvers = principals(ps, re.Approvers)
	e.Appliers = principals(ps, re.Appliers)
	if re.PlanOnPR.Set {
		e.PlanOnPR = re.PlanOnPR.V
	}
	if v := re.ApplyOn; v.Set {
		// An empty list is allowed: the environment is planned but never applied by the bot.
		e.ApplyOn = []ApplyTrigger{}
		for _, t := range v.V {
			switch trig := ApplyTrigger(t.V); trig {
			case ApplyOnComment, ApplyOnMerge:
				if !e.AppliesOn(trig) {
					e.ApplyOn = append(e.ApplyOn, trig)
				}
			default:
				ps.add(t.At, "%s is not one of %s, %s", quote(t.V), ApplyOnComment, ApplyOnMerge)
			}
		}
	}
	return e
}

// principals validates approvers or appliers: user logins or org/team slugs, with an optional leading "@".
func principals(ps *problems, v value[[]value[string]]) []string {
	if !v.Set {
		return nil
	}
	out := []string{}
	seen := map[string]bool{}
	for _, s := range v.V {
		p := strings.TrimPrefix(s.V, "@")
		valid := p != "" && len(p) <= 255
		for _, seg := range strings.Split(p, "/") {
			valid = valid && principalSegmentRE.MatchString(seg)
		}
		if !valid {
			ps.add(s.At, "%s is not a user login or an org/team slug", quote(s.V))
			continue
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// validateJob checks every key of the job section, each with its own problem text; it is long because the section has many keys.
func validateJob(ps *problems, raw rawJob, rules Rules) Job {
	j := Job{Timeout: DefaultTimeout, Env: map[string]string{}}
	if v := raw.Image; v.Set {
		if v.V == "" || strings.ContainsAny(v.V, " \t\r\n") {
			ps.add(v.At, "%s is not a container image reference", quote(v.V))
		}
		j.Image = v.V
	}
	if v := raw.Timeout; v.Set {
		d, err := time.ParseDuration(v.V)
		switch {
		case err != nil:
			ps.add(v.At, "%s is not a duration like 30m or 1h30m", quote(v.V))
		case d <= 0:
			ps.add(v.At, "must be longer than 0")
		case d > MaxTimeout:
			ps.add(v.At, "%s is longer than the maximum of %s", v.V, formatDuration(MaxTimeout))
		default:
			j.Timeout = d
		}
	}
	if raw.Env.Set {
		for _, ev := range raw.Env.V {
			if envVarName(ps, ev.Name) {
				if strings.ContainsRune(ev.Value.V, 0) {
					ps.add(ev.Value.At, "must not contain NUL characters")
					continue
				}
				j.Env[ev.Name.V] = ev.Value.V
			}
		}
	}
	if v := raw.PassEnv; v.Set {
		j.PassEnv = []string{}
		seen := map[string]bool{}
		for _, n := range v.V {
			if !envVarName(ps, n) {
				continue
			}
			if _, literal := j.Env[n.V]; literal {
				ps.add(n.At, "%s is also set in job.env; use one or the other", n.V)
				continue
			}
			if !seen[n.V] {
				seen[n.V] = true
				j.PassEnv = append(j.PassEnv, n.V)
			}
		}
	}
	if v := raw.Secrets; v.Set {
		j.Secrets = []string{}
		seen := map[string]bool{}
		for _, s := range v.V {
			if len(s.V) > 253 || !secretNameRE.MatchString(s.V) {
				ps.add(s.At, "%s is not a Kubernetes secret name (lower-case letters, digits, \"-\" and \".\")", quote(s.V))
				continue
			}
			if refuse := rules.RefuseSecret; refuse != nil {
				if why := refuse(s.V); why != "" {
					ps.add(s.At, "%s %s", quote(s.V), why)
					continue
				}
			}
			if !seen[s.V] {
				seen[s.V] = true
				j.Secrets = append(j.Secrets, s.V)
			}
		}
	}
	if v := raw.Setup; v.Set {
		j.Setup = validateSetup(ps, v, rules)
	}
	return j
}

// reservedEnvPrefix is the bot's own namespace: a repository must not set or receive the bot's settings.
const reservedEnvPrefix = "DAGCTL_"

func envVarName(ps *problems, v value[string]) bool {
	switch {
	case !envVarNameRE.MatchString(v.V):
		ps.add(v.At, "%s is not a valid variable name (letters, digits and \"_\", not starting with a digit)", quote(v.V))
	case strings.HasPrefix(strings.ToUpper(v.V), reservedEnvPrefix):
		ps.add(v.At, "%s is reserved: %s* variables belong to the bot", v.V, reservedEnvPrefix)
	default:
		return true
	}
	return false
}

// PRNumberPlaceholder is replaced by the pull request's number in pr_environment.
const PRNumberPlaceholder = "{number}"

func validatePREnvironment(ps *problems, v value[string]) {
	if !strings.Contains(v.V, PRNumberPlaceholder) {
		ps.add(v.At, "%s must contain %s, e.g. pr_%s", quote(v.V), PRNumberPlaceholder, PRNumberPlaceholder)
		return
	}
	example := strings.ReplaceAll(v.V, PRNumberPlaceholder, "1")
	if strings.ContainsAny(example, "{}") {
		ps.add(v.At, "%s has a placeholder other than %s", quote(v.V), PRNumberPlaceholder)
		return
	}
	if !validName(environmentNameRE, strings.ReplaceAll(v.V, PRNumberPlaceholder, "1234567")) {
		ps.add(v.At, "%s does not make a valid environment name (letters, digits, \"_\" and \"-\", starting with a letter or digit)", quote(v.V))
	}
}

// formatDuration drops the zero minutes and seconds time.Duration.String prints ("24h" not "24h0m0s").
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// validateBranches checks deploy_branches: plain branch names, each once.
func validateBranches(ps *problems, raw value[[]value[string]]) []string {
	out := []string{}
	seen := map[string]bool{}
	for _, b := range raw.V {
		name := strings.TrimPrefix(b.V, "refs/heads/")
		switch {
		case name == "" || strings.TrimSpace(name) != name || strings.ContainsAny(name, " ~^:?*[\\") || strings.Contains(name, ".."):
			ps.add(b.At, "%s is not a branch name", quote(b.V))
		case seen[name]:
			ps.add(b.At, "%s is listed twice", quote(b.V))
		default:
			seen[name] = true
			out = append(out, name)
		}
	}
	return out
}
