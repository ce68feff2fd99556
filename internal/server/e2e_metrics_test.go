package server_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/forgetest"
	"github.com/dagctl/dagctl-bot/internal/forgetest/e2e"
	"github.com/dagctl/dagctl-bot/internal/forgetest/githubworld"
	"github.com/dagctl/dagctl-bot/internal/forgetest/gitlabworld"
	"github.com/dagctl/dagctl-bot/internal/metrics"
	"github.com/dagctl/dagctl-bot/internal/metrics/metricstest"
	"github.com/dagctl/dagctl-bot/internal/server"
	"github.com/dagctl/dagctl-bot/internal/serverconfig"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

const metricsToken = "scrape-s3cret"

func (w *world) scrape() metricstest.Families {
	w.t.Helper()
	f, err := metricstest.Scrape(w.http.Client(), w.http.URL+"/metrics", metricsToken)
	require.NoError(w.t, err)
	return f
}

// forgeAPICalls counts the API requests the fake forge answered, by the metrics' status class: what the bot's
// transport must have counted, request for request.
func (w *world) forgeAPICalls() map[string]float64 {
	out := map[string]float64{}
	switch fw := w.World.World.(type) {
	case *githubworld.World:
		for _, r := range fw.Fake.Requests() {
			if r.API {
				out[metrics.StatusClass(r.Status)]++
			}
		}
	case *gitlabworld.World:
		for _, r := range fw.Fake.Requests() {
			if r.API {
				out[metrics.StatusClass(r.Status)]++
			}
		}
	default:
		w.t.Fatalf("no request log for %s", w.Name())
	}
	return out
}

// tampered is wh with a signature (GitHub) or token (GitLab) that does not verify.
func tampered(wh forgetest.Webhook) forgetest.Webhook {
	wh.Header = wh.Header.Clone()
	for _, h := range []string{"X-Hub-Signature-256", "X-Gitlab-Token"} {
		if wh.Header.Get(h) != "" {
			wh.Header.Set(h, "sha256=0000000000000000000000000000000000000000000000000000000000000000")
		}
	}
	return wh
}

func TestMetricsCountWhatTheBotDidAndReadTheStoreAtEachScrape(t *testing.T) {
	forEachForge(t, func(t *testing.T, forge e2e.Kind) {
		w := newWorld(t, forge, worldOptions{seedProd: true, configure: func(_ *world, cfg *serverconfig.Config, _ *server.Options) {
			cfg.MetricsToken = metricsToken
		}})
		resp, err := w.http.Client().Get(w.http.URL + "/metrics")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "DAGCTL_METRICS_TOKEN is required")

		name := w.forge()
		before := w.scrape()
		head := w.PR(1, "more-columns", "alice", nonBreaking)
		opened := w.PREvent(vcs.PROpened, 1)
		assert.Equal(t, 401, w.deliver(tampered(opened)).Status)
		assert.Equal(t, 202, w.send(opened).Status)
		assert.Equal(t, 200, w.deliver(opened).Status, "the forge's redelivery: a duplicate")
		after := w.scrape()

		delta := func(metric string, labels ...string) float64 {
			return after.Get(metric, labels...) - before.Get(metric, labels...)
		}
		assert.Equal(t, 2.0, delta("dagctl_deliveries_received_total", "forge", name, "event", opened.Event),
			"received: %v", after.Series("dagctl_deliveries_received_total"))
		assert.Equal(t, 1.0, delta("dagctl_deliveries_duplicate_total", "forge", name))
		assert.Equal(t, 1.0, delta("dagctl_deliveries_rejected_total", "forge", name, "reason", "bad_signature"))
		assert.Equal(t, []string{"forge=" + name + ",reason=bad_signature"}, after.Series("dagctl_deliveries_rejected_total"))

		// prod and dev are planned by the real sqmesh: two plan jobs, both succeeded.
		assert.Equal(t, 2.0, delta("dagctl_jobs_started_total", "kind", "plan"))
		assert.Equal(t, 2.0, delta("dagctl_jobs_finished_total", "kind", "plan", "outcome", "succeeded"),
			"finished: %v", after.Series("dagctl_jobs_finished_total"))
		assert.Equal(t, 2.0, delta("dagctl_job_duration_seconds", "kind", "plan", "outcome", "succeeded"))
		w.assertState(vcs.StatusSuccess, mustStatus(t, w, "dagctl/plan: prod", head).State)

		// Every API call the fake answered went through the bot's observing transport.
		for class, n := range w.forgeAPICalls() {
			assert.Equal(t, n, after.Get("dagctl_forge_requests_total", "forge", name, "status_class", class), class)
		}
		assert.Positive(t, after.Get("dagctl_forge_requests_total", "forge", name, "status_class", "2xx"))

		// The store's gauges: nothing queued or dead once settled, every write sent, prod's plan awaits bob.
		assert.Equal(t, 1.0, after.Get("dagctl_store_up"))
		assert.Zero(t, after.Get("dagctl_deliveries_queued", "forge", name))
		assert.Zero(t, after.Get("dagctl_deliveries_dead", "forge", name))
		assert.Zero(t, after.Get("dagctl_outbox_pending_writes", "forge", name))
		assert.Equal(t, 1.0, after.Get("dagctl_plans_awaiting_approval", "forge", name), "prod needs an approval; dev none")

		review := w.review(1, head, "bob", vcs.ReviewApproved)
		approved := w.scrape()
		assert.Zero(t, approved.Get("dagctl_plans_awaiting_approval", "forge", name), "bob approved prod's plan")
		event := w.ReviewEvent(1, review).Event
		assert.Equal(t, 1.0, approved.Get("dagctl_deliveries_received_total", "forge", name, "event", event)-
			after.Get("dagctl_deliveries_received_total", "forge", name, "event", event))

		// No series names a repository, a PR or a user.
		for fam := range approved {
			for _, series := range approved.Series(fam) {
				assert.NotContains(t, series, w.repoName(), fam)
				assert.NotContains(t, series, "alice", fam)
			}
		}
	})
}

func mustStatus(t *testing.T, w *world, name, sha string) forgetest.Status {
	t.Helper()
	s, ok := w.Status(name, sha)
	require.True(t, ok, "no status %s; statuses: %v", name, w.Statuses())
	return s
}
