package bench

import (
	"bytes"
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/dagctl/dagctl-bot/bench/internal/stats"
	"github.com/dagctl/dagctl-bot/internal/forgetest/e2e"
	"github.com/dagctl/dagctl-bot/internal/forgetest/githubfake"
)

var (
	burstDeliveries = flag.Int("bench.drain.n", 2000, "BenchmarkBurstDrain: plain comments sent per layout")
	burstSenders    = flag.Int("bench.drain.senders", 8, "BenchmarkBurstDrain: concurrent senders")
)

// BenchmarkBurstDrain sends a burst of plain PR comments (the bot acts on none: no job, no forge write) to the
// bot as served in production (server.New + Start: the dispatcher runs, woken by the intake), on one PR and
// spread over 200 PRs, and measures the acknowledgements and how long after the last one the queue is empty.
// The floor, in the same run and with the same senders and payloads, is a bare handler doing one SQLite INSERT
// per delivery (as bench/cmd/loadtest's). Goal: drained within 10 s of the last acknowledgement, ack p99 ≤ 2×
// the floor's.
func BenchmarkBurstDrain(b *testing.B) {
	w := newBenchWorld(b)
	var rows [][]string
	for i := 0; i < b.N; i++ {
		for _, prs := range []int{1, 200} {
			payloads := w.plainComments(b, *burstDeliveries, prs)
			floorURL, closeFloor := insertFloor(b, filepath.Join(w.dir, fmt.Sprintf("floor-%d-%d.db", i, prs)))
			floor := sendBurst(b, floorURL, payloads, *burstSenders)
			closeFloor()

			mode := fmt.Sprintf("drain-%d-%d", i, prs)
			srv, hook := w.startBot(b, mode)
			bot := sendBurst(b, hook.URL+"/webhooks/github", payloads, *burstSenders)
			drain := waitDrained(b, filepath.Join(w.dir, mode+".db"), bot.lastAck)
			hook.Close()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			require.NoError(b, srv.Close(ctx))
			cancel()

			fs, bs := stats.Summarize(floor.acks), stats.Summarize(bot.acks)
			rows = append(rows,
				[]string{fmt.Sprint(prs), "floor", fmt.Sprint(len(floor.acks)), ms(fs.P50), ms(fs.P99), rate(floor), "", ""},
				[]string{fmt.Sprint(prs), "bot", fmt.Sprint(len(bot.acks)), ms(bs.P50), ms(bs.P99), rate(bot),
					fmt.Sprintf("p99 ×%.2f · rate ×%.2f", float64(bs.P99)/float64(fs.P99), perSecond(bot)/perSecond(floor)),
					fmt.Sprintf("%.2f s", drain.Seconds())})
		}
	}
	b.StopTimer()
	fmt.Print(stats.Table([]string{"PRs", "server", "deliveries", "ack p50", "ack p99", "ack rate", "vs floor", "drained after last ack"}, rows))
}

// plainComments are n signed-ready issue_comment payloads on PRs 1..prs in turn, bodies no command.
func (w *benchWorld) plainComments(b *testing.B, n, prs int) []*githubfake.Payload {
	out := make([]*githubfake.Payload, n)
	for i := range out {
		out[i] = githubfake.LoadPayload(b, "issue_comment.created.on-pr.json").Installation(e2e.InstallationID).Repo(w.Repo).
			Set("issue.number", 1+i%prs).Set("comment.id", 900000+i).Set("comment.body", fmt.Sprintf("looks good %d", i)).
			Set("comment.user.login", "alice").Set("comment.user.type", "User").Set("sender.login", "alice")
	}
	return out
}

type burstResult struct {
	acks           []time.Duration
	first, lastAck time.Time
}

func perSecond(r burstResult) float64 {
	return float64(len(r.acks)) / r.lastAck.Sub(r.first).Seconds()
}

func rate(r burstResult) string { return fmt.Sprintf("%.0f/s", perSecond(r)) }

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

// sendBurst posts every payload once, from senders goroutines over keep-alive connections, each needing 202.
func sendBurst(b *testing.B, url string, payloads []*githubfake.Payload, senders int) burstResult {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: senders}}
	defer client.CloseIdleConnections()
	next := make(chan int, len(payloads))
	for i := range payloads {
		next <- i
	}
	close(next)
	res := burstResult{acks: make([]time.Duration, len(payloads)), first: time.Now()}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for s := 0; s < senders; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				body := payloads[i].Bytes()
				req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
				require.NoError(b, err)
				req.Header = payloads[i].Header(body, webhookSecret, fmt.Sprintf("burst-%d-%d", time.Now().UnixNano(), i))
				start := time.Now()
				resp, err := client.Do(req)
				require.NoError(b, err)
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				end := time.Now()
				require.Equal(b, http.StatusAccepted, resp.StatusCode)
				mu.Lock()
				res.acks[i] = end.Sub(start)
				if end.After(res.lastAck) {
					res.lastAck = end
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return res
}

// waitDrained polls the store until no delivery is pending or in flight, and returns how long after lastAck.
// It reads the bot's database file over a connection of its own, as an operator's sqlite3 would.
func waitDrained(b *testing.B, path string, lastAck time.Time) time.Duration {
	store, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	require.NoError(b, err)
	defer store.Close()
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		var open int
		require.NoError(b, store.QueryRow(`SELECT count(*) FROM deliveries WHERE status IN ('pending', 'in_flight')`).Scan(&open))
		if open == 0 {
			return time.Since(lastAck)
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.Fatal("the queue did not drain in 10 minutes")
	return 0
}

// insertFloor serves the least an intake can do: read the body, insert it, answer 202 (bench/cmd/loadtest's floor).
func insertFloor(b *testing.B, path string) (string, func()) {
	sqlDB, err := sql.Open("sqlite", path+"?_txlock=immediate&_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)"+
		"&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)")
	require.NoError(b, err)
	sqlDB.SetMaxOpenConns(1)
	_, err = sqlDB.Exec(`CREATE TABLE deliveries (id INTEGER PRIMARY KEY AUTOINCREMENT,
		delivery_id TEXT NOT NULL, event TEXT NOT NULL, body BLOB NOT NULL) STRICT`)
	require.NoError(b, err)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err == nil {
			_, err = sqlDB.ExecContext(r.Context(), `INSERT INTO deliveries (delivery_id, event, body) VALUES (?, ?, ?)`,
				r.Header.Get("X-GitHub-Delivery"), r.Header.Get("X-GitHub-Event"), body)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	return hs.URL, func() { hs.Close(); _ = sqlDB.Close() }
}
