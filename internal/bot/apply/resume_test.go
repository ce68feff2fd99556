package apply

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/dagctl/dagctl-bot/internal/db"
)

// A restart goes on from the step whose job the apply's run last started, named by the job's id
// ("<run>-<step>", with the executor's prefix); before any job started there is nothing to follow.
func TestStepOfNamesTheStepAnApplyRunLastStarted(t *testing.T) {
	for _, tc := range []struct {
		jobID string
		step  string
		ok    bool
	}{
		{"12-verify", stepVerify, true},
		{"12-apply", stepApply, true},
		{"12-image", stepImage, true},
		{"local-12-apply", stepApply, true},
		{"", "", false},
		{"112-apply", "", false}, // another run's
		{"12", "", false},        // a plan's job id
		{"12-apply-x", "", false},
	} {
		step, ok := stepOf(db.Run{ID: 12, ExecutorJobID: tc.jobID})
		assert.Equal(t, tc.ok, ok, tc.jobID)
		assert.Equal(t, tc.step, step, tc.jobID)
	}
}
