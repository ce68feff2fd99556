package server_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/allowlist"
	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/forgetest/e2e"
	"github.com/dagctl/dagctl-bot/internal/server"
	"github.com/dagctl/dagctl-bot/internal/serverconfig"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// A repository not on DAGCTL_REPO_ALLOWLIST gets nothing: its webhooks are acknowledged (a forge disables hooks
// that keep failing) and done without effect, a command in it is not answered, and the reconcile does not plan
// its open PRs. The list names the same owner on the other forge and another repository of this one, so a
// matcher that ignored the forge or the name would let it through.
func TestARepositoryNotOnTheAllowlistIsAcknowledgedAndIgnored(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{configure: func(w *world, cfg *serverconfig.Config, _ *server.Options) {
			other := "github"
			if w.forge() == "github" {
				other = "gitlab"
			}
			list, err := allowlist.Parse(w.forge() + ":" + w.Repo().Owner + "/not-" + w.Repo().Name + "," + other + ":" + w.repoName())
			require.NoError(t, err)
			cfg.RepoAllowlist = list
		}})
		w.SetPermission("alice", vcs.PermissionWrite)
		w.PR(1, "more-columns", "alice", nonBreaking)

		d := w.send(w.PREvent(vcs.PROpened, 1))
		assert.Equal(t, http.StatusAccepted, d.Status)
		c := w.send(w.CommentEvent(1, w.AddComment(1, "alice", "/dagctl plan")))
		assert.Equal(t, http.StatusAccepted, c.Status)
		require.NoError(t, w.srv.RecoverMissed(context.Background()))
		w.settle()

		assert.Empty(t, w.Statuses(), "nothing was planned or reported")
		assert.Len(t, w.Comments(1), 1, "only alice's command: no sticky comment, no answer")
		plans, err := w.srv.Store().ListPlansByPR(context.Background(), w.forge(), w.repoName(), 1)
		require.NoError(t, err)
		assert.Empty(t, plans)
		deliveries, err := w.srv.Store().ListDeliveries(context.Background(), false)
		require.NoError(t, err)
		for _, del := range deliveries {
			assert.Equal(t, db.DeliveryDone, del.Status, "%s is done, not retried", del.Event)
		}
	})
}
