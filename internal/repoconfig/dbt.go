package repoconfig

import (
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// DBTProject is what a project with `framework: dbt` says about its deploys (nil on other projects).
type DBTProject struct {
	// Version is the deploy version: a PR that changes it is a deploy PR; any other PR is informational.
	// "" until the project sets one (then no PR deploys).
	Version string
	// Commands are the dbt commands the apply runs, in order, each a command line of plain words starting
	// with `dbt` (default `dbt build`). The bot adds the target, the profiles directory and, for a selective
	// deploy, the state selection.
	Commands []string
	// Targets maps an environment to the dbt target it runs with; an environment not listed uses the target of
	// its own name (TargetFor).
	Targets map[string]string
	// ProfilesDir is the directory of profiles.yml, relative to the project's directory ("" = dbt's own lookup).
	ProfilesDir string
	// Image is how the deploy image is built; nil when the project sets none (the local executor then runs dbt
	// in the checkout).
	Image *DBTImage
	// PREnvironment, when set, builds each PR's changes into a schema of its own (Slim CI).
	PREnvironment *DBTPREnvironment
	// Decide is which rule decides the scope when the manifest diff and the changed files disagree (""
	// = DecideDefault: the manifest when a production manifest exists, else the files).
	Decide DecideRule
}

// TargetFor is the dbt target an environment runs with.
func (d DBTProject) TargetFor(env string) string {
	if t, ok := d.Targets[env]; ok {
		return t
	}
	return env
}

// DefaultDBTCommands is what a dbt project's apply runs when it names no commands.
var DefaultDBTCommands = []string{"dbt build"}

// DecideRule names the rule that decides a dbt deploy's scope.
type DecideRule string

const (
	DecideDefault  DecideRule = ""         // the manifest when a production manifest exists, else the files
	DecideManifest DecideRule = "manifest" // dbt's state comparison (falls back to the files without a manifest)
	DecideFiles    DecideRule = "files"    // dagctl's rules over the changed files
)

// ImageBuilder is how a dbt deploy image is built.
type ImageBuilder string

const (
	// BuildLayers appends the project (and its dbt_packages) as layers onto the base image, without a daemon.
	BuildLayers ImageBuilder = "layers"
	// BuildDockerfile builds the project's Dockerfile (when the Python requirements change).
	BuildDockerfile ImageBuilder = "dockerfile"
)

// DBTImage is where a dbt project's deploy image comes from and goes.
type DBTImage struct {
	Base       string       // the dbt runtime image the layers builder appends to (required with layers)
	Repository string       // the registry repository the image is pushed to, without tag or digest
	Builder    ImageBuilder // default BuildLayers
	Dockerfile string       // relative to the project's directory; default "Dockerfile"
}

// DBTPREnvironment is a dbt project's per-PR build (Slim CI: `dbt build --select state:modified+ --defer`).
type DBTPREnvironment struct {
	Schema string // a pattern containing {number}: the schema the PR's models are built into
	Target string // the dbt target it runs with; "" = the profile's default target
}

// SchemaFor is the PR's schema.
func (p DBTPREnvironment) SchemaFor(number int) string {
	return strings.ReplaceAll(p.Schema, PRNumberPlaceholder, strconv.Itoa(number))
}

// ValidSchema reports whether s is a schema name the bot builds into and drops: letters, digits and "_", not
// starting with a digit, at most 64 characters (what every warehouse takes unquoted).
func ValidSchema(s string) bool { return len(s) <= maxNameLen && dbtSchemaRE.MatchString(s) }

// The dbt keys of a project, in documentation order.
var (
	dbtProjectKeys       = []string{"version", "commands", "target", "profiles_dir", "image", "pr_environment", "decide"}
	dbtImageKeys         = []string{"base", "repository", "builder", "dockerfile"}
	dbtPREnvironmentKeys = []string{"schema", "target"}
)

type rawDBT struct {
	Version, ProfilesDir, Decide value[string]
	Commands                     value[[]value[string]]
	Target                       value[[]rawEnvVar] // environment → target, in file order
	Image                        value[rawDBTImage]
	PREnvironment                value[rawDBTPREnvironment]
}

// set lists the dbt keys written, for "only for framework: dbt" problems.
func (r rawDBT) set() []at {
	var out []at
	for _, v := range []struct {
		set bool
		at  at
	}{
		{r.Version.Set || r.Version.Bad, r.Version.At}, {r.Commands.Set || r.Commands.Bad, r.Commands.At},
		{r.Target.Set || r.Target.Bad, r.Target.At}, {r.ProfilesDir.Set || r.ProfilesDir.Bad, r.ProfilesDir.At},
		{r.Image.Set || r.Image.Bad, r.Image.At}, {r.PREnvironment.Set || r.PREnvironment.Bad, r.PREnvironment.At},
		{r.Decide.Set || r.Decide.Bad, r.Decide.At},
	} {
		if v.set {
			out = append(out, v.at)
		}
	}
	return out
}

type rawDBTImage struct {
	At                                    at
	Base, Repository, Builder, Dockerfile value[string]
}

type rawDBTPREnvironment struct {
	At             at
	Schema, Target value[string]
}

func (d decoder) dbtKey(r *rawDBT, key string, n *yaml.Node, a at) {
	switch key {
	case "version":
		r.Version = d.str(n, a)
	case "commands":
		r.Commands = d.stringList(n, a)
	case "target":
		r.Target = d.envMap(n, a)
	case "profiles_dir":
		r.ProfilesDir = d.str(n, a)
	case "decide":
		r.Decide = d.str(n, a)
	case "image":
		img := rawDBTImage{At: a}
		ok := d.fields(n, a, dbtImageKeys, func(key string, n *yaml.Node, a at) {
			switch key {
			case "base":
				img.Base = d.str(n, a)
			case "repository":
				img.Repository = d.str(n, a)
			case "builder":
				img.Builder = d.str(n, a)
			case "dockerfile":
				img.Dockerfile = d.str(n, a)
			}
		})
		r.Image = value[rawDBTImage]{V: img, Set: ok, Bad: !ok, At: a}
	case "pr_environment":
		pe := rawDBTPREnvironment{At: a}
		ok := d.fields(n, a, dbtPREnvironmentKeys, func(key string, n *yaml.Node, a at) {
			switch key {
			case "schema":
				pe.Schema = d.str(n, a)
			case "target":
				pe.Target = d.str(n, a)
			}
		})
		r.PREnvironment = value[rawDBTPREnvironment]{V: pe, Set: ok, Bad: !ok, At: a}
	}
}

var (
	// A version ends up in comments, check names and image tags: a tag's characters, and "+".
	dbtVersionRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]*$`)
	// dbt target names: plain words.
	dbtTargetRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_-]*$`)
	// A schema name every warehouse takes unquoted: letters, digits and "_".
	dbtSchemaRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// An image repository: registry host (with an optional port) and path, lower case, as OCI distribution
	// spells it; no tag or digest (the bot tags by version and records the digest).
	imageRepositoryRE = regexp.MustCompile(`^[a-z0-9]+([._-][a-z0-9]+)*(\.[a-z0-9]+([._-][a-z0-9]+)*)*(:[0-9]+)?(/[a-z0-9]+([._-]+[a-z0-9]+)*)+$`)
	// An image reference: a repository with a tag and/or a digest (or neither: latest).
	imageRefRE = regexp.MustCompile(`^[a-z0-9]+([._-][a-z0-9]+)*(\.[a-z0-9]+([._-][a-z0-9]+)*)*(:[0-9]+)?(/[a-z0-9]+([._-]+[a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$`)
)

// namesRegistry reports whether an image repository starts with a registry host, as the image builders read it
// (go-containerregistry's strict references): a first part with a dot or a port, or localhost. "acme/marts" would
// otherwise be pushed to Docker Hub's acme/marts, which is not what a team writing it meant.
func namesRegistry(repository string) bool {
	host, _, _ := strings.Cut(repository, "/")
	return strings.ContainsAny(host, ".:") || host == "localhost"
}

// dbtSubcommands are the dbt commands an apply may run; the ones that select nodes get the state selection
// of a selective deploy.
var dbtSubcommands = map[string]bool{
	"build": true, "run": true, "test": true, "seed": true, "snapshot": true, "compile": true,
	"run-operation": false, "source": false, "docs": false,
}

// SelectsNodes reports whether a dbt command line (validated: "dbt <subcommand> ...") takes --select.
func SelectsNodes(command string) bool {
	words := strings.Fields(command)
	return len(words) > 1 && dbtSubcommands[words[1]]
}

// dbtReservedFlags are what the bot sets itself, per environment and scope.
var dbtReservedFlags = []string{"--target", "-t", "--profiles-dir", "--project-dir", "--select", "-s", "--models", "-m",
	"--state", "--defer", "--defer-state", "--favor-state", "--selector", "--exclude"}

func validateDBT(ps *problems, raw rawDBT, projectPath string) *DBTProject {
	out := &DBTProject{Commands: append([]string(nil), DefaultDBTCommands...)}
	if v := raw.Version; v.Set {
		if len(v.V) > maxNameLen || !dbtVersionRE.MatchString(v.V) {
			ps.add(v.At, "%s is not a version (letters, digits, \".\", \"_\", \"+\" and \"-\", starting with a letter or digit, at most %d)", quote(v.V), maxNameLen)
		} else {
			out.Version = v.V
		}
	}
	if v := raw.Commands; v.Set {
		out.Commands = validateDBTCommands(ps, v)
	}
	if v := raw.Target; v.Set {
		out.Targets = map[string]string{}
		for _, t := range v.V {
			switch {
			case !validName(environmentNameRE, t.Name.V):
				ps.add(t.Name.At, "%s is not an environment name", quote(t.Name.V))
			case !dbtTargetRE.MatchString(t.Value.V) || len(t.Value.V) > maxNameLen:
				ps.add(t.Value.At, "%s is not a dbt target name (letters, digits, \"_\" and \"-\")", quote(t.Value.V))
			default:
				out.Targets[t.Name.V] = t.Value.V
			}
		}
	}
	if v := raw.ProfilesDir; v.Set {
		if p, ok := cleanRepoPath(ps, v); ok {
			if joined := path.Join(projectPath, p); joined == ".." || strings.HasPrefix(joined, "../") {
				ps.add(v.At, "%s leaves the repository", quote(v.V))
			} else {
				out.ProfilesDir = p
			}
		}
	}
	if v := raw.Decide; v.Set {
		switch r := DecideRule(v.V); r {
		case DecideManifest, DecideFiles:
			out.Decide = r
		default:
			ps.add(v.At, "%s is not one of %s, %s", quote(v.V), DecideManifest, DecideFiles)
		}
	}
	if v := raw.Image; v.Set {
		out.Image = validateDBTImage(ps, v.V, projectPath)
	}
	if v := raw.PREnvironment; v.Set {
		out.PREnvironment = validateDBTPREnvironment(ps, v.V)
	}
	return out
}

func validateDBTCommands(ps *problems, v value[[]value[string]]) []string {
	if len(v.V) == 0 {
		ps.add(v.At, "must list at least one dbt command (or leave commands out for `dbt build`)")
		return nil
	}
	var out []string
	for _, c := range v.V {
		words := strings.Fields(c.V)
		if len(words) < 2 || words[0] != "dbt" {
			ps.add(c.At, "%s is not a dbt command (e.g. `dbt build`)", quote(c.V))
			continue
		}
		if _, ok := dbtSubcommands[words[1]]; !ok {
			ps.add(c.At, "%s: %s is not a dbt command an apply runs (%s)", quote(c.V), quote(words[1]), strings.Join(sortedKeys(dbtSubcommands), ", "))
			continue
		}
		bad := ""
		for _, w := range words {
			if !plainWord.MatchString(w) {
				bad = w
				break
			}
		}
		if bad != "" {
			ps.add(c.At, "%s: %s is not a plain word (commands run without a shell: letters, digits and _./=:@%%+,-)", quote(c.V), quote(bad))
			continue
		}
		if f := reservedFlag(words); f != "" {
			ps.add(c.At, "%s: the bot sets %s itself (from target, profiles_dir and the deploy's scope)", quote(c.V), f)
			continue
		}
		out = append(out, strings.Join(words, " "))
	}
	return out
}

func reservedFlag(words []string) string {
	for _, w := range words {
		name, _, _ := strings.Cut(w, "=")
		for _, f := range dbtReservedFlags {
			if name == f {
				return f
			}
		}
	}
	return ""
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func validateDBTImage(ps *problems, raw rawDBTImage, projectPath string) *DBTImage {
	img := &DBTImage{Builder: BuildLayers, Dockerfile: "Dockerfile"}
	if v := raw.Builder; v.Set {
		switch b := ImageBuilder(v.V); b {
		case BuildLayers, BuildDockerfile:
			img.Builder = b
		default:
			ps.add(v.At, "%s is not one of %s, %s", quote(v.V), BuildLayers, BuildDockerfile)
		}
	}
	switch v := raw.Base; {
	case v.Set:
		if len(v.V) > 255 || !imageRefRE.MatchString(v.V) {
			ps.add(v.At, "%s is not an image reference (registry/repository[:tag][@sha256:digest], lower case)", quote(v.V))
		} else {
			img.Base = v.V
		}
	case !v.Bad && img.Builder == BuildLayers:
		ps.add(raw.At.child("base"), "is required with builder %s: the dbt runtime image the project is added to", BuildLayers)
	}
	switch v := raw.Repository; {
	case v.Set:
		if len(v.V) > 255 || !imageRepositoryRE.MatchString(v.V) {
			ps.add(v.At, "%s is not an image repository (registry/path, lower case, without a tag or digest)", quote(v.V))
		} else if !namesRegistry(v.V) {
			ps.add(v.At, "%s names no registry: start with its host (ghcr.io/%s, localhost:5000/%s)", quote(v.V), v.V, v.V)
		} else {
			img.Repository = v.V
		}
	case !v.Bad:
		ps.add(raw.At.child("repository"), "is required: where the deploy image is pushed (registry/path)")
	}
	if v := raw.Dockerfile; v.Set {
		if p, ok := cleanRepoPath(ps, v); ok {
			if joined := path.Join(projectPath, p); joined == ".." || strings.HasPrefix(joined, "../") {
				ps.add(v.At, "%s leaves the repository", quote(v.V))
			} else {
				img.Dockerfile = p
			}
		}
	}
	return img
}

func validateDBTPREnvironment(ps *problems, raw rawDBTPREnvironment) *DBTPREnvironment {
	pe := &DBTPREnvironment{}
	switch v := raw.Schema; {
	case v.Set:
		example := strings.ReplaceAll(v.V, PRNumberPlaceholder, "1234567")
		switch {
		case !strings.Contains(v.V, PRNumberPlaceholder):
			ps.add(v.At, "%s must contain %s, e.g. dbt_pr_%s (one schema per PR)", quote(v.V), PRNumberPlaceholder, PRNumberPlaceholder)
		case len(example) > maxNameLen || !dbtSchemaRE.MatchString(example):
			ps.add(v.At, "%s does not make a schema name (letters, digits and \"_\", not starting with a digit)", quote(v.V))
		default:
			pe.Schema = v.V
		}
	case !v.Bad:
		ps.add(raw.At.child("schema"), "is required, e.g. dbt_pr_%s", PRNumberPlaceholder)
	}
	if v := raw.Target; v.Set {
		if !dbtTargetRE.MatchString(v.V) || len(v.V) > maxNameLen {
			ps.add(v.At, "%s is not a dbt target name (letters, digits, \"_\" and \"-\")", quote(v.V))
		} else {
			pe.Target = v.V
		}
	}
	return pe
}

// checkDBTTargets refuses a target for an environment the file does not have: a misspelt `prdo: prod` would
// leave prod on the target of its own name.
func checkDBTTargets(ps *problems, projects []rawProject, envs []Environment) {
	var names []string
	for _, e := range envs {
		names = append(names, e.Name)
	}
	for _, rp := range projects {
		if !rp.DBT.Target.Set || rp.Framework.V != string(DBT) {
			continue
		}
		for _, t := range rp.DBT.Target.V {
			if _, ok := (Config{Environments: envs}).Environment(t.Name.V); !ok && validName(environmentNameRE, t.Name.V) {
				ps.add(t.Name.At, "%s is not an environment of this file (%s)", quote(t.Name.V), strings.Join(names, ", "))
			}
		}
	}
}
