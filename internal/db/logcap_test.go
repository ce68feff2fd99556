package db

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/jobs"
)

const testCap = 64 << 10

// runCapped runs a real local job printing script's output into a capped writer of run, and closes the writer.
func runCapped(t *testing.T, s *Store, runID int64, script string) {
	t.Helper()
	l, err := jobs.NewLocal(jobs.LocalOptions{WorkDir: filepath.Join(t.TempDir(), "work")})
	require.NoError(t, err)
	w := s.NewRunLogWriter(runID, time.Millisecond)
	h, err := l.Start(context.Background(), jobs.Spec{RunID: "capped", Kind: jobs.KindPlan,
		Source: jobs.Source{Dir: t.TempDir()}, Command: []string{"sh", "-c", script},
		Env: map[string]string{"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}}, w.Sink)
	require.NoError(t, err)
	res, err := h.Wait(context.Background())
	require.NoError(t, err)
	require.True(t, res.Succeeded(), "%+v", res)
	require.NoError(t, w.Close(context.Background()))
}

func storedLogBytes(t *testing.T, s *Store, runID int64) (bytes int64, lines []LogLine) {
	t.Helper()
	lines, err := s.RunLog(context.Background(), runID)
	require.NoError(t, err)
	for _, l := range lines {
		bytes += int64(len(l.Text)) + 1
	}
	return bytes, lines
}

// 200,000 numbered lines (about 2.3 MB) under a 64 KiB cap, then the result: the log keeps its first lines, one
// line saying what was dropped, its last lines; the result line is kept aside.
func TestACappedRunLogKeepsHeadAndTailAndTheResultAside(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t, WithRunLogMaxBytes(testCap))
	p := mustCreatePlan(t, s, newPlan(12, "prod", "sha1"))
	r, _, err := s.CreateRun(ctx, p.ID, jobs.KindPlan, "local")
	require.NoError(t, err)

	runCapped(t, s, r.ID, `seq 1 200000 | sed 's/^/line /'; echo '::dagctl-plan:: {"ok":true}'; echo after the result`)

	size, lines := storedLogBytes(t, s, r.ID)
	assert.LessOrEqual(t, size, int64(testCap))
	assert.Greater(t, size, int64(testCap*3/4), "the cap is used, not a fraction of it")
	require.Greater(t, len(lines), 3)
	assert.Equal(t, "line 1", lines[0].Text)
	assert.Equal(t, "after the result", lines[len(lines)-1].Text)
	assert.Equal(t, `::dagctl-plan:: {"ok":true}`, lines[len(lines)-2].Text, "the tail is the job's last lines")
	m := markerIndex(t, lines)
	for i, l := range lines[:m] {
		require.Equal(t, "line "+strconv.Itoa(i+1), l.Text, "the head is the first lines")
	}
	var next int64
	_, err = fmt.Sscanf(lines[m+1].Text, "line %d", &next)
	require.NoError(t, err)
	assert.Contains(t, lines[m].Text, "("+thousands(next-1-int64(m))+" lines) dropped …")
	assert.Contains(t, lines[m].Text, "MiB")

	results, err := s.RunResultLines(ctx, r.ID)
	require.NoError(t, err)
	assert.Equal(t, []string{`::dagctl-plan:: {"ok":true}`}, results)
}

// The result printed early is dropped from the log by the cap, never from the results.
func TestAResultLineTheCapDropsFromTheLogIsKept(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t, WithRunLogMaxBytes(testCap))
	p := mustCreatePlan(t, s, newPlan(12, "prod", "sha1"))
	r, _, err := s.CreateRun(ctx, p.ID, jobs.KindPlan, "local")
	require.NoError(t, err)

	runCapped(t, s, r.ID, `seq 1 5000 | sed 's/^/head /'; echo '::dagctl-plan:: part 1/1 {}'; seq 1 100000 | sed 's/^/tail /'`)

	_, lines := storedLogBytes(t, s, r.ID)
	for _, l := range lines {
		assert.NotContains(t, l.Text, "::dagctl-plan::")
	}
	results, err := s.RunResultLines(ctx, r.ID)
	require.NoError(t, err)
	assert.Equal(t, []string{"::dagctl-plan:: part 1/1 {}"}, results)
}

// A writer started after a restart (a job followed again) goes on capping the same log: still one marker, still
// bounded, and the marker counts what both processes dropped.
func TestACappedRunLogStaysCappedAcrossARestart(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t, WithRunLogMaxBytes(testCap))
	p := mustCreatePlan(t, s, newPlan(12, "prod", "sha1"))
	r, _, err := s.CreateRun(ctx, p.ID, jobs.KindPlan, "local")
	require.NoError(t, err)
	runCapped(t, s, r.ID, `seq 1 100000 | sed 's/^/line /'`)

	s = reopen(t, s, path, WithRunLogMaxBytes(testCap))
	runCapped(t, s, r.ID, `seq 100001 200000 | sed 's/^/line /'; echo '::dagctl-plan:: {}'`)

	size, lines := storedLogBytes(t, s, r.ID)
	assert.LessOrEqual(t, size, int64(testCap))
	assert.Equal(t, "line 1", lines[0].Text)
	assert.Equal(t, "::dagctl-plan:: {}", lines[len(lines)-1].Text)
	m := markerIndex(t, lines)
	// 200,001 lines printed; all but the stored ones (the marker aside) were dropped.
	assert.Contains(t, lines[m].Text, "("+thousands(200001-int64(len(lines)-1))+" lines) dropped …")
	results, err := s.RunResultLines(ctx, r.ID)
	require.NoError(t, err)
	assert.Equal(t, []string{"::dagctl-plan:: {}"}, results)
}

// markerIndex finds the one "… dropped …" line.
func markerIndex(t *testing.T, lines []LogLine) int {
	t.Helper()
	at := -1
	for i, l := range lines {
		if strings.HasPrefix(l.Text, "[dagctl] … ") {
			require.Equal(t, -1, at, "one marker line")
			at = i
		}
	}
	require.NotEqual(t, -1, at, "a marker line")
	return at
}

func TestLogCapMarkerNumbers(t *testing.T) {
	c := logCap{headMax: 5 << 20, droppedBytes: 812 << 20, droppedLines: 3201554}
	assert.Equal(t, "[dagctl] … 812 MiB (3,201,554 lines) dropped …", c.markerText())
	assert.Equal(t, "999", thousands(999))
	assert.Equal(t, "1,000", thousands(1000))
}

func linesOf(texts ...string) []LogLine {
	out := make([]LogLine, len(texts))
	for i, t := range texts {
		out[i] = LogLine{Stream: "stdout", Text: t}
	}
	return out
}

// The cap's decisions over plain numbers: the head fills, then the tail keeps the newest lines, deleting stored
// ones only when new ones push them out, and never writing a line the same batch would drop.
func TestLogCapKeepsTheNewestTailLines(t *testing.T) {
	c := logCap{headMax: 10, tailMax: 10}
	b := c.add(linesOf("aaaa", "bbbb", "cccc")) // 5 bytes each with the newline
	assert.Equal(t, linesOf("aaaa", "bbbb"), b.head)
	assert.True(t, b.startMarker)
	assert.Equal(t, linesOf("cccc"), b.tail)
	assert.Zero(t, b.dropStored)

	b = c.add(linesOf("dddd", "eeee"))
	assert.False(t, b.startMarker)
	assert.Equal(t, 1, b.dropStored, "cccc, stored, is pushed out")
	assert.Equal(t, linesOf("dddd", "eeee"), b.tail)

	b = c.add(linesOf("ffff", "gggg", "hhhh"))
	assert.Equal(t, 2, b.dropStored)
	assert.Equal(t, linesOf("gggg", "hhhh"), b.tail, "ffff is never written")
	assert.Equal(t, int64(4), c.droppedLines)
	assert.Equal(t, int64(20), c.droppedBytes)
	assert.Equal(t, int64(10), c.tailBytes)
}

func TestLogCapDropsALineLongerThanTheTail(t *testing.T) {
	c := logCap{headMax: 10, tailMax: 10}
	b := c.add(linesOf(strings.Repeat("x", 100), "ok"))
	assert.Empty(t, b.head)
	assert.True(t, b.startMarker)
	assert.Equal(t, linesOf("ok"), b.tail)
	assert.Equal(t, int64(1), c.droppedLines)
	assert.Equal(t, int64(101), c.droppedBytes)
}
