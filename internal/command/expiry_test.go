package command

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestExpired(t *testing.T) {
	received := time.Date(2026, 12, 2, 10, 2, 30, 0, time.UTC)
	cases := []struct {
		name  string
		now   time.Time
		after time.Duration
		want  bool
	}{
		{"handled at once", received, 15 * time.Minute, false},
		{"handled just within the expiry", received.Add(15 * time.Minute), 15 * time.Minute, false},
		{"handled after the expiry", received.Add(15*time.Minute + time.Second), 15 * time.Minute, true},
		{"handled after a 30-minute outage", received.Add(30 * time.Minute), 15 * time.Minute, true},
		{"no expiry set never expires", received.Add(48 * time.Hour), 0, false},
		{"a clock behind the receipt is not late", received.Add(-time.Minute), 15 * time.Minute, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, Expired(received, c.now, c.after))
		})
	}
	assert.False(t, Expired(time.Time{}, received, time.Minute), "an event without a receipt time (a test's direct call) is not dated")
}

func TestExpiredNotice(t *testing.T) {
	received := time.Date(2026, 12, 2, 10, 2, 30, 0, time.FixedZone("CET", 3600))
	cmds := []Command{{Verb: Apply, Env: "prod"}, {Verb: Plan}}
	assert.Equal(t,
		"⏰ `/dagctl apply prod`, `/dagctl plan` from @alice at 09:02 UTC expired after 15m0s while the forge was unreachable, "+
			"so they were not run; comment again to run them.",
		ExpiredNotice(cmds, "alice", received, 15*time.Minute))
	assert.Equal(t,
		"⏰ `/dagctl apply` from @bob at 09:02 UTC expired after 15m0s while the forge was unreachable, "+
			"so it was not run; comment again to run it.",
		ExpiredNotice([]Command{{Verb: Apply}}, "bob", received, 15*time.Minute))
}
