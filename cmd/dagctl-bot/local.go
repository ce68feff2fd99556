package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/dagctl/dagctl-bot/internal/comments"
	"github.com/dagctl/dagctl-bot/internal/framework"
	"github.com/dagctl/dagctl-bot/internal/framework/dbt"
	"github.com/dagctl/dagctl-bot/internal/framework/sqlmesh"
	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
)

// localFlags are the flags of `plan` and `apply`, which run on a working tree without a forge.
type localFlags struct {
	repo          string
	env           string
	forwardOnly   bool
	restate       multiFlag
	start, end    string
	executionTime string
	quiet         bool
	base          string
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func (f *localFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.repo, "repo", ".", "the repository's working tree (holds .dagctl/config.yaml)")
	fs.BoolVar(&f.forwardOnly, "forward-only", false, "make a forward-only plan")
	fs.Var(&f.restate, "restate-model", "restate a model (repeatable)")
	fs.StringVar(&f.start, "start", "", "start of the plan's interval")
	fs.StringVar(&f.end, "end", "", "end of the plan's interval")
	fs.StringVar(&f.executionTime, "execution-time", "", "sqlmesh's notion of now (for reproducible plans)")
	fs.BoolVar(&f.quiet, "quiet", false, "do not echo the job's output to stderr")
	fs.StringVar(&f.base, "base", "", "the commit a dbt project is compared with (default: the merge base of HEAD and the default branch)")
}

func (f *localFlags) planFlags() plan.Flags {
	return plan.Flags{ForwardOnly: f.forwardOnly, RestateModels: f.restate, Start: f.start, End: f.end}
}

// loadRepoConfig reads the working tree's config, or the defaults when it has none; a job.setup step setup
// does not allow is an error at its line, as on a PR.
func loadRepoConfig(repo string, setup repoconfig.SetupAllowlist) (repoconfig.Config, error) {
	data, err := os.ReadFile(filepath.Join(repo, repoconfig.Path))
	if errors.Is(err, os.ErrNotExist) {
		return repoconfig.Default(), nil
	}
	if err != nil {
		return repoconfig.Config{}, err
	}
	return repoconfig.ParseWithRules(repoconfig.Path, data, repoconfig.Rules{RefuseSetup: setup.Refuse})
}

// sqlmeshPython finds the interpreter that has sqlmesh, from DAGCTL_SQLMESH (the sqlmesh executable; default
// "sqlmesh" on PATH): the `python` beside it, as in a virtualenv's bin directory.
func sqlmeshPython(getenv func(string) string) (string, error) {
	exe := getenv("DAGCTL_SQLMESH")
	if exe == "" {
		exe = "sqlmesh"
	}
	path, err := exec.LookPath(exe)
	if err != nil {
		return "", fmt.Errorf("DAGCTL_SQLMESH: %w (run `make tools`, or point DAGCTL_SQLMESH at the sqlmesh executable)", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	python := filepath.Join(filepath.Dir(abs), "python")
	if _, err := os.Stat(python); err != nil {
		return "", fmt.Errorf("DAGCTL_SQLMESH=%s: no python beside it (%v); install sqlmesh in a virtualenv", exe, err)
	}
	return python, nil
}

// localRun is what `plan` and `apply` need: the working tree's config, the job settings, an executor, and the
// base commit of the frameworks that compare two commits (nil: none, every file is new).
type localRun struct {
	cfg      repoconfig.Config
	settings framework.JobSettings
	executor *jobs.Local
	base     *object.Commit
}

// prepare reads the config (checking the environment, when one is named) and sets up the local executor.
func (f *localFlags) prepare() (localRun, error) {
	settings, err := localSettings()
	if err != nil {
		return localRun{}, err
	}
	cfg, err := loadRepoConfig(f.repo, settings.Setup)
	if err != nil {
		return localRun{}, err
	}
	if f.env != "" {
		if _, ok := cfg.Environment(f.env); !ok {
			return localRun{}, fmt.Errorf("environment %q is not in %s (it has %s)", f.env, repoconfig.Path, envNames(cfg))
		}
	}
	settings.ExecutionTime = f.executionTime
	base, err := findBase(f.repo, f.base)
	if err != nil {
		return localRun{}, err
	}
	executor, err := jobs.NewLocal(jobs.LocalOptions{})
	if err != nil {
		return localRun{}, err
	}
	return localRun{cfg: cfg, settings: settings, executor: executor, base: base}, nil
}

// localSettings are the job settings of `plan` and `apply`, from the same variables `serve` reads.
func localSettings() (framework.JobSettings, error) {
	python, err := sqlmeshPython(os.Getenv)
	if err != nil {
		return framework.JobSettings{}, err
	}
	setup, err := repoconfig.ParseSetupAllowlist(os.Getenv("DAGCTL_JOB_SETUP"))
	if err != nil {
		return framework.JobSettings{}, fmt.Errorf("DAGCTL_JOB_SETUP: %w", err)
	}
	frameworks, err := framework.NewRegistry(sqlmesh.New(python), dbt.New(python))
	if err != nil {
		return framework.JobSettings{}, err
	}
	return framework.JobSettings{
		Frameworks: frameworks,
		Allowed:    jobs.ParseNames(os.Getenv("DAGCTL_JOB_ENV")),
		BotEnv:     jobs.EnvMap(os.Environ()),
		Setup:      setup,
	}, nil
}

// runPlanCommand implements `dagctl-bot plan`: it plans the working tree's projects for the environment (or
// every environment with plan_on_pr) and prints exactly the markdown a pull request would get.
func runPlanCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f localFlags
	f.register(fs)
	fs.StringVar(&f.env, "env", "", "the environment to plan (default: every environment with plan_on_pr)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	run, err := f.prepare()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	cfg := run.cfg

	var envs []string
	if f.env != "" {
		envs = []string{f.env}
	} else {
		for _, e := range cfg.Environments {
			if e.PlanOnPR {
				envs = append(envs, e.Name)
			}
		}
	}

	view := comments.View{Repo: filepath.Base(mustAbs(f.repo))}
	failed := false
	for _, env := range envs {
		for _, project := range cfg.Projects {
			section := f.planProject(ctx, run, env, project, stderr)
			if section.State == comments.StatePlanFailed || section.State == comments.StateCancelled {
				failed = true
			}
			view.Sections = append(view.Sections, section)
		}
	}
	for _, part := range comments.Comment(view, comments.GitHubCommentLimit) {
		fmt.Fprintln(stdout, part)
	}
	if failed {
		return 1
	}
	return 0
}

// planProject plans one project for env with its framework, as the section a pull request would show.
func (f *localFlags) planProject(ctx context.Context, run localRun, env string, project repoconfig.Project, stderr io.Writer) comments.Section {
	envCfg, _ := run.cfg.Environment(env)
	section := comments.Section{
		Environment:    env,
		ApplyByComment: envCfg.AppliesOn(repoconfig.ApplyOnComment),
		ApplyOnMerge:   envCfg.AppliesOn(repoconfig.ApplyOnMerge),
	}
	if len(run.cfg.Projects) > 1 {
		section.Project = project.Name
	}
	fail := func(err error) comments.Section {
		section.State, section.Error = comments.StatePlanFailed, err.Error()
		return section
	}
	o, err := f.plan(ctx, run, env, project, stderr)
	if err != nil {
		return fail(err)
	}
	section.State, section.Summary, section.Error = comments.StateOf(o.Status), o.Summary, o.Error
	return section
}

// plan runs one project's plan job on the working tree; a comparing framework's (dbt) compares it with the
// base commit, whose files the job reads from a directory of their own, and its outcome is completed from both.
func (f *localFlags) plan(ctx context.Context, run localRun, env string, project repoconfig.Project, stderr io.Writer) (framework.PlanOutcome, error) {
	fw, err := run.settings.Frameworks.For(project)
	if err != nil {
		return framework.PlanOutcome{}, err
	}
	source := jobs.Source{Dir: mustAbs(f.repo)}
	comparer, compares := framework.ComparerOf(fw)
	if compares && run.base != nil {
		dir, err := os.MkdirTemp("", "dagctl-base-")
		if err != nil {
			return framework.PlanOutcome{}, err
		}
		defer os.RemoveAll(dir)
		if err := writeCommit(run.base, project.Path, dir); err != nil {
			return framework.PlanOutcome{}, fmt.Errorf("writing the base commit %s: %w", run.base.Hash, err)
		}
		source.BaseDir = dir
		fmt.Fprintf(stderr, "dagctl: comparing %s with %s\n", project.Name, run.base.Hash)
	}
	spec, refused, err := run.settings.Spec(framework.JobRequest{
		RunID: "local", Kind: jobs.KindPlan, Config: run.cfg, Project: project, Env: env,
		Flags: f.planFlags(), Source: source,
	})
	if err != nil {
		return framework.PlanOutcome{}, err
	}
	if msg := framework.DescribeRefused(refused); msg != "" {
		fmt.Fprintln(stderr, msg)
	}
	logTail := framework.NewTail(40)
	out, res, err := framework.RunJob(ctx, run.executor, spec, func(l jobs.Line) {
		logTail.Add(l.Text)
		if !f.quiet {
			fmt.Fprintln(stderr, l.Text)
		}
	}, nil)
	if err != nil {
		return framework.PlanOutcome{}, err
	}
	o := framework.InterpretPlan(fw, res, out, logTail.Lines())
	if compares {
		cmp, err := comparison(comparer, f.repo, project, env, run.base)
		if err != nil {
			return framework.PlanOutcome{}, err
		}
		o = framework.CompletePlan(comparer, o, cmp)
	}
	return o, nil
}

// runApplyCommand implements `dagctl-bot apply`: each project's framework's apply command (sqlmesh: `sqlmesh
// plan ENV --auto-apply`) on the working tree, with progress on stderr.
func runApplyCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("apply", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f localFlags
	f.register(fs)
	fs.StringVar(&f.env, "env", "", "the environment to apply (required)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if f.env == "" {
		fmt.Fprintln(stderr, "apply: --env is required")
		return 2
	}
	run, err := f.prepare()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	cfg, settings, executor := run.cfg, run.settings, run.executor
	code := 0
	for _, project := range cfg.Projects {
		fw, err := settings.Frameworks.For(project)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		req := framework.JobRequest{
			RunID: "local", Kind: jobs.KindApply, Config: cfg, Project: project, Env: f.env,
			Flags: f.planFlags(), Source: jobs.Source{Dir: mustAbs(f.repo)},
		}
		if _, compares := framework.ComparerOf(fw); compares {
			// dbt applies a plan's exact commands: the plan of the working tree against the base, as a PR's.
			d, err := f.planToApply(ctx, run, project, stderr)
			if err != nil {
				fmt.Fprintln(stderr, err)
				code = 1
				continue
			}
			if d == nil {
				continue
			}
			req.DBT = d
		}
		spec, refused, err := settings.Spec(req)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		if msg := framework.DescribeRefused(refused); msg != "" {
			fmt.Fprintln(stderr, msg)
		}
		_, res, err := framework.RunJob(ctx, executor, spec, func(l jobs.Line) {
			if p, ok := fw.ParseProgress(l.Text); ok {
				fmt.Fprintf(stderr, "[%d/%d] %s %s\n", p.Batch, p.Batches, p.Model, p.Action)
			} else if !f.quiet {
				fmt.Fprintln(stdout, l.Text)
			}
		}, nil)
		switch {
		case err != nil:
			fmt.Fprintln(stderr, err)
			code = 1
		case !res.Succeeded():
			fmt.Fprintf(stderr, "apply of %s to %s failed: exit code %d %s\n", project.Name, f.env, res.ExitCode, res.Reason)
			code = 1
		default:
			fmt.Fprintf(stderr, "applied %s to %s in %s\n", project.Name, f.env, res.Duration.Round(1e7))
		}
	}
	return code
}

// planToApply plans a comparing framework's project (dbt) for `apply`: its dbt view, whose commands the apply
// runs; nil when there is nothing to run (not a deploy, or no dbt command), which it says.
func (f *localFlags) planToApply(ctx context.Context, run localRun, project repoconfig.Project, stderr io.Writer) (*plan.DBT, error) {
	o, err := f.plan(ctx, run, f.env, project, stderr)
	switch {
	case err != nil:
		return nil, err
	case o.Status == plan.StatusFailed || o.Summary == nil:
		return nil, fmt.Errorf("the plan of %s in %s failed: %s", project.Name, f.env, o.Error)
	}
	d := o.Summary.DBT
	switch {
	case d == nil:
		return nil, fmt.Errorf("the plan of %s in %s has no dbt view", project.Name, f.env)
	case !d.Deploy:
		fmt.Fprintf(stderr, "nothing to apply for %s in %s: not a deploy (bump the version to deploy)\n", project.Name, f.env)
		return nil, nil
	case len(d.Commands) == 0:
		fmt.Fprintf(stderr, "nothing to apply for %s in %s: scope %s runs no dbt command\n", project.Name, f.env, d.Scope)
		return nil, nil
	}
	return d, nil
}

func envNames(cfg repoconfig.Config) string {
	names := make([]string, len(cfg.Environments))
	for i, e := range cfg.Environments {
		names[i] = e.Name
	}
	return strings.Join(names, ", ")
}

func mustAbs(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return abs
}
