package forgetest_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/dagctl/dagctl-bot/internal/forgetest"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

func TestCheckRunsAreShownInTheCoresStates(t *testing.T) {
	for _, c := range []struct {
		status     vcs.CheckStatus
		conclusion vcs.CheckConclusion
		want       vcs.StatusState
	}{
		{vcs.CheckQueued, "", vcs.StatusQueued},
		{vcs.CheckInProgress, "", vcs.StatusRunning},
		{vcs.CheckCompleted, vcs.ConclusionActionRequired, vcs.StatusBlocked},
		{vcs.CheckCompleted, vcs.ConclusionSuccess, vcs.StatusSuccess},
		{vcs.CheckCompleted, vcs.ConclusionFailure, vcs.StatusFailure},
		{vcs.CheckCompleted, vcs.ConclusionNeutral, vcs.StatusNeutral},
		{vcs.CheckCompleted, vcs.ConclusionCancelled, vcs.StatusCancelled},
		{vcs.CheckCompleted, vcs.ConclusionSkipped, vcs.StatusSkipped},
	} {
		assert.Equal(t, c.want, forgetest.CheckState(c.status, c.conclusion), "%s/%s", c.status, c.conclusion)
	}
}
