package command

import (
	"fmt"
	"strings"
	"time"
)

// Expired reports whether commands of a comment the bot received at receivedAt are too late to run at now:
// a `/dagctl apply` held up by an outage must not run long after its author meant it, on whatever the PR has
// become meanwhile. The receipt time is the bot's own stamp at intake (never the payload's), so nothing a PR or
// its comment carries can move it. A zero receipt time or expiry never expires.
func Expired(receivedAt, now time.Time, after time.Duration) bool {
	return after > 0 && !receivedAt.IsZero() && now.Sub(receivedAt) > after
}

// ExpiredNotice is the PR's reply to commands that expired.
func ExpiredNotice(cmds []Command, author string, receivedAt time.Time, after time.Duration) string {
	quoted := make([]string, len(cmds))
	for i, c := range cmds {
		quoted[i] = "`" + c.String() + "`"
	}
	them, was := "it", "it was"
	if len(cmds) > 1 {
		them, was = "them", "they were"
	}
	return fmt.Sprintf("⏰ %s from @%s at %s UTC expired after %s while the forge was unreachable, so %s not run; comment again to run %s.",
		strings.Join(quoted, ", "), author, receivedAt.UTC().Format("15:04"), after, was, them)
}
