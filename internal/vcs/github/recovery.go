package github

import (
	"context"
	"errors"
	"fmt"
	"time"

	gh "github.com/google/go-github/v88/github"

	"github.com/dagctl/dagctl-bot/internal/recovery"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// hookDeliveriesPerPage is the most GitHub lists per page.
const hookDeliveriesPerPage = 100

// RecentDeliveries lists the app's webhook delivery attempts from the newest back to since (GET
// /app/hook/deliveries, as the app with its JWT, paginated by cursor), stopping at the first page that reaches
// past it. GitHub keeps about 3 days of them.
func (a *App) RecentDeliveries(ctx context.Context, since time.Time) ([]recovery.Attempt, error) {
	var out []recovery.Attempt
	opts := &gh.ListCursorOptions{PerPage: hookDeliveriesPerPage}
	for {
		page, resp, err := a.client.Apps.ListHookDeliveries(ctx, opts)
		if err != nil {
			return nil, mapError("list hook deliveries", err)
		}
		older := false
		for _, d := range page {
			at := d.GetDeliveredAt().Time
			if at.Before(since) {
				older = true
				continue
			}
			out = append(out, recovery.Attempt{ID: d.GetID(), GUID: d.GetGUID(), At: at, StatusCode: d.GetStatusCode()})
		}
		if older || resp.Cursor == "" || len(page) == 0 {
			return out, nil
		}
		opts.Cursor = resp.Cursor
	}
}

// Redeliver asks GitHub to send a delivery again (POST /app/hook/deliveries/{id}/attempts): the same GUID,
// headers and body. GitHub answers 202 and delivers later.
func (a *App) Redeliver(ctx context.Context, attemptID int64) error {
	_, _, err := a.client.Apps.RedeliverHookDelivery(ctx, attemptID)
	var accepted *gh.AcceptedError
	if errors.As(err, &accepted) {
		return nil // 202: queued
	}
	return mapError("redeliver hook delivery", err)
}

// OpenPullRequests lists the repository's open pull requests with their heads, for the reconcile.
func (i *Installation) OpenPullRequests(ctx context.Context, repo vcs.Repo) ([]vcs.PullRequest, error) {
	if err := i.checkRepo(repo); err != nil {
		return nil, err
	}
	var out []vcs.PullRequest
	opts := &gh.PullRequestListOptions{State: "open", ListOptions: gh.ListOptions{PerPage: perPage}}
	for {
		page, resp, err := i.client.PullRequests.List(ctx, repo.Owner, repo.Name, opts)
		if err != nil {
			return nil, mapError(fmt.Sprintf("list open pull requests of %s", repo.FullName()), err)
		}
		for _, pr := range page {
			out = append(out, pullRequest(repo, pr))
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opts.Page = resp.NextPage
	}
}

// OpenPullRequests lists the repository's open pull requests through its installation.
func (a *App) OpenPullRequests(ctx context.Context, repo vcs.Repo) ([]vcs.PullRequest, error) {
	inst, err := a.forRepo(repo)
	if err != nil {
		return nil, err
	}
	return inst.OpenPullRequests(ctx, repo)
}
