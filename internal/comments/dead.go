package comments

import (
	"fmt"
	"time"

	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// DeliveryStatusName is the status the bot sets on a merge commit whose merge it could not act on (its delivery
// died). It names no environment: which environments the merge applies is read from the forge, which was not
// answering.
const DeliveryStatusName = "dagctl/delivery"

// Notice is what the PR and its merge commit are told.
type Notice struct {
	Reply  string
	Status vcs.Status
}

// UnhandledMerge tells the PR and its merge commit that the merge's delivery died (delivery is its id in the
// queue, for the operator's retry) after the forge failed for window. The cause is not shown: errors carry URLs
// and forge answers; the bot's log has them.
func UnhandledMerge(pr vcs.PullRequest, delivery int64, window time.Duration) Notice {
	return Notice{
		Reply: fmt.Sprintf("❌ dagctl-bot could not act on the merge of this PR (%s): the forge kept failing for %s, so "+
			"**nothing was applied** and no environment changed. An operator can run it again with "+
			"`dagctl-bot deliveries retry %d` once the forge is back; it is then applied as a merge is.",
			shortSHA(pr.MergeCommitSHA), window, delivery),
		Status: vcs.Status{
			Name: DeliveryStatusName, CommitSHA: pr.MergeCommitSHA, State: vcs.StatusFailure,
			Description: fmt.Sprintf("The bot could not act on this merge: the forge was unreachable for %s. Nothing was applied.", window),
		},
	}
}
