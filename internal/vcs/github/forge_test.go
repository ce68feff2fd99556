package github_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/forgetest/githubfake"
	"github.com/dagctl/dagctl-bot/internal/vcs"
	"github.com/dagctl/dagctl-bot/internal/vcs/github"
)

func TestPullRequest(t *testing.T) {
	e := newEnv(t)
	pr := e.openPR()
	mergeable := true
	e.fr.SetPR(githubfake.PR{
		Number: 2, Title: "From a fork", Author: "mallory", HeadRef: "patch", HeadSHA: pr.HeadSHA,
		BaseSHA: pr.BaseSHA, HeadRepo: "mallory/warehouse", Draft: true, Mergeable: &mergeable,
	})

	got, err := e.inst.PullRequest(e.ctx, e.repo, 1)
	require.NoError(t, err)
	assert.Equal(t, vcs.PullRequest{
		Repo: e.repo, Number: 1, Title: "Change orders", Author: "alice",
		HeadSHA: pr.HeadSHA, BaseSHA: pr.BaseSHA, HeadRef: "feature", BaseRef: "main",
		HeadCloneURL: e.fr.CloneURL(), State: "open", URL: e.fr.HTMLURL() + "/pull/1",
	}, got)
	assert.Nil(t, got.Mergeable, "mergeable is still being computed")

	fork, err := e.inst.PullRequest(e.ctx, e.repo, 2)
	require.NoError(t, err)
	assert.True(t, fork.Fork, "head in another repository")
	assert.True(t, fork.Draft)
	assert.Equal(t, e.fake.URL()+"/mallory/warehouse.git", fork.HeadCloneURL)
	require.NotNil(t, fork.Mergeable)
	assert.True(t, *fork.Mergeable)

	_, err = e.inst.PullRequest(e.ctx, e.repo, 99)
	assert.ErrorIs(t, err, vcs.ErrNotFound)
}

func TestMergedPullRequest(t *testing.T) {
	e := newEnv(t)
	pr := e.openPR()
	pr.State, pr.Merged, pr.MergeCommitSHA = "closed", true, pr.HeadSHA
	e.fr.SetPR(pr)

	got, err := e.inst.PullRequest(e.ctx, e.repo, 1)
	require.NoError(t, err)
	assert.Equal(t, "closed", got.State)
	assert.True(t, got.Merged)
	assert.Equal(t, pr.HeadSHA, got.MergeCommitSHA)
}

func TestReviewsArePaginatedAndMapped(t *testing.T) {
	e := newEnv(t)
	pr := e.openPR()
	states := []string{"APPROVED", "CHANGES_REQUESTED", "COMMENTED", "DISMISSED", "PENDING"}
	for i := range 150 {
		e.fr.AddReview(1, githubfake.Review{
			User: fmt.Sprintf("reviewer%d", i), State: states[i%len(states)], CommitID: pr.HeadSHA,
		})
	}

	reviews, err := e.inst.Reviews(e.ctx, e.repo, 1)
	require.NoError(t, err)
	require.Len(t, reviews, 150)
	assert.Equal(t, "reviewer0", reviews[0].User)
	assert.Equal(t, "reviewer149", reviews[149].User)
	assert.Equal(t, []vcs.ReviewState{
		vcs.ReviewApproved, vcs.ReviewChangesRequested, vcs.ReviewCommented, vcs.ReviewDismissed, vcs.ReviewPending,
	}, []vcs.ReviewState{reviews[0].State, reviews[1].State, reviews[2].State, reviews[3].State, reviews[4].State})
	assert.Equal(t, pr.HeadSHA, reviews[0].CommitSHA)
	assert.Equal(t, e.fake.Now().Add(-149*time.Second), reviews[0].SubmittedAt.UTC(), "the fake stamps each review a second after the last")
	assert.NotZero(t, reviews[0].ID)
	assert.Len(t, e.fake.RequestsMatching("GET", "/repos/acme/warehouse/pulls/1/reviews"), 2, "two pages of 100")
}

func TestCommitAuthors(t *testing.T) {
	e := newEnv(t)
	base := e.git.SHA("main")
	e.git.AuthorName, e.git.AuthorEmail = "Alice", "alice@example.com"
	e.git.Commit("feature", map[string]string{"a.sql": "select 1\n"}, "one")
	e.git.AuthorName, e.git.AuthorEmail = "Bob", "bob@example.com"
	e.git.Commit("feature", map[string]string{"b.sql": "select 2\n"}, "two")
	e.git.AuthorName, e.git.AuthorEmail = "Nobody", "unlinked@example.com"
	head := e.git.Commit("feature", map[string]string{"c.sql": "select 3\n"}, "three")
	e.fake.MapEmail("alice@example.com", "alice")
	e.fake.MapEmail("bob@example.com", "bob")
	e.fr.SetPR(githubfake.PR{Number: 1, Author: "alice", HeadRef: "feature", HeadSHA: head, BaseSHA: base})

	authors, err := e.inst.CommitAuthors(e.ctx, e.repo, 1)
	require.NoError(t, err)
	assert.Equal(t, []string{"alice", "bob"}, authors, "unlinked emails have no account")

	// Commits made in the web interface are committed by web-flow, which is nobody.
	e.fake.MapEmail("noreply@github.com", "web-flow")
	e.fr.SetPR(githubfake.PR{Number: 2, Author: "carol", HeadSHA: head, Commits: []githubfake.Commit{
		{SHA: head, AuthorEmail: "carol@example.com", CommitterEmail: "noreply@github.com"},
	}})
	e.fake.MapEmail("carol@example.com", "carol")
	authors, err = e.inst.CommitAuthors(e.ctx, e.repo, 2)
	require.NoError(t, err)
	assert.Equal(t, []string{"carol"}, authors)
}

func TestCommitAuthorsPaginated(t *testing.T) {
	e := newEnv(t)
	var commits []githubfake.Commit
	for i := range 130 {
		email := fmt.Sprintf("dev%d@example.com", i)
		e.fake.MapEmail(email, fmt.Sprintf("dev%d", i))
		commits = append(commits, githubfake.Commit{SHA: fmt.Sprintf("%040d", i), AuthorEmail: email})
	}
	e.fr.SetPR(githubfake.PR{Number: 3, Author: "dev0", Commits: commits})

	authors, err := e.inst.CommitAuthors(e.ctx, e.repo, 3)
	require.NoError(t, err)
	assert.Len(t, authors, 130)
	assert.Equal(t, "dev129", authors[129])
}

func TestPermission(t *testing.T) {
	e := newEnv(t)
	for role, want := range map[string]vcs.Permission{
		"admin": vcs.PermissionAdmin, "maintain": vcs.PermissionWrite, "write": vcs.PermissionWrite,
		"triage": vcs.PermissionRead, "read": vcs.PermissionRead, "none": vcs.PermissionNone,
	} {
		user := "user-" + role
		e.fr.SetPermission(user, role)
		got, err := e.inst.Permission(e.ctx, e.repo, user)
		require.NoError(t, err, role)
		assert.Equal(t, want, got, role)
	}
	got, err := e.inst.Permission(e.ctx, e.repo, "ghost")
	require.NoError(t, err, "a login GitHub does not know")
	assert.Equal(t, vcs.PermissionNone, got)
}

func TestInTeam(t *testing.T) {
	e := newEnv(t)
	e.fake.SetTeamMember(testOwner, "data-eng", "alice", "active")
	e.fake.SetTeamMember(testOwner, "data-eng", "bob", "pending")

	for _, tc := range []struct {
		team, user string
		want       bool
	}{
		{"data-eng", "alice", true},
		{"acme/data-eng", "alice", true},
		{"data-eng", "bob", false}, // invited, not yet a member
		{"data-eng", "carol", false},
		{"platform", "alice", false},
	} {
		got, err := e.inst.InTeam(e.ctx, e.repo, tc.team, tc.user)
		require.NoError(t, err, tc)
		assert.Equal(t, tc.want, got, "%s in %s", tc.user, tc.team)
	}
}

func TestReadFile(t *testing.T) {
	e := newEnv(t)
	pr := e.openPR()

	got, err := e.inst.ReadFile(e.ctx, e.repo, pr.HeadSHA, "models/orders.sql")
	require.NoError(t, err)
	assert.Equal(t, "select 2 as id\n", string(got))

	got, err = e.inst.ReadFile(e.ctx, e.repo, "main", "models/orders.sql")
	require.NoError(t, err)
	assert.Equal(t, "select 1 as id\n", string(got))

	_, err = e.inst.ReadFile(e.ctx, e.repo, "main", "missing.yaml")
	assert.ErrorIs(t, err, vcs.ErrNotFound)
	_, err = e.inst.ReadFile(e.ctx, e.repo, "no-such-branch", ".dagctl/config.yaml")
	assert.ErrorIs(t, err, vcs.ErrNotFound)
	_, err = e.inst.ReadFile(e.ctx, e.repo, "main", "models")
	assert.ErrorContains(t, err, "is a directory")
}

func TestReadLargeFileUsesRawMediaType(t *testing.T) {
	e := newEnv(t)
	big := strings.Repeat("0123456789abcdef\n", 70_000) // > 1 MB: the contents API does not inline it
	sha := e.git.Commit("main", map[string]string{"seeds/big.csv": big}, "big seed")

	got, err := e.inst.ReadFile(e.ctx, e.repo, sha, "seeds/big.csv")
	require.NoError(t, err)
	assert.Equal(t, big, string(got))
	assert.Len(t, e.fake.RequestsMatching("GET", "/repos/acme/warehouse/contents/seeds/big.csv"), 2)
}

func TestChecksGoThroughTheirStates(t *testing.T) {
	e := newEnv(t)
	pr := e.openPR()

	id, err := e.inst.CreateCheck(e.ctx, e.repo, github.Check{
		Name: "dagctl/plan: prod", HeadSHA: pr.HeadSHA, Status: github.CheckQueued,
		ExternalID: "plan-17", DetailsURL: "https://dagctl.example.com/plans/17",
	})
	require.NoError(t, err)
	require.NoError(t, e.inst.UpdateCheck(e.ctx, e.repo, github.Check{
		ID: id, Name: "dagctl/plan: prod", Status: github.CheckInProgress, Title: "Planning",
		Summary: "Running sqlmesh plan",
	}))
	require.NoError(t, e.inst.UpdateCheck(e.ctx, e.repo, github.Check{
		ID: id, Name: "dagctl/plan: prod", Status: github.CheckCompleted, Conclusion: github.ConclusionSuccess,
		Title: "2 models changed", Summary: "orders: breaking", Text: "full plan",
	}))

	run, ok := e.fr.CheckRun("dagctl/plan: prod", pr.HeadSHA)
	require.True(t, ok)
	assert.Equal(t, id, run.ID)
	assert.Equal(t, []string{"queued", "in_progress", "completed"}, run.Statuses())
	assert.Equal(t, "success", run.Conclusion)
	assert.Equal(t, "2 models changed", run.Title)
	assert.Equal(t, "orders: breaking", run.Summary)
	assert.Equal(t, "full plan", run.Text)
	assert.Equal(t, "plan-17", run.ExternalID)
	assert.Equal(t, "https://dagctl.example.com/plans/17", run.DetailsURL)
	assert.Equal(t, int64(testAppID), run.AppID)
}

func TestCheckCreatedCompleted(t *testing.T) {
	e := newEnv(t)
	pr := e.openPR()
	_, err := e.inst.CreateCheck(e.ctx, e.repo, github.Check{
		Name: "dagctl/approval: prod", HeadSHA: pr.HeadSHA, Status: github.CheckCompleted,
		Conclusion: github.ConclusionActionRequired, Summary: "Needs 1 approval",
	})
	require.NoError(t, err)
	run, ok := e.fr.CheckRun("dagctl/approval: prod", pr.HeadSHA)
	require.True(t, ok)
	assert.Equal(t, []string{"completed"}, run.Statuses())
	assert.Equal(t, "action_required", run.Conclusion)
	assert.Equal(t, "dagctl/approval: prod", run.Title, "a missing title is the check's name")
}

func TestCheckOnUnknownCommitFails(t *testing.T) {
	e := newEnv(t)
	_, err := e.inst.CreateCheck(e.ctx, e.repo, github.Check{
		Name: "dagctl/plan: prod", HeadSHA: strings.Repeat("f", 40), Status: github.CheckQueued,
	})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "No commit found")
}

func TestOversizedCheckOutputIsCut(t *testing.T) {
	e := newEnv(t)
	pr := e.openPR()
	long := strings.Repeat("é", 40_000) // 80,000 bytes
	id, err := e.inst.CreateCheck(e.ctx, e.repo, github.Check{
		Name: "dagctl/plan: prod", HeadSHA: pr.HeadSHA, Status: github.CheckInProgress, Title: "Plan",
		Summary: long, Text: long,
	})
	require.NoError(t, err, "GitHub refuses outputs over 65,535 characters; the adapter cuts them")
	run, ok := e.fr.CheckRun("dagctl/plan: prod", pr.HeadSHA)
	require.True(t, ok)
	assert.Equal(t, id, run.ID)
	assert.LessOrEqual(t, len(run.Summary), github.MaxCheckOutput)
	assert.LessOrEqual(t, len(run.Text), github.MaxCheckOutput)
	assert.True(t, strings.HasSuffix(run.Text, "(truncated to fit GitHub's check output limit)"))
	assert.True(t, strings.HasPrefix(run.Text, "éé"))
}

func TestCommentsLifecycle(t *testing.T) {
	e := newEnv(t)
	e.openPR()
	userComment := e.fr.AddComment(1, "alice", "/dagctl plan")

	id, err := e.inst.CreateComment(e.ctx, e.repo, 1, "<!-- dagctl -->\nplanning…")
	require.NoError(t, err)
	require.NoError(t, e.inst.UpdateComment(e.ctx, e.repo, id, "<!-- dagctl -->\nplan ready"))
	require.NoError(t, e.inst.React(e.ctx, e.repo, userComment, vcs.ReactionEyes))
	require.NoError(t, e.inst.React(e.ctx, e.repo, userComment, vcs.ReactionEyes), "reacting twice is fine")

	comments, err := e.inst.Comments(e.ctx, e.repo, 1)
	require.NoError(t, err)
	assert.Equal(t, []vcs.Comment{
		{ID: userComment, Author: "alice", Body: "/dagctl plan"},
		{ID: id, Author: testAppSlug + "[bot]", Body: "<!-- dagctl -->\nplan ready", ByBot: true},
	}, comments)

	stored, ok := e.fr.Comment(id)
	require.True(t, ok)
	assert.Equal(t, []string{"<!-- dagctl -->\nplanning…"}, stored.History)
	reactions := e.fr.Reactions(userComment)
	require.Len(t, reactions, 1)
	assert.Equal(t, "eyes", reactions[0].Content)

	require.NoError(t, e.inst.DeleteComment(e.ctx, e.repo, id))
	assert.ErrorIs(t, e.inst.DeleteComment(e.ctx, e.repo, id), vcs.ErrNotFound)
	assert.Len(t, e.fr.Comments(1), 1)

	_, err = e.inst.CreateComment(e.ctx, e.repo, 42, "no such pull request")
	assert.ErrorIs(t, err, vcs.ErrNotFound)
}

func TestOnlyTheAppsOwnCommentsAreByBot(t *testing.T) {
	e := newEnv(t)
	e.openPR()
	// Another app installed on the same account, and a person whose login merely looks like the bot's.
	const otherAppID, otherInstallationID = 5151, 78
	pemBytes, pub := appKey(t)
	e.fake.AddApp(otherAppID, "other-app", pub)
	e.fake.AddInstallation(githubfake.Installation{ID: otherInstallationID, AppID: otherAppID, Account: testOwner})
	other, err := github.NewApp(github.Config{AppID: otherAppID, PrivateKey: pemBytes, APIURL: e.fake.APIURL(),
		Now: e.fake.Now, Sleep: e.sleep, MinWriteInterval: -1})
	require.NoError(t, err)
	otherRepo := e.repo
	otherRepo.Account = "78"
	_, err = other.Installation(otherInstallationID).CreateComment(e.ctx, otherRepo, 1, "<!-- dagctl-bot:sticky -->\nnot ours")
	require.NoError(t, err)
	e.fr.AddComment(1, testAppSlug+"[bot]", "<!-- dagctl-bot:sticky -->\na person")
	ours, err := e.inst.CreateComment(e.ctx, e.repo, 1, "<!-- dagctl-bot:sticky -->\nours")
	require.NoError(t, err)

	login, err := e.app.BotLogin(e.ctx)
	require.NoError(t, err)
	assert.Equal(t, testAppSlug+"[bot]", login)
	for range 2 {
		comments, err := e.inst.Comments(e.ctx, e.repo, 1)
		require.NoError(t, err)
		require.Len(t, comments, 3)
		assert.Equal(t, []bool{false, false, true}, []bool{comments[0].ByBot, comments[1].ByBot, comments[2].ByBot})
		assert.Equal(t, ours, comments[2].ID)
	}
	apps := e.fake.RequestsMatching("GET", "/app")
	require.Len(t, apps, 1, "the app's identity is asked once")
	assert.Equal(t, "jwt", apps[0].Auth)
}

func TestCommentsArePaginated(t *testing.T) {
	e := newEnv(t)
	e.openPR()
	for i := range 230 {
		e.fr.AddComment(1, "alice", fmt.Sprintf("comment %d", i))
	}
	comments, err := e.inst.Comments(e.ctx, e.repo, 1)
	require.NoError(t, err)
	require.Len(t, comments, 230)
	assert.Equal(t, "comment 0", comments[0].Body)
	assert.Equal(t, "comment 229", comments[229].Body)
	assert.Len(t, e.fake.RequestsMatching("GET", "/repos/acme/warehouse/issues/1/comments"), 3)
}

func TestOversizedCommentIsRefused(t *testing.T) {
	e := newEnv(t)
	e.openPR()
	limit := e.inst.Limits().CommentChars
	require.Equal(t, 65536, limit)

	_, err := e.inst.CreateComment(e.ctx, e.repo, 1, strings.Repeat("x", limit))
	require.NoError(t, err, "exactly the limit is accepted")

	_, err = e.inst.CreateComment(e.ctx, e.repo, 1, strings.Repeat("x", limit+1))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "422")
	assert.Contains(t, err.Error(), "Body is too long (maximum is 65536 characters)")
	assert.NotErrorIs(t, err, vcs.ErrPermission)
	assert.NotErrorIs(t, err, vcs.ErrRateLimited)
	assert.Len(t, e.fake.RequestsMatching("POST", "/repos/acme/warehouse/issues/1/comments"), 2, "a 422 is not retried")
}

func TestLimits(t *testing.T) {
	e := newEnv(t)
	assert.Equal(t, vcs.Limits{CommentChars: 65536, CheckOutputSize: 65535}, e.inst.Limits())
	assert.Equal(t, e.inst.Limits(), e.app.Limits())
}

func TestAppRoutesByInstallation(t *testing.T) {
	e := newEnv(t)
	e.openPR()
	var forge vcs.Forge = e.app
	id, err := forge.CreateComment(e.ctx, e.repo, 1, "via the app")
	require.NoError(t, err)
	assert.NotZero(t, id)
	assert.Same(t, e.inst, e.app.Installation(testInstallationID), "installations are cached")

	noInstallation := e.repo
	noInstallation.Account = ""
	_, err = forge.CreateComment(e.ctx, noInstallation, 1, "lost")
	assert.ErrorContains(t, err, "no installation id")

	other := e.repo
	other.Account = "5"
	_, err = e.inst.CreateComment(e.ctx, other, 1, "wrong installation")
	assert.ErrorContains(t, err, "belongs to installation 5")
}

func TestInstallationInfo(t *testing.T) {
	e := newEnv(t)
	info, err := e.app.InstallationInfo(e.ctx, testInstallationID)
	require.NoError(t, err)
	assert.Equal(t, github.InstallationInfo{ID: testInstallationID, Account: testOwner, AppSlug: testAppSlug}, info)
	_, err = e.app.InstallationInfo(e.ctx, 999)
	assert.ErrorIs(t, err, vcs.ErrNotFound)
}

func TestRepositoryOutsideTheInstallationIsNotFound(t *testing.T) {
	e := newEnv(t)
	e.fake.AddRepo("elsewhere", "secret", "", "")
	other := vcs.Repo{Forge: github.Forge, Owner: "elsewhere", Name: "secret", Account: github.AccountOf(testInstallationID)}
	_, err := e.inst.PullRequest(e.ctx, other, 1)
	assert.ErrorIs(t, err, vcs.ErrNotFound)
}

func TestSuspendedInstallationIsAPermissionError(t *testing.T) {
	e := newEnv(t)
	e.openPR()
	e.fake.SuspendInstallation(testInstallationID, true)
	_, err := e.inst.PullRequest(e.ctx, e.repo, 1)
	assert.ErrorIs(t, err, vcs.ErrPermission)
	_, err = e.inst.CloneToken(e.ctx, e.repo)
	assert.ErrorIs(t, err, vcs.ErrPermission)
}

func TestWrongKeyIsRefused(t *testing.T) {
	e := newEnv(t)
	e.openPR()
	otherPEM, _, err := githubfake.GenerateAppKey()
	require.NoError(t, err)
	inst, err := github.NewInstallation(github.Config{
		AppID: testAppID, PrivateKey: otherPEM, APIURL: e.fake.APIURL(), MinWriteInterval: -1,
	}, testInstallationID)
	require.NoError(t, err)
	_, err = inst.PullRequest(e.ctx, e.repo, 1)
	assert.ErrorIs(t, err, vcs.ErrPermission)
	last := e.fake.RequestsMatching("POST", "/app/installations/*/access_tokens")
	require.NotEmpty(t, last)
	assert.Equal(t, 401, last[len(last)-1].Status)
}

// A resumed status send finds only the app's own check run: another app (or a workflow the PR runs) can create
// a check run with the bot's name and external id on the PR's commit, and adopting it would leave the bot's
// real status unwritten while the impostor's shows.
func TestFindStatusFindsOnlyTheAppsOwnCheckRun(t *testing.T) {
	e := newEnv(t)
	pr := e.openPR()
	const otherAppID, otherInstallationID = 5151, 78
	pemBytes, pub := appKey(t)
	e.fake.AddApp(otherAppID, "other-app", pub)
	e.fake.AddInstallation(githubfake.Installation{ID: otherInstallationID, AppID: otherAppID, Account: testOwner})
	other, err := github.NewApp(github.Config{AppID: otherAppID, PrivateKey: pemBytes, APIURL: e.fake.APIURL(),
		Now: e.fake.Now, Sleep: e.sleep, MinWriteInterval: -1})
	require.NoError(t, err)
	otherRepo := e.repo
	otherRepo.Account = "78"
	status := vcs.Status{Name: "dagctl/plan: prod", CommitSHA: pr.HeadSHA, State: vcs.StatusSuccess,
		Description: "No changes", ExternalID: "plan:12"}
	_, err = other.PutStatus(e.ctx, otherRepo, status, "")
	require.NoError(t, err)

	ref, err := e.inst.FindStatus(e.ctx, e.repo, status)
	require.NoError(t, err)
	assert.Empty(t, ref, "another app's check run is not the bot's")

	ours, err := e.inst.PutStatus(e.ctx, e.repo, status, "")
	require.NoError(t, err)
	ref, err = e.inst.FindStatus(e.ctx, e.repo, status)
	require.NoError(t, err)
	assert.Equal(t, ours, ref)
}
