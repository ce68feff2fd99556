package forgetest_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/dagctl/dagctl-bot/internal/forgetest"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

func TestCheckRunsAreShownInTheCoresStates(t *testing.T) {
	for _, c := range []struct {
		status     string // as GitHub's API spells them
		conclusion string
		want       vcs.StatusState
	}{
		{"queued", "", vcs.StatusQueued},
		{"in_progress", "", vcs.StatusRunning},
		{"completed", "action_required", vcs.StatusBlocked},
		{"completed", "success", vcs.StatusSuccess},
		{"completed", "failure", vcs.StatusFailure},
		{"completed", "neutral", vcs.StatusNeutral},
		{"completed", "cancelled", vcs.StatusCancelled},
		{"completed", "skipped", vcs.StatusSkipped},
	} {
		assert.Equal(t, c.want, forgetest.CheckState(c.status, c.conclusion), "%s/%s", c.status, c.conclusion)
	}
}
