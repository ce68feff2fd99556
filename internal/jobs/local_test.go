package jobs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLocalRunsInASourceDirAsItIsAndLeavesItThere(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "project"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "project", "input.txt"), []byte("working tree\n"), 0o644))
	l, workDir := newTestLocal(t, 0)
	spec := shellJob(dir, "cat input.txt; echo made by the job > output.txt")
	spec.Subdir = "project"

	res, rec := runJob(t, l, spec)

	require.True(t, res.Succeeded(), "%+v: %s", res, rec.joined())
	assert.Equal(t, []string{"working tree"}, rec.texts("stdout"))
	out, err := os.ReadFile(filepath.Join(dir, "project", "output.txt"))
	require.NoError(t, err, "the directory is the job's, as it is")
	assert.Equal(t, "made by the job\n", string(out))
	requireScratchRemoved(t, workDir)
}

func TestLocalStreamsLinesWhileTheJobRuns(t *testing.T) {
	dir := t.TempDir()
	l, workDir := newTestLocal(t, 0)
	rec := newRecorder()
	// The job waits for a file that the test creates only after it has seen the first line.
	h, err := l.Start(context.Background(),
		shellJob(dir, `echo ready; while [ ! -e go ]; do sleep 0.01; done; echo done`), rec.sink)
	require.NoError(t, err)

	rec.waitFor(t, func(l Line) bool { return l.Text == "ready" })
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go"), nil, 0o644))
	res := waitJob(t, h)

	require.True(t, res.Succeeded(), "%+v: %s", res, rec.joined())
	assert.Equal(t, []string{"ready", "done"}, rec.texts("stdout"))
	requireScratchRemoved(t, workDir)
}

func TestLocalKeepsStdoutAndStderrApartAndInOrder(t *testing.T) {
	l, _ := newTestLocal(t, 0)

	res, rec := runJob(t, l, shellJob(t.TempDir(),
		`for i in 1 2 3 4 5; do echo "out $i"; echo "err $i" >&2; done; printf 'last without newline'`))

	require.True(t, res.Succeeded())
	assert.Equal(t, []string{"out 1", "out 2", "out 3", "out 4", "out 5", "last without newline"}, rec.texts("stdout"))
	assert.Equal(t, []string{"err 1", "err 2", "err 3", "err 4", "err 5"}, rec.texts("stderr"))
}

func TestLocalCutsAnOverlongLineAndGoesOn(t *testing.T) {
	l, _ := newTestLocal(t, 0)

	res, rec := runJob(t, l, shellJob(t.TempDir(), `head -c 300000 /dev/zero | tr '\0' a; echo; echo after`))

	require.True(t, res.Succeeded())
	lines := rec.texts("stdout")
	require.Len(t, lines, 2)
	assert.Equal(t, strings.Repeat("a", MaxLineBytes)+cutNote, lines[0])
	assert.Equal(t, "after", lines[1])
}

func TestLocalReportsHowTheCommandEnded(t *testing.T) {
	for _, tc := range []struct {
		script     string
		wantCode   int
		wantReason string
	}{
		{script: "exit 0", wantCode: 0},
		{script: "exit 3", wantCode: 3},
		{script: "kill -KILL $$", wantCode: 137, wantReason: "signal: killed"},
	} {
		t.Run(tc.script, func(t *testing.T) {
			l, workDir := newTestLocal(t, 0)

			res, _ := runJob(t, l, shellJob(t.TempDir(), tc.script))

			assert.Equal(t, tc.wantCode, res.ExitCode)
			assert.Equal(t, tc.wantReason, res.Reason)
			assert.Equal(t, tc.wantCode == 0 && tc.wantReason == "", res.Succeeded())
			assert.Positive(t, res.Duration)
			requireScratchRemoved(t, workDir)
		})
	}
}

// childPid reads the pid that `sleep 1000 & echo $!` printed.
func childPid(t *testing.T, rec *recorder) int {
	t.Helper()
	line := rec.waitFor(t, func(l Line) bool { return l.Stream == "stdout" })
	pid, err := strconv.Atoi(line.Text)
	require.NoError(t, err, "first line %q", line.Text)
	return pid
}

func TestLocalTimeoutStopsTheWholeProcessGroup(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script string
		grace  time.Duration
	}{
		{name: "SIGTERM", script: `sleep 1000 & echo $!; wait`, grace: DefaultKillGrace},
		{name: "SIGKILL when SIGTERM is ignored", script: `trap '' TERM; sleep 1000 & echo $!; wait`, grace: 100 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, workDir := newTestLocal(t, tc.grace)
			spec := shellJob(t.TempDir(), tc.script)
			spec.Timeout = 2 * time.Second

			res, rec := runJob(t, l, spec)

			assert.Equal(t, ReasonTimeout, res.Reason)
			assert.False(t, res.Succeeded())
			assert.True(t, processGone(t, childPid(t, rec)), "the shell's child survived the timeout")
			requireScratchRemoved(t, workDir)
		})
	}
}

func TestLocalCancelStopsTheWholeProcessGroup(t *testing.T) {
	l, workDir := newTestLocal(t, 0)
	rec := newRecorder()
	h, err := l.Start(context.Background(), shellJob(t.TempDir(), `sleep 1000 & echo $!; wait`), rec.sink)
	require.NoError(t, err)
	pid := childPid(t, rec)
	require.False(t, processExited(t, pid))

	require.NoError(t, h.Cancel(context.Background()))

	assert.True(t, processGone(t, pid), "the shell's child survived the cancel")
	requireScratchRemoved(t, workDir)
	res := waitJob(t, h)
	assert.Equal(t, ReasonCancelled, res.Reason)
	require.NoError(t, h.Cancel(context.Background()), "cancelling again is harmless")
	assert.Equal(t, res, waitJob(t, h))
}

func TestLocalCancelAfterTheEndChangesNothing(t *testing.T) {
	l, _ := newTestLocal(t, 0)
	h, err := l.Start(context.Background(), shellJob(t.TempDir(), "exit 0"), nil)
	require.NoError(t, err)
	res := waitJob(t, h)

	require.NoError(t, h.Cancel(context.Background()))

	assert.True(t, res.Succeeded())
	assert.Equal(t, res, waitJob(t, h))
}

func TestLocalKillsWhatAJobLeftBehind(t *testing.T) {
	l, workDir := newTestLocal(t, 0)

	// The shell exits at once; its child would keep running (and the output open) if the group lived on.
	res, rec := runJob(t, l, shellJob(t.TempDir(), `sleep 1000 & echo $!`))

	require.True(t, res.Succeeded())
	assert.True(t, processGone(t, childPid(t, rec)))
	requireScratchRemoved(t, workDir)
}

func TestLocalEnvironmentIsExactlyTheSpecsPlusAHomeAndATmpdir(t *testing.T) {
	t.Setenv("DAGCTL_TEST_BOT_ONLY", "bot-only-value")
	l, workDir := newTestLocal(t, 0)
	spec := shellJob(t.TempDir(), "")
	spec.Command = []string{"env"}
	spec.Env = map[string]string{"PATH": "/usr/bin:/bin", "FOO": "bar"}

	res, rec := runJob(t, l, spec)

	require.True(t, res.Succeeded(), rec.joined())
	got := EnvMap(rec.texts("stdout"))
	for _, name := range []string{"HOME", "TMPDIR"} {
		dir := got[name]
		assert.True(t, strings.HasPrefix(dir, workDir+string(filepath.Separator)), "%s %q is inside the scratch directory", name, dir)
		delete(got, name)
	}
	assert.Equal(t, spec.Env, got)
	requireScratchRemoved(t, workDir)

	spec.Env["HOME"] = "/given/home"
	spec.Env["TMPDIR"] = "/given/tmp"
	_, rec = runJob(t, l, spec)
	assert.Equal(t, "/given/home", EnvMap(rec.texts("stdout"))["HOME"])
	assert.Equal(t, "/given/tmp", EnvMap(rec.texts("stdout"))["TMPDIR"])
}

func TestLocalFindsCommandsOnTheJobsPath(t *testing.T) {
	l, workDir := newTestLocal(t, 0)
	spec := shellJob(t.TempDir(), "")
	spec.Env = map[string]string{"PATH": "/nonexistent:.:relative"}

	res, rec := runJob(t, l, spec)

	assert.Equal(t, ReasonStartFailed, res.Reason)
	assert.Contains(t, rec.joined(), "sh: not found on the job's PATH")
	requireScratchRemoved(t, workDir)
}

func TestLocalMasksTheCloneTokenInOutput(t *testing.T) {
	const token = "ghs_leakedbythejob"
	repo := newGitRepo(t)
	sha := commitFiles(t, repo, map[string]string{"a.txt": "a\n"}, "a")
	l, _ := newTestLocal(t, 0)

	res, rec := runJob(t, l, Spec{
		RunID:   "mask",
		Source:  Source{CloneURL: repo, SHA: sha, Token: token},
		Command: []string{"sh", "-c", "echo token is " + token + "; echo https://x-access-token:" + token + "@github.com >&2"},
		Env:     plainEnv(),
	})

	require.True(t, res.Succeeded(), rec.joined())
	assert.Equal(t, []string{"token is ***"}, rec.texts("stdout"))
	assert.Equal(t, []string{"https://x-access-token:***@github.com"}, rec.texts("stderr"))
}

func TestLocalRejectsBadSpecs(t *testing.T) {
	sha := strings.Repeat("ab", 20)
	for name, spec := range map[string]Spec{
		"no command":              {Source: Source{Dir: "/tmp"}},
		"no source":               {Command: []string{"true"}},
		"two sources":             {Source: Source{Dir: "/tmp", CloneURL: "/repo", SHA: sha}, Command: []string{"true"}},
		"branch, not SHA":         {Source: Source{CloneURL: "/repo", SHA: "main"}, Command: []string{"true"}},
		"short SHA":               {Source: Source{CloneURL: "/repo", SHA: sha[:12]}, Command: []string{"true"}},
		"subdir escapes":          {Source: Source{Dir: "/tmp"}, Subdir: "../etc", Command: []string{"true"}},
		"absolute subdir":         {Source: Source{Dir: "/tmp"}, Subdir: "/etc", Command: []string{"true"}},
		"upper-case SHA":          {Source: Source{CloneURL: "/repo", SHA: strings.ToUpper(sha)}, Command: []string{"true"}},
		"empty executable":        {Source: Source{Dir: "/tmp"}, Command: []string{""}},
		"base without clone":      {Source: Source{Dir: "/tmp", BaseSHA: sha}, Command: []string{"true"}},
		"base not a SHA":          {Source: Source{CloneURL: "/repo", SHA: sha, BaseSHA: "main"}, Command: []string{"true"}},
		"input in a subdirectory": {Source: Source{Dir: "/tmp"}, Inputs: map[string][]byte{"state/manifest.json": nil}, Command: []string{"true"}},
		"input climbing out":      {Source: Source{Dir: "/tmp"}, Inputs: map[string][]byte{"..": nil}, Command: []string{"true"}},
		"input without a name":    {Source: Source{Dir: "/tmp"}, Inputs: map[string][]byte{"": nil}, Command: []string{"true"}},
		"inputs over the cap": {Source: Source{Dir: "/tmp"}, Command: []string{"true"},
			Inputs: map[string][]byte{"a": make([]byte, MaxInputBytes/2), "b": make([]byte, MaxInputBytes/2+1)}},
	} {
		t.Run(name, func(t *testing.T) {
			l, workDir := newTestLocal(t, 0)

			_, err := l.Start(context.Background(), spec, nil)

			assert.Error(t, err)
			requireScratchRemoved(t, workDir)
		})
	}
}

func TestLocalReportsAMissingProjectDirectory(t *testing.T) {
	l, workDir := newTestLocal(t, 0)
	spec := shellJob(t.TempDir(), "true")
	spec.Subdir = "no/such/project"

	res, rec := runJob(t, l, spec)

	assert.Equal(t, ReasonStartFailed, res.Reason)
	assert.Contains(t, rec.joined(), "no/such/project")
	requireScratchRemoved(t, workDir)
}

func TestLocalAttachSaysTheJobIsGone(t *testing.T) {
	l, _ := newTestLocal(t, 0)
	h, err := l.Start(context.Background(), shellJob(t.TempDir(), "true"), nil)
	require.NoError(t, err)
	waitJob(t, h)

	_, err = l.Attach(context.Background(), h.ID(), nil)

	assert.ErrorIs(t, err, ErrGone)
}

func TestLocalRunsJobsConcurrently(t *testing.T) {
	l, workDir := newTestLocal(t, 0)
	const n = 6
	var wg sync.WaitGroup
	results := make([]Result, n)
	recs := make([]*recorder, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			spec := shellJob(t.TempDir(), fmt.Sprintf(`for k in 1 2 3; do echo "job %d line $k"; done`, i))
			spec.RunID = fmt.Sprintf("concurrent-%d", i)
			recs[i] = newRecorder()
			h, err := l.Start(context.Background(), spec, recs[i].sink)
			if !assert.NoError(t, err) {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), failsafe)
			defer cancel()
			results[i], err = h.Wait(ctx)
			assert.NoError(t, err)
		}()
	}
	wg.Wait()

	for i := range n {
		assert.True(t, results[i].Succeeded())
		assert.Equal(t, []string{
			fmt.Sprintf("job %d line 1", i), fmt.Sprintf("job %d line 2", i), fmt.Sprintf("job %d line 3", i),
		}, recs[i].texts("stdout"))
	}
	requireScratchRemoved(t, workDir)
}

func TestLocalRefusesASecondJobWithTheSameRunID(t *testing.T) {
	l, _ := newTestLocal(t, 0)
	spec := shellJob(t.TempDir(), "sleep 1000")
	spec.RunID = "same"
	h, err := l.Start(context.Background(), spec, nil)
	require.NoError(t, err)
	defer h.Cancel(context.Background())

	_, err = l.Start(context.Background(), spec, nil)

	assert.ErrorContains(t, err, "already running")
	assert.Equal(t, "local-same", h.ID())
}

func TestLocalShutdownStopsEveryRunningJob(t *testing.T) {
	l, workDir := newTestLocal(t, 0)
	var handles []Handle
	var pids []int
	for i := range 3 {
		spec := shellJob(t.TempDir(), `sleep 1000 & echo $!; wait`)
		spec.RunID = fmt.Sprintf("shutdown-%d", i)
		rec := newRecorder()
		h, err := l.Start(context.Background(), spec, rec.sink)
		require.NoError(t, err)
		handles = append(handles, h)
		pids = append(pids, childPid(t, rec))
	}

	require.NoError(t, l.Shutdown(context.Background()))

	for i, h := range handles {
		assert.Equal(t, ReasonCancelled, waitJob(t, h).Reason)
		assert.True(t, processGone(t, pids[i]))
	}
	requireScratchRemoved(t, workDir)
}

func TestLocalJobsGetNoCapabilities(t *testing.T) {
	l, _ := newTestLocal(t, 0)

	res, rec := runJob(t, l, shellJob(t.TempDir(), `grep -E '^(CapEff|CapPrm|CapBnd|CapAmb|NoNewPrivs):' /proc/self/status`))

	require.True(t, res.Succeeded(), rec.joined())
	lines := rec.texts("stdout")
	sort.Strings(lines)
	require.Len(t, lines, 5)
	for _, line := range lines {
		name, value, _ := strings.Cut(line, ":")
		value = strings.TrimSpace(value)
		switch {
		case name == "NoNewPrivs":
			assert.Equal(t, "1", value)
		case name == "CapBnd" && !botHasCapability(t, capSetPCap):
			// An unprivileged bot cannot shrink the bounding set, and no_new_privs keeps it unusable.
		default:
			assert.Equal(t, "0000000000000000", value, name)
		}
	}
}

const capSetPCap = 8

// botHasCapability reports whether the test process (the bot) has an effective capability.
func botHasCapability(t *testing.T, capability uint) bool {
	t.Helper()
	status, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	for _, line := range strings.Split(string(status), "\n") {
		if value, ok := strings.CutPrefix(line, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(value), 16, 64)
			require.NoError(t, err)
			return caps&(1<<capability) != 0
		}
	}
	t.Fatal("no CapEff in /proc/self/status")
	return false
}

func TestLocalRemovesAScratchDirectoryTheJobMadeReadOnly(t *testing.T) {
	repo := newGitRepo(t)
	sha := commitFiles(t, repo, map[string]string{"a.txt": "a\n"}, "a")
	l, workDir := newTestLocal(t, 0)

	res, rec := runJob(t, l, Spec{
		RunID:   "read-only",
		Source:  Source{CloneURL: repo, SHA: sha},
		Command: []string{"sh", "-c", `mkdir -p locked/inner && touch locked/inner/f && chmod 0500 locked/inner locked && chmod 0500 "$HOME" .`},
		Env:     plainEnv(),
	})

	require.True(t, res.Succeeded(), rec.joined())
	requireScratchRemoved(t, workDir)
}
