package github

import (
	"context"
	"fmt"
	"net/http"
	"time"

	gh "github.com/google/go-github/v88/github"

	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// MaxPRFiles is how many files GitHub lists for a pull request at most (shared/forge-limits.md).
const MaxPRFiles = 3000

// CheckCompletedAt reads a check run's completed_at: GitHub's clock, not the bot's.
func (i *Installation) CheckCompletedAt(ctx context.Context, repo vcs.Repo, checkID int64) (time.Time, error) {
	if err := i.checkRepo(repo); err != nil {
		return time.Time{}, err
	}
	run, _, err := i.client.Checks.GetCheckRun(ctx, repo.Owner, repo.Name, checkID)
	if err != nil {
		return time.Time{}, mapError(fmt.Sprintf("get check run %d on %s", checkID, repo.FullName()), err)
	}
	return run.GetCompletedAt().Time, nil
}

// Compare compares base...head (three dots: from their merge base).
func (i *Installation) Compare(ctx context.Context, repo vcs.Repo, base, head string) (vcs.Comparison, error) {
	if err := i.checkRepo(repo); err != nil {
		return vcs.Comparison{}, err
	}
	// One commit per page: only the counts and the merge base are wanted, not the commit list.
	c, _, err := i.client.Repositories.CompareCommits(ctx, repo.Owner, repo.Name, base, head, &gh.ListOptions{PerPage: 1})
	if err != nil {
		return vcs.Comparison{}, mapError(fmt.Sprintf("compare %s...%s on %s", base, head, repo.FullName()), err)
	}
	return vcs.Comparison{MergeBase: c.GetMergeBaseCommit().GetSHA(), Ahead: c.GetAheadBy(), Behind: c.GetBehindBy()}, nil
}

// ChangedFiles lists a pull request's files. GitHub lists at most MaxPRFiles: a list that long is reported
// truncated, since it may be.
func (i *Installation) ChangedFiles(ctx context.Context, repo vcs.Repo, number int) (vcs.FileList, error) {
	if err := i.checkRepo(repo); err != nil {
		return vcs.FileList{}, err
	}
	var out vcs.FileList
	opts := &gh.ListOptions{PerPage: perPage}
	for {
		page, resp, err := i.client.PullRequests.ListFiles(ctx, repo.Owner, repo.Name, number, opts)
		if err != nil {
			return vcs.FileList{}, mapError(fmt.Sprintf("list files of %s#%d", repo.FullName(), number), err)
		}
		for _, f := range page {
			out.Paths = append(out.Paths, f.GetFilename())
			if prev := f.GetPreviousFilename(); prev != "" {
				out.Paths = append(out.Paths, prev) // a rename changes both paths
			}
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	out.Truncated = len(out.Paths) >= MaxPRFiles
	return out, nil
}

// BranchHead is the commit a branch points to.
func (i *Installation) BranchHead(ctx context.Context, repo vcs.Repo, branch string) (string, error) {
	if err := i.checkRepo(repo); err != nil {
		return "", err
	}
	b, resp, err := i.client.Repositories.GetBranch(ctx, repo.Owner, repo.Name, branch, 1)
	if err != nil {
		op := fmt.Sprintf("get branch %s of %s", branch, repo.FullName())
		if resp != nil && resp.StatusCode == http.StatusNotFound {
			// GetBranch follows renames itself and reports a 404 as a plain error, not an ErrorResponse.
			return "", classifyStatus(op, resp.StatusCode, err)
		}
		return "", mapError(op, err)
	}
	return b.GetCommit().GetSHA(), nil
}

// Tree lists a commit's files (blobs) with their blob SHAs, through the recursive trees API.
func (i *Installation) Tree(ctx context.Context, repo vcs.Repo, sha string) (vcs.Tree, error) {
	if err := i.checkRepo(repo); err != nil {
		return vcs.Tree{}, err
	}
	t, _, err := i.client.Git.GetTree(ctx, repo.Owner, repo.Name, sha, true)
	if err != nil {
		return vcs.Tree{}, mapError(fmt.Sprintf("get tree %s of %s", sha, repo.FullName()), err)
	}
	out := vcs.Tree{Files: map[string]string{}, Truncated: t.GetTruncated()}
	for _, e := range t.Entries {
		if e.GetType() == "blob" {
			out.Files[e.GetPath()] = e.GetSHA()
		}
	}
	return out, nil
}

// via calls an installation's method for the repository's installation.
func via[T any](a *App, repo vcs.Repo, call func(*Installation) (T, error)) (T, error) {
	inst, err := a.forRepo(repo)
	if err != nil {
		var zero T
		return zero, err
	}
	return call(inst)
}

// CheckCompletedAt reads a check run's completed_at through the repository's installation.
func (a *App) CheckCompletedAt(ctx context.Context, repo vcs.Repo, checkID int64) (time.Time, error) {
	return via(a, repo, func(i *Installation) (time.Time, error) { return i.CheckCompletedAt(ctx, repo, checkID) })
}

// Compare implements vcs.Forge through the repository's installation.
func (a *App) Compare(ctx context.Context, repo vcs.Repo, base, head string) (vcs.Comparison, error) {
	return via(a, repo, func(i *Installation) (vcs.Comparison, error) { return i.Compare(ctx, repo, base, head) })
}

// ChangedFiles implements vcs.Forge through the repository's installation.
func (a *App) ChangedFiles(ctx context.Context, repo vcs.Repo, number int) (vcs.FileList, error) {
	return via(a, repo, func(i *Installation) (vcs.FileList, error) { return i.ChangedFiles(ctx, repo, number) })
}

// Tree implements vcs.Forge through the repository's installation.
func (a *App) Tree(ctx context.Context, repo vcs.Repo, sha string) (vcs.Tree, error) {
	return via(a, repo, func(i *Installation) (vcs.Tree, error) { return i.Tree(ctx, repo, sha) })
}

// BranchHead implements vcs.Forge through the repository's installation.
func (a *App) BranchHead(ctx context.Context, repo vcs.Repo, branch string) (string, error) {
	return via(a, repo, func(i *Installation) (string, error) { return i.BranchHead(ctx, repo, branch) })
}
