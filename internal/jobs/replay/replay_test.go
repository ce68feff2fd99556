package replay_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/jobs/replay"
)

// commits are the files of two commits: the project is under warehouse/.
var commits = map[string]map[string]string{
	"c1": {"warehouse/job.sh": "echo planned $1; echo warning >&2; exit 3\n", "README.md": "outside the project"},
	"c2": {"warehouse/job.sh": "echo planned $1; echo warning >&2; exit 3\n", "README.md": "changed, still outside"},
	"c3": {"warehouse/job.sh": "echo planned $1 again\n"},
}

func filesAt(sha string) (map[string]string, bool) { f, ok := commits[sha]; return f, ok }

func spec(sha, env string, args ...string) jobs.Spec {
	return jobs.Spec{RunID: "1", Kind: jobs.KindPlan, Labels: map[string]string{"environment": env},
		Source: jobs.Source{CloneURL: "memforge://acme/warehouse", SHA: sha}, Subdir: "warehouse",
		Command: append([]string{"/bin/sh", "job.sh"}, args...), Env: map[string]string{"PATH": "/usr/bin:/bin"}}
}

// run starts a job and returns what it printed and how it ended.
func run(t *testing.T, e jobs.Executor, s jobs.Spec) ([]jobs.Line, jobs.Result) {
	t.Helper()
	var mu sync.Mutex
	var lines []jobs.Line
	h, err := e.Start(context.Background(), s, func(l jobs.Line) { mu.Lock(); lines = append(lines, l); mu.Unlock() })
	require.NoError(t, err)
	res, err := h.Wait(context.Background())
	require.NoError(t, err)
	mu.Lock()
	defer mu.Unlock()
	return lines, res
}

func TestARecordedJobIsReplayedAsItRan(t *testing.T) {
	dir := t.TempDir()
	local, err := jobs.NewLocal(jobs.LocalOptions{WorkDir: t.TempDir()})
	require.NoError(t, err)
	rec := &replay.Recorder{Dir: dir, Files: filesAt, Inner: local, Scratch: t.TempDir()}
	realLines, realRes := run(t, rec, spec("c1", "prod", "prod"))
	require.Equal(t, 3, realRes.ExitCode, "the real job ran: %v", realLines)

	player := &replay.Executor{Dir: dir, Files: filesAt}
	lines, res := run(t, player, spec("c1", "prod", "prod"))
	assert.Equal(t, realLines, lines)
	assert.Equal(t, 3, res.ExitCode)
	assert.Contains(t, lines, jobs.Line{Stream: "stderr", Text: "warning"})

	// A change outside the project decides nothing: the same capture is replayed.
	lines, _ = run(t, player, spec("c2", "prod", "prod"))
	assert.Equal(t, realLines, lines)
	require.Len(t, player.Started(), 2)
	assert.Equal(t, player.Started()[0], player.Started()[1])
}

func TestAJobWithNoCaptureFailsNamingItsKey(t *testing.T) {
	dir := t.TempDir()
	local, err := jobs.NewLocal(jobs.LocalOptions{WorkDir: t.TempDir()})
	require.NoError(t, err)
	run(t, &replay.Recorder{Dir: dir, Files: filesAt, Inner: local, Scratch: t.TempDir()}, spec("c1", "prod", "prod"))
	player := &replay.Executor{Dir: dir, Files: filesAt}

	for name, s := range map[string]jobs.Spec{
		"other files":       spec("c3", "prod", "prod"),
		"other environment": spec("c1", "dev", "prod"),
		"other arguments":   spec("c1", "prod", "prod", "--forward-only"),
	} {
		_, err := player.Start(context.Background(), s, func(jobs.Line) {})
		require.ErrorIs(t, err, replay.ErrNoCapture, name)
		key, kerr := replay.KeyOf(s, filesAt)
		require.NoError(t, kerr)
		assert.Contains(t, err.Error(), key.String(), name)
		assert.Contains(t, err.Error(), key.File(), name)
		assert.Contains(t, err.Error(), "make golden", name)
	}
	_, err = player.Start(context.Background(), spec("unknown", "prod"), func(jobs.Line) {})
	assert.ErrorContains(t, err, `no files for commit "unknown"`)
}

func TestACancelledReplayEndsAsCancelled(t *testing.T) {
	dir := t.TempDir()
	local, err := jobs.NewLocal(jobs.LocalOptions{WorkDir: t.TempDir()})
	require.NoError(t, err)
	run(t, &replay.Recorder{Dir: dir, Files: filesAt, Inner: local, Scratch: t.TempDir()}, spec("c1", "prod", "prod"))
	player := &replay.Executor{Dir: dir, Files: filesAt}
	block := make(chan struct{})
	h, err := player.Start(context.Background(), spec("c1", "prod", "prod"), func(jobs.Line) { <-block })
	require.NoError(t, err)
	require.NoError(t, h.Cancel(context.Background()))
	close(block)
	res, err := h.Wait(context.Background())
	require.NoError(t, err)
	assert.Equal(t, jobs.ReasonCancelled, res.Reason)
}

// A job that reads a base commit and inputs (dbt's plan: a parse of the base, the production manifest) is keyed
// by them too, is recorded with the base's files in its base directory, and replays the artifacts it left.
func TestABaseInputsAndArtifactsAreRecordedAndReplayed(t *testing.T) {
	files := map[string]map[string]string{
		"head":  {"p/job.sh": `cat "$DAGCTL_BASE_DIR/job.sh" | wc -l; cat "$DAGCTL_INPUT_DIR/state"; mkdir -p out; echo left > out/a.json` + "\n"},
		"base1": {"p/job.sh": "one line\n"},
		"base2": {"p/job.sh": "two\nlines\n"},
	}
	at := func(sha string) (map[string]string, bool) { f, ok := files[sha]; return f, ok }
	withBase := func(base, state string) jobs.Spec {
		return jobs.Spec{RunID: "1", Kind: jobs.KindApply, Labels: map[string]string{"environment": "dev"},
			Source: jobs.Source{CloneURL: "memforge://acme/warehouse", SHA: "head", BaseSHA: base}, Subdir: "p",
			Command: []string{"/bin/sh", "job.sh"}, Env: map[string]string{"PATH": "/usr/bin:/bin"},
			Inputs: map[string][]byte{"state": []byte(state)}, Collect: []string{"out/a.json", "out/b.json"}}
	}
	dir := t.TempDir()
	local, err := jobs.NewLocal(jobs.LocalOptions{WorkDir: t.TempDir()})
	require.NoError(t, err)
	rec := &replay.Recorder{Dir: dir, Files: at, Inner: local, Scratch: t.TempDir()}
	realLines, realRes := run(t, rec, withBase("base1", "s1"))
	require.True(t, realRes.Succeeded(), "%+v %v", realRes, realLines)
	assert.Equal(t, []jobs.Line{{Stream: "stdout", Text: "1"}, {Stream: "stdout", Text: "s1"}}, realLines, "the base's files and the inputs")

	player := &replay.Executor{Dir: dir, Files: at}
	lines, res := run(t, player, withBase("base1", "s1"))
	assert.Equal(t, realLines, lines)
	assert.Equal(t, map[string][]byte{"out/a.json": []byte("left\n")}, res.Artifacts)
	assert.Contains(t, res.ArtifactErrors["out/b.json"], "no such file")
	for name, s := range map[string]jobs.Spec{"another base": withBase("base2", "s1"), "other inputs": withBase("base1", "s2")} {
		_, err := player.Start(context.Background(), s, func(jobs.Line) {})
		assert.ErrorIs(t, err, replay.ErrNoCapture, name)
	}
}
