// Command loadtest measures the webhook intake under load: acknowledgement latency (p50, p99) and throughput
// with N concurrent senders, against two servers started in this process on 127.0.0.1 and driven in the same
// run, interleaved:
//
//   - intake: the real intake, webhook.GitHub over a real db.Store on a temporary SQLite file (signature check,
//     size cap, ordering key, deduplicating enqueue, an Info log line per delivery formatted into io.Discard);
//   - floor: a bare net/http handler that reads the body and does one SQLite INSERT of it, with the same driver
//     and the same pragmas as the store (WAL, synchronous=NORMAL, busy_timeout) over one connection, since
//     SQLite has one writer.
//
// Both receive the same real, signed payloads from shared/payloads/github, in turn, each with a fresh delivery
// id. The dispatcher does not run: this measures the intake alone. Every run is bounded by -requests and
// -duration; nothing leaves the loopback interface.
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite"

	"github.com/dagctl/dagctl-bot/bench/internal/stats"
	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/forgetest/githubfake"
	"github.com/dagctl/dagctl-bot/internal/webhook"
)

const secret = "loadtest-webhook-secret"

type config struct {
	concurrency []int
	requests    int           // per run
	duration    time.Duration // per run, at most
	rounds      int           // runs per (target, concurrency), interleaved
	warmup      int           // requests per target before measuring
	payloads    string
}

func main() {
	cfg := config{}
	var levels string
	flag.StringVar(&levels, "concurrency", "1,8,32", "comma-separated numbers of concurrent senders")
	flag.IntVar(&cfg.requests, "requests", 2000, "requests per run (one target, one concurrency, one round)")
	flag.DurationVar(&cfg.duration, "duration", 15*time.Second, "longest run; a run stops at -requests or this")
	flag.IntVar(&cfg.rounds, "rounds", 2, "runs per target and concurrency, alternating floor and intake")
	flag.IntVar(&cfg.warmup, "warmup", 200, "unmeasured requests per target first")
	flag.StringVar(&cfg.payloads, "payloads", "", "directory of GitHub payloads (default: shared/payloads/github)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run (both servers and the senders) here")
	flag.Parse()
	for _, f := range strings.Split(levels, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "loadtest: bad -concurrency %q\n", levels)
			os.Exit(2)
		}
		cfg.concurrency = append(cfg.concurrency, n)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
			os.Exit(1)
		}
		defer f.Close()
	}
	err := run(cfg, os.Stdout)
	if *cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

// delivery is one real signed payload, ready to send.
type delivery = githubfake.SignedPayload

func loadPayloads(dir string) ([]delivery, error) { return githubfake.SignedPayloads(dir, secret) }

// target is a server under test.
type target struct {
	name  string
	url   string
	close func()
}

func serve(name string, h http.Handler) (target, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return target{}, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return target{name: name, url: "http://" + ln.Addr().String() + "/webhooks/github", close: func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}}, nil
}

// intake is the real intake over a real store.
func intake(dir string) (target, func(), error) {
	store, err := db.Open(filepath.Join(dir, "intake.db"))
	if err != nil {
		return target{}, nil, err
	}
	h := &webhook.GitHub{
		Secret: func() []byte { return []byte(secret) },
		Queue:  store,
		Log:    slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
	t, err := serve("intake", h)
	return t, func() { _ = store.Close() }, err
}

// floor is the least an intake can do: read the body, insert it, answer.
func floor(dir string) (target, func(), error) {
	path := filepath.Join(dir, "floor.db")
	dsn := path + "?_txlock=immediate&_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)"
	sqlDB, err := sql.Open("sqlite", dsn)
	if err != nil {
		return target{}, nil, err
	}
	sqlDB.SetMaxOpenConns(1)
	if _, err := sqlDB.Exec(`CREATE TABLE deliveries (id INTEGER PRIMARY KEY AUTOINCREMENT,
		delivery_id TEXT NOT NULL, event TEXT NOT NULL, body BLOB NOT NULL) STRICT`); err != nil {
		sqlDB.Close()
		return target{}, nil, err
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
	})
	t, err := serve("floor", h)
	return t, func() { _ = sqlDB.Close() }, err
}

// result is one run: a target at a concurrency.
type result struct {
	latencies []time.Duration
	elapsed   time.Duration
	failures  int
	firstErr  error
}

var nextDelivery atomic.Int64

// load sends up to n deliveries with c concurrent senders, for at most d.
func load(t target, payloads []delivery, c, n int, d time.Duration) result {
	client := &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost: c, DisableCompression: true,
		DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
	}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	var (
		sent atomic.Int64
		mu   sync.Mutex
		res  result
		wg   sync.WaitGroup
	)
	deadline := time.Now().Add(d)
	start := time.Now()
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			var failures int
			var firstErr error
			for time.Now().Before(deadline) {
				i := sent.Add(1)
				if i > int64(n) {
					break
				}
				p := payloads[int(i)%len(payloads)]
				lat, err := send(client, t.url, p, "loadtest-"+strconv.FormatInt(nextDelivery.Add(1), 10))
				if err != nil {
					failures++
					if firstErr == nil {
						firstErr = err
					}
					continue
				}
				mine = append(mine, lat)
			}
			mu.Lock()
			res.latencies = append(res.latencies, mine...)
			res.failures += failures
			if res.firstErr == nil {
				res.firstErr = firstErr
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	return res
}

// send posts one delivery as GitHub does and returns the time until the whole answer was read.
func send(client *http.Client, url string, p delivery, id string) (time.Duration, error) {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(string(p.Body)))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/loadtest")
	req.Header.Set("X-GitHub-Event", p.Event)
	req.Header.Set("X-GitHub-Delivery", id)
	req.Header.Set("X-Hub-Signature-256", p.Signature)
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	lat := time.Since(start)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusAccepted {
		return 0, fmt.Errorf("status %d", resp.StatusCode)
	}
	return lat, nil
}

func run(cfg config, w io.Writer) error {
	payloads, err := loadPayloads(cfg.payloads)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "dagctl-loadtest-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	realT, closeReal, err := intake(dir)
	if err != nil {
		return err
	}
	defer closeReal()
	defer realT.close()
	floorT, closeFloor, err := floor(dir)
	if err != nil {
		return err
	}
	defer closeFloor()
	defer floorT.close()
	targets := []target{floorT, realT}

	var bytes int
	for _, p := range payloads {
		bytes += len(p.Body)
	}
	fmt.Fprintf(w, "%d payloads (mean %d B), %d requests or %s per run, %d rounds, %d CPUs (shared with this load generator), %s\n",
		len(payloads), bytes/len(payloads), cfg.requests, cfg.duration, cfg.rounds, runtime.NumCPU(),
		time.Now().UTC().Format(time.RFC3339))
	for _, t := range targets {
		if r := load(t, payloads, 1, cfg.warmup, cfg.duration); r.failures > 0 {
			return fmt.Errorf("%s warm-up: %d failures, first: %v", t.name, r.failures, r.firstErr)
		}
	}

	type key struct {
		target string
		c      int
	}
	all := map[key]*result{}
	for _, c := range cfg.concurrency {
		for round := range cfg.rounds {
			order := targets
			if round%2 == 1 {
				order = []target{targets[1], targets[0]}
			}
			for _, t := range order {
				r := load(t, payloads, c, cfg.requests, cfg.duration)
				if r.failures > 0 {
					return fmt.Errorf("%s at concurrency %d: %d failures, first: %v", t.name, c, r.failures, r.firstErr)
				}
				k := key{t.name, c}
				if all[k] == nil {
					all[k] = &result{}
				}
				all[k].latencies = append(all[k].latencies, r.latencies...)
				all[k].elapsed += r.elapsed
			}
		}
	}

	var rows [][]string
	for _, c := range cfg.concurrency {
		f, i := all[key{"floor", c}], all[key{"intake", c}]
		fs, is := stats.Summarize(f.latencies), stats.Summarize(i.latencies)
		fput := float64(len(f.latencies)) / f.elapsed.Seconds()
		iput := float64(len(i.latencies)) / i.elapsed.Seconds()
		for _, row := range []struct {
			name string
			s    stats.Summary
			put  float64
		}{{"floor", fs, fput}, {"intake", is, iput}} {
			ratio := fmt.Sprintf("p50 ×%.2f · p99 ×%.2f · rate ×%.2f",
				stats.Ratio(row.s.P50, fs.P50), stats.Ratio(row.s.P99, fs.P99), row.put/fput)
			rows = append(rows, []string{strconv.Itoa(c), row.name, strconv.Itoa(row.s.N), stats.Ms(row.s.P50),
				stats.Ms(row.s.P99), stats.Ms(row.s.Max), fmt.Sprintf("%.0f/s", row.put), ratio})
		}
	}
	fmt.Fprintln(w)
	fmt.Fprint(w, stats.Table([]string{"senders", "server", "requests", "p50", "p99", "max", "throughput", "vs floor"}, rows))
	return nil
}
