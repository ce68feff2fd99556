package framework

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
)

// JobSettings are the operator's settings for every job the bot starts.
type JobSettings struct {
	Frameworks Registry
	// Allowed are the names of the bot's variables jobs may receive (DAGCTL_JOB_ENV).
	Allowed []string
	// BotEnv is the bot's environment, the only source of passed variables.
	BotEnv map[string]string
	// Image is the default runtime image for container executors.
	Image string
	// ExecutionTime fixes the tool's "now"; only tests set it, so that backfill intervals are reproducible.
	ExecutionTime string
	// Setup is which job.setup steps jobs may run (DAGCTL_JOB_SETUP). The config was checked against it when it
	// was read (repoconfig.Rules.RefuseSetup); Spec checks again, so that no path runs a step it does not allow.
	Setup repoconfig.SetupAllowlist
	// RefuseImageBuilder says why a dbt project's image.builder cannot build on this server, or "" when it can
	// (repoconfig.Rules.RefuseImageBuilder, checked when the config is read); nil allows every builder.
	RefuseImageBuilder func(repoconfig.ImageBuilder) string
}

// JobRequest names one plan, apply or cleanup job.
type JobRequest struct {
	RunID   string
	Kind    jobs.Kind
	Config  repoconfig.Config
	Project repoconfig.Project
	Env     string
	Flags   plan.Flags
	Source  jobs.Source
	Labels  map[string]string
	// DBT is the approved plan's dbt view, for a dbt apply (see CommandRequest.DBT).
	DBT *plan.DBT
	// State is the environment's production state from its last successful deploy (StateKeeper), as the bot
	// stored it; nil when there is none. Given to a StateKeeper's jobs as an input.
	State []byte
	// DeployImage is the image the apply built (`repository@sha256:...`), for an apply job on an executor that
	// runs containers: the job runs on it (over the config's and the server's image) with the framework's
	// ImageEnv, so the tool runs the project the image holds. "" runs as before, in the checkout.
	DeployImage string
	// ImagePath is where the deploy image holds the project (with DeployImage).
	ImagePath string
	// PRNumber is the PR whose own environment Env is (see CommandRequest.PRNumber).
	PRNumber int
}

// MaxPackageBytes caps the project a package job hands back (jobs.KindImage): an artifact's cap.
const MaxPackageBytes = jobs.MaxArtifactBytes

// Spec builds the job's spec, and the variables refused for it (to warn about). The framework supplies the
// command and its variables; the job's environment is built, never inherited (see jobs.BuildEnv). Flags the
// framework does not take are refused here too, though the bot refuses them when the command is given.
func (s JobSettings) Spec(req JobRequest) (jobs.Spec, []jobs.Refused, error) {
	fw, err := s.Frameworks.For(req.Project)
	if err != nil {
		return jobs.Spec{}, nil, err
	}
	if err := CheckFlags(fw, req.Project.Name, req.Flags); err != nil {
		return jobs.Spec{}, nil, err
	}
	argv, err := s.command(fw, req)
	if err != nil {
		return jobs.Spec{}, nil, err
	}
	setup, err := s.setup(req.Config.Job.Setup)
	if err != nil {
		return jobs.Spec{}, nil, err
	}
	env, refused := jobs.BuildEnv(jobs.EnvRequest{
		Bot:      s.BotEnv,
		Allowed:  s.Allowed,
		Literal:  req.Config.Job.Env,
		PassEnv:  req.Config.Job.PassEnv,
		Required: fw.Env(),
		Secrets:  nonEmpty(req.Source.Token),
	})
	image := req.Config.Job.Image
	if image == "" {
		image = s.Image
	}
	var inputs map[string][]byte
	var collect []string
	if k, ok := StateKeeperOf(fw); ok && req.Kind != jobs.KindImage {
		if req.State != nil {
			name, vars := k.StateInput()
			inputs = map[string][]byte{name: req.State}
			for key, v := range vars {
				env[key] = v
			}
		}
		if req.Kind == jobs.KindApply {
			collect = []string{k.StateArtifact()}
		}
	}
	if req.Kind == jobs.KindImage {
		p, _ := ImagePackagerOf(fw) // command() refused a framework without
		collect = []string{p.PackageArtifact()}
	}
	if req.DeployImage != "" && req.Kind == jobs.KindApply {
		image = req.DeployImage
		if p, ok := ImagePackagerOf(fw); ok {
			for key, v := range p.ImageEnv(req.ImagePath) {
				env[key] = v
			}
		}
	}
	labels := map[string]string{"environment": req.Env, "project": req.Project.Name}
	for k, v := range req.Labels {
		labels[k] = v
	}
	return jobs.Spec{
		RunID:   req.RunID,
		Kind:    req.Kind,
		Labels:  labels,
		Source:  req.Source,
		Subdir:  filepath.Clean(req.Project.Path),
		Setup:   setup,
		Command: argv,
		Env:     env,
		Timeout: req.Config.Job.Timeout,
		Image:   image,
		Secrets: req.Config.Job.Secrets,
		Inputs:  inputs,
		Collect: collect,
	}, refused, nil
}

func (s JobSettings) command(fw Framework, req JobRequest) ([]string, error) {
	creq := CommandRequest{Project: req.Project, Env: req.Env, Flags: req.Flags, ExecutionTime: s.ExecutionTime, DBT: req.DBT,
		PRNumber: req.PRNumber}
	switch req.Kind {
	case jobs.KindPlan:
		return fw.PlanCommand(creq), nil
	case jobs.KindApply:
		return fw.ApplyCommand(creq), nil
	case jobs.KindImage:
		if p, ok := ImagePackagerOf(fw); ok {
			return p.PackageCommand(creq, MaxPackageBytes), nil
		}
		return nil, fmt.Errorf("project %s: %s builds no deploy image from a job", req.Project.Name, fw.Name())
	case jobs.KindInvalidate:
		if argv, ok := fw.CleanupCommand(creq); ok {
			return argv, nil
		}
		return nil, fmt.Errorf("project %s: %s environments need no cleanup", req.Project.Name, fw.Name())
	}
	return nil, fmt.Errorf("project %s: unknown job kind %q", req.Project.Name, req.Kind)
}

// setup is the argv of each setup step, in order, when the operator allows every one.
func (s JobSettings) setup(steps []repoconfig.SetupStep) ([][]string, error) {
	var out [][]string
	for i, step := range steps {
		if why := s.Setup.Refuse(step); why != "" {
			return nil, fmt.Errorf("job.setup[%d]: %q %s", i, step.String(), why)
		}
		out = append(out, step.Command())
	}
	return out, nil
}

// Masked are the values a job of this config is given by the operator (pass_env) and the config (job.env):
// its output is masked of them, as of the bot's own secrets (see jobs.PassedValues). Variables a registered
// framework sets itself (NO_COLOR=1, ...) are not masked: they are no secret, and masking "1" would garble logs.
func (s JobSettings) Masked(job repoconfig.Job) []string {
	own := map[string]string{}
	for _, fw := range s.Frameworks.All() {
		for k, v := range fw.Env() {
			own[k] = v
		}
	}
	return jobs.PassedValues(jobs.EnvRequest{
		Bot: s.BotEnv, Allowed: s.Allowed, Literal: job.Env, PassEnv: job.PassEnv, Required: own,
	})
}

// DescribeRefused says which variables were kept out of a job, for the log and the PR.
func DescribeRefused(refused []jobs.Refused) string {
	if len(refused) == 0 {
		return ""
	}
	parts := make([]string, 0, len(refused))
	for _, r := range refused {
		parts = append(parts, r.Name+" "+r.Reason)
	}
	sort.Strings(parts)
	return "Not passed to the job: " + strings.Join(parts, "; ") + "."
}

func nonEmpty(values ...string) []string {
	var out []string
	for _, v := range values {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}
