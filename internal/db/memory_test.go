package db

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/jobs"
)

// peakRSS is this process's peak resident set since the last resetPeakRSS, in bytes (VmHWM).
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

// resetPeakRSS makes VmHWM the current resident set again (Linux: "5" to clear_refs).
func resetPeakRSS(t *testing.T) {
	t.Helper()
	require.NoError(t, os.WriteFile("/proc/self/clear_refs", []byte("5"), 0))
}

// A job printing 200 MB as fast as it can, half of it one line without a newline and half in lines just under
// the cut, through the real local executor, the redactor and the capped log writer into the store: this
// process's peak memory grows by far less than the output (the writer buffers by bytes, the reader cuts lines),
// and the log keeps its tail and the result.
func TestAJobPrinting200MBDoesNotHoldItInMemory(t *testing.T) {
	const volume = 200 << 20
	ctx := context.Background()
	s, _ := openTemp(t)
	p := mustCreatePlan(t, s, newPlan(1, "prod", "sha1"))
	r, _, err := s.CreateRun(ctx, p.ID, jobs.KindPlan, "local")
	require.NoError(t, err)
	line := strconv.Itoa(jobs.MaxLineBytes - 100)
	script := fmt.Sprintf(`head -c %d /dev/zero | tr '\0' x; echo
		yes "$(head -c %s /dev/zero | tr '\0' y)" | head -c %d
		echo; echo '%splan:: {}'; echo the end`, volume/2, line, volume/2, jobs.ResultPrefix)

	resetPeakRSS(t)
	before := peakRSS(t)
	runCapped(t, s, r.ID, script)
	growth := peakRSS(t) - before
	t.Logf("peak RSS grew by %d MiB while the job printed %d MiB", growth>>20, volume>>20)
	assert.Less(t, growth, int64(100<<20), "the output is not held in memory")

	tail, err := s.RunLogTail(ctx, r.ID, 1)
	require.NoError(t, err)
	require.Len(t, tail, 1)
	assert.Equal(t, "the end", tail[0].Text)
	results, err := s.RunResultLines(ctx, r.ID)
	require.NoError(t, err)
	assert.Equal(t, []string{jobs.ResultPrefix + "plan:: {}"}, results)
}

// While the store is slow the writer buffers lines by bytes, not only by count: 1,000 lines at the reader's cut
// (64 MiB) are not all held; what is dropped is said.
func TestRunLogWriterBuffersByBytes(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	p := mustCreatePlan(t, s, newPlan(12, "prod", "sha1"))
	r, _, err := s.CreateRun(ctx, p.ID, jobs.KindPlan, "local")
	require.NoError(t, err)

	// No background loop: nothing flushes until the test does, as when the database is slow.
	w := &RunLogWriter{store: s, runID: r.ID, bufferMax: logBufferMax, bufferMaxBytes: logBufferMaxBytes, wake: make(chan struct{}, 1)}
	long := string(bytes.Repeat([]byte("z"), jobs.MaxLineBytes))
	for i := 0; i < 1000; i++ {
		w.Sink(jobs.Line{Stream: "stdout", Text: long})
	}
	w.Sink(jobs.Line{Stream: "stdout", Text: jobs.ResultPrefix + "plan:: {}"})
	var held int64
	for _, l := range w.buf {
		held += int64(len(l.Text))
	}
	assert.LessOrEqual(t, held, int64(logBufferMaxBytes))
	require.NoError(t, w.Flush(ctx))
	tail, err := s.RunLogTail(ctx, r.ID, 1)
	require.NoError(t, err)
	assert.Regexp(t, `\d+ lines of output were dropped`, tail[0].Text)
	results, err := s.RunResultLines(ctx, r.ID)
	require.NoError(t, err)
	assert.Equal(t, []string{jobs.ResultPrefix + "plan:: {}"}, results, "a result line is kept aside even when the buffer is full")
}
