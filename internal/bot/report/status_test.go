package report

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/dagctl/dagctl-bot/internal/comments"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// A check conclusion as internal/comments gives it is a status's state; action_required is blocked. (How each
// state shows on GitHub is the adapter's: internal/vcs/github TestStatusesAreCheckRuns.)
func TestConclusionsAreStatusStates(t *testing.T) {
	assert.Equal(t, vcs.StatusBlocked, stateOf(comments.ConclusionActionRequired))
	assert.Equal(t, vcs.StatusSuccess, stateOf(comments.ConclusionSuccess))
	assert.Equal(t, vcs.StatusNeutral, stateOf(comments.ConclusionNeutral))
}

func TestLogLinksAreSignedPerRun(t *testing.T) {
	key := []byte("k")
	assert.Len(t, LogSignature(key, 1), 32)
	assert.NotEqual(t, LogSignature(key, 1), LogSignature(key, 2))
	assert.NotEqual(t, LogSignature(key, 1), LogSignature([]byte("other"), 1))
}
