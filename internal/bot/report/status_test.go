package report

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// Until the forge port writes statuses, each state maps to the check run GitHub showed before statuses existed.
func TestStatusesMapToTodaysCheckRuns(t *testing.T) {
	out := &vcs.StatusOutput{Title: "T", Summary: "S", Text: "X"}
	tests := []struct {
		state      vcs.StatusState
		status     vcs.CheckStatus
		conclusion vcs.CheckConclusion
	}{
		{vcs.StatusQueued, vcs.CheckQueued, ""},
		{vcs.StatusRunning, vcs.CheckInProgress, ""},
		{vcs.StatusBlocked, vcs.CheckCompleted, vcs.ConclusionActionRequired},
		{vcs.StatusSuccess, vcs.CheckCompleted, vcs.ConclusionSuccess},
		{vcs.StatusFailure, vcs.CheckCompleted, vcs.ConclusionFailure},
		{vcs.StatusNeutral, vcs.CheckCompleted, vcs.ConclusionNeutral},
		{vcs.StatusCancelled, vcs.CheckCompleted, vcs.ConclusionCancelled},
		{vcs.StatusSkipped, vcs.CheckCompleted, vcs.ConclusionSkipped},
	}
	for _, tt := range tests {
		c := checkOf(vcs.Status{Name: "dagctl/plan: prod", CommitSHA: "abc", State: tt.state, Description: "D", DetailsURL: "u", ExternalID: "plan:1", Output: out})
		assert.Equal(t, vcs.Check{Name: "dagctl/plan: prod", HeadSHA: "abc", Status: tt.status, Conclusion: tt.conclusion,
			Title: "T", Summary: "S", Text: "X", DetailsURL: "u", ExternalID: "plan:1"}, c, tt.state)
	}
	assert.Equal(t, "D", checkOf(vcs.Status{State: vcs.StatusSuccess, Description: "D"}).Title, "without output, the description is the title")
	assert.Equal(t, vcs.StatusBlocked, stateOf(string(vcs.ConclusionActionRequired)))
}

func TestLogLinksAreSignedPerRun(t *testing.T) {
	key := []byte("k")
	assert.Len(t, LogSignature(key, 1), 32)
	assert.NotEqual(t, LogSignature(key, 1), LogSignature(key, 2))
	assert.NotEqual(t, LogSignature(key, 1), LogSignature([]byte("other"), 1))
}
