package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/bench/internal/stats"
	"github.com/dagctl/dagctl-bot/internal/forgetest/e2e"
	"github.com/dagctl/dagctl-bot/internal/forgetest/githubfake"
	"github.com/dagctl/dagctl-bot/internal/server"
	"github.com/dagctl/dagctl-bot/internal/serverconfig"
	"github.com/dagctl/dagctl-bot/internal/testutil"
	"github.com/dagctl/dagctl-bot/internal/vcs"
	ghadapter "github.com/dagctl/dagctl-bot/internal/vcs/github"
)

var (
	e2ePRs   = flag.Int("bench.prs", 4, "BenchmarkWebhookToCheckRun: measured pull requests per mode (after one cold one)")
	e2eBurst = flag.Int("bench.burst", 4, "BenchmarkWebhookToCheckRun: pull requests opened at once in the burst mode (0: none)")
)

// The world of the e2e harness (internal/server/harness_test.go), copied: a fake GitHub App installation on
// acme/warehouse holding examples/sqlmesh, prod applied to a DuckDB state by the real sqlmesh.
const (
	appID          = e2e.AppID
	installationID = e2e.InstallationID
	webhookSecret  = e2e.WebhookSecret
	publicURL      = "https://bot.test"
	executionTime  = e2e.ExecutionTime
	checkProd      = "dagctl/plan: prod"
	checkDev       = "dagctl/plan: dev"
)

// nonBreaking adds a column to customer_totals, as in the e2e tests.
var nonBreaking = testutil.NonBreakingChange

// BenchmarkWebhookToCheckRun measures, over several pull requests, the time from POSTing a pull_request opened
// webhook to the fake GitHub answering the bot's first check-run creation (queued) and its first update to
// in_progress, with the bot assembled and started as in production (server.New, server.Start: the dispatcher
// is woken by the intake, never drained by the test). Each PR's two plan jobs (prod, dev) run the real sqlmesh
// to the end before the next PR is sent, so PRs do not queue behind each other's jobs.
//
// Two modes, in the same run: "production" (the GitHub adapter on the wall clock, so its 1 s spacing of an
// installation's writes is real) and "fake-clock" (the adapter sleeps on the fake's clock, as the e2e tests do,
// which shows the bot's own latency). The floor is measured before each PR through the same recording proxy:
// one check-run creation and one update made directly with the GitHub adapter, without write spacing.
//
// A third mode, "burst", opens several PRs at once on the production clock: every PR's first check then waits
// for the other PRs' writes, since the adapter spaces all writes of one installation.
//
// The tables go to standard output (a benchmark's log is cut after a few lines).
func BenchmarkWebhookToCheckRun(b *testing.B) {
	w := newBenchWorld(b)
	for _, mode := range []string{"production", "fake-clock"} {
		rows := w.measure(b, mode, *e2ePRs)
		fmt.Printf("\nWebhookToCheckRun, mode %s (%d CPUs, shared; MaxJobs 1), PRs one after another:\n\n%s", mode, runtime.NumCPU(), rows.table())
		q, ip := rows.summary()
		b.ReportMetric(float64(q.P50.Microseconds())/1000, mode+"-queued-p50-ms")
		b.ReportMetric(float64(ip.P50.Microseconds())/1000, mode+"-in_progress-p50-ms")
		b.ReportMetric(stats.Ratio(q.P50, rows.floorCreate().P50), mode+"-queued-x-floor")
	}
	if *e2eBurst > 0 {
		rows := w.burst(b, *e2eBurst)
		fmt.Printf("\nWebhookToCheckRun, mode burst (%d CPUs, shared; MaxJobs 1), %d PRs opened at once:\n\n%s", runtime.NumCPU(), *e2eBurst, rows.burstTable())
		var q []time.Duration
		for _, r := range rows {
			q = append(q, r.queued)
		}
		b.ReportMetric(float64(stats.Summarize(q).Max.Microseconds())/1000, "burst-queued-max-ms")
	}
}

type benchWorld struct {
	*e2e.Forge
	dir     string
	rec     *checkRecorder
	proxy   *httptest.Server
	floor   *ghadapter.App
	floorID int64
	nextPR  int
}

func newBenchWorld(b *testing.B) *benchWorld { return newBenchWorldWith(b, nil) }

// newBenchWorldWith adds (or replaces) baseFiles in the example on main.
func newBenchWorldWith(b *testing.B, baseFiles map[string]string) *benchWorld {
	b.Helper()
	w := &benchWorld{Forge: e2e.NewForge(b, baseFiles), dir: b.TempDir(), nextPR: 1}
	w.DeployToProd(nil)

	target, err := url.Parse(w.Fake.URL())
	require.NoError(b, err)
	w.rec = &checkRecorder{next: http.DefaultTransport, heads: map[int64]string{}, names: map[int64]string{}}
	w.proxy = httptest.NewServer(&httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(target) },
		Transport: w.rec,
	})
	b.Cleanup(w.proxy.Close)

	// The floor's own client: the same adapter, through the same proxy, writes not spaced. Its first call
	// fetches an installation token; that is left out of the floor.
	w.floor, err = ghadapter.NewApp(ghadapter.Config{AppID: appID, PrivateKey: w.PEM, APIURL: w.proxy.URL + "/api/v3/", MinWriteInterval: -1})
	require.NoError(b, err)
	_, _ = w.floorCheck(b)
	return w
}

// floorCheck creates a check run on main's commit and updates it to in_progress, directly.
func (w *benchWorld) floorCheck(b *testing.B) (create, update time.Duration) {
	b.Helper()
	ctx := context.Background()
	repo := vcs.Repo{Forge: ghadapter.Forge, Owner: "acme", Name: "warehouse", Account: ghadapter.AccountOf(installationID)}
	check := ghadapter.Check{Name: "bench/floor", HeadSHA: w.Base, Status: ghadapter.CheckQueued, Title: "Queued", Summary: "floor"}
	start := time.Now()
	id, err := w.floor.CreateCheck(ctx, repo, check)
	create = time.Since(start)
	require.NoError(b, err)
	check.ID, check.Status = id, ghadapter.CheckInProgress
	start = time.Now()
	require.NoError(b, w.floor.UpdateCheck(ctx, repo, check))
	return create, time.Since(start)
}

// prRow is one pull request's timings, all from the start of the webhook POST.
type prRow struct {
	pr                                   int
	cold                                 bool
	ack, queued, inProgress, completed   time.Duration
	floorCreate, floorUpdate             time.Duration
	firstQueuedName, firstInProgressName string
	// githubBeforeQueued is the time spent in requests to the fake until the first check was created.
	githubBeforeQueued time.Duration
}

type prRows []prRow

func (w *benchWorld) measure(b *testing.B, mode string, prs int) prRows {
	b.Helper()
	srv, hook := w.startBot(b, mode)
	defer func() {
		hook.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		require.NoError(b, srv.Close(ctx))
	}()
	var rows prRows
	for i := 0; i <= prs; i++ {
		fc, fu := w.floorCheck(b)
		row := w.onePR(b, srv, hook.URL)
		row.cold, row.floorCreate, row.floorUpdate = i == 0, fc, fu
		rows = append(rows, row)
	}
	return rows
}

func (w *benchWorld) startBot(b *testing.B, mode string) (*server.Server, *httptest.Server) {
	return w.startBotWith(b, mode, nil)
}

// startBotWith starts the bot as startBot does, with configure changing its settings first (nil: none).
func (w *benchWorld) startBotWith(b *testing.B, mode string, configure func(*serverconfig.Config)) (*server.Server, *httptest.Server) {
	b.Helper()
	cfg := serverconfig.Config{
		DB:       filepath.Join(w.dir, mode+".db"),
		Executor: serverconfig.ExecutorLocal,
		GitHub: serverconfig.GitHub{
			AppID: appID, PrivateKey: serverconfig.Secret(w.PEM), WebhookSecret: webhookSecret,
			APIURL: w.proxy.URL + "/api/v3/",
		},
		PublicURL: publicURL,
		SQLMesh:   testutil.SQLMesh(b),
		WorkDir:   filepath.Join(w.dir, mode+"-work"),
		JobEnv:    []string{"EXAMPLE_DUCKDB_PATH"},
		// The jobs run as the bot's user, as before jobs had users of their own: the benchmark measures the
		// bot's path from webhook to check run, and its world (one directory for everything) is not laid out
		// for jobs of other users.
		JobUsers: serverconfig.JobUsers{Mode: serverconfig.JobUsersOff},
	}
	opts := server.Options{
		Log:           slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo})),
		ExecutionTime: executionTime,
		Environ:       append(os.Environ(), "EXAMPLE_DUCKDB_PATH="+w.State),
		// The example's DuckDB file takes one writer at a time (as in the e2e harness).
		MaxJobs: 1,
	}
	if mode == "fake-clock" {
		opts.Now, opts.Sleep = w.Fake.Now, w.Fake.Sleep
	}
	if configure != nil {
		configure(&cfg)
	}
	srv, err := server.New(context.Background(), cfg, opts)
	require.NoError(b, err)
	require.NoError(b, srv.Start(context.Background()))
	hs := httptest.NewUnstartedServer(srv.Handler())
	hs.Config = server.NewHTTPServer("", srv.Handler(), server.DefaultHTTPLimits) // as `dagctl-bot serve` serves
	hs.Start()
	return srv, hs
}

// openPR makes a PR with the non-breaking change on a new branch and returns its number, head and webhook.
func (w *benchWorld) openPR(b *testing.B) (int, string, *githubfake.Payload) {
	b.Helper()
	n := w.nextPR
	w.nextPR++
	head := w.PR(n, fmt.Sprintf("change-%d", n), "alice", nonBreaking)
	return n, head, w.PREvent("opened", n, head, "alice")
}

// onePR opens a PR, sends its webhook and waits until both plan checks completed and the bot is idle.
func (w *benchWorld) onePR(b *testing.B, srv *server.Server, hookURL string) prRow {
	b.Helper()
	n, head, payload := w.openPR(b)
	start := time.Now()
	ack := send(b, payload, hookURL)
	row := w.settled(b, srv, n, head, start)
	row.ack = ack
	return row
}

func send(b *testing.B, payload *githubfake.Payload, hookURL string) time.Duration {
	start := time.Now()
	d, err := payload.Send(hookURL+"/webhooks/github", webhookSecret)
	ack := time.Since(start)
	require.NoError(b, err)
	require.Equal(b, http.StatusAccepted, d.Status, d.Body)
	return ack
}

// burst opens k PRs at once on a bot on the production clock and returns each PR's timings.
func (w *benchWorld) burst(b *testing.B, k int) prRows {
	b.Helper()
	srv, hook := w.startBot(b, "burst")
	defer func() {
		hook.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		require.NoError(b, srv.Close(ctx))
	}()
	type pr struct {
		n       int
		head    string
		payload *githubfake.Payload
		ack     time.Duration
	}
	prs := make([]pr, k)
	for i := range prs {
		prs[i].n, prs[i].head, prs[i].payload = w.openPR(b)
	}
	start := time.Now()
	var wg sync.WaitGroup
	for i := range prs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			prs[i].ack = send(b, prs[i].payload, hook.URL)
		}()
	}
	wg.Wait()
	var rows prRows
	for _, p := range prs {
		row := w.settled(b, srv, p.n, p.head, start)
		row.ack = p.ack
		rows = append(rows, row)
	}
	return rows
}

// settled waits until both plan checks of the PR completed and the bot is idle, and reads the PR's timings
// from start.
func (w *benchWorld) settled(b *testing.B, srv *server.Server, n int, head string, start time.Time) prRow {
	b.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	var evs []checkEvent
	for {
		evs = w.rec.eventsFor(head)
		if completed(evs, checkProd) && completed(evs, checkDev) {
			break
		}
		require.True(b, time.Now().Before(deadline), "PR %d: checks did not complete; recorded: %+v", n, evs)
		time.Sleep(20 * time.Millisecond)
	}
	srv.WaitJobs()
	// Let the adapter's write spacing (1 s) pass, so the next PR's first write does not wait for this one's last.
	time.Sleep(1100 * time.Millisecond)

	row := prRow{pr: n}
	for _, e := range evs {
		at := e.at.Sub(start)
		switch {
		case e.create && row.queued == 0:
			row.queued, row.firstQueuedName = at, e.name
		case !e.create && e.status == "in_progress" && row.inProgress == 0:
			row.inProgress, row.firstInProgressName = at, e.name
		}
		if e.status == "completed" {
			row.completed = max(row.completed, at)
		}
	}
	require.NotZero(b, row.queued, "PR %d: no check-run creation recorded", n)
	row.githubBeforeQueued = w.rec.waited(start, start.Add(row.queued))
	require.NotZero(b, row.inProgress, "PR %d: no in_progress update recorded", n)
	return row
}

func completed(evs []checkEvent, name string) bool {
	for _, e := range evs {
		if e.name == name && e.status == "completed" {
			return true
		}
	}
	return false
}

func (rows prRows) warm() prRows {
	var out prRows
	for _, r := range rows {
		if !r.cold {
			out = append(out, r)
		}
	}
	return out
}

func (rows prRows) summary() (queued, inProgress stats.Summary) {
	var q, ip []time.Duration
	for _, r := range rows.warm() {
		q, ip = append(q, r.queued), append(ip, r.inProgress)
	}
	return stats.Summarize(q), stats.Summarize(ip)
}

func (rows prRows) floorCreate() stats.Summary {
	var d []time.Duration
	for _, r := range rows.warm() {
		d = append(d, r.floorCreate)
	}
	return stats.Summarize(d)
}

func (rows prRows) burstTable() string {
	var out [][]string
	for _, r := range rows {
		out = append(out, []string{fmt.Sprint(r.pr), stats.Ms(r.ack), stats.Ms(r.queued) + " (" + strings.TrimPrefix(r.firstQueuedName, "dagctl/plan: ") + ")",
			stats.Ms(r.inProgress) + " (" + strings.TrimPrefix(r.firstInProgressName, "dagctl/plan: ") + ")", stats.Ms(r.completed)})
	}
	return stats.Table([]string{"PR", "ack (202)", "first check queued", "first in_progress", "both completed"}, out)
}

func (rows prRows) table() string {
	var out [][]string
	for _, r := range rows {
		pr := fmt.Sprint(r.pr)
		if r.cold {
			pr += " (cold)"
		}
		out = append(out, []string{pr, stats.Ms(r.ack), stats.Ms(r.queued) + " (" + strings.TrimPrefix(r.firstQueuedName, "dagctl/plan: ") + ")",
			stats.Ms(r.githubBeforeQueued), stats.Ms(r.inProgress) + " (" + strings.TrimPrefix(r.firstInProgressName, "dagctl/plan: ") + ")",
			stats.Ms(r.completed), stats.Ms(r.floorCreate), stats.Ms(r.floorUpdate)})
	}
	q, ip := rows.summary()
	fc := rows.floorCreate()
	out = append(out, []string{"p50 (warm)", "", stats.Ms(q.P50), "", stats.Ms(ip.P50), "", stats.Ms(fc.P50), ""},
		[]string{"max (warm)", "", stats.Ms(q.Max), "", stats.Ms(ip.Max), "", stats.Ms(fc.Max), ""},
		[]string{"p50 / floor create", "", fmt.Sprintf("×%.1f", stats.Ratio(q.P50, fc.P50)), "", fmt.Sprintf("×%.1f", stats.Ratio(ip.P50, fc.P50)), "", "", ""})
	return stats.Table([]string{"PR", "ack (202)", "first check queued", "…of which in GitHub calls", "first in_progress", "both completed", "floor: create", "floor: update"}, out)
}

// checkRecorder sits between the bot and the fake GitHub and notes when the fake answered each check-run
// creation and update: the moment the fake has recorded it.
type checkRecorder struct {
	next http.RoundTripper

	mu     sync.Mutex
	events []checkEvent
	calls  []apiCall         // every request, to tell the fake's time from the bot's
	log    []recordedRequest // every request's answer time, and comment bodies (BenchmarkWebhookToFinalSticky)
	heads  map[int64]string  // check run id → head SHA
	names  map[int64]string
}

type apiCall struct{ start, end time.Time }

type checkEvent struct {
	at     time.Time
	create bool
	head   string
	name   string
	status string
}

func (c *checkRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	create := req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/check-runs")
	update := req.Method == http.MethodPatch && strings.Contains(req.URL.Path, "/check-runs/")
	body, err := readBody(req)
	if err != nil {
		return nil, err
	}
	if !create && !update {
		start := time.Now()
		resp, err := c.next.RoundTrip(req)
		end := time.Now()
		c.recordComment(req, body, end)
		c.mu.Lock()
		c.calls = append(c.calls, apiCall{start: start, end: end})
		c.mu.Unlock()
		return resp, err
	}
	start := time.Now()
	resp, err := c.next.RoundTrip(req)
	at := time.Now()
	c.recordComment(req, body, at)
	if err != nil || resp.StatusCode >= 300 {
		return resp, err
	}
	answer, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(answer))
	if err != nil {
		return resp, err
	}
	var in struct {
		Status     string `json:"status"`
		Conclusion string `json:"conclusion"`
	}
	var out struct {
		ID      int64  `json:"id"`
		Name    string `json:"name"`
		HeadSHA string `json:"head_sha"`
		Status  string `json:"status"`
	}
	_ = json.Unmarshal(body, &in)
	_ = json.Unmarshal(answer, &out)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.heads[out.ID], c.names[out.ID] = out.HeadSHA, out.Name
	c.events = append(c.events, checkEvent{at: at, create: create, head: out.HeadSHA, name: out.Name, status: out.Status})
	c.calls = append(c.calls, apiCall{start: start, end: at})
	return resp, nil
}

// waited is how long requests to the fake that started after from and ended by to took, summed.
func (c *checkRecorder) waited(from, to time.Time) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	var sum time.Duration
	for _, call := range c.calls {
		if !call.start.Before(from) && !call.end.After(to) {
			sum += call.end.Sub(call.start)
		}
	}
	return sum
}

func (c *checkRecorder) eventsFor(head string) []checkEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []checkEvent
	for _, e := range c.events {
		if e.head == head {
			out = append(out, e)
		}
	}
	return out
}
