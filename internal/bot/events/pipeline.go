package events

import (
	"context"
	"errors"
	"slices"

	"github.com/dagctl/dagctl-bot/internal/bot/prstate"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// Pipeline writes the bot's statuses into a pipeline that started for a commit after they were written (GitLab:
// the team's CI pipeline, which becomes the merge request's head pipeline, the one "Pipelines must succeed"
// reads, without them). The event only says where: the PRs are those the bot planned at that commit whose head
// the forge says it still is (a merge request pipeline's hook names its one merge request), and what is written
// is each current plan's statuses as the bot last showed them.
func (h *Handlers) Pipeline(ctx context.Context, forge vcs.Forge, repo vcs.Repo, ev vcs.PipelineEvent) error {
	if ev.SHA == "" || ev.Pipeline == "" {
		return vcs.ErrIgnored
	}
	numbers, err := h.Store.PRsPlannedAt(ctx, repo.Forge, repo.FullName(), ev.SHA)
	if err != nil {
		return err
	}
	if ev.Number > 0 {
		// A merge request pipeline is the head pipeline of its merge request alone.
		if !slices.Contains(numbers, ev.Number) {
			return vcs.ErrIgnored
		}
		numbers = []int{ev.Number}
	}
	written := 0
	for _, number := range numbers {
		n, err := h.pipelineOfPR(ctx, forge, repo, number, ev)
		if err != nil {
			return err
		}
		written += n
	}
	if written == 0 {
		return vcs.ErrIgnored // no open PR has that head, or the bot showed nothing on it
	}
	h.Log.Info("statuses written into a pipeline that started after them", "repo", repo.FullName(), "sha", ev.SHA,
		"pipeline", ev.Pipeline, "pipeline_status", ev.Status, "statuses", written)
	return nil
}

func (h *Handlers) pipelineOfPR(ctx context.Context, forge vcs.Forge, repo vcs.Repo, number int, ev vcs.PipelineEvent) (int, error) {
	pr, err := forge.PullRequest(ctx, repo, number)
	if errors.Is(err, vcs.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if pr.State != "open" || pr.HeadSHA != ev.SHA {
		return 0, nil // the forge's head now, not the commit the bot once planned
	}
	unlock := h.Locks.Lock(repo, number)
	defer unlock()
	plans, err := h.Store.ListPlansByPR(ctx, repo.Forge, repo.FullName(), number)
	if err != nil {
		return 0, err
	}
	written := 0
	for _, p := range prstate.CurrentPlans(plans) {
		if p.HeadSHA != ev.SHA {
			continue
		}
		pc, err := prstate.DecodeContext(p)
		if err != nil {
			return written, err
		}
		n, err := h.Report.IntoPipeline(ctx, p, pc, ev.Pipeline)
		written += n
		if err != nil {
			return written, err
		}
	}
	return written, nil
}
