package jobs

import (
	"context"
	"errors"
	"fmt"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
)

// DefaultTokenUser is the basic-auth user name for GitHub installation tokens.
const DefaultTokenUser = "x-access-token"

// checkout puts exactly the commit src.SHA from src.CloneURL into dir, which must be empty, with a detached
// HEAD. It asks for that one commit first (GitHub and GitLab serve any reachable commit, including a fork's
// PR head that no branch points to); when the server does not allow that, it fetches every ref the server
// has and looks for the commit there.
func checkout(ctx context.Context, dir string, src Source) error {
	auth, err := cloneAuth(src)
	if err != nil {
		return err
	}
	hash := plumbing.NewHash(src.SHA)
	repo, err := git.PlainInit(dir, false)
	if err != nil {
		return err
	}
	if _, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{src.CloneURL}}); err != nil {
		return err
	}

	commitOnly := &git.FetchOptions{
		RefSpecs: []config.RefSpec{config.RefSpec(src.SHA + ":refs/dagctl/commit")},
		Depth:    1, // a plan needs the files, not the history
		Auth:     auth,
		Tags:     git.NoTags,
	}
	if err := fetch(ctx, repo, commitOnly); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		everything := &git.FetchOptions{
			RefSpecs: []config.RefSpec{"+refs/*:refs/dagctl/all/*"},
			Auth:     auth,
			Tags:     git.NoTags,
		}
		if err := fetch(ctx, repo, everything); err != nil {
			return fmt.Errorf("fetch: %w", err)
		}
	}
	if _, err := repo.CommitObject(hash); err != nil {
		return fmt.Errorf("commit %s is not in the repository", src.SHA)
	}
	worktree, err := repo.Worktree()
	if err != nil {
		return err
	}
	if err := worktree.Checkout(&git.CheckoutOptions{Hash: hash, Force: true}); err != nil {
		return fmt.Errorf("check out %s: %w", src.SHA, err)
	}
	return nil
}

func fetch(ctx context.Context, repo *git.Repository, opts *git.FetchOptions) error {
	err := repo.FetchContext(ctx, opts)
	if errors.Is(err, git.NoErrAlreadyUpToDate) {
		return nil
	}
	return err
}

// cloneAuth sends the token as HTTP basic auth, the way GitHub and GitLab take installation and OAuth tokens.
func cloneAuth(src Source) (transport.AuthMethod, error) {
	if src.Token == "" {
		return nil, nil
	}
	endpoint, err := transport.NewEndpoint(src.CloneURL)
	if err != nil {
		return nil, err
	}
	switch endpoint.Protocol {
	case "http", "https":
	case "file":
		return nil, nil // a local repository (tests, mirrors) needs no token
	default:
		return nil, fmt.Errorf("a token needs an http(s) clone URL, not %s", endpoint.Protocol)
	}
	user := src.TokenUser
	if user == "" {
		user = DefaultTokenUser
	}
	return &githttp.BasicAuth{Username: user, Password: src.Token}, nil
}

// validSHA reports whether s is a full, lower-case commit id: a job runs exactly one commit, never a name
// that could move.
func validSHA(s string) bool {
	return plumbing.IsHash(s) && s == strings.ToLower(s)
}
