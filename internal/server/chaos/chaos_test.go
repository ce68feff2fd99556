package chaos_test

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"math/rand"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/dagctl/dagctl-bot/internal/forgetest"
	"github.com/dagctl/dagctl-bot/internal/forgetest/e2e"
	"github.com/dagctl/dagctl-bot/internal/forgetest/githubfake"
	"github.com/dagctl/dagctl-bot/internal/forgetest/githubworld"
	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/jobs/replay"
	"github.com/dagctl/dagctl-bot/internal/server"
	"github.com/dagctl/dagctl-bot/internal/serverconfig"
	"github.com/dagctl/dagctl-bot/internal/testutil"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

var (
	chaosPRs   = flag.Int("chaos.prs", 8, "TestChaos: pull requests driven at once")
	chaosKills = flag.Int("chaos.kills", 4, "TestChaos: how many times the bot is killed with SIGKILL (at most)")
	chaosFail  = flag.Float64("chaos.fail", 0.05, "TestChaos: share of the fake GitHub's API calls answered 502 until the end")
	chaosSeed  = flag.Int64("chaos.seed", 1, "TestChaos: seed of the kills' moments, the failures and the order of events")
	chaosKeep  = flag.String("chaos.keep", "", "TestChaos: a directory to copy the bot's database, log and job journal to at the end")
)

// captureEnv, set, records the captures with the real sqlmesh (one PR, the bot in-process, no chaos).
const captureEnv = "DAGCTL_REPLAY_CAPTURE"

var capturesDir = filepath.Join("testdata", "replay")

// change is the one change every PR makes (pushes add empty commits), so that every job the scenario runs is
// one of a handful of captures.
var change = testutil.NonBreakingChange

// TestChaosKilledBotLosesAndDoublesNothing drives many PRs (open, push, bob's approval, `/dagctl apply dev`,
// then merges that apply the protected prod) against a bot killed with SIGKILL at random moments, while the
// fake GitHub fails a share of its API calls with 502 (some after handling them, their answers lost). Webhooks
// sent while the bot is down are redelivered, as an operator does from the forge's list. At the end, the
// forge healthy and everything drained: every PR's checks are final, every accepted command was answered
// once, no plan was applied twice, and no lock is held. Counted from the forge and the store, never from the
// bot's log. `make bench` runs the long version (see BENCHMARKS.md).
func TestChaosKilledBotLosesAndDoublesNothing(t *testing.T) {
	capturing := os.Getenv(captureEnv) != ""
	prs, kills, fail := *chaosPRs, *chaosKills, *chaosFail
	if capturing {
		prs, kills, fail = 1, 0, 0
	}
	c := newChaos(t, *chaosSeed, capturing)
	for n := 1; n <= prs; n++ {
		c.w.PR(n, fmt.Sprintf("pr-%d", n), "alice", change)
		c.ledger[n] = &prLedger{Number: n}
	}
	c.bot.start()
	c.gh().Fake.FailRandomly(githubfake.RandomFailures{Share: fail, AfterHandling: 0.5, Seed: *chaosSeed})
	stopKilling := c.killAtRandom(kills)

	// First every PR is opened, pushed to, approved and applied to dev at once; then they are merged one by
	// one (a merge moves main, and a PR behind main may not be applied by comment).
	var wg sync.WaitGroup
	for n := 1; n <= prs; n++ {
		wg.Add(1)
		go func() { defer wg.Done(); c.drivePR(n) }()
	}
	wg.Wait()
	for _, n := range c.shuffled(prs) {
		c.mergePR(n)
	}

	killed := stopKilling()
	failed := c.gh().Fake.RandomlyFailed()
	c.gh().Fake.FailRandomly(githubfake.RandomFailures{})
	c.bot.ensureRunning()
	c.waitDrained()
	o := c.observe()
	got := tally(o)
	c.keep(*chaosKeep)
	fmt.Printf("chaos: %d PRs, %d kills, %d API calls failed with 502, %d deliveries redelivered; %s; %s",
		prs, killed, failed, c.redelivered, o.summary(), got)
	if capturing {
		return // the captures are the result; the counts above show the scenario ran through
	}
	if !got.zero() {
		t.Errorf("the chaos run lost or doubled something (seed %d):\n%s\nthe bot's log ends:\n%s", *chaosSeed, got, c.bot.logTail(80))
	}
}

// keep copies what an investigation needs (the store, the bot's log, the journal) to dir, if set.
func (c *chaos) keep(dir string) {
	if dir == "" {
		return
	}
	require.NoError(c.t, os.MkdirAll(dir, 0o755))
	store := c.openStore()
	defer store.Close()
	_ = os.Remove(filepath.Join(dir, "dagctl.db"))
	_, err := store.Exec(`VACUUM INTO ?`, filepath.Join(dir, "dagctl.db"))
	require.NoError(c.t, err)
	for _, f := range []string{c.bot.log, c.journal} {
		data, _ := os.ReadFile(f)
		require.NoError(c.t, os.WriteFile(filepath.Join(dir, filepath.Base(f)), data, 0o644))
	}
}

// chaos is one chaos run: the fake GitHub and the people in front of it (this process), the bot behind it.
type chaos struct {
	t       *testing.T
	w       *e2e.World
	dir     string
	journal string
	bot     *botProcess

	mu          sync.Mutex // guards rng, ledger and redelivered
	rng         *rand.Rand
	ledger      map[int]*prLedger
	redelivered int
	// forge serializes changes to the fake's repository: its git work tree takes one at a time.
	forge sync.Mutex
}

func newChaos(t *testing.T, seed int64, capturing bool) *chaos {
	t.Helper()
	c := &chaos{t: t, w: e2e.NewWorld(t, e2e.GitHub, nil), dir: t.TempDir(), rng: rand.New(rand.NewSource(seed)),
		ledger: map[int]*prLedger{}}
	c.journal = filepath.Join(c.dir, "journal.jsonl")
	pemFile := filepath.Join(c.dir, "app.pem")
	require.NoError(t, os.WriteFile(pemFile, c.gh().PEM, 0o600))
	var cfg serverconfig.Config
	c.w.Configure(&cfg)
	c.bot = &botProcess{t: t, capturing: capturing, log: filepath.Join(c.dir, "bot.log"), cfg: childConfig{
		Addr: freeAddr(t), DB: filepath.Join(c.dir, "bot", "dagctl.db"), WorkDir: filepath.Join(c.dir, "work"),
		SQLMesh: testutil.SQLMesh(t), APIURL: cfg.GitHub.APIURL, PEMFile: pemFile, GitDir: c.gh().Git.Dir,
		CapturesDir: absolute(t, capturesDir), Journal: c.journal,
	}}
	t.Cleanup(c.bot.stop)
	return c
}

func (c *chaos) gh() *githubworld.World { return c.w.GitHub() }

func absolute(t *testing.T, p string) string {
	abs, err := filepath.Abs(p)
	require.NoError(t, err)
	return abs
}

// freeAddr is a local address nothing listens on, which every start of the bot serves.
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// drivePR is one PR's author and reviewer: open, push, wait for the plans, approve, apply dev by comment and
// wait for the answer, as people who read the PR would.
func (c *chaos) drivePR(n int) {
	c.deliver(c.changeForge(func() forgetest.Webhook { return c.w.PREvent(vcs.PROpened, n) }))
	// While capturing, a plan cancelled by the push would be recorded under the key of the push's plan (the
	// files are the same), so the first head's plans always end first.
	if c.bot.capturing || c.chance(0.5) {
		c.waitFor(fmt.Sprintf("PR #%d: the first head's plans", n), func() bool { return c.plansFinal(c.head(n)) })
	}
	var head string
	c.deliver(c.changeForge(func() forgetest.Webhook {
		head = c.w.Push(n, nil, "another commit")
		return c.w.PREvent(vcs.PRPushed, n)
	}))
	c.record(n, func(pr *prLedger) { pr.Head = head })
	c.waitFor(fmt.Sprintf("PR #%d: the plans of %.7s", n, head), func() bool { return c.plansFinal(head) })

	// A review counts only after the plan's result was posted, on the forge's clock.
	c.deliver(c.changeForge(func() forgetest.Webhook {
		c.gh().Fake.Advance(time.Second)
		return c.w.ReviewEvent(n, c.w.AddReview(n, "bob", vcs.ReviewApproved, head))
	}))
	var command int64
	c.deliver(c.changeForge(func() forgetest.Webhook {
		command = c.w.AddComment(n, "alice", "/dagctl apply dev")
		return c.w.CommentEvent(n, command)
	}))
	c.record(n, func(pr *prLedger) { pr.Commands = append(pr.Commands, command) })
	c.waitFor(fmt.Sprintf("PR #%d: the answer to its apply", n), func() bool { return c.applyAnswered(n, command) })
}

// mergePR merges the PR (prod applies on merge) and delivers the event.
func (c *chaos) mergePR(n int) {
	c.deliver(c.changeForge(func() forgetest.Webhook {
		c.w.MergePR(n)
		return c.w.PREvent(vcs.PRMerged, n)
	}))
	c.record(n, func(pr *prLedger) { pr.Merged = true })
	c.pause(500 * time.Millisecond)
}

// changeForge changes the fake's state and builds the webhook of the change, one change at a time.
func (c *chaos) changeForge(change func() forgetest.Webhook) forgetest.Webhook {
	c.forge.Lock()
	defer c.forge.Unlock()
	return change()
}

func (c *chaos) record(n int, change func(*prLedger)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	change(c.ledger[n])
}

// deliver sends a webhook until the bot accepts it (2xx): sent while the bot is down or dying, it is
// redelivered with the same delivery id, as from the forge's list of recent deliveries.
func (c *chaos) deliver(wh forgetest.Webhook) {
	deadline := time.Now().Add(2 * time.Minute) // a guard against a bot that never comes back
	for {
		d, err := wh.Send("http://" + c.bot.cfg.Addr)
		if err == nil && d.Status >= 200 && d.Status < 300 {
			return
		}
		if time.Now().After(deadline) {
			c.t.Errorf("delivery %s (%s) was never accepted: %v %d %s", wh.ID, wh.Event, err, d.Status, d.Body)
			return
		}
		c.mu.Lock()
		c.redelivered++
		c.mu.Unlock()
		time.Sleep(100 * time.Millisecond)
	}
}

// waitFor polls until cond holds, as a person refreshing the PR; after a while it goes on regardless (the
// tally then says what is missing).
func (c *chaos) waitFor(what string, cond func() bool) {
	deadline := time.Now().Add(3 * time.Minute) // 90 s was too short under -race, and people then acted early
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Logf("gave up waiting for %s", what)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *chaos) chance(p float64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rng.Float64() < p
}

func (c *chaos) pause(upTo time.Duration) {
	c.mu.Lock()
	d := time.Duration(c.rng.Int63n(int64(upTo)))
	c.mu.Unlock()
	time.Sleep(d)
}

func (c *chaos) shuffled(n int) []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.rng.Perm(n)
	for i := range out {
		out[i]++
	}
	return out
}

func (c *chaos) head(n int) string {
	c.forge.Lock()
	defer c.forge.Unlock()
	pr, _ := c.w.PullRequest(n)
	return pr.HeadSHA
}

// plansFinal reports whether the forge shows both plans of the commit final.
func (c *chaos) plansFinal(sha string) bool {
	for _, env := range []string{"dev", "prod"} {
		st, ok := c.w.Status("dagctl/plan: "+env, sha)
		if !ok || st.State == vcs.StatusQueued || st.State == vcs.StatusRunning {
			return false
		}
	}
	return true
}

// applyAnswered reports whether the bot ended the apply the command started, or refused it.
func (c *chaos) applyAnswered(n int, command int64) bool {
	for _, cm := range c.w.Comments(n) {
		if !cm.ByBot || cm.ID < command {
			continue
		}
		kind, body := replyKind(cm.Body), cm.Body
		if kind == "end dev" || kind == "answer" && !strings.HasPrefix(body, "🚀") {
			return true
		}
	}
	return false
}

// killAtRandom kills the bot with SIGKILL up to kills times, at random moments 0.2-3 s apart, starting it again
// at once each time; the returned function stops it and says how many kills there were.
func (c *chaos) killAtRandom(kills int) func() int {
	stop, done := make(chan struct{}), make(chan int)
	go func() {
		killed := 0
		for killed < kills {
			c.mu.Lock()
			gap := 200*time.Millisecond + time.Duration(c.rng.Int63n(int64(2800*time.Millisecond)))
			c.mu.Unlock()
			select {
			case <-stop:
				done <- killed
				return
			case <-time.After(gap):
			}
			c.bot.kill()
			killed++
			c.bot.start()
		}
		<-stop
		done <- killed
	}()
	return func() int { close(stop); return <-done }
}

// waitDrained waits until no delivery, write or run is left unfinished, twice in a row a second apart.
func (c *chaos) waitDrained() {
	store := c.openStore()
	defer store.Close()
	deadline := time.Now().Add(5 * time.Minute) // a guard, not a measurement
	quiet := 0
	for quiet < 2 {
		var open int
		require.NoError(c.t, store.QueryRow(`SELECT
			(SELECT count(*) FROM deliveries WHERE status IN ('pending', 'in_flight')) +
			(SELECT count(*) FROM outbox) +
			(SELECT count(*) FROM runs WHERE status IN ('queued', 'running'))`).Scan(&open))
		if open == 0 {
			quiet++
		} else {
			quiet = 0
		}
		if time.Now().After(deadline) {
			c.t.Errorf("still %d deliveries, writes and runs unfinished after 5 minutes", open)
			return
		}
		time.Sleep(time.Second)
	}
}

// openStore reads the bot's database over a connection of its own, as an operator's sqlite3 would.
func (c *chaos) openStore() *sql.DB {
	store, err := sql.Open("sqlite", "file:"+c.bot.cfg.DB+"?mode=ro&_pragma=busy_timeout(10000)")
	require.NoError(c.t, err)
	return store
}

// observe gathers what the tally reads: the ledger, the forge's state, the store and the journal.
func (c *chaos) observe() observed {
	o := observed{Replies: map[int][]reply{}, Eyes: map[int64]bool{}}
	for _, s := range c.w.Statuses() {
		o.Checks = append(o.Checks, check{Name: s.Name, SHA: s.CommitSHA, ExternalID: s.ExternalID, State: s.State})
	}
	c.mu.Lock()
	for n := 1; n <= len(c.ledger); n++ {
		pr := *c.ledger[n]
		o.PRs = append(o.PRs, pr)
		for _, cm := range c.w.Comments(n) {
			if cm.ByBot {
				o.Replies[n] = append(o.Replies[n], reply{ID: cm.ID, Body: cm.Body})
			}
		}
		for _, id := range pr.Commands {
			for _, r := range c.w.Reactions(id) {
				o.Eyes[id] = o.Eyes[id] || r == vcs.ReactionEyes
			}
		}
	}
	c.mu.Unlock()
	store := c.openStore()
	defer store.Close()
	o.Runs = queryRuns(c.t, store)
	o.Locks = queryStrings(c.t, store, `SELECT environment || ' held by PR #' || pr || ' (plan ' || plan_id || ')' FROM env_locks`)
	o.Dead = queryStrings(c.t, store, `SELECT delivery_id || ' (' || event || ') failed for good after ' || attempts || ' attempts: ' || last_error
		FROM deliveries WHERE status = 'failed'`)
	o.Journal = readJournal(c.t, c.journal)
	return o
}

func queryRuns(t *testing.T, store *sql.DB) []run {
	rows, err := store.Query(`SELECT r.id, r.plan_id, r.kind, r.status, p.pr, p.environment, r.reason FROM runs r JOIN plans p ON p.id = r.plan_id ORDER BY r.id`)
	require.NoError(t, err)
	defer rows.Close()
	var out []run
	for rows.Next() {
		var r run
		require.NoError(t, rows.Scan(&r.ID, &r.PlanID, &r.Kind, &r.Status, &r.PR, &r.Env, &r.Reason))
		out = append(out, r)
	}
	require.NoError(t, rows.Err())
	return out
}

func queryStrings(t *testing.T, store *sql.DB, query string) []string {
	rows, err := store.Query(query)
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		out = append(out, s)
	}
	require.NoError(t, rows.Err())
	return out
}

func readJournal(t *testing.T, path string) []jobLine {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	defer f.Close()
	var out []jobLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l jobLine
		if json.Unmarshal(sc.Bytes(), &l) == nil { // a line cut by a kill is not a started job
			out = append(out, l)
		}
	}
	return out
}

// botProcess is the bot: a child process (this test binary, childEnv) killed and started again; while
// capturing, an in-process server whose jobs run the real sqlmesh through a replay.Recorder.
type botProcess struct {
	t         *testing.T
	cfg       childConfig
	capturing bool
	log       string

	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{}
	inproc   *server.Server
	inprocHS *http.Server
}

func (b *botProcess) start() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.capturing {
		b.startInProcess()
		return
	}
	path := filepath.Join(filepath.Dir(b.log), "child.json")
	data, err := json.Marshal(b.cfg)
	require.NoError(b.t, err)
	require.NoError(b.t, os.WriteFile(path, data, 0o600))
	logf, err := os.OpenFile(b.log, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	require.NoError(b.t, err)
	fmt.Fprintf(logf, "---- start %s\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+path)
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(b.t, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(exited) }()
	b.cmd, b.exited = cmd, exited
}

// kill sends SIGKILL and waits for the process to be gone.
func (b *botProcess) kill() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Signal(syscall.SIGKILL)
	<-b.exited
	b.cmd = nil
}

// ensureRunning starts the bot again if it died on its own.
func (b *botProcess) ensureRunning() {
	b.mu.Lock()
	dead := b.cmd != nil && isClosed(b.exited)
	b.mu.Unlock()
	if dead {
		b.t.Errorf("the bot exited on its own; its log ends:\n%s", b.logTail(40))
		b.start()
	}
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func (b *botProcess) stop() {
	b.kill()
	if b.inproc != nil {
		_ = b.inprocHS.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = b.inproc.Close(ctx)
	}
}

func (b *botProcess) logTail(lines int) string {
	data, _ := os.ReadFile(b.log)
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// startInProcess serves a bot whose jobs run the real sqlmesh on a fresh DuckDB file and are recorded as
// captures.
func (b *botProcess) startInProcess() {
	t := b.t
	local, err := jobs.NewLocal(jobs.LocalOptions{WorkDir: t.TempDir()})
	require.NoError(t, err)
	files := gitFiles(b.cfg.GitDir)
	recorder := &captureOnce{files: files, recorded: map[replay.Key]bool{},
		record: &replay.Recorder{Dir: b.cfg.CapturesDir, Files: files, Inner: local, Scratch: t.TempDir()},
		replay: &replay.Executor{Dir: b.cfg.CapturesDir, Files: files}}
	pem, err := os.ReadFile(b.cfg.PEMFile)
	require.NoError(t, err)
	cfg := serverconfig.Config{
		DB: b.cfg.DB, Executor: serverconfig.ExecutorLocal, PublicURL: publicURL, SQLMesh: b.cfg.SQLMesh, WorkDir: b.cfg.WorkDir,
		JobEnv: []string{"EXAMPLE_DUCKDB_PATH"}, JobUsers: serverconfig.JobUsers{Mode: serverconfig.JobUsersOff},
		GitHub: serverconfig.GitHub{AppID: appID, PrivateKey: serverconfig.Secret(pem), WebhookSecret: webhookSecret, APIURL: b.cfg.APIURL},
	}
	logf, err := os.OpenFile(b.log, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	require.NoError(t, err)
	t.Cleanup(func() { logf.Close() })
	srv, err := server.New(context.Background(), cfg, server.Options{
		Log:           slog.New(slog.NewTextHandler(logf, nil)),
		ExecutionTime: executionTime,
		Environ:       append(os.Environ(), "EXAMPLE_DUCKDB_PATH="+filepath.Join(t.TempDir(), "state.duckdb")),
		Executor:      recorder,
		MaxJobs:       1, // the DuckDB file takes one writer at a time
	})
	require.NoError(t, err)
	require.NoError(t, srv.Start(context.Background()))
	ln, err := net.Listen("tcp", b.cfg.Addr)
	require.NoError(t, err)
	b.inproc, b.inprocHS = srv, server.NewHTTPServer(b.cfg.Addr, srv.Handler(), server.DefaultHTTPLimits)
	go func() { _ = b.inprocHS.Serve(ln) }()
}

// captureOnce records a key's first job and replays it for the key's later jobs, as the chaos run will: sqlmesh
// prints a plan of the same files differently once its state has seen them, and the chaos run has one capture
// per key.
type captureOnce struct {
	files          replay.FilesAt
	record, replay jobs.Executor
	mu             sync.Mutex
	recorded       map[replay.Key]bool
}

func (c *captureOnce) Start(ctx context.Context, spec jobs.Spec, sink jobs.Sink) (jobs.Handle, error) {
	key, err := replay.KeyOf(spec, c.files)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	again := c.recorded[key]
	c.recorded[key] = true
	c.mu.Unlock()
	if again {
		return c.replay.Start(ctx, spec, sink)
	}
	return c.record.Start(ctx, spec, sink)
}

func (c *captureOnce) Attach(ctx context.Context, id string, sink jobs.Sink) (jobs.Handle, error) {
	return c.record.Attach(ctx, id, sink)
}
