package gitlab_test

import (
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/forgetest/githubfake"
	"github.com/dagctl/dagctl-bot/internal/forgetest/gitlabfake"
	"github.com/dagctl/dagctl-bot/internal/vcs"
	"github.com/dagctl/dagctl-bot/internal/vcs/gitlab"
)

func TestStatusesMapToGitLabsCommitStatuses(t *testing.T) {
	cases := []struct {
		state vcs.StatusState
		shown string
		desc  string
	}{
		{vcs.StatusQueued, "pending", "x"},
		{vcs.StatusRunning, "running", "x"},
		{vcs.StatusSuccess, "success", "x"},
		{vcs.StatusFailure, "failed", "x"},
		{vcs.StatusNeutral, "success", "Neutral: x"},
		{vcs.StatusCancelled, "canceled", "x"},
		{vcs.StatusSkipped, "skipped", "x"},
		{vcs.StatusBlocked, "pending", "x"},
	}
	e := newEnv(t)
	_, head := e.openMR(map[string]string{"models/a.sql": "select 1\n"})
	for _, c := range cases {
		name := "dagctl/plan: " + string(c.state)
		_, err := e.forge.PutStatus(e.ctx, e.repo, vcs.Status{Name: name, CommitSHA: head, State: c.state,
			Description: "x", DetailsURL: "https://bot.test/runs/1/sig", Output: &vcs.StatusOutput{Title: "x", Summary: "dropped"}}, "")
		require.NoError(t, err)
		got := e.project.Statuses(head)
		last := got[len(got)-1]
		assert.Equal(t, name, last.Name)
		assert.Equal(t, c.shown, last.Status, c.state)
		assert.Equal(t, c.desc, last.Description, c.state)
		assert.Equal(t, "https://bot.test/runs/1/sig", last.TargetURL)
	}
	// Every status joined one pipeline GitLab created for the commit (no pipeline ran): the one "Pipelines must
	// succeed" looks at.
	assert.Len(t, e.project.Pipelines(head), 1)
}

func TestAStatusJoinsTheCommitsNewestPipeline(t *testing.T) {
	e := newEnv(t)
	_, head := e.openMR(map[string]string{"models/a.sql": "select 1\n"})
	e.project.AddPipeline(head, "change-1")
	newest := e.project.AddPipeline(head, "change-1")
	_, err := e.forge.PutStatus(e.ctx, e.repo, vcs.Status{Name: "dagctl/plan: dev", CommitSHA: head, State: vcs.StatusBlocked, Description: "Waiting"}, "")
	require.NoError(t, err)
	got := e.project.Statuses(head)
	require.Len(t, got, 1)
	assert.Equal(t, newest, got[0].PipelineID)
	assert.Equal(t, "change-1", got[0].Ref)
}

func TestALongDescriptionIsCutToGitLabsLimit(t *testing.T) {
	e := newEnv(t)
	_, head := e.openMR(map[string]string{"models/a.sql": "select 1\n"})
	long := strings.Repeat("é", 300) + "\nsecond line"
	_, err := e.forge.PutStatus(e.ctx, e.repo, vcs.Status{Name: "dagctl/plan: dev", CommitSHA: head, State: vcs.StatusFailure, Description: long}, "")
	require.NoError(t, err)
	got := e.project.Statuses(head)[0].Description
	assert.Equal(t, gitlab.MaxDescriptionChars, len([]rune(got)))
	assert.True(t, strings.HasSuffix(got, "…"))
}

// A resend of a state the status already has (its first answer lost) is refused by GitLab's state machine; the
// adapter adopts the status GitLab has instead of dropping the write as invalid.
func TestAResentStateAdoptsTheStatusGitLabHas(t *testing.T) {
	e := newEnv(t)
	_, head := e.openMR(map[string]string{"models/a.sql": "select 1\n"})
	st := vcs.Status{Name: "dagctl/plan: dev", CommitSHA: head, State: vcs.StatusRunning, Description: "Planning"}
	first, err := e.forge.PutStatus(e.ctx, e.repo, st, "")
	require.NoError(t, err)
	again, err := e.forge.PutStatus(e.ctx, e.repo, st, first)
	require.NoError(t, err)
	assert.Equal(t, first, again)
	assert.Len(t, e.project.Statuses(head), 1)
	assert.NotEmpty(t, e.fake.RequestsMatching("POST", "/projects/*/statuses/*"))
	var refused int
	for _, r := range e.fake.RequestsMatching("POST", "/projects/*/statuses/*") {
		if r.Status == http.StatusBadRequest {
			refused++
		}
	}
	assert.Equal(t, 1, refused, "GitLab refused the resend; the adapter read the status instead")
}

// A status someone else posted under the bot's name (a Developer's token, the MR's own CI job) is not the
// bot's: its time is not the time the bot's result was posted.
func TestStatusPostedAtReadsTheBotsOwnStatus(t *testing.T) {
	e := newEnv(t)
	_, head := e.openMR(map[string]string{"models/a.sql": "select 1\n"})
	st := vcs.Status{Name: "dagctl/plan: prod", CommitSHA: head, State: vcs.StatusRunning, Description: "Planning"}
	ref, err := e.forge.PutStatus(e.ctx, e.repo, st, "")
	require.NoError(t, err)

	e.project.SetMember("mallory", gitlabfake.Developer)
	mallory := e.adapter(e.fake.AddToken("mallory"))
	_, err = mallory.PutStatus(e.ctx, e.repo, vcs.Status{Name: st.Name, CommitSHA: head, State: vcs.StatusSuccess, Description: "forged"}, "")
	require.NoError(t, err)

	posted, err := e.forge.StatusPostedAt(e.ctx, e.repo, ref)
	require.NoError(t, err)
	assert.True(t, posted.IsZero(), "the bot's status is still running")

	e.fake.Advance(time.Hour)
	st.State = vcs.StatusSuccess
	ref, err = e.forge.PutStatus(e.ctx, e.repo, st, ref)
	require.NoError(t, err)
	posted, err = e.forge.StatusPostedAt(e.ctx, e.repo, ref)
	require.NoError(t, err)
	assert.Equal(t, e.fake.Now(), posted)
}

func TestErrorsMapToThePortsSentinels(t *testing.T) {
	e := newEnv(t)
	number, _ := e.openMR(map[string]string{"models/a.sql": "select 1\n"})

	_, err := e.forge.PullRequest(e.ctx, e.repo, 999)
	assert.ErrorIs(t, err, vcs.ErrNotFound)

	_, err = e.adapter("glpat-not-a-token").PullRequest(e.ctx, e.repo, number)
	assert.ErrorIs(t, err, vcs.ErrPermission, "a bad token is 401")

	readOnly := e.adapter(e.fake.AddToken(botUser, gitlabfake.ScopeReadRepository))
	_, err = readOnly.PullRequest(e.ctx, e.repo, number)
	assert.ErrorIs(t, err, vcs.ErrPermission, "a clone token cannot use the API (403)")

	_, err = e.forge.CreateComment(e.ctx, e.repo, number, strings.Repeat("x", gitlab.MaxNoteChars+1))
	assert.ErrorIs(t, err, vcs.ErrInvalid, "a note over GitLab's limit is 400")
	_, err = e.forge.CreateComment(e.ctx, e.repo, number, strings.Repeat("x", gitlab.MaxNoteChars))
	assert.NoError(t, err, "a note at the limit is taken")

	e.fake.FailNext("GET", "/projects/*/merge_requests/*", 1, gitlabfake.RateLimit(90*time.Second))
	_, err = e.forge.PullRequest(e.ctx, e.repo, number)
	var limited *vcs.RateLimited
	require.ErrorAs(t, err, &limited)
	assert.Equal(t, e.fake.Now().Add(90*time.Second).Unix(), limited.Reset.Unix())
	assert.ErrorIs(t, err, vcs.ErrRateLimited)

	e.fake.FailNext("GET", "/projects/*/merge_requests/*", 1, gitlabfake.Failure{Status: http.StatusTooManyRequests, RetryAfter: 30 * time.Second, Message: "Retry later"})
	_, err = e.forge.PullRequest(e.ctx, e.repo, number)
	require.ErrorAs(t, err, &limited)
	assert.Equal(t, e.fake.Now().Add(30*time.Second).Unix(), limited.Reset.Unix(), "Retry-After alone, on the adapter's clock")

	before := len(e.fake.Requests())
	e.fake.FailNext("GET", "/projects/*/merge_requests/*", 5, gitlabfake.Failure{Status: http.StatusBadGateway, Message: "502 Bad Gateway"})
	_, err = e.forge.PullRequest(e.ctx, e.repo, number)
	require.Error(t, err)
	for _, sentinel := range []error{vcs.ErrNotFound, vcs.ErrPermission, vcs.ErrInvalid, vcs.ErrRateLimited} {
		assert.False(t, errors.Is(err, sentinel), "a 502 is transient, not %v", sentinel)
	}
	assert.Len(t, e.fake.Requests(), before+1, "the client does not retry: the bot's retry policy does")
}

func TestListsFollowEveryPage(t *testing.T) {
	e := newEnv(t)
	files := map[string]string{}
	for i := range 130 {
		files[fmt.Sprintf("models/m%03d.sql", i)] = fmt.Sprintf("select %d\n", i)
	}
	number, head := e.openMR(files)
	for i := range 130 {
		e.project.AddNote(int64(number), "alice", fmt.Sprintf("note %d", i))
	}
	comments, err := e.forge.Comments(e.ctx, e.repo, number)
	require.NoError(t, err)
	require.Len(t, comments, 130)
	assert.Equal(t, "note 0", comments[0].Body, "oldest first")
	assert.Equal(t, "note 129", comments[129].Body)

	changed, err := e.forge.ChangedFiles(e.ctx, e.repo, number)
	require.NoError(t, err)
	assert.Len(t, changed.Paths, 130)
	assert.False(t, changed.Truncated)

	tree, err := e.forge.Tree(e.ctx, e.repo, head)
	require.NoError(t, err)
	assert.Len(t, tree.Files, 131) // and the README
	assert.Equal(t, strings.TrimSpace(e.git.Git("rev-parse", head+":models/m007.sql")), tree.Files["models/m007.sql"])

	for _, p := range []string{"/projects/*/merge_requests/*/notes", "/projects/*/merge_requests/*/diffs", "/projects/*/repository/tree"} {
		pages := map[string]bool{}
		for _, r := range e.fake.RequestsMatching("GET", p) {
			pages[r.Query.Get("page")] = true
		}
		assert.True(t, pages["2"], "%s: the second page was asked for", p)
	}

	for range 105 {
		e.openMR(map[string]string{"x.sql": "select 1\n"})
	}
	open, err := e.forge.OpenPullRequests(e.ctx, e.repo)
	require.NoError(t, err)
	assert.Len(t, open, 106)
}

func TestAMergeRequestFromAForkIsAFork(t *testing.T) {
	e := newEnv(t)
	forkGit := githubfake.NewGitRepo(t, "main")
	forkGit.Git("pull", "--quiet", e.git.Dir, "main")
	head := forkGit.Commit("evil", map[string]string{"models/a.sql": "select 666\n"}, "from a fork")
	fork := e.project.Fork("mallory", "warehouse", forkGit.Dir)
	fork.SetMember(botUser, gitlabfake.Reporter)
	iid := e.project.SetMR(gitlabfake.MR{Title: "fork", Author: "mallory", SourceProject: fork, SourceBranch: "evil",
		HeadSHA: head, BaseSHA: e.git.SHA("main")})

	pr, err := e.forge.PullRequest(e.ctx, e.repo, int(iid))
	require.NoError(t, err)
	assert.True(t, pr.Fork)
	assert.Equal(t, fork.CloneURL(), pr.HeadCloneURL)
	assert.Equal(t, e.project.CloneURL(), pr.Repo.CloneURL)
	assert.Equal(t, head, pr.HeadSHA)

	// Its head is on no branch of the target project, only on the merge request's head ref: the status names it.
	_, err = e.forge.PutStatus(e.ctx, e.repo, vcs.Status{Name: "dagctl/plan: dev", CommitSHA: head, State: vcs.StatusRunning, Description: "Planning"}, "")
	require.NoError(t, err)
	statuses := e.project.Statuses(head)
	require.Len(t, statuses, 1)
	assert.Equal(t, fmt.Sprintf("refs/merge-requests/%d/head", iid), statuses[0].Ref)
	orphan := forkGit.Commit("orphan", map[string]string{"x.sql": "select 0\n"}, "in no merge request")
	_, err = e.forge.PutStatus(e.ctx, e.repo, vcs.Status{Name: "dagctl/plan: dev", CommitSHA: orphan, State: vcs.StatusRunning}, "")
	assert.ErrorIs(t, err, vcs.ErrNotFound)

	// A fork the bot cannot read (private, deleted) is still a fork, with no URL to fetch from.
	fork.SetMember(botUser, 0)
	pr, err = e.forge.PullRequest(e.ctx, e.repo, int(iid))
	require.NoError(t, err)
	assert.True(t, pr.Fork)
	assert.Empty(t, pr.HeadCloneURL)

	open, err := e.forge.OpenPullRequests(e.ctx, e.repo)
	require.NoError(t, err)
	require.Len(t, open, 1)
	assert.True(t, open[0].Fork)
	assert.Empty(t, open[0].HeadCloneURL)
}

func TestMergeRequestFields(t *testing.T) {
	e := newEnv(t)
	number, head := e.openMR(map[string]string{"models/a.sql": "select 1\n"})
	pr, err := e.forge.PullRequest(e.ctx, e.repo, number)
	require.NoError(t, err)
	assert.Equal(t, vcs.PullRequest{
		Repo:   vcs.Repo{Forge: "gitlab", Owner: "acme/data", Name: "warehouse", CloneURL: e.project.CloneURL(), DefaultBranch: "main"},
		Number: number, Title: "change-1", Author: "alice", HeadSHA: head, BaseSHA: e.git.SHA("main"),
		HeadRef: "change-1", BaseRef: "main", HeadCloneURL: e.project.CloneURL(), State: "open",
		Mergeable: ptr(true), URL: e.project.WebURL() + "/-/merge_requests/1",
	}, pr)

	yes, no := ptr(true), ptr(false)
	for _, c := range []struct {
		name      string
		mr        func(*gitlabfake.MR)
		draft     bool
		mergeable *bool
	}{
		{"draft", func(m *gitlabfake.MR) { m.Draft = true }, true, yes},
		{"a Draft: title", func(m *gitlabfake.MR) { m.Title = "Draft: wip" }, true, yes},
		{"conflicts", func(m *gitlabfake.MR) { m.HasConflicts = true }, false, no},
		{"has_conflicts alone", func(m *gitlabfake.MR) { m.HasConflicts, m.DetailedMergeStatus = true, "need_rebase" }, false, no},
		{"a pipeline to pass is no conflict", func(m *gitlabfake.MR) { m.DetailedMergeStatus = "ci_must_pass" }, false, yes},
		{"approvals missing is no conflict", func(m *gitlabfake.MR) { m.DetailedMergeStatus = "not_approved" }, false, yes},
		{"still checking", func(m *gitlabfake.MR) { m.DetailedMergeStatus = "checking" }, false, nil},
	} {
		mr, _ := e.project.MR(int64(number))
		mr.Draft, mr.HasConflicts, mr.DetailedMergeStatus, mr.Title = false, false, "", "change-1"
		c.mr(&mr)
		e.project.SetMR(mr)
		pr, err := e.forge.PullRequest(e.ctx, e.repo, number)
		require.NoError(t, err)
		assert.Equal(t, c.draft, pr.Draft, c.name)
		assert.Equal(t, c.mergeable, pr.Mergeable, c.name)
	}

	mr, _ := e.project.MR(int64(number))
	mr.State, mr.SquashCommit = "merged", "1111111111111111111111111111111111111111"
	e.project.SetMR(mr)
	pr, err = e.forge.PullRequest(e.ctx, e.repo, number)
	require.NoError(t, err)
	assert.True(t, pr.Merged)
	assert.Equal(t, "closed", pr.State)
	assert.Equal(t, mr.SquashCommit, pr.MergeCommitSHA, "a squash fast-forwarded: the squash commit")
	mr.MergeCommit = "2222222222222222222222222222222222222222"
	e.project.SetMR(mr)
	pr, err = e.forge.PullRequest(e.ctx, e.repo, number)
	require.NoError(t, err)
	assert.Equal(t, mr.MergeCommit, pr.MergeCommitSHA)
}

func ptr[T any](v T) *T { return &v }

// Only a note's author may edit or delete it: the bot's sticky note is its own, and a note that looks like it is
// not.
func TestOnlyTheNotesAuthorMayEditIt(t *testing.T) {
	e := newEnv(t)
	number, _ := e.openMR(map[string]string{"models/a.sql": "select 1\n"})
	theirs := e.project.AddNote(int64(number), "alice", "<!-- dagctl-bot:sticky -->")
	ours, err := e.forge.CreateComment(e.ctx, e.repo, number, "<!-- dagctl-bot:sticky -->\nplan")
	require.NoError(t, err)

	comments, err := e.forge.Comments(e.ctx, e.repo, number)
	require.NoError(t, err)
	require.Len(t, comments, 2)
	theirID := comments[0].ID
	assert.False(t, comments[0].ByBot)
	assert.Equal(t, ours, comments[1].ID)
	assert.True(t, comments[1].ByBot)
	_, noteID, err := gitlab.SplitCommentID(theirID)
	require.NoError(t, err)
	assert.Equal(t, theirs, noteID)

	assert.ErrorIs(t, e.forge.UpdateComment(e.ctx, e.repo, theirID, "taken over"), vcs.ErrPermission)
	assert.ErrorIs(t, e.forge.DeleteComment(e.ctx, e.repo, theirID), vcs.ErrPermission)
	require.NoError(t, e.forge.UpdateComment(e.ctx, e.repo, ours, "<!-- dagctl-bot:sticky -->\nplan 2"))
	notes := e.project.Notes(int64(number))
	assert.Equal(t, "<!-- dagctl-bot:sticky -->", notes[0].Body)
	assert.Equal(t, "<!-- dagctl-bot:sticky -->\nplan 2", notes[1].Body)

	require.NoError(t, e.forge.React(e.ctx, e.repo, theirID, vcs.ReactionEyes))
	require.NoError(t, e.forge.React(e.ctx, e.repo, theirID, vcs.ReactionEyes), "awarding twice is no error")
	assert.Equal(t, []gitlabfake.Award{{ID: e.project.Notes(int64(number))[0].Awards[0].ID, Name: "eyes", User: botUser}},
		e.project.Notes(int64(number))[0].Awards)

	require.NoError(t, e.forge.DeleteComment(e.ctx, e.repo, ours))
	assert.ErrorIs(t, e.forge.DeleteComment(e.ctx, e.repo, ours), vcs.ErrNotFound)
	assert.ErrorIs(t, e.forge.React(e.ctx, e.repo, ours, vcs.ReactionEyes), vcs.ErrNotFound)
}

func TestCommentIDsNameTheMergeRequestAndTheNote(t *testing.T) {
	id, err := gitlab.CommentID(7, 2_345_678_901)
	require.NoError(t, err)
	iid, note, err := gitlab.SplitCommentID(id)
	require.NoError(t, err)
	assert.Equal(t, [2]int64{7, 2_345_678_901}, [2]int64{iid, note})
	_, err = gitlab.CommentID(7, 1<<41)
	assert.Error(t, err)
	_, _, err = gitlab.SplitCommentID(12345) // a bare note id names no merge request
	assert.Error(t, err)
}

func TestPermissionsComeFromAccessLevels(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		level int
		want  vcs.Permission
	}{
		{gitlabfake.Owner, vcs.PermissionAdmin}, {gitlabfake.Maintainer, vcs.PermissionAdmin},
		{gitlabfake.Developer, vcs.PermissionWrite}, {gitlabfake.Reporter, vcs.PermissionRead},
		{gitlabfake.Planner, vcs.PermissionRead}, {gitlabfake.Guest, vcs.PermissionRead},
	} {
		user := fmt.Sprintf("user%d", c.level)
		e.project.SetMember(user, c.level)
		got, err := e.forge.Permission(e.ctx, e.repo, user)
		require.NoError(t, err)
		assert.Equal(t, c.want, got, "level %d", c.level)
	}
	e.fake.AddUser(gitlabfake.User{Username: "stranger"})
	got, err := e.forge.Permission(e.ctx, e.repo, "stranger")
	require.NoError(t, err)
	assert.Equal(t, vcs.PermissionNone, got, "not a member")
	got, err = e.forge.Permission(e.ctx, e.repo, "nobody-at-all")
	require.NoError(t, err)
	assert.Equal(t, vcs.PermissionNone, got, "no such user")

	// Inherited from a parent group: a Maintainer of acme is a Maintainer of acme/data/warehouse.
	e.fake.SetGroupMember("acme", "carol", gitlabfake.Maintainer)
	got, err = e.forge.Permission(e.ctx, e.repo, "carol")
	require.NoError(t, err)
	assert.Equal(t, vcs.PermissionAdmin, got)

	e.fake.SetGroupMember("acme/data", botUser, gitlabfake.Reporter) // the bot sees the groups it is in
	e.fake.SetGroupMember("acme/data/approvers", "dave", gitlabfake.Developer)
	in, err := e.forge.InTeam(e.ctx, e.repo, "acme/data/approvers", "dave")
	require.NoError(t, err)
	assert.True(t, in)
	in, err = e.forge.InTeam(e.ctx, e.repo, "acme/data/approvers", "carol")
	require.NoError(t, err)
	assert.True(t, in, "a member of a parent group is a member of the subgroup")
	in, err = e.forge.InTeam(e.ctx, e.repo, "acme/data/approvers", "stranger")
	require.NoError(t, err)
	assert.False(t, in)
	in, err = e.forge.InTeam(e.ctx, e.repo, "no/such/group", "dave")
	require.NoError(t, err)
	assert.False(t, in)
}

func TestReviewsAreApprovals(t *testing.T) {
	e := newEnv(t)
	number, _ := e.openMR(map[string]string{"models/a.sql": "select 1\n"})
	at := e.project.Approve(int64(number), "bob")
	reviews, err := e.forge.Reviews(e.ctx, e.repo, number)
	require.NoError(t, err)
	require.Len(t, reviews, 1)
	assert.Equal(t, "bob", reviews[0].User)
	assert.Equal(t, vcs.ReviewApproved, reviews[0].State)
	assert.Empty(t, reviews[0].CommitSHA)
	assert.True(t, reviews[0].SubmittedAt.IsZero(), "this GitLab says no time")
	assert.Equal(t, vcs.ReviewFacts{}, e.forge.ReviewFacts())

	e.fake.ShowApprovedAt(true)
	reviews, err = e.forge.Reviews(e.ctx, e.repo, number)
	require.NoError(t, err)
	assert.True(t, reviews[0].SubmittedAt.Equal(at.Truncate(time.Millisecond)), "approved_at %s, approved %s", reviews[0].SubmittedAt, at)

	// A push resets approvals where the project says so; the adapter shows what GitLab shows.
	e.project.SetResetApprovalsOnPush(true)
	e.project.Push(int64(number), e.git.SHA("main"))
	reviews, err = e.forge.Reviews(e.ctx, e.repo, number)
	require.NoError(t, err)
	assert.Empty(t, reviews)
}

func TestCommitAuthorsAreResolvedFromEmails(t *testing.T) {
	e := newEnv(t)
	e.fake.AddUser(gitlabfake.User{Username: "erin", PublicEmail: "erin@example.com"})
	e.git.AuthorName, e.git.AuthorEmail = "Erin", "Erin@Example.com"
	e.git.Commit("authors", map[string]string{"a.sql": "select 1\n"}, "by erin")
	e.git.AuthorName, e.git.AuthorEmail = "Frank", "4242-frank@users.noreply.gitlab.example.com"
	e.git.Commit("authors", map[string]string{"b.sql": "select 2\n"}, "by frank, private email")
	e.git.AuthorName, e.git.AuthorEmail = "Erin", "someone@nowhere.test" // a name alone names no one
	head := e.git.Commit("authors", map[string]string{"c.sql": "select 3\n"}, "unknown email")
	e.git.Git("checkout", "--quiet", "main")
	iid := e.project.SetMR(gitlabfake.MR{Title: "authors", Author: "alice", SourceBranch: "authors", HeadSHA: head, BaseSHA: e.git.SHA("main")})

	authors, err := e.forge.CommitAuthors(e.ctx, e.repo, int(iid))
	require.NoError(t, err)
	assert.Equal(t, []string{"erin", "frank"}, authors)

	e.fake.FailNext("GET", "/users", 1, gitlabfake.Failure{Status: http.StatusInternalServerError, Message: "500"})
	_, err = e.forge.CommitAuthors(e.ctx, e.repo, int(iid))
	assert.Error(t, err, "an email that could not be looked up fails the call: an author left out could approve")
}

func TestRepositoryReads(t *testing.T) {
	e := newEnv(t)
	number, head := e.openMR(map[string]string{"models/a.sql": "select 1\n", ".dagctl/config.yaml": "version: 1\n"})
	data, err := e.forge.ReadFile(e.ctx, e.repo, head, ".dagctl/config.yaml")
	require.NoError(t, err)
	assert.Equal(t, "version: 1\n", string(data))
	_, err = e.forge.ReadFile(e.ctx, e.repo, "main", ".dagctl/config.yaml")
	assert.ErrorIs(t, err, vcs.ErrNotFound)

	got, err := e.forge.BranchHead(e.ctx, e.repo, "main")
	require.NoError(t, err)
	assert.Equal(t, e.git.SHA("main"), got)
	_, err = e.forge.BranchHead(e.ctx, e.repo, "nope")
	assert.ErrorIs(t, err, vcs.ErrNotFound)

	mainBefore := e.git.SHA("main")
	e.git.Commit("main", map[string]string{"other.sql": "select 9\n"}, "main moves")
	cmp, err := e.forge.Compare(e.ctx, e.repo, "main", head)
	require.NoError(t, err)
	assert.Equal(t, vcs.Comparison{MergeBase: mainBefore, Ahead: 1, Behind: 1}, cmp)

	changed, err := e.forge.ChangedFiles(e.ctx, e.repo, number)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"models/a.sql", ".dagctl/config.yaml"}, changed.Paths)
}

// Jobs clone with the clone token as oauth2's password; the fake, as GitLab, refuses other users and tokens.
func TestTheCloneTokenClonesOverGitHTTP(t *testing.T) {
	e := newEnv(t)
	cloneToken := e.fake.AddToken(botUser, gitlabfake.ScopeReadRepository)
	withClone, err := gitlab.New(gitlab.Options{BaseURL: e.fake.URL(), Token: e.token, CloneToken: cloneToken, HTTPClient: e.fake.Client()})
	require.NoError(t, err)
	got, err := withClone.CloneToken(e.ctx, e.repo)
	require.NoError(t, err)
	assert.Equal(t, cloneToken, got)
	got, err = e.forge.CloneToken(e.ctx, e.repo)
	require.NoError(t, err)
	assert.Equal(t, e.token, got, "without a clone token, the api token")

	clone := func(user, token string) error {
		u := strings.Replace(e.project.CloneURL(), "://", "://"+user+":"+token+"@", 1)
		cmd := exec.Command("git", "clone", "--quiet", u, t.TempDir())
		cmd.Env = append(cmd.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		return nil
	}
	assert.NoError(t, clone("oauth2", cloneToken))
	assert.Error(t, clone("x-access-token", cloneToken), "GitLab's user is oauth2")
	assert.Error(t, clone("oauth2", "glpat-wrong"))
}
