package github_test

import (
	"fmt"
	"testing"
	"time"

	gogit "github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTokenIsCachedAcrossCalls(t *testing.T) {
	e := newEnv(t)
	e.openPR()
	for range 5 {
		_, err := e.inst.PullRequest(e.ctx, e.repo, 1)
		require.NoError(t, err)
		_, err = e.inst.CreateComment(e.ctx, e.repo, 1, "hi")
		require.NoError(t, err)
	}
	token, err := e.inst.CloneToken(e.ctx, e.repo)
	require.NoError(t, err)

	assert.Equal(t, 1, e.tokenRequests(), "one token for many calls")
	tokens := e.fake.Tokens()
	require.Len(t, tokens, 1)
	assert.Equal(t, tokens[0].Token, token)
	assert.Regexp(t, fmt.Sprintf(`^ghs_%d_`, testAppID), token)
	assert.NotEqual(t, 40, len(token), "installation tokens are no longer 40 characters")
	assert.Equal(t, "jwt", e.fake.RequestsMatching("POST", "/app/installations/*/access_tokens")[0].Auth)
}

func TestExpiredTokenIsReplaced(t *testing.T) {
	e := newEnv(t)
	e.openPR()
	_, err := e.inst.PullRequest(e.ctx, e.repo, 1)
	require.NoError(t, err)
	first, err := e.inst.CloneToken(e.ctx, e.repo)
	require.NoError(t, err)

	// Two hours later on GitHub's clock the token is refused; the adapter mints a new one and resends.
	e.fake.Advance(2 * time.Hour)
	e.fake.ResetRequests()
	pr, err := e.inst.PullRequest(e.ctx, e.repo, 1)
	require.NoError(t, err)
	assert.Equal(t, 1, pr.Number)

	var trail []string
	for _, r := range e.fake.Requests() {
		trail = append(trail, fmt.Sprintf("%s %s %d", r.Method, r.Path, r.Status))
	}
	assert.Equal(t, []string{
		"GET /repos/acme/warehouse/pulls/1 401",
		fmt.Sprintf("POST /app/installations/%d/access_tokens 201", testInstallationID),
		"GET /repos/acme/warehouse/pulls/1 200",
	}, trail)

	second, err := e.inst.CloneToken(e.ctx, e.repo)
	require.NoError(t, err)
	assert.NotEqual(t, first, second)
	_, err = e.inst.Comments(e.ctx, e.repo, 1)
	require.NoError(t, err)
	assert.Len(t, e.fake.RequestsMatching("POST", "/app/installations/*/access_tokens"), 1, "the new token is cached")
}

func TestTokenIsRefreshedBeforeItExpires(t *testing.T) {
	e := newEnv(t)
	e.openPR()
	// Tokens that expire within a minute are refreshed before use (ghinstallation's margin), without a 401.
	e.fake.SetTokenTTL(30 * time.Second)
	for range 3 {
		_, err := e.inst.PullRequest(e.ctx, e.repo, 1)
		require.NoError(t, err)
	}
	assert.Equal(t, 3, e.tokenRequests())
	assert.Equal(t, []int{200, 200, 200}, statuses(e.fake.RequestsMatching("GET", "/repos/acme/warehouse/pulls/1")))
}

func TestCloneWithTheInstallationToken(t *testing.T) {
	e := newEnv(t)
	pr := e.openPR()
	token, err := e.inst.CloneToken(e.ctx, e.repo)
	require.NoError(t, err)

	dir := t.TempDir()
	cloned, err := gogit.PlainCloneContext(e.ctx, dir, false, &gogit.CloneOptions{
		URL:           e.repo.CloneURL,
		Auth:          &githttp.BasicAuth{Username: "x-access-token", Password: token},
		ReferenceName: plumbing.NewBranchReferenceName("feature"),
		SingleBranch:  true,
	})
	require.NoError(t, err)
	head, err := cloned.Head()
	require.NoError(t, err)
	assert.Equal(t, pr.HeadSHA, head.Hash().String())

	gitRequests := 0
	for _, r := range e.fake.Requests() {
		if !r.API {
			gitRequests++
			assert.Equal(t, "basic", r.Auth)
		}
	}
	assert.Positive(t, gitRequests, "the clone went through git smart HTTP")

	_, err = gogit.PlainCloneContext(e.ctx, t.TempDir(), false, &gogit.CloneOptions{
		URL:  e.repo.CloneURL,
		Auth: &githttp.BasicAuth{Username: "x-access-token", Password: "ghs_not_a_token"},
	})
	require.Error(t, err, "an unknown token is refused")

	e.fake.Advance(2 * time.Hour)
	_, err = gogit.PlainCloneContext(e.ctx, t.TempDir(), false, &gogit.CloneOptions{
		URL:  e.repo.CloneURL,
		Auth: &githttp.BasicAuth{Username: "x-access-token", Password: token},
	})
	require.Error(t, err, "an expired token is refused")
}

func TestFetchFromAnExistingClone(t *testing.T) {
	e := newEnv(t)
	token, err := e.inst.CloneToken(e.ctx, e.repo)
	require.NoError(t, err)
	auth := &githttp.BasicAuth{Username: "x-access-token", Password: token}
	dir := t.TempDir()
	cloned, err := gogit.PlainCloneContext(e.ctx, dir, false, &gogit.CloneOptions{URL: e.repo.CloneURL, Auth: auth})
	require.NoError(t, err)

	pr := e.openPR()
	err = cloned.FetchContext(e.ctx, &gogit.FetchOptions{Auth: auth, RefSpecs: []gitconfig.RefSpec{"+refs/heads/*:refs/remotes/origin/*"}})
	require.NoError(t, err)
	ref, err := cloned.Reference(plumbing.NewRemoteReferenceName("origin", "feature"), true)
	require.NoError(t, err)
	assert.Equal(t, pr.HeadSHA, ref.Hash().String())
}

// A fork's head is fetched from the base repository as refs/pull/<n>/head: the installation token cannot
// read the fork itself.
func TestFetchForkHeadFromPullRef(t *testing.T) {
	e := newEnv(t)
	pr := e.openPR()
	pr.HeadRepo = "mallory/warehouse"
	e.fr.SetPR(pr)
	token, err := e.inst.CloneToken(e.ctx, e.repo)
	require.NoError(t, err)
	auth := &githttp.BasicAuth{Username: "x-access-token", Password: token}

	got, err := e.inst.PullRequest(e.ctx, e.repo, 1)
	require.NoError(t, err)
	require.True(t, got.Fork)
	_, err = gogit.PlainCloneContext(e.ctx, t.TempDir(), false, &gogit.CloneOptions{URL: got.HeadCloneURL, Auth: auth})
	require.Error(t, err, "the fork is outside the installation")

	cloned, err := gogit.PlainCloneContext(e.ctx, t.TempDir(), false, &gogit.CloneOptions{URL: e.repo.CloneURL, Auth: auth})
	require.NoError(t, err)
	require.NoError(t, cloned.FetchContext(e.ctx, &gogit.FetchOptions{
		Auth: auth, RefSpecs: []gitconfig.RefSpec{"+refs/pull/1/head:refs/remotes/origin/pr/1"},
	}))
	ref, err := cloned.Reference(plumbing.ReferenceName("refs/remotes/origin/pr/1"), true)
	require.NoError(t, err)
	assert.Equal(t, pr.HeadSHA, ref.Hash().String())
}
