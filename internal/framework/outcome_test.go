package framework

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/jobs"
)

func peakRSS(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var kb int64
		if n, _ := fmt.Sscanf(sc.Text(), "VmHWM: %d kB", &kb); n == 1 {
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/self/status")
	return 0
}

// A job printing 200 MB of standard output through RunJob (the CLI's plan and apply, the apply's re-plan) keeps
// only its result lines: the parsers read nothing else, and the process's peak memory does not grow with the
// output.
func TestRunJobKeepsOnlyTheResultLines(t *testing.T) {
	const volume = 200 << 20
	l, err := jobs.NewLocal(jobs.LocalOptions{WorkDir: filepath.Join(t.TempDir(), "work")})
	require.NoError(t, err)
	script := fmt.Sprintf(`echo '%[1]splan:: first'; yes "$(head -c 1000 /dev/zero | tr '\0' c)" | head -c %[2]d; echo
		echo '%[1]splan:: last'`, jobs.ResultPrefix, volume)
	spec := jobs.Spec{RunID: "chatty", Kind: jobs.KindPlan, Source: jobs.Source{Dir: t.TempDir()},
		Command: []string{"sh", "-c", script}, Env: map[string]string{"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}}

	require.NoError(t, os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)) // VmHWM from here
	before := peakRSS(t)
	lines := 0
	stdout, res, err := RunJob(context.Background(), l, spec, func(jobs.Line) { lines++ }, nil)
	growth := peakRSS(t) - before
	require.NoError(t, err)
	require.True(t, res.Succeeded(), "%+v", res)
	t.Logf("peak RSS grew by %d MiB while the job printed %d MiB", growth>>20, volume>>20)
	assert.Less(t, growth, int64(100<<20), "the output is not held in memory")
	assert.Equal(t, jobs.ResultPrefix+"plan:: first\n"+jobs.ResultPrefix+"plan:: last\n", stdout)
	assert.Greater(t, lines, volume/1001, "the sink still saw every line")
}
