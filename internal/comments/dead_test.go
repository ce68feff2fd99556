package comments

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/dagctl/dagctl-bot/internal/vcs"
)

func TestUnhandledMerge(t *testing.T) {
	pr := vcs.PullRequest{Number: 12, MergeCommitSHA: "0123456789abcdef0123456789abcdef01234567", Merged: true}
	n := UnhandledMerge(pr, 42, 24*time.Hour)
	assert.Equal(t, vcs.Status{
		Name: DeliveryStatusName, CommitSHA: pr.MergeCommitSHA, State: vcs.StatusFailure,
		Description: "The bot could not act on this merge: the forge was unreachable for 24h0m0s. Nothing was applied.",
	}, n.Status)
	assert.Equal(t, "❌ dagctl-bot could not act on the merge of this PR (0123456): the forge kept failing for 24h0m0s, so "+
		"**nothing was applied** and no environment changed. An operator can run it again with "+
		"`dagctl-bot deliveries retry 42` once the forge is back; it is then applied as a merge is.", n.Reply)
	assert.NotContains(t, n.Reply, "token")
}
