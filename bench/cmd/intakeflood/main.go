// Command intakeflood measures what a flood of strangers' slow, maximal webhook bodies costs the intake, and
// whether real deliveries are still acknowledged meanwhile. In this process, on 127.0.0.1 only:
//
//   - the real intake, webhook.GitHub over a real db.Store on a temporary SQLite file, with its default body
//     limits, served by server.NewHTTPServer with the limits `dagctl-bot serve` uses;
//   - -slow senders, each POSTing a body declared as -size bytes (25 MB, GitHub's cap) with a well-formed but
//     wrong signature, written -chunk bytes every -interval; when the intake answers or closes the connection,
//     the sender starts over on a new one;
//   - -senders real senders posting real signed payloads from shared/payloads/github (fresh delivery ids)
//     back to back, with a -pause between deliveries.
//
// Two phases, in one run: idle (the real senders alone, -idle long: the floor) and flood (both, -duration
// long). Printed per phase: the process's peak RSS (VmHWM of /proc/self/status, reset between the phases through
// /proc/self/clear_refs), deliveries sent, acknowledged (202) and found stored afterwards, the acknowledgement
// latency; and the slow senders' outcomes. The load generator runs in the same process and the same 2 cores; its
// senders write from one shared buffer, so their memory is small and is part of both phases' figures.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dagctl/dagctl-bot/bench/internal/stats"
	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/forgetest/githubfake"
	"github.com/dagctl/dagctl-bot/internal/server"
	"github.com/dagctl/dagctl-bot/internal/webhook"
)

const secret = "intakeflood-webhook-secret"

type config struct {
	slow     int           // concurrent slow senders
	size     int64         // declared body size of each slow POST
	chunk    int           // bytes a slow sender writes at a time
	interval time.Duration // between a slow sender's writes
	senders  int           // concurrent real senders
	pause    time.Duration // between one real sender's deliveries
	idle     time.Duration // the floor phase
	duration time.Duration // the flood phase
	payloads string
}

func main() {
	cfg := config{}
	flag.IntVar(&cfg.slow, "slow", 200, "concurrent slow POSTs of strangers")
	flag.Int64Var(&cfg.size, "size", webhook.MaxBodyBytes, "declared body size of each slow POST")
	flag.IntVar(&cfg.chunk, "chunk", 16<<10, "bytes a slow sender writes at a time")
	flag.DurationVar(&cfg.interval, "interval", 100*time.Millisecond, "pause between a slow sender's writes")
	flag.IntVar(&cfg.senders, "senders", 2, "concurrent senders of real signed deliveries")
	flag.DurationVar(&cfg.pause, "pause", 50*time.Millisecond, "pause between one real sender's deliveries")
	flag.DurationVar(&cfg.idle, "idle", 5*time.Second, "length of the idle phase (the floor)")
	// Longer than the 20 s ReadTimeout, so that senders are cut off and come back during the flood.
	flag.DurationVar(&cfg.duration, "duration", 30*time.Second, "length of the flood phase")
	flag.StringVar(&cfg.payloads, "payloads", "", "directory of GitHub payloads (default: shared/payloads/github)")
	flag.Parse()
	if err := run(cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "intakeflood:", err)
		os.Exit(1)
	}
}

// delivery is one real signed payload, ready to send.
type delivery = githubfake.SignedPayload

func loadPayloads(dir string) ([]delivery, error) { return githubfake.SignedPayloads(dir, secret) }

// phase is what one phase measured.
type phase struct {
	name      string
	peakRSS   int64 // bytes
	sent      int
	acked     []string // delivery ids answered 202
	latencies []time.Duration
	otherFail map[string]int // answers other than 202, and transport errors
	stored    int
	slow      slowCounts
	intake    webhook.IntakeStats
}

// slowCounts are the slow senders' outcomes.
type slowCounts struct {
	connections atomic.Int64
	answered    sync.Map     // status code → *atomic.Int64
	closed      atomic.Int64 // closed by the intake without an answer
	unfinished  atomic.Int64 // still open when the phase ended
	bytesSent   atomic.Int64
}

func (c *slowCounts) answer(status int) {
	v, _ := c.answered.LoadOrStore(status, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

func (c *slowCounts) String() string {
	var parts []string
	c.answered.Range(func(k, v any) bool {
		parts = append(parts, fmt.Sprintf("%d answered %d", v.(*atomic.Int64).Load(), k.(int)))
		return true
	})
	sort.Strings(parts)
	parts = append(parts, fmt.Sprintf("%d closed unanswered", c.closed.Load()),
		fmt.Sprintf("%d still open at the end", c.unfinished.Load()))
	return fmt.Sprintf("%d connections, %s sent: %s", c.connections.Load(), mib(c.bytesSent.Load()),
		strings.Join(parts, ", "))
}

func run(cfg config, w io.Writer) error {
	payloads, err := loadPayloads(cfg.payloads)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "dagctl-intakeflood-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	store, err := db.Open(filepath.Join(dir, "intake.db"))
	if err != nil {
		return err
	}
	defer store.Close()
	intake := &webhook.GitHub{
		Secret: func() []byte { return []byte(secret) },
		Queue:  store,
		Log:    slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := server.NewHTTPServer("", intake, server.DefaultHTTPLimits)
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()
	addr := ln.Addr().String()
	limits := webhook.DefaultBodyLimits
	fmt.Fprintf(w, "intake on %s; %d payloads; body limits: small ≤ %d KiB in %d MiB, large in %d MiB, wait %s; "+
		"http limits: %+v; %d CPUs (shared with the senders), %s\n",
		addr, len(payloads), limits.SmallBody>>10, limits.SmallBudget>>20, limits.LargeBudget>>20, limits.Wait,
		server.DefaultHTTPLimits, runtime.NumCPU(), time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "flood: %d slow POSTs of %s, %d KiB every %s each; real: %d senders, %s pause\n",
		cfg.slow, mib(cfg.size), cfg.chunk>>10, cfg.interval, cfg.senders, cfg.pause)

	idle := measure("idle", cfg, addr, payloads, 0, cfg.idle, intake)
	flood := measure("flood", cfg, addr, payloads, cfg.slow, cfg.duration, intake)
	for _, p := range []*phase{idle, flood} {
		for _, id := range p.acked {
			if _, err := store.GetDelivery(context.Background(), "github", id); err == nil {
				p.stored++
			}
		}
	}

	var rows [][]string
	for _, p := range []*phase{idle, flood} {
		s := stats.Summarize(p.latencies)
		var fails []string
		for k, n := range p.otherFail {
			fails = append(fails, fmt.Sprintf("%d× %s", n, k))
		}
		sort.Strings(fails)
		rows = append(rows, []string{p.name, mib(p.peakRSS),
			fmt.Sprintf("×%.2f", float64(p.peakRSS)/float64(idle.peakRSS)),
			strconv.Itoa(p.sent), strconv.Itoa(len(p.acked)), strconv.Itoa(p.stored), orNone(strings.Join(fails, ", ")),
			stats.Ms(s.P50), stats.Ms(s.P99), stats.Ms(s.Max),
			mib(p.intake.PeakBytes)})
	}
	fmt.Fprintln(w)
	fmt.Fprint(w, stats.Table([]string{"phase", "peak RSS", "vs idle", "deliveries sent", "acknowledged (202)", "stored",
		"not acknowledged", "ack p50", "ack p99", "ack max", "bodies being read (peak)"}, rows))
	fmt.Fprintf(w, "\nslow senders during the flood: %s; the intake refused %d bodies for want of room\n",
		&flood.slow, flood.intake.Refused)
	if len(flood.acked) != flood.sent || flood.stored != flood.sent || len(idle.acked) != idle.sent || idle.stored != idle.sent {
		return errors.New("a real delivery was not acknowledged or not stored")
	}
	return nil
}

// mib formats a size in MiB, or KiB below one MiB.
func mib(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// measure runs one phase: slow senders (if any) and real senders for d, then reads the peak RSS.
func measure(name string, cfg config, addr string, payloads []delivery, slow int, d time.Duration, intake *webhook.GitHub) *phase {
	runtime.GC()
	resetPeakRSS()
	p := &phase{name: name, otherFail: map[string]int{}}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	chunk := make([]byte, cfg.chunk) // shared by every slow sender: strangers' bytes cost this process nothing
	for range slow {
		wg.Go(func() { slowSender(ctx, addr, cfg, chunk, &p.slow) })
	}
	var mu sync.Mutex
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: cfg.senders, DisableCompression: true},
		Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	var next atomic.Int64
	for i := range cfg.senders {
		wg.Go(func() {
			for n := i; ctx.Err() == nil; n += cfg.senders {
				id := fmt.Sprintf("%s-%d", name, next.Add(1))
				lat, status, err := send(client, "http://"+addr+"/", payloads[n%len(payloads)], id)
				mu.Lock()
				p.sent++
				switch {
				case err != nil:
					p.otherFail["error: "+err.Error()]++
				case status != http.StatusAccepted:
					p.otherFail[strconv.Itoa(status)]++
				default:
					p.acked = append(p.acked, id)
					p.latencies = append(p.latencies, lat)
				}
				mu.Unlock()
				select {
				case <-ctx.Done():
				case <-time.After(cfg.pause):
				}
			}
		})
	}
	wg.Wait()
	p.peakRSS = peakRSS()
	p.intake = intake.Stats()
	return p
}

// send posts one delivery as GitHub does and returns the time until the whole answer was read.
func send(client *http.Client, url string, p delivery, id string) (time.Duration, int, error) {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(string(p.Body)))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/intakeflood")
	req.Header.Set("X-GitHub-Event", p.Event)
	req.Header.Set("X-GitHub-Delivery", id)
	req.Header.Set("X-Hub-Signature-256", p.Signature)
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return time.Since(start), resp.StatusCode, nil
}

// slowSender POSTs bodies declared as cfg.size bytes, a chunk every interval, over and over until ctx ends.
func slowSender(ctx context.Context, addr string, cfg config, chunk []byte, c *slowCounts) {
	for n := 0; ctx.Err() == nil; n++ {
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return
		}
		c.connections.Add(1)
		head := "POST / HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: application/json\r\n" +
			"X-GitHub-Event: push\r\nX-GitHub-Delivery: stranger-" + strconv.Itoa(n) + "\r\n" +
			"X-Hub-Signature-256: sha256=" + strings.Repeat("0", 64) + "\r\n" +
			"Content-Length: " + strconv.FormatInt(cfg.size, 10) + "\r\n\r\n"
		ended := make(chan struct{})
		go func() {
			defer close(ended)
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				if ctx.Err() == nil {
					c.closed.Add(1)
				}
				return
			}
			c.answer(resp.StatusCode)
		}()
		_, err = conn.Write([]byte(head))
		for sent := int64(0); err == nil && sent < cfg.size; {
			select {
			case <-ctx.Done():
				err = ctx.Err()
				continue
			case <-ended:
				err = io.EOF
				continue
			case <-time.After(cfg.interval):
			}
			k := min(int64(len(chunk)), cfg.size-sent)
			_ = conn.SetWriteDeadline(time.Now().Add(time.Second)) // a full socket buffer: try again later
			var m int
			m, err = conn.Write(chunk[:k])
			if errors.Is(err, os.ErrDeadlineExceeded) {
				err = nil
			}
			sent += int64(m)
			c.bytesSent.Add(int64(m))
		}
		select {
		case <-ended:
		case <-ctx.Done():
			c.unfinished.Add(1)
		}
		conn.Close()
		<-ended
	}
}

// peakRSS is the process's peak resident set since the last reset (VmHWM), in bytes.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// resetPeakRSS sets VmHWM back to the current RSS (Linux ≥ 4.0), so each phase reports its own peak.
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }
