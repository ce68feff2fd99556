package jobrun

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/forgetest/githubfake"
	"github.com/dagctl/dagctl-bot/internal/forgetest/gitlabfake"
	"github.com/dagctl/dagctl-bot/internal/forgetest/memforge"
	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/vcs"
	gladapter "github.com/dagctl/dagctl-bot/internal/vcs/gitlab"
)

// A job clones with the forge's token under the forge's user name: GitLab (and gitlabfake's git) refuses a token
// sent as GitHub's x-access-token, so a GitLab job fetches as oauth2, with the clone token, never the api token.
func TestJobsFetchWithTheForgesCloneUser(t *testing.T) {
	fake := gitlabfake.New(t)
	apiToken := fake.AddToken("bot", gitlabfake.ScopeAPI)
	cloneToken := fake.AddToken("bot", gitlabfake.ScopeReadRepository)
	git := githubfake.NewGitRepo(t, "main")
	sha := git.Commit("main", map[string]string{"README.md": "hi\n"}, "initial")
	project := fake.AddProject("acme", "warehouse", git.Dir, "main")
	project.SetMember("bot", gitlabfake.Developer)
	lab, err := gladapter.New(gladapter.Options{BaseURL: fake.URL(), Token: apiToken, CloneToken: cloneToken})
	require.NoError(t, err)
	repo := vcs.Repo{Forge: gladapter.Name, Owner: "acme", Name: "warehouse", DefaultBranch: "main", CloneURL: project.CloneURL()}

	r := &Runner{}
	src, err := r.source(context.Background(), lab, repo, sha, nil)
	require.NoError(t, err)
	assert.Equal(t, jobs.Source{CloneURL: project.CloneURL(), SHA: sha, Token: cloneToken, TokenUser: "oauth2"}, src)

	other, err := r.source(context.Background(), memforge.New(), repo, sha, nil)
	require.NoError(t, err)
	assert.Empty(t, other.TokenUser, "a forge without a user of its own takes jobs.DefaultTokenUser")
}
