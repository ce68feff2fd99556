package server

import (
	"context"
	"fmt"

	"github.com/dagctl/dagctl-bot/internal/serverconfig"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// notAllowed is the answer for an event of a repository the operator did not allow: ignored, so the delivery is
// done and nothing acts on it.
type notAllowed struct{ repo vcs.Repo }

func (e notAllowed) Error() string {
	return fmt.Sprintf("%s:%s is not on %s", e.repo.Forge, e.repo.FullName(), serverconfig.EnvRepoAllowlist)
}

func (e notAllowed) Is(target error) bool { return target == vcs.ErrIgnored }

// allowed applies DAGCTL_REPO_ALLOWLIST to an event before the bot sees it. An installation event names an
// account, not a repository, and passes: the repositories it lists are checked when their events come, and
// the reconcile checks each PR it would plan.
func (s *Server) allowed(ev vcs.Event) error {
	if ev.Installation != nil || s.cfg.RepoAllowlist.Allows(ev.Repo.Forge, ev.Repo.FullName()) {
		return nil
	}
	return notAllowed{ev.Repo}
}

// handleAllowed is the dispatcher's handler: the bot handles the events of allowed repositories; the others are
// done without effect, logged once.
func (s *Server) handleAllowed(ctx context.Context, ev vcs.Event) error {
	if err := s.allowed(ev); err != nil {
		s.log.Info("event ignored", "delivery", ev.DeliveryID, "reason", err)
		return err
	}
	return s.bot.Handle(ctx, ev)
}

// planMissedAllowed is the reconcile's planner: an open PR of a repository not allowed is not planned.
func (s *Server) planMissedAllowed(ctx context.Context, pr vcs.PullRequest) error {
	if err := s.allowed(vcs.Event{Repo: pr.Repo}); err != nil {
		s.log.Info("open PR not planned", "pr", pr.Number, "reason", err)
		return nil
	}
	return s.bot.PlanMissed(ctx, pr)
}

// gitLabCloneWarning says, when GitLab is served without DAGCTL_GITLAB_CLONE_TOKEN, that jobs would clone with
// the api token ("" otherwise): PR code runs in the job and can read what it clones with.
func (s *Server) gitLabCloneWarning() string {
	if !s.cfg.GitLab.Enabled() || s.cfg.GitLab.CloneToken.IsSet() {
		return ""
	}
	return "GitLab jobs would clone with the api token (DAGCTL_GITLAB_TOKEN), which PR code can read: set " +
		serverconfig.EnvGitLabCloneToken + " to a read_repository token"
}
