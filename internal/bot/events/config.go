package events

import (
	"context"
	"errors"
	"fmt"

	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// ConfigError is a .dagctl/config.yaml that cannot be used; it is shown on the PR, naming file, line and field.
type ConfigError struct {
	Ref string // "default" (the default branch) or "head"
	Err error
}

func (e *ConfigError) Error() string {
	if e.Ref == "default" {
		return fmt.Sprintf("%s (on the default branch)", e.Err)
	}
	return fmt.Sprintf("%s (on the PR's %s branch)", e.Err, e.Ref)
}

func (e *ConfigError) Unwrap() error { return e.Err }

// loadConfig reads .dagctl/config.yaml on the repository's default branch (the trust root) and at the PR's head
// and merges them: protection, deploy branches and job settings from the default branch (a PR cannot loosen its
// own rules, nor can a branch a writer created with a loose config), projects from the head. Never the PR's base
// branch when that is another branch: anyone with write access can push one. A repository without a config on
// either side uses the defaults for that side. A trusted config that does not parse stops everything: falling
// back to the head would let the PR choose its own rules. Neither side may name secrets the executor refuses,
// nor setup steps the operator does not allow (DAGCTL_JOB_SETUP): only the trusted side's reach a job, but a
// head that names one would be refused once merged.
func (h *Handlers) loadConfig(ctx context.Context, forge vcs.Forge, pr vcs.PullRequest) (cfg repoconfig.Config, present bool, err error) {
	read := func(ref, at string) (repoconfig.Config, bool, error) {
		data, err := forge.ReadFile(ctx, pr.Repo, at, repoconfig.Path)
		if errors.Is(err, vcs.ErrNotFound) {
			return repoconfig.Default(), false, nil
		}
		if err != nil {
			return repoconfig.Config{}, false, fmt.Errorf("reading %s at %s: %w", repoconfig.Path, ref, err)
		}
		rules := repoconfig.Rules{RefuseSetup: h.Runner.Jobs.Setup.Refuse, RefuseImageBuilder: h.Runner.Jobs.RefuseImageBuilder}
		c, err := repoconfig.ParseWithRules(repoconfig.Path, data, rules)
		if err != nil {
			return repoconfig.Config{}, true, &ConfigError{Ref: ref, Err: err}
		}
		refused, err := h.refusedSecrets(ctx, c.Job.Secrets)
		if err != nil {
			return repoconfig.Config{}, true, fmt.Errorf("checking job.secrets of %s at %s: %w", repoconfig.Path, ref, err)
		}
		if len(refused) > 0 {
			// Parsed again with the refusals as rules, so that each is shown at its line.
			rules.RefuseSecret = func(name string) string { return refused[name] }
			_, err := repoconfig.ParseWithRules(repoconfig.Path, data, rules)
			if err == nil {
				err = fmt.Errorf("%s: job.secrets: refused: %v", repoconfig.Path, refused)
			}
			return repoconfig.Config{}, true, &ConfigError{Ref: ref, Err: err}
		}
		return c, true, nil
	}
	if pr.Repo.DefaultBranch == "" {
		return repoconfig.Config{}, false, fmt.Errorf("%s: the forge did not say which branch is the default: the trusted config cannot be read", pr.Repo.FullName())
	}
	trusted, trustedPresent, err := read("default", pr.Repo.DefaultBranch)
	if err != nil {
		return repoconfig.Config{}, trustedPresent, err
	}
	head, headPresent, err := read("head", pr.HeadSHA)
	if err != nil {
		return repoconfig.Config{}, headPresent, err
	}
	return repoconfig.Merge(trusted, head), trustedPresent || headPresent, nil
}

// refusedSecrets asks the executor, when it mounts secrets, why it would refuse each of the secrets named.
func (h *Handlers) refusedSecrets(ctx context.Context, names []string) (map[string]string, error) {
	checker, ok := h.Executor.(jobs.SecretChecker)
	if !ok {
		return nil, nil // the local executor mounts no secrets
	}
	refused := map[string]string{}
	for _, name := range names {
		why, err := checker.RefuseSecret(ctx, name)
		if err != nil {
			return nil, err
		}
		if why != "" {
			refused[name] = why
		}
	}
	return refused, nil
}
