package recovery

import (
	"context"
	"log/slog"
	"strings"
	"sync"

	"github.com/dagctl/dagctl-bot/internal/retry"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// OpenPRs is a forge that lists a repository's open pull requests with their heads (GitHub; GitLab's adapter
// will, having no redelivery API).
type OpenPRs interface {
	OpenPullRequests(ctx context.Context, repo vcs.Repo) ([]vcs.PullRequest, error)
}

// Head names a pull request at one head commit.
type Head struct {
	Forge, Repo string // Repo lower-cased: forges compare names case-insensitively
	PR          int
	SHA         string
}

// HeadOf is the head a pull request is at.
func HeadOf(pr vcs.PullRequest) Head {
	return Head{Forge: pr.Repo.Forge, Repo: strings.ToLower(pr.Repo.FullName()), PR: pr.Number, SHA: pr.HeadSHA}
}

// Unplanned are the open pull requests whose head has no plan and that were not tried at that head before
// (a repository that has not opted in, a draft, plans nothing: it is tried once per head, not every round).
func Unplanned(open []vcs.PullRequest, planned, tried map[Head]bool) []vcs.PullRequest {
	var out []vcs.PullRequest
	for _, pr := range open {
		h := HeadOf(pr)
		if pr.HeadSHA == "" || planned[h] || tried[h] {
			continue
		}
		out = append(out, pr)
	}
	return out
}

// Reconciler plans the open pull requests whose head the bot never planned: their delivery was lost (GitHub
// kept none to redeliver, or the forge has no redelivery).
type Reconciler struct {
	// Forges are the configured forges that list open pull requests, by name.
	Forges func() map[string]OpenPRs
	// Repos are the repositories the bot serves on a forge.
	Repos func(ctx context.Context, forge string) ([]vcs.Repo, error)
	// PlannedHeads are the head commits of a pull request with plans.
	PlannedHeads func(ctx context.Context, repo vcs.Repo, pr int) ([]string, error)
	// Plan plans a pull request as when it is opened (the bot's handler; a head planned meanwhile is skipped
	// there).
	Plan func(ctx context.Context, pr vcs.PullRequest) error
	Log  *slog.Logger

	mu    sync.Mutex
	tried map[Head]bool // this process's: a restart tries once more
}

// Once plans every open pull request whose head has no plan, and returns how many it planned. A repository or
// pull request that fails is logged and the rest are still reconciled.
func (r *Reconciler) Once(ctx context.Context) (int, error) {
	planned := 0
	for name, forge := range r.Forges() {
		repos, err := r.Repos(ctx, name)
		if err != nil {
			return planned, err
		}
		for _, repo := range repos {
			n, err := r.repo(ctx, forge, repo)
			planned += n
			if err != nil {
				if ctx.Err() != nil {
					return planned, ctx.Err()
				}
				r.Log.Warn("reconcile: a repository's open pull requests", "repo", repo.FullName(), "err", err)
			}
		}
	}
	return planned, nil
}

func (r *Reconciler) repo(ctx context.Context, forge OpenPRs, repo vcs.Repo) (int, error) {
	open, err := forge.OpenPullRequests(ctx, repo)
	if err != nil {
		return 0, err
	}
	have := map[Head]bool{}
	for _, pr := range open {
		heads, err := r.PlannedHeads(ctx, pr.Repo, pr.Number)
		if err != nil {
			return 0, err
		}
		for _, sha := range heads {
			h := HeadOf(pr)
			h.SHA = sha
			have[h] = true
		}
	}
	r.mu.Lock()
	if r.tried == nil {
		r.tried = map[Head]bool{}
	}
	forgetClosed(r.tried, repo, open)
	todo := Unplanned(open, have, r.tried)
	for _, pr := range todo {
		r.tried[HeadOf(pr)] = true
	}
	r.mu.Unlock()
	planned := 0
	for _, pr := range todo {
		r.Log.Info("reconcile: planning an open pull request whose head has no plan (its webhook was missed)",
			"repo", repo.FullName(), "pr", pr.Number, "head", pr.HeadSHA)
		if err := r.Plan(ctx, pr); err != nil {
			r.Log.Warn("reconcile: planning a pull request", "repo", repo.FullName(), "pr", pr.Number, "err", err)
			if !retry.IsPermanent(err) {
				// The forge failed, not the PR: the next round tries this head again.
				r.mu.Lock()
				delete(r.tried, HeadOf(pr))
				r.mu.Unlock()
			}
			continue
		}
		planned++
	}
	return planned, nil
}

// forgetClosed drops the tried heads of a repository's pull requests that are no longer open (or have moved
// on), so that what the reconciler remembers stays bounded by the open pull requests.
func forgetClosed(tried map[Head]bool, repo vcs.Repo, open []vcs.PullRequest) {
	current := map[Head]bool{}
	for _, pr := range open {
		current[HeadOf(pr)] = true
	}
	name := strings.ToLower(repo.FullName())
	for h := range tried {
		if h.Forge == repo.Forge && h.Repo == name && !current[h] {
			delete(tried, h)
		}
	}
}
