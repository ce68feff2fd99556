package jobrun

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/planner"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
)

// JobSettings are the operator's settings for every job the bot starts.
type JobSettings struct {
	SQLMesh planner.SQLMesh
	// Allowed are the names of the bot's variables jobs may receive (DAGCTL_JOB_ENV).
	Allowed []string
	// BotEnv is the bot's environment, the only source of passed variables.
	BotEnv map[string]string
	// Image is the default runtime image for container executors.
	Image string
	// ExecutionTime fixes sqlmesh's "now"; only tests set it, so that backfill intervals are reproducible.
	ExecutionTime string
}

// JobRequest names one plan or apply job.
type JobRequest struct {
	RunID   string
	Kind    jobs.Kind
	Config  repoconfig.Config
	Project repoconfig.Project
	Env     string
	Flags   plan.Flags
	Source  jobs.Source
	Labels  map[string]string
}

// Spec builds the job's spec, and the variables refused for it (to warn about). The job's environment is
// built, never inherited: see jobs.BuildEnv.
func (s JobSettings) Spec(req JobRequest) (jobs.Spec, []jobs.Refused, error) {
	if req.Project.Framework != repoconfig.SQLMesh {
		return jobs.Spec{}, nil, fmt.Errorf("project %s: framework %s is not supported by this version of dagctl-bot", req.Project.Name, req.Project.Framework)
	}
	opts := planner.Options{Gateway: req.Project.Gateway, ExecutionTime: s.ExecutionTime}
	var argv []string
	switch req.Kind {
	case jobs.KindApply:
		argv = s.SQLMesh.ApplyCommand(req.Env, req.Flags, opts)
	case jobs.KindInvalidate:
		argv = s.SQLMesh.InvalidateCommand(req.Env, opts)
	default:
		argv = s.SQLMesh.PlanCommand(req.Env, req.Flags, opts)
	}
	env, refused := jobs.BuildEnv(jobs.EnvRequest{
		Bot:      s.BotEnv,
		Allowed:  s.Allowed,
		Literal:  req.Config.Job.Env,
		PassEnv:  req.Config.Job.PassEnv,
		Required: s.SQLMesh.Env(),
		Secrets:  nonEmpty(req.Source.Token),
	})
	image := req.Config.Job.Image
	if image == "" {
		image = s.Image
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
		Command: argv,
		Env:     env,
		Timeout: req.Config.Job.Timeout,
		Image:   image,
		Secrets: req.Config.Job.Secrets,
	}, refused, nil
}

// Masked are the values a job of this config is given by the operator (pass_env) and the config (job.env):
// its output is masked of them, as of the bot's own secrets (see jobs.PassedValues).
func (s JobSettings) Masked(job repoconfig.Job) []string {
	return jobs.PassedValues(jobs.EnvRequest{
		Bot: s.BotEnv, Allowed: s.Allowed, Literal: job.Env, PassEnv: job.PassEnv, Required: s.SQLMesh.Env(),
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
