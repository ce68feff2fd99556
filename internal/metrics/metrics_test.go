package metrics_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/metrics"
	"github.com/dagctl/dagctl-bot/internal/metrics/metricstest"
	"github.com/dagctl/dagctl-bot/internal/webhook"
)

func scrape(t *testing.T, m *metrics.Metrics) metricstest.Families {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	f, err := metricstest.Scrape(srv.Client(), srv.URL, "")
	require.NoError(t, err)
	return f
}

func openStore(t *testing.T, now func() time.Time) *db.Store {
	t.Helper()
	s, err := db.Open(filepath.Join(t.TempDir(), "dagctl.db"), db.WithClock(now))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func TestTheStoresGaugesAreReadAtEachScrape(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	now := func() time.Time { return at }
	store := openStore(t, now)
	m := metrics.New()
	m.CollectStore(store, now)
	ctx := context.Background()

	f := scrape(t, m)
	assert.Equal(t, 1.0, f.Get("dagctl_store_up"))
	assert.Empty(t, f.Series("dagctl_deliveries_queued"), "nothing queued: no series")
	require.Contains(t, f, "go_goroutines", "the Go collector is registered")
	require.Contains(t, f, "process_start_time_seconds", "the process collector is registered")

	_, err := store.Enqueue(ctx, "github", "d1", "pull_request", "github:acme/w#1", []byte(`{}`))
	require.NoError(t, err)
	at = at.Add(90 * time.Second)
	_, err = store.Enqueue(ctx, "github", "d2", "issue_comment", "github:acme/w#1", []byte(`{}`))
	require.NoError(t, err)
	_, _, err = store.EnqueueOutbox(ctx, db.OutboxWrite{Forge: "gitlab", Account: "", Kind: "status", Key: "k", Priority: 1,
		Repo: []byte(`{}`), Payload: []byte(`{}`), Token: "t"})
	require.NoError(t, err)
	at = at.Add(30 * time.Second)

	f = scrape(t, m)
	assert.Equal(t, 2.0, f.Get("dagctl_deliveries_queued", "forge", "github"))
	assert.Equal(t, 120.0, f.Get("dagctl_deliveries_oldest_queued_age_seconds", "forge", "github"))
	assert.Equal(t, 1.0, f.Get("dagctl_outbox_pending_writes", "forge", "gitlab"))
	assert.Equal(t, 30.0, f.Get("dagctl_outbox_oldest_pending_age_seconds", "forge", "gitlab"))

	// The first is given up on: dead, and no longer queued. The gauges follow the store, not a counter.
	d, ok, err := store.Claim(ctx, "w")
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, store.GiveUp(ctx, d.ID, "w", "502"))
	f = scrape(t, m)
	assert.Equal(t, 1.0, f.Get("dagctl_deliveries_queued", "forge", "github"))
	assert.Equal(t, 30.0, f.Get("dagctl_deliveries_oldest_queued_age_seconds", "forge", "github"))
	assert.Equal(t, 1.0, f.Get("dagctl_deliveries_dead", "forge", "github"))
	// An operator's retry by hand (another process, `dagctl-bot deliveries retry`) shows at the next scrape.
	_, err = store.RetryDeadDeliveries(ctx)
	require.NoError(t, err)
	f = scrape(t, m)
	assert.Equal(t, 0.0, f.Get("dagctl_deliveries_dead", "forge", "github"))
	assert.Equal(t, 2.0, f.Get("dagctl_deliveries_queued", "forge", "github"))

	// A store that cannot be read: the scrape still answers, and says so.
	require.NoError(t, store.Close())
	f = scrape(t, m)
	assert.Equal(t, 0.0, f.Get("dagctl_store_up"))
	assert.Contains(t, f, "go_goroutines")
}

func TestTheIntakesCountsHaveBoundedLabels(t *testing.T) {
	m := metrics.New()
	var obs webhook.Observer = m
	obs.Received("github", "pull_request")
	obs.Received("github", "pull_request")
	obs.Duplicate("github")
	obs.Rejected("gitlab", webhook.RejectBadSignature)
	f := scrape(t, m)
	assert.Equal(t, 2.0, f.Get("dagctl_deliveries_received_total", "forge", "github", "event", "pull_request"))
	assert.Equal(t, 1.0, f.Get("dagctl_deliveries_duplicate_total", "forge", "github"))
	assert.Equal(t, 1.0, f.Get("dagctl_deliveries_rejected_total", "forge", "gitlab", "reason", "bad_signature"))
}

func TestForgeCallsAreCountedByStatusClassWithTheRateLimitLeft(t *testing.T) {
	codes := []int{200, 201, 304, 404, 429, 502}
	i := 0
	forge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/gitlab" {
			w.Header().Set("RateLimit-Remaining", "1999")
		} else {
			w.Header().Set("X-RateLimit-Remaining", []string{"4999", "4998", "4997", "4996", "0", "4995"}[i])
		}
		w.WriteHeader(codes[i%len(codes)])
		i++
	}))
	defer forge.Close()
	m := metrics.New()
	gh := &http.Client{Transport: m.Transport("github", nil)}
	for range codes {
		resp, err := gh.Get(forge.URL + "/github")
		require.NoError(t, err)
		resp.Body.Close()
	}
	i = 0
	gl := &http.Client{Transport: m.Transport("gitlab", nil)}
	resp, err := gl.Get(forge.URL + "/gitlab")
	require.NoError(t, err)
	resp.Body.Close()
	_, err = gh.Get("http://127.0.0.1:1/") // nothing listens: no answer
	require.Error(t, err)

	f := scrape(t, m)
	for class, n := range map[string]float64{"2xx": 2, "3xx": 1, "4xx": 1, "429": 1, "5xx": 1, "error": 1} {
		assert.Equal(t, n, f.Get("dagctl_forge_requests_total", "forge", "github", "status_class", class), class)
	}
	assert.Equal(t, 4995.0, f.Get("dagctl_forge_rate_limit_remaining", "forge", "github"), "the last answer's")
	assert.Equal(t, 1.0, f.Get("dagctl_forge_requests_total", "forge", "gitlab", "status_class", "2xx"))
	assert.Equal(t, 1999.0, f.Get("dagctl_forge_rate_limit_remaining", "forge", "gitlab"))
}

func TestJobsAreCountedByKindAndOutcomeOnTheRealLocalExecutor(t *testing.T) {
	local, err := jobs.NewLocal(jobs.LocalOptions{WorkDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = local.Shutdown(context.Background()) })
	m := metrics.New()
	exec := m.Executor(local, nil)
	ctx := context.Background()
	path := map[string]string{"PATH": "/usr/bin:/bin"}
	run := func(id string, kind jobs.Kind, script string) jobs.Result {
		h, err := exec.Start(ctx, jobs.Spec{RunID: id, Kind: kind, Source: jobs.Source{Dir: t.TempDir()},
			Command: []string{"sh", "-c", script}, Env: path}, func(jobs.Line) {})
		require.NoError(t, err)
		res, err := h.Wait(ctx)
		require.NoError(t, err)
		_, err = h.Wait(ctx) // waited for again: counted once
		require.NoError(t, err)
		return res
	}
	run("p1", jobs.KindPlan, "exit 0")
	run("p2", jobs.KindPlan, "exit 3")
	run("a1", jobs.KindApply, "exit 0")
	run("c1", jobs.KindInvalidate, "exit 0")
	h, err := exec.Start(ctx, jobs.Spec{RunID: "a2", Kind: jobs.KindApply, Source: jobs.Source{Dir: t.TempDir()},
		Command: []string{"sleep", "60"}, Env: path}, func(jobs.Line) {})
	require.NoError(t, err)
	require.NoError(t, h.Cancel(ctx))
	res, err := h.Wait(ctx)
	require.NoError(t, err)
	require.Equal(t, jobs.ReasonCancelled, res.Reason)

	f := scrape(t, m)
	assert.Equal(t, 2.0, f.Get("dagctl_jobs_started_total", "kind", "plan"))
	assert.Equal(t, 2.0, f.Get("dagctl_jobs_started_total", "kind", "apply"))
	assert.Equal(t, 1.0, f.Get("dagctl_jobs_started_total", "kind", "cleanup"))
	for _, c := range []struct {
		kind, outcome string
		n             float64
	}{{"plan", "succeeded", 1}, {"plan", "failed", 1}, {"apply", "succeeded", 1}, {"apply", "cancelled", 1}, {"cleanup", "succeeded", 1}} {
		assert.Equal(t, c.n, f.Get("dagctl_jobs_finished_total", "kind", c.kind, "outcome", c.outcome), c)
		assert.Equal(t, c.n, f.Get("dagctl_job_duration_seconds", "kind", c.kind, "outcome", c.outcome), "histogram count %v", c)
	}
}

func TestJobOutcomes(t *testing.T) {
	for _, c := range []struct {
		res  jobs.Result
		want string
	}{
		{jobs.Result{ExitCode: 0}, metrics.OutcomeSucceeded},
		{jobs.Result{ExitCode: 2}, metrics.OutcomeFailed},
		{jobs.Result{ExitCode: -1, Reason: jobs.ReasonCancelled}, metrics.OutcomeCancelled},
		{jobs.Result{ExitCode: -1, Reason: jobs.ReasonTimeout}, metrics.OutcomeTimeout},
		{jobs.Result{ExitCode: -1, Reason: "OOMKilled"}, metrics.OutcomeError},
		{jobs.Result{ExitCode: 0, Reason: "checkout failed"}, metrics.OutcomeError},
	} {
		assert.Equal(t, c.want, metrics.JobOutcome(c.res), "%+v", c.res)
	}
	assert.Equal(t, "cleanup", metrics.JobKind(jobs.KindInvalidate))
	assert.Equal(t, "429", metrics.StatusClass(429))
	assert.Equal(t, "4xx", metrics.StatusClass(403))
}

func TestLockWaitsAreObservedByOutcome(t *testing.T) {
	m := metrics.New()
	m.LockWaited(0, true)
	m.LockWaited(3*time.Second, true)
	m.LockWaited(time.Minute, false)
	f := scrape(t, m)
	assert.Equal(t, 2.0, f.Get("dagctl_lock_wait_seconds", "outcome", "acquired"))
	assert.Equal(t, 1.0, f.Get("dagctl_lock_wait_seconds", "outcome", "gave_up"))
}

// imageRunner is an executor that runs jobs on their spec's image, as the Kubernetes executor does.
type imageRunner struct{ jobs.Executor }

func (imageRunner) RunsImages() bool { return true }

func TestObservingAnExecutorKeepsWhereItRunsJobs(t *testing.T) {
	local, err := jobs.NewLocal(jobs.LocalOptions{WorkDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = local.Shutdown(context.Background()) })
	m := metrics.New()
	runsImages := func(e jobs.Executor) bool {
		ie, ok := e.(interface{ RunsImages() bool })
		return ok && ie.RunsImages()
	}
	assert.True(t, runsImages(m.Executor(imageRunner{local}, nil)), "a dbt apply on Kubernetes still runs on its deploy image")
	assert.False(t, runsImages(m.Executor(local, nil)))
	assert.Equal(t, "image", metrics.JobKind(jobs.KindImage))
}
