package gitlab_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/forgetest/githubfake"
	"github.com/dagctl/dagctl-bot/internal/forgetest/gitlabfake"
	"github.com/dagctl/dagctl-bot/internal/vcs"
	"github.com/dagctl/dagctl-bot/internal/vcs/gitlab"
)

const botUser = "dagctl-bot"

// env is the adapter, configured as the server configures it, over a fake GitLab with one project in a
// subgroup (acme/data/warehouse) backed by a real git repository.
type env struct {
	t       *testing.T
	ctx     context.Context
	fake    *gitlabfake.Fake
	project *gitlabfake.Project
	git     *githubfake.GitRepo // a plain git work tree (the helper is forge-neutral)
	forge   *gitlab.Forge
	token   string
	repo    vcs.Repo
	mrs     int
}

func newEnv(t *testing.T) *env {
	t.Helper()
	fake := gitlabfake.New(t)
	fake.AddUser(gitlabfake.User{Username: botUser, Bot: true})
	token := fake.AddToken(botUser)
	git := githubfake.NewGitRepo(t, "main")
	git.Commit("main", map[string]string{"README.md": "hello\n"}, "initial")
	project := fake.AddProject("acme/data", "warehouse", git.Dir, "main")
	project.SetMember(botUser, gitlabfake.Developer)
	e := &env{t: t, ctx: context.Background(), fake: fake, project: project, git: git, token: token,
		repo: vcs.Repo{Forge: "gitlab", Owner: "acme/data", Name: "warehouse"}}
	e.forge = e.adapter(token)
	return e
}

// adapter is the adapter with another token.
func (e *env) adapter(token string) *gitlab.Forge {
	f, err := gitlab.New(gitlab.Options{BaseURL: e.fake.URL(), Token: token, HTTPClient: e.fake.Client(), Now: e.fake.Now})
	require.NoError(e.t, err)
	return f
}

// openMR commits files on a new branch from main and opens a merge request of it by alice.
func (e *env) openMR(files map[string]string) (int, string) {
	e.mrs++
	branch := fmt.Sprintf("change-%d", e.mrs)
	e.git.Git("checkout", "--quiet", "-b", branch, "main")
	// Written and added at once: a git process per file would take seconds past GitLab's file cap.
	for name, content := range files {
		path := filepath.Join(e.git.Dir, filepath.FromSlash(name))
		require.NoError(e.t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(e.t, os.WriteFile(path, []byte(content), 0o644))
	}
	e.git.Git("add", "--all")
	e.git.Git("commit", "--quiet", "-m", "change on "+branch)
	head := e.git.SHA("HEAD")
	e.git.Git("checkout", "--quiet", "main")
	iid := e.project.SetMR(gitlabfake.MR{Title: branch, Author: "alice", SourceBranch: branch, HeadSHA: head,
		BaseSHA: e.git.SHA("main")})
	return int(iid), head
}
