package chaos_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/jobs/replay"
	"github.com/dagctl/dagctl-bot/internal/server"
	"github.com/dagctl/dagctl-bot/internal/serverconfig"
)

// childEnv, set, makes this test binary the bot: it holds the path of the child's settings (childConfig, JSON).
const childEnv = "DAGCTL_CHAOS_CHILD"

func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		if err := runChild(path); err != nil {
			fmt.Fprintln(os.Stderr, "chaos child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// childConfig is what the parent tells the child bot.
type childConfig struct {
	Addr        string // where the bot serves webhooks, the same on every start
	DB          string
	WorkDir     string
	SQLMesh     string
	APIURL      string
	PEMFile     string
	GitDir      string // the fake's repository on disk: the replayed jobs' files
	CapturesDir string
	// Journal is where the child appends every job it starts (jobLine), before it starts it: the warehouse's
	// record of what was run, which survives the bot's death.
	Journal string
}

// jobLine is one started job in the journal.
type jobLine struct {
	RunID string    `json:"run_id"`
	Kind  jobs.Kind `json:"kind"`
	Env   string    `json:"env"`
	SHA   string    `json:"sha"`
	PR    string    `json:"pr"`
}

// runChild serves the bot as `dagctl-bot serve` would, until it is killed.
func runChild(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var c childConfig
	if err := json.Unmarshal(data, &c); err != nil {
		return err
	}
	pem, err := os.ReadFile(c.PEMFile)
	if err != nil {
		return err
	}
	cfg := serverconfig.Config{
		DB: c.DB, Executor: serverconfig.ExecutorLocal, PublicURL: publicURL, SQLMesh: c.SQLMesh, WorkDir: c.WorkDir,
		JobEnv:   []string{"EXAMPLE_DUCKDB_PATH"},
		JobUsers: serverconfig.JobUsers{Mode: serverconfig.JobUsersOff},
		GitHub: serverconfig.GitHub{AppID: appID, PrivateKey: serverconfig.Secret(pem), WebhookSecret: webhookSecret,
			APIURL: c.APIURL},
	}
	clock := &fastClock{}
	executor := &journaled{path: c.Journal, inner: &replay.Executor{Dir: c.CapturesDir, Files: gitFiles(c.GitDir)}}
	srv, err := server.New(context.Background(), cfg, server.Options{
		Log:           slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})),
		Now:           clock.Now,
		Sleep:         clock.Sleep,
		ExecutionTime: executionTime,
		Environ:       append(os.Environ(), "EXAMPLE_DUCKDB_PATH=/nonexistent/state.duckdb"),
		Executor:      executor,
		MaxJobs:       2,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return err
	}
	if err := srv.Start(context.Background()); err != nil {
		return err
	}
	return server.NewHTTPServer(c.Addr, srv.Handler(), server.DefaultHTTPLimits).Serve(ln)
}

// fastClock is the wall clock moved ahead by every Sleep instead of waiting: the outbox's 1 s spacing and the
// adapter's waits then cost no real time, as the fake's clock does in the in-process tests (the fake's own
// clock lives in the parent).
type fastClock struct{ ahead atomic.Int64 }

func (c *fastClock) Now() time.Time { return time.Now().Add(time.Duration(c.ahead.Load())) }

func (c *fastClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.ahead.Add(int64(d))
	return nil
}

// journaled records every job in the journal, synced, before the inner executor starts it.
type journaled struct {
	path  string
	inner jobs.Executor
	mu    sync.Mutex
}

func (j *journaled) Start(ctx context.Context, spec jobs.Spec, sink jobs.Sink) (jobs.Handle, error) {
	if err := j.record(jobLine{RunID: spec.RunID, Kind: spec.Kind, Env: spec.Labels["environment"],
		SHA: spec.Source.SHA, PR: spec.Labels["pr"]}); err != nil {
		return nil, err
	}
	return j.inner.Start(ctx, spec, sink)
}

func (j *journaled) Attach(ctx context.Context, id string, sink jobs.Sink) (jobs.Handle, error) {
	return j.inner.Attach(ctx, id, sink)
}

func (j *journaled) record(l jobLine) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	f, err := os.OpenFile(j.path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	line, _ := json.Marshal(l)
	if _, err := f.Write(append(line, '\n')); err != nil {
		return err
	}
	return f.Sync()
}

// gitFiles reads a commit's files from the repository on disk, as a checkout would show them.
func gitFiles(dir string) replay.FilesAt {
	var mu sync.Mutex
	cache := map[string]map[string]string{}
	return func(sha string) (map[string]string, bool) {
		mu.Lock()
		defer mu.Unlock()
		if files, ok := cache[sha]; ok {
			return files, true
		}
		names, err := git(dir, "ls-tree", "-r", "--name-only", "-z", sha)
		if err != nil {
			return nil, false
		}
		files := map[string]string{}
		for _, name := range strings.Split(strings.TrimRight(names, "\x00"), "\x00") {
			content, err := git(dir, "show", sha+":"+name)
			if err != nil {
				return nil, false
			}
			files[name] = content
		}
		cache[sha] = files
		return files, true
	}
}

func git(dir string, args ...string) (string, error) {
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).Output()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, exit.Stderr)
	}
	return string(out), err
}
