package jobs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// failsafe bounds waits that would otherwise hang a broken test; no test asserts how long anything takes.
const failsafe = 2 * time.Minute

// recorder is a Sink that keeps every line and lets a test wait for one.
type recorder struct {
	mu      sync.Mutex
	lines   []Line
	changed chan struct{}
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{}, 1)} }

func (r *recorder) sink(l Line) {
	r.mu.Lock()
	r.lines = append(r.lines, l)
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *recorder) all() []Line {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Line(nil), r.lines...)
}

// texts are the lines of one stream ("" for both), in order.
func (r *recorder) texts(stream string) []string {
	var out []string
	for _, l := range r.all() {
		if stream == "" || l.Stream == stream {
			out = append(out, l.Text)
		}
	}
	return out
}

func (r *recorder) joined() string { return strings.Join(r.texts(""), "\n") }

// waitFor returns the first line that matches.
func (r *recorder) waitFor(t *testing.T, match func(Line) bool) Line {
	t.Helper()
	deadline := time.After(failsafe)
	for {
		for _, l := range r.all() {
			if match(l) {
				return l
			}
		}
		select {
		case <-r.changed:
		case <-deadline:
			t.Fatalf("no matching line; got %q", r.texts(""))
		}
	}
}

func newTestLocal(t *testing.T, grace time.Duration) (*Local, string) {
	t.Helper()
	workDir := filepath.Join(t.TempDir(), "work")
	l, err := NewLocal(LocalOptions{WorkDir: workDir, KillGrace: grace})
	require.NoError(t, err)
	return l, workDir
}

// runJob starts a job and waits for its end.
func runJob(t *testing.T, l *Local, spec Spec) (Result, *recorder) {
	t.Helper()
	rec := newRecorder()
	h, err := l.Start(context.Background(), spec, rec.sink)
	require.NoError(t, err)
	return waitJob(t, h), rec
}

func waitJob(t *testing.T, h Handle) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), failsafe)
	defer cancel()
	res, err := h.Wait(ctx)
	require.NoError(t, err)
	return res
}

// plainEnv is a small job environment for commands from the system.
func plainEnv() map[string]string {
	return map[string]string{"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "TZ": "UTC"}
}

func shellJob(dir, script string) Spec {
	return Spec{RunID: "t-" + strconv.FormatInt(time.Now().UnixNano(), 36), Kind: KindPlan,
		Source: Source{Dir: dir}, Command: []string{"sh", "-c", script}, Env: plainEnv()}
}

// requireScratchRemoved asserts that no job left anything in the work directory.
func requireScratchRemoved(t *testing.T, workDir string) {
	t.Helper()
	entries, err := os.ReadDir(workDir)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	require.NoError(t, err)
	require.Empty(t, entries, "scratch directories left behind")
}

// processGone reports whether pid has exited, allowing it a moment to die: a killed process closes its files
// (the job's output ends) before it becomes a zombie, and on a loaded machine the step between can be seen.
func processGone(t *testing.T, pid int) bool {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if processExited(t, pid) || time.Now().After(deadline) {
			return processExited(t, pid)
		}
	}
}

// processExited reports whether a process has ended, now: it no longer exists, or it is a zombie that nobody
// has reaped yet (orphans are reaped by init, which in a container may never happen).
func processExited(t *testing.T, pid int) bool {
	t.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if errors.Is(err, fs.ErrNotExist) {
		return true
	}
	require.NoError(t, err)
	end := bytes.LastIndexByte(stat, ')')
	require.Positive(t, end, "unexpected /proc stat: %q", stat)
	state := stat[end+2]
	return state == 'Z' || state == 'X'
}

// runGit runs the git command line in dir, isolated from the machine's git configuration.
func runGit(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Test", "GIT_AUTHOR_EMAIL=test@example.com",
		"GIT_COMMITTER_NAME=Test", "GIT_COMMITTER_EMAIL=test@example.com")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "git %v: %s", args, out)
	return strings.TrimSpace(string(out))
}

func newGitRepo(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	runGit(t, dir, "init", "-q", "-b", "main")
	return dir
}

// commitFiles writes the files and commits them on the current branch; it returns the commit's SHA.
func commitFiles(t *testing.T, repo string, files map[string]string, message string) string {
	t.Helper()
	for path, content := range files {
		full := filepath.Join(repo, path)
		require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
		require.NoError(t, os.WriteFile(full, []byte(content), 0o644))
	}
	runGit(t, repo, "add", "-A")
	runGit(t, repo, "commit", "-q", "-m", message)
	return runGit(t, repo, "rev-parse", "HEAD")
}

// copyDir copies a directory tree of regular files.
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	require.NoError(t, filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, path)
		if err != nil {
			return err
		}
		target := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	}))
}
