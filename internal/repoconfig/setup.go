package repoconfig

import (
	"fmt"
	"regexp"
	"strings"
)

// MaxSetupSteps bounds job.setup.
const MaxSetupSteps = 20

// SetupStep is one command a job runs in the project's directory before the framework's command (job.setup),
// as Atlantis's workflows run steps: `pip install -r requirements.txt`, `dbt deps`. It comes from the trusted
// config only (Merge), and only when the operator allows it (SetupAllowlist, DAGCTL_JOB_SETUP).
type SetupStep struct {
	// Argv is run without a shell: an argv item, or a command line of plain words.
	Argv []string
	// Shell is a command line with shell syntax (quotes, pipes, &&, $VAR, ...), run with `sh -c`; "" otherwise.
	Shell string
}

// Command is the argv that runs the step.
func (s SetupStep) Command() []string {
	if s.Shell != "" {
		return []string{"sh", "-c", s.Shell}
	}
	return s.Argv
}

// String is the step as the log shows it.
func (s SetupStep) String() string {
	if s.Shell != "" {
		return s.Shell
	}
	return strings.Join(s.Argv, " ")
}

// plainWord is a word a shell would pass on unchanged: a command line of such words is its own argv.
var plainWord = regexp.MustCompile(`^[A-Za-z0-9_./=:@%+,-]+$`)

// commandLine reads a command line: plain words are an argv, anything else is shell syntax.
func commandLine(line string) SetupStep {
	words := strings.Fields(line)
	for _, w := range words {
		if !plainWord.MatchString(w) {
			return SetupStep{Shell: line}
		}
	}
	return SetupStep{Argv: words}
}

// SetupAllowlist is the operator's permission for setup steps (DAGCTL_JOB_SETUP): none (the default), any, or
// the steps whose words start with one of the prefixes.
type SetupAllowlist struct {
	Any      bool
	Prefixes [][]string
}

// ParseSetupAllowlist reads DAGCTL_JOB_SETUP: "" (no setup steps), "any", or comma-separated command prefixes
// of plain words ("pip install -r requirements.txt,dbt deps").
func ParseSetupAllowlist(s string) (SetupAllowlist, error) {
	s = strings.TrimSpace(s)
	if s == "any" {
		return SetupAllowlist{Any: true}, nil
	}
	var a SetupAllowlist
	for _, item := range strings.Split(s, ",") {
		if strings.TrimSpace(item) == "" {
			continue
		}
		step := commandLine(item)
		if step.Shell != "" {
			return SetupAllowlist{}, fmt.Errorf("%q is not a command prefix of plain words (no quotes, pipes or variables)", strings.TrimSpace(item))
		}
		a.Prefixes = append(a.Prefixes, step.Argv)
	}
	return a, nil
}

// String is the allowlist as DAGCTL_JOB_SETUP writes it.
func (a SetupAllowlist) String() string {
	if a.Any {
		return "any"
	}
	var items []string
	for _, p := range a.Prefixes {
		items = append(items, strings.Join(p, " "))
	}
	return strings.Join(items, ",")
}

// Refuse says why a step may not run ("is not allowed ..."), or "" when it may. A shell command line can chain
// anything after an allowed prefix, so only "any" allows one.
func (a SetupAllowlist) Refuse(step SetupStep) string {
	switch {
	case a.Any:
		return ""
	case len(a.Prefixes) == 0:
		return "is not allowed: this bot runs no setup steps (its operator allows them with DAGCTL_JOB_SETUP)"
	case step.Shell != "":
		return "uses shell syntax, which only DAGCTL_JOB_SETUP=any allows; write it as plain words or a list of words"
	}
	for _, p := range a.Prefixes {
		if hasPrefix(step.Argv, p) {
			return ""
		}
	}
	var allowed []string
	for _, p := range a.Prefixes {
		allowed = append(allowed, "`"+strings.Join(p, " ")+"`")
	}
	return "is not allowed: DAGCTL_JOB_SETUP allows only commands starting with " + strings.Join(allowed, ", ")
}

func hasPrefix(argv, prefix []string) bool {
	if len(argv) < len(prefix) {
		return false
	}
	for i, w := range prefix {
		if argv[i] != w {
			return false
		}
	}
	return true
}

func validateSetup(ps *problems, raw value[[]rawSetupStep], rules Rules) []SetupStep {
	refuse := rules.RefuseSetup
	if refuse == nil {
		refuse = SetupAllowlist{}.Refuse // the default: none
	}
	if len(raw.V) > MaxSetupSteps {
		ps.add(raw.At, "has %d steps; the limit is %d", len(raw.V), MaxSetupSteps)
		return nil
	}
	out := []SetupStep{}
	for _, r := range raw.V {
		var step SetupStep
		if r.Argv.Set {
			for _, w := range r.Argv.V {
				step.Argv = append(step.Argv, w.V)
			}
		} else {
			step = commandLine(r.Line.V)
		}
		switch {
		case len(step.Argv) == 0 && strings.TrimSpace(step.Shell) == "":
			ps.add(r.At, "must name a command")
			continue
		case strings.ContainsRune(step.String(), 0):
			ps.add(r.At, "must not contain NUL characters")
			continue
		}
		if why := refuse(step); why != "" {
			ps.add(r.At, "%s %s", quote(step.String()), why)
			continue
		}
		out = append(out, step)
	}
	return out
}
