package server

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// The orphan sweep keeps every Job whose run is unfinished: a plan's ("<run>"), each step of an apply
// ("<run>-verify", "<run>-apply", followed after a restart), and a closed PR's cleanup ("invalidate-<plan>",
// tied to no run). Only Jobs of finished or unknown runs are deleted.
func TestTheOrphanSweepKeepsEveryJobOfAnUnfinishedRun(t *testing.T) {
	unfinished := map[int64]bool{7: true, 12: true}
	for _, tc := range []struct {
		jobRunID string
		keep     bool
	}{
		{"7", true},
		{"12-verify", true},
		{"12-apply", true},
		{"invalidate-3", true},
		{"8", false},          // finished
		{"8-apply", false},    // a finished apply's step
		{"1-apply", false},    // a prefix of 12 is not 12
		{"127-apply", false},  // nor is a number that starts with it
		{"", false},           // a Job without the annotation is not the bot's to keep
		{"apply-12", false},   // not a run id
		{"12-destroy", false}, // not a step of the bot's
	} {
		assert.Equal(t, tc.keep, keepJob(tc.jobRunID, unfinished), tc.jobRunID)
	}
}
