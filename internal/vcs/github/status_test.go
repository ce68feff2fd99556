package github_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/vcs"
	"github.com/dagctl/dagctl-bot/internal/vcs/github"
)

// A status is a check run: created once, its id the ref, updated in place; the description is the title unless
// there is rich output, which is cut to GitHub's limit rather than refused.
func TestStatusesAreCheckRuns(t *testing.T) {
	e := newEnv(t)
	pr := e.openPR()
	st := vcs.Status{Name: "dagctl/plan: prod", CommitSHA: pr.HeadSHA, State: vcs.StatusQueued,
		Description: "Waiting for a job slot", DetailsURL: "https://bot.test/runs/3/sig", ExternalID: "plan:3"}
	ref, err := e.app.PutStatus(e.ctx, e.repo, st, "")
	require.NoError(t, err)
	run, ok := e.fr.CheckRun(st.Name, pr.HeadSHA)
	require.True(t, ok)
	assert.Equal(t, vcs.StatusRef(strconv.FormatInt(run.ID, 10)), ref, "the ref is the check run's id")
	assert.Equal(t, "queued", run.Status)
	assert.Equal(t, "Waiting for a job slot", run.Title)
	assert.Equal(t, "Waiting for a job slot", run.Summary)
	assert.Equal(t, "plan:3", run.ExternalID)
	assert.Equal(t, "https://bot.test/runs/3/sig", run.DetailsURL)

	st.State, st.Output = vcs.StatusBlocked, &vcs.StatusOutput{Title: "Approval required", Summary: "## prod",
		Text: strings.Repeat("x", github.MaxCheckOutput+10)}
	again, err := e.app.PutStatus(e.ctx, e.repo, st, ref)
	require.NoError(t, err)
	assert.Equal(t, ref, again)
	runs := e.fr.CheckRuns()
	require.Len(t, runs, 1, "written in place")
	assert.Equal(t, "completed", runs[0].Status)
	assert.Equal(t, "action_required", runs[0].Conclusion)
	assert.Equal(t, "Approval required", runs[0].Title, "rich output's title wins over the description")
	assert.Equal(t, "## prod", runs[0].Summary)
	assert.LessOrEqual(t, len(runs[0].Text), github.MaxCheckOutput)
	assert.Contains(t, runs[0].Text, "truncated")

	_, err = e.app.PutStatus(e.ctx, e.repo, st, "not-an-id")
	assert.ErrorContains(t, err, "not a check run id")
	st.State = "waiting"
	_, err = e.app.PutStatus(e.ctx, e.repo, st, ref)
	assert.ErrorContains(t, err, "no state GitHub knows")
	assert.Equal(t, vcs.ReviewFacts{Commit: true, SubmittedAt: true}, e.app.ReviewFacts())
}
