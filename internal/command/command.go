// Package command parses `/dagctl` commands from pull-request comments. Pure: text in, commands or a usage
// error out.
package command

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/dagctl/dagctl-bot/internal/plan"
)

// Prefix starts every command line.
const Prefix = "/dagctl"

// Verb is what a command asks for.
type Verb string

const (
	Plan   Verb = "plan"
	Apply  Verb = "apply"
	Unlock Verb = "unlock"
	Cancel Verb = "cancel"
	Help   Verb = "help"
)

// Command is one parsed `/dagctl` line.
type Command struct {
	Verb Verb
	// Env is the environment named, or "" for all environments the verb applies to.
	Env   string
	Flags plan.Flags
	// Accept (apply only) is a prefix of the content hash an admin accepts: files that changed since the
	// environment's last apply and that no approved plan covered, which the admin has reviewed.
	Accept string
	// SHA is the full commit `--sha` names: plan only if the PR's head is still that commit. "" when not given.
	SHA string
}

// String is the command as a user would type it, so that the bot can show the exact command to comment (a
// pinned plan after the head moved). Parse reads it back as the same command.
func (c Command) String() string {
	words := []string{Prefix, string(c.Verb)}
	if c.Env != "" {
		words = append(words, c.Env)
	}
	if c.SHA != "" {
		words = append(words, "--sha", c.SHA)
	}
	words = append(words, flagWords(c.Flags)...)
	if c.Accept != "" {
		words = append(words, "--accept", c.Accept)
	}
	return strings.Join(words, " ")
}

// FlagsString is a plan's flags as they are typed in `/dagctl plan`, or "" for none.
func FlagsString(f plan.Flags) string { return strings.Join(flagWords(f), " ") }

func flagWords(f plan.Flags) []string {
	var words []string
	if f.ForwardOnly {
		words = append(words, "--forward-only")
	}
	for _, m := range f.RestateModels {
		words = append(words, "--restate-model", m)
	}
	if f.Start != "" {
		words = append(words, "--start", f.Start)
	}
	if f.End != "" {
		words = append(words, "--end", f.End)
	}
	return words
}

// Usage is the help text the bot replies with.
const Usage = "Usage:\n" +
	"```\n" +
	"/dagctl plan [env] [--sha SHA] [--forward-only] [--restate-model MODEL]... [--start DATE] [--end DATE]\n" +
	"                         --sha: plan only if the head is still this commit (40 hex digits; required on fork PRs)\n" +
	"/dagctl apply [env]      apply the approved plan (users with write access)\n" +
	"/dagctl apply env --accept HASH   apply content no plan covered, after reviewing it (admins)\n" +
	"/dagctl unlock [env]     release an environment lock (admins)\n" +
	"/dagctl cancel           stop this PR's running jobs\n" +
	"/dagctl help             show this help\n" +
	"```"

// Error is a malformed command; its message says what is wrong and the bot replies with it and Usage.
type Error struct {
	Line string
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("`%s`: %s", e.Line, e.Msg) }

// envName matches environment names as the repo config allows them.
var envName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// dateLike accepts what sqlmesh accepts for --start/--end in practice: dates, timestamps and relative
// expressions ("1 week ago"), but never shell metacharacters or option-looking values.
var dateLike = regexp.MustCompile(`^[A-Za-z0-9:.+ _-]+$`)

// fullSHA is a whole commit SHA-1. A prefix is refused: whoever controls the PR's branch can push a commit that
// shares a short prefix with the one a maintainer reviewed.
var fullSHA = regexp.MustCompile(`^[0-9a-fA-F]{40}$`)

// modelName accepts sqlmesh model names: identifiers with dots, optionally quoted parts.
var modelName = regexp.MustCompile(`^[A-Za-z0-9_."*-]+$`)

// Parse finds every line starting with /dagctl in a comment body and parses it. A body with no command returns
// (nil, nil). Lines inside code fences or quotes are not commands.
func Parse(body string) ([]Command, error) {
	var cmds []Command
	inFence := false
	for _, raw := range strings.Split(body, "\n") {
		line := strings.TrimSpace(raw)
		if strings.HasPrefix(line, "```") || strings.HasPrefix(line, "~~~") {
			inFence = !inFence
			continue
		}
		if inFence || !strings.HasPrefix(line, Prefix) {
			continue
		}
		rest := strings.TrimPrefix(line, Prefix)
		if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
			continue // "/dagctlfoo" is not our command
		}
		cmd, err := parseLine(line, strings.Fields(rest))
		if err != nil {
			return nil, err
		}
		cmds = append(cmds, cmd)
	}
	return cmds, nil
}

func parseLine(line string, words []string) (Command, error) {
	if len(words) == 0 {
		return Command{Verb: Help}, nil
	}
	cmd := Command{Verb: Verb(words[0])}
	args := words[1:]
	switch cmd.Verb {
	case Help:
		return cmd, nil
	case Cancel:
		if len(args) > 0 {
			return cmd, &Error{line, "cancel takes no arguments"}
		}
		return cmd, nil
	case Apply:
		return parseApply(line, cmd, args)
	case Unlock:
		for _, a := range args {
			if strings.HasPrefix(a, "-") {
				return cmd, &Error{line, "unlock takes no flags"}
			}
		}
		if len(args) > 1 {
			return cmd, &Error{line, fmt.Sprintf("%s takes at most one environment", cmd.Verb)}
		}
		if len(args) == 1 {
			if !envName.MatchString(args[0]) {
				return cmd, &Error{line, fmt.Sprintf("%q is not an environment name", args[0])}
			}
			cmd.Env = args[0]
		}
		return cmd, nil
	case Plan:
		return parsePlan(line, cmd, args)
	}
	return cmd, &Error{line, fmt.Sprintf("unknown command %q", words[0])}
}

// acceptHash is a prefix of a content hash an admin accepts: long enough that nobody can prepare content to match.
var acceptHash = regexp.MustCompile(`^[0-9a-f]{12,64}$`)

// parseApply parses `/dagctl apply [env] [--accept HASH]`. Apply takes no plan flags: the approved plan's are used.
func parseApply(line string, cmd Command, args []string) (Command, error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, inline, hasInline := strings.Cut(a, "=")
		switch {
		case name == "--accept":
			v := inline
			if !hasInline {
				if i+1 >= len(args) {
					return cmd, &Error{line, "--accept needs the content hash the bot showed"}
				}
				i++
				v = args[i]
			}
			if !acceptHash.MatchString(v) {
				return cmd, &Error{line, fmt.Sprintf("%q is not a content hash (at least 12 lower-case hex digits, as the bot showed it)", v)}
			}
			cmd.Accept = v
		case strings.HasPrefix(a, "-"):
			return cmd, &Error{line, "apply takes no plan flags: the approved plan's flags are used (only --accept HASH)"}
		case cmd.Env != "":
			return cmd, &Error{line, "apply takes at most one environment"}
		case !envName.MatchString(a):
			return cmd, &Error{line, fmt.Sprintf("%q is not an environment name", a)}
		default:
			cmd.Env = a
		}
	}
	return cmd, nil
}

// parsePlan reads the plan command's flags one by one, each with its own usage error; it is long because there are many flags.
func parsePlan(line string, cmd Command, args []string) (Command, error) {
	value := func(i int, flag string) (string, error) {
		if i+1 >= len(args) || strings.HasPrefix(args[i+1], "--") {
			return "", &Error{line, flag + " needs a value"}
		}
		return args[i+1], nil
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, inline, hasInline := strings.Cut(a, "=")
		get := func() (string, error) {
			if hasInline {
				return inline, nil
			}
			v, err := value(i, name)
			i++
			return v, err
		}
		switch name {
		case "--forward-only":
			if hasInline {
				return cmd, &Error{line, "--forward-only takes no value"}
			}
			cmd.Flags.ForwardOnly = true
		case "--restate-model", "-r":
			v, err := get()
			if err != nil {
				return cmd, err
			}
			if !modelName.MatchString(v) {
				return cmd, &Error{line, fmt.Sprintf("%q is not a model name", v)}
			}
			cmd.Flags.RestateModels = append(cmd.Flags.RestateModels, v)
		case "--sha":
			v, err := get()
			if err != nil {
				return cmd, err
			}
			if cmd.SHA != "" {
				return cmd, &Error{line, "only one --sha may be given"}
			}
			if !fullSHA.MatchString(v) {
				return cmd, &Error{line, fmt.Sprintf("--sha %q is not a full 40-character commit SHA", v)}
			}
			cmd.SHA = strings.ToLower(v)
		case "--start", "--end":
			v, err := get()
			if err != nil {
				return cmd, err
			}
			if !dateLike.MatchString(v) {
				return cmd, &Error{line, fmt.Sprintf("%s %q is not a date", name, v)}
			}
			if name == "--start" {
				cmd.Flags.Start = v
			} else {
				cmd.Flags.End = v
			}
		default:
			if strings.HasPrefix(a, "-") {
				return cmd, &Error{line, fmt.Sprintf("unknown flag %q", a)}
			}
			if cmd.Env != "" {
				return cmd, &Error{line, fmt.Sprintf("only one environment may be named, got %q and %q", cmd.Env, a)}
			}
			if !envName.MatchString(a) {
				return cmd, &Error{line, fmt.Sprintf("%q is not an environment name", a)}
			}
			cmd.Env = a
		}
	}
	return cmd, nil
}
