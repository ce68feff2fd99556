package gitlabfake_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	gl "gitlab.com/gitlab-org/api/client-go"
	"golang.org/x/oauth2"

	"github.com/dagctl/dagctl-bot/internal/forgetest/githubfake"
	"github.com/dagctl/dagctl-bot/internal/forgetest/gitlabfake"
)

type world struct {
	fake    *gitlabfake.Fake
	project *gitlabfake.Project
	git     *githubfake.GitRepo
	client  *gl.Client
	token   string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	fake := gitlabfake.New(t)
	token := fake.AddToken("bot")
	git := githubfake.NewGitRepo(t, "main")
	git.Commit("main", map[string]string{"README.md": "hi\n"}, "initial")
	project := fake.AddProject("acme/data", "warehouse", git.Dir, "main")
	project.SetMember("bot", gitlabfake.Developer)
	return &world{fake: fake, project: project, git: git, client: clientOf(t, fake, token), token: token}
}

func clientOf(t *testing.T, fake *gitlabfake.Fake, token string) *gl.Client {
	c, err := gl.NewClient(token, gl.WithBaseURL(fake.APIURL()), gl.WithHTTPClient(fake.Client()), gl.WithoutRetries())
	require.NoError(t, err)
	return c
}

func TestProjectsAreFoundByIDAndByTheirEncodedPath(t *testing.T) {
	w := newWorld(t)
	byID, _, err := w.client.Projects.GetProject(w.project.ID, nil)
	require.NoError(t, err)
	byPath, _, err := w.client.Projects.GetProject("acme/data/warehouse", nil)
	require.NoError(t, err)
	assert.Equal(t, byID.ID, byPath.ID)
	assert.Equal(t, "acme/data/warehouse", byPath.PathWithNamespace)
	assert.Equal(t, "acme/data", byPath.Namespace.FullPath)
	assert.NotEmpty(t, w.fake.RequestsMatching("GET", "/projects/acme%2Fdata%2Fwarehouse"), "client-go encodes the path")

	stranger := clientOf(t, w.fake, w.fake.AddToken("stranger"))
	_, _, err = stranger.Projects.GetProject("acme/data/warehouse", nil)
	assert.ErrorIs(t, err, gl.ErrNotFound, "a project is hidden from non-members")
}

func TestTokensAuthenticateByHeaderOrBearer(t *testing.T) {
	w := newWorld(t)
	u, _, err := w.client.Users.CurrentUser()
	require.NoError(t, err)
	assert.Equal(t, "bot", u.Username)

	bearer, err := gl.NewAuthSourceClient(gl.OAuthTokenSource{TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: w.token})},
		gl.WithBaseURL(w.fake.APIURL()), gl.WithHTTPClient(w.fake.Client()), gl.WithoutRetries())
	require.NoError(t, err)
	u, _, err = bearer.Users.CurrentUser()
	require.NoError(t, err)
	assert.Equal(t, "bot", u.Username)

	_, resp, err := clientOf(t, w.fake, "glpat-bad").Users.CurrentUser()
	require.Error(t, err)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	_, resp, err = clientOf(t, w.fake, w.fake.AddToken("bot", gitlabfake.ScopeReadRepository)).Users.CurrentUser()
	require.Error(t, err)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "a read_repository token cannot use the API")

	v, _, err := clientOf(t, w.fake, "").Version.GetVersion()
	require.NoError(t, err)
	assert.NotEmpty(t, v.Version)
}

func TestListsArePagedWithGitLabsHeaders(t *testing.T) {
	w := newWorld(t)
	iid := w.project.SetMR(gitlabfake.MR{Title: "t", Author: "alice", SourceBranch: "main", HeadSHA: w.git.SHA("main"), BaseSHA: w.git.SHA("main")})
	for range 5 {
		w.project.AddNote(iid, "alice", "hello")
	}
	notes, resp, err := w.client.Notes.ListMergeRequestNotes(w.project.ID, iid, &gl.ListMergeRequestNotesOptions{ListOptions: gl.ListOptions{PerPage: 2, Page: 2}})
	require.NoError(t, err)
	assert.Len(t, notes, 2)
	assert.Equal(t, int64(3), resp.NextPage)
	assert.Equal(t, int64(1), resp.PreviousPage)
	assert.Equal(t, int64(5), resp.TotalItems)
	assert.Equal(t, int64(3), resp.TotalPages)
	_, resp, err = w.client.Notes.ListMergeRequestNotes(w.project.ID, iid, &gl.ListMergeRequestNotesOptions{ListOptions: gl.ListOptions{PerPage: 2, Page: 3}})
	require.NoError(t, err)
	assert.Equal(t, int64(0), resp.NextPage, "the last page has no next")
}

// Commit statuses follow GitLab's model: a POST finds the pending or running status of the commit's pipeline,
// name, ref and user, else starts one (the older one retried); states move by GitLab's state machine, and the
// times are the fake's.
func TestCommitStatusesFollowGitLabsModel(t *testing.T) {
	w := newWorld(t)
	sha := w.git.SHA("main")
	name := "dagctl/plan: dev"
	post := func(state gl.BuildStateValue) (*gl.CommitStatus, error) {
		s, _, err := w.client.Commits.SetCommitStatus(w.project.ID, sha, &gl.SetCommitStatusOptions{State: state, Name: &name})
		return s, err
	}
	pending, err := post(gl.Pending)
	require.NoError(t, err)
	_, err = post(gl.Pending)
	var refused *gl.ErrorResponse
	require.True(t, errors.As(err, &refused))
	assert.Equal(t, http.StatusBadRequest, refused.Response.StatusCode)
	assert.Contains(t, refused.Message, "Cannot transition status via :enqueue from :pending")

	w.fake.Advance(time.Minute)
	running, err := post(gl.Running)
	require.NoError(t, err)
	assert.Equal(t, pending.ID, running.ID, "the pending status, moved on")
	assert.Equal(t, w.fake.Now(), running.StartedAt.UTC())
	assert.Nil(t, running.FinishedAt)

	w.fake.Advance(time.Minute)
	done, err := post(gl.Success)
	require.NoError(t, err)
	assert.Equal(t, pending.ID, done.ID)
	assert.Equal(t, w.fake.Now(), done.FinishedAt.UTC())

	again, err := post(gl.Pending)
	require.NoError(t, err)
	assert.NotEqual(t, done.ID, again.ID, "a finished status is followed by a new one")
	assert.Equal(t, done.PipelineID, again.PipelineID, "in the same pipeline")

	latest, _, err := w.client.Commits.GetCommitStatuses(w.project.ID, sha, nil)
	require.NoError(t, err)
	require.Len(t, latest, 1)
	assert.Equal(t, again.ID, latest[0].ID)
	all, _, err := w.client.Commits.GetCommitStatuses(w.project.ID, sha, &gl.GetCommitStatusesOptions{All: gl.Ptr(true)})
	require.NoError(t, err)
	assert.Len(t, all, 2)

	w.project.SetMember("reporter", gitlabfake.Reporter)
	_, _, err = clientOf(t, w.fake, w.fake.AddToken("reporter")).Commits.SetCommitStatus(w.project.ID, sha,
		&gl.SetCommitStatusOptions{State: gl.Success, Name: &name})
	require.True(t, errors.As(err, &refused))
	assert.Equal(t, http.StatusForbidden, refused.Response.StatusCode, "a Reporter cannot post statuses")
}

func TestApprovedAtIsShownOnlyWhenTheFakeIsTold(t *testing.T) {
	w := newWorld(t)
	iid := w.project.SetMR(gitlabfake.MR{Title: "t", Author: "alice", SourceBranch: "main", HeadSHA: w.git.SHA("main"), BaseSHA: w.git.SHA("main")})
	w.project.Approve(iid, "bob")
	get := func() map[string]any {
		req, err := w.client.NewRequest(http.MethodGet, "projects/acme%2Fdata%2Fwarehouse/merge_requests/1/approvals", nil, nil)
		require.NoError(t, err)
		var body struct {
			ApprovedBy []map[string]any `json:"approved_by"`
		}
		_, err = w.client.Do(req, &body)
		require.NoError(t, err)
		require.Len(t, body.ApprovedBy, 1)
		return body.ApprovedBy[0]
	}
	assert.NotContains(t, get(), "approved_at")
	w.fake.ShowApprovedAt(true)
	assert.Contains(t, get(), "approved_at")
}

func TestOutagesAndRandomFailures(t *testing.T) {
	w := newWorld(t)
	w.fake.Outage(time.Hour, gitlabfake.Failure{Status: http.StatusServiceUnavailable, Message: "503 Service Unavailable"})
	_, resp, err := w.client.Users.CurrentUser()
	require.Error(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	w.fake.Advance(time.Hour)
	_, _, err = w.client.Users.CurrentUser()
	require.NoError(t, err, "the outage ends on the fake's clock")

	// Every write fails after it was handled: the note is there, its answer lost.
	iid := w.project.SetMR(gitlabfake.MR{Title: "t", Author: "alice", SourceBranch: "main", HeadSHA: w.git.SHA("main"), BaseSHA: w.git.SHA("main")})
	w.fake.FailRandomly(gitlabfake.RandomFailures{Share: 1, AfterHandling: 1, Seed: 1})
	_, resp, err = w.client.Notes.CreateMergeRequestNote(w.project.ID, iid, &gl.CreateMergeRequestNoteOptions{Body: gl.Ptr("hello")})
	require.Error(t, err)
	assert.Equal(t, http.StatusBadGateway, resp.StatusCode)
	assert.Len(t, w.project.Notes(iid), 1)
	assert.Equal(t, 1, w.fake.RandomlyFailed())
}
