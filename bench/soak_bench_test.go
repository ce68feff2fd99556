package bench

import (
	"bytes"
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/bench/internal/stats"
	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/forgetest/githubfake"
	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/webhook"
)

var (
	soakPRs       = flag.Int("bench.soak.prs", 2000, "BenchmarkSoak: PRs simulated")
	soakPerMinute = flag.Int("bench.soak.per-minute", 20, "BenchmarkSoak: PRs opened per simulated minute")
	soakLogLines  = flag.Int("bench.soak.log-lines", 200, "BenchmarkSoak: log lines of each plan run (100 bytes each)")
	soakBatch     = flag.Int("bench.soak.batch", db.DefaultPruneBatch, "BenchmarkSoak: rows per prune transaction")
)

const (
	soakDeliveriesPerPR = 5 // opened, two pushes, two comments
	soakRunsPerPR       = 2 // a plan per environment
	soakKeepBodies      = 10 * time.Minute
	soakKeepLogs        = 30 * time.Minute
	soakKeepDeliveries  = 60 * time.Minute
)

// BenchmarkSoak runs 2,000 PRs' worth of deliveries (real GitHub payloads, through the real intake over HTTP into
// the real store) and plan runs (the store directly: a run with its log through RunLogWriter, finished), on a
// fake clock where a simulated minute brings soakPerMinute PRs, with the retention shortened to minutes (bodies
// 10, logs 30, delivery rows 60) and the store pruned every simulated minute while the deliveries keep coming. It prints the
// database's size (db + wal) each simulated minute, with pruning and without, and the intake's ack latency in
// both. Goal: with pruning, the size levels off once the retention is reached, without VACUUM; ack p99 about
// the same as without pruning.
func BenchmarkSoak(b *testing.B) {
	body := githubfake.LoadPayload(b, "issue_comment.created.on-pr.json").Bytes()
	var rows [][]string
	for i := 0; i < b.N; i++ {
		for _, prune := range []bool{false, true} {
			r := runSoak(b, filepath.Join(b.TempDir(), "soak.db"), body, prune)
			s := stats.Summarize(r.acks)
			bs := stats.Summarize(r.batches)
			rows = append(rows, []string{fmt.Sprint(prune), fmt.Sprint(len(r.acks)), stats.Ms(s.P50), stats.Ms(s.P99),
				mib(r.sizes[len(r.sizes)/2]), mib(r.sizes[len(r.sizes)-1]), fmt.Sprint(r.pruned.Batches),
				fmt.Sprintf("%s / %s", stats.Ms(bs.P50), stats.Ms(bs.P99))})
		}
	}
	b.StopTimer()
	fmt.Print(stats.Table([]string{"pruning", "deliveries", "ack p50", "ack p99", "size at half-time", "size at the end", "prune batches", "batch p50 / p99"}, rows))
}

type soakResult struct {
	acks   []time.Duration
	sizes  []int64 // db + wal after each simulated minute
	pruned db.Pruned
	// batches are the prune batches' durations (each full batch; the last of each step is not timed)
	batches []time.Duration
}

// runSoak is one soak: the intake served over HTTP, a sender posting each minute's deliveries and timing each
// acknowledgement, the store's work for each (claimed and completed, as the dispatcher does) and each PR's runs,
// then the prune, in the background, as the server runs it, while the next minute's deliveries arrive.
func runSoak(b *testing.B, path string, body []byte, prune bool) soakResult {
	ctx := context.Background()
	clk := &soakClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	store, err := db.Open(path, db.WithClock(clk.Now))
	require.NoError(b, err)
	defer store.Close()
	in := &webhook.Intake{Queue: store, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	const secret = "soak-secret"
	hook := httptest.NewServer(in.For(webhook.Source{Forge: "github", EventHeader: "X-GitHub-Event",
		DeliveryHeaders: []string{"X-GitHub-Delivery"}, AuthHeader: "X-Token", Secret: func() []byte { return []byte(secret) },
		Verify: webhook.VerifyToken, OrderingKey: func([]byte) string { return "" }}))
	defer hook.Close()

	var res soakResult
	var pruning sync.WaitGroup
	var mu sync.Mutex
	minutes := (*soakPRs + *soakPerMinute - 1) / *soakPerMinute
	for minute := 0; minute < minutes; minute++ {
		for pr := minute * *soakPerMinute; pr < min((minute+1)**soakPerMinute, *soakPRs); pr++ {
			for d := 0; d < soakDeliveriesPerPR; d++ {
				res.acks = append(res.acks, postSoak(b, hook.URL, fmt.Sprintf("pr%d-%d", pr, d), secret, body))
				handleSoak(b, store)
			}
			for run := 0; run < soakRunsPerPR; run++ {
				soakRun(b, store, pr, run)
			}
		}
		pruning.Wait() // the previous minute's prune
		clk.Advance(time.Minute)
		if prune {
			pruning.Add(1)
			go func(now time.Time) {
				defer pruning.Done()
				last := time.Now()
				var held []time.Duration // a batch's time: from the end of one pause to the start of the next
				p, err := store.Prune(ctx, db.Retention{DeliveryBodies: soakKeepBodies, Deliveries: soakKeepDeliveries, RunLogs: soakKeepLogs, Batch: *soakBatch}, now,
					func(context.Context) error {
						held = append(held, time.Since(last))
						time.Sleep(5 * time.Millisecond)
						last = time.Now()
						return nil
					})
				require.NoError(b, err)
				mu.Lock()
				res.batches = append(res.batches, held...)
				res.pruned.Batches += p.Batches
				res.pruned.DeliveryBodies += p.DeliveryBodies
				res.pruned.Deliveries += p.Deliveries
				res.pruned.RunLogRows += p.RunLogRows
				mu.Unlock()
			}(clk.Now())
		}
		size := fileSize(path) + fileSize(path+"-wal")
		res.sizes = append(res.sizes, size)
		fmt.Printf("soak pruning=%v minute=%d prs=%d db+wal=%s\n", prune, minute+1, min((minute+1)**soakPerMinute, *soakPRs), mib(size))
	}
	pruning.Wait()
	printTableSizes(b, path)
	return res
}

// printTableSizes prints the pages each table and index takes (SQLite's dbstat), and the free pages: where the
// file's bytes are.
func printTableSizes(b *testing.B, path string) {
	conn, err := sql.Open("sqlite", path)
	require.NoError(b, err)
	defer conn.Close()
	rows, err := conn.Query(`SELECT name, sum(pgsize), sum(unused) FROM dbstat GROUP BY name ORDER BY sum(pgsize) DESC LIMIT 8`)
	if err != nil {
		fmt.Println("soak: no dbstat:", err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var size, unused int64
		require.NoError(b, rows.Scan(&name, &size, &unused))
		fmt.Printf("soak table %s: %s (%s unused inside its pages)\n", name, mib(size), mib(unused))
	}
	var free int64
	require.NoError(b, conn.QueryRow(`SELECT freelist_count * page_size FROM pragma_freelist_count, pragma_page_size`).Scan(&free))
	fmt.Printf("soak free pages: %s\n", mib(free))
}

func postSoak(b *testing.B, url, id, secret string, body []byte) time.Duration {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	require.NoError(b, err)
	req.Header.Set("X-GitHub-Event", "issue_comment")
	req.Header.Set("X-GitHub-Delivery", id)
	req.Header.Set("X-Token", secret)
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	took := time.Since(start)
	require.NoError(b, err)
	resp.Body.Close()
	require.Less(b, resp.StatusCode, 300, id)
	return took
}

// handleSoak does the dispatcher's store work for the delivery just queued: claim it, mark it done.
func handleSoak(b *testing.B, store *db.Store) {
	d, ok, err := store.Claim(context.Background(), "soak")
	require.NoError(b, err)
	require.True(b, ok)
	require.NoError(b, store.Complete(context.Background(), d.ID, "soak"))
}

// soakRun stores a plan of the PR with one finished run whose log is soakLogLines lines and a result line.
func soakRun(b *testing.B, store *db.Store, pr, n int) {
	ctx := context.Background()
	p, err := store.CreatePlan(ctx, db.Plan{Forge: "github", Repo: "acme/warehouse", PR: pr + 1, Project: "sqlmesh",
		Environment: fmt.Sprint("env", n), HeadSHA: fmt.Sprintf("%040d", pr), BaseSHA: "base", TriggerUser: "alice"})
	require.NoError(b, err)
	run, _, err := store.CreateRun(ctx, p.ID, jobs.KindPlan, "local")
	require.NoError(b, err)
	w := store.NewRunLogWriter(run.ID, time.Hour)
	line := fmt.Sprintf("%-100s", "Updating physical layer model sqlmesh_example.some_model_with_a_long_name …")
	for i := 0; i < *soakLogLines; i++ {
		w.Sink(jobs.Line{Stream: "stderr", Text: line})
	}
	w.Sink(jobs.Line{Stream: "stdout", Text: jobs.ResultPrefix + `plan:: {"ok": true}`})
	require.NoError(b, w.Close(ctx))
	_, err = store.StartRun(ctx, run.ID, "job")
	require.NoError(b, err)
	_, err = store.FinishRun(ctx, run.ID, db.RunResult{Status: db.RunSucceeded})
	require.NoError(b, err)
}

type soakClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *soakClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *soakClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
