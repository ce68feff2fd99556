package kube

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeBot answers the runner like the bot's Handler: down for the first requests, then taking lines by number.
type fakeBot struct {
	mu       sync.Mutex
	failures int // requests still to answer 502
	status   int // when set, every request gets it
	next     int64
	lines    []string
	results  []wireResult
	requests int
}

func (f *fakeBot) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	if f.status != 0 {
		w.WriteHeader(f.status)
		return
	}
	if f.failures > 0 {
		f.failures--
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	if r.Header.Get("Authorization") != "Bearer tok" {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	switch {
	case strings.HasSuffix(r.URL.Path, "/lines"):
		var b linesBatch
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		for i, l := range b.Lines {
			if b.Seq+int64(i) >= f.next {
				f.lines = append(f.lines, l.Text)
			}
		}
		f.next = max(f.next, b.Seq+int64(len(b.Lines)))
	case strings.HasSuffix(r.URL.Path, "/result"):
		var res wireResult
		_ = json.NewDecoder(r.Body).Decode(&res)
		f.results = append(f.results, res)
	}
	w.WriteHeader(http.StatusNoContent)
}

func TestTheRunnerKeepsLinesWhileTheBotIsDown(t *testing.T) {
	bot := &fakeBot{failures: 3}
	srv := httptest.NewServer(bot)
	defer srv.Close()
	rep := newReporter(map[string]string{envReportURL: srv.URL + "/jobs/r", envReportToken: "tok"}, 0)
	rep.stdout = nil // no Pod log to write to
	var want []string
	for i := range 1200 {
		text := fmt.Sprintf("line %d", i)
		want = append(want, text)
		rep.line("stdout", text)
	}
	require.True(t, rep.finish(&wireResult{ExitCode: 3, DurationMS: 10}, time.Minute))
	bot.mu.Lock()
	defer bot.mu.Unlock()
	assert.Equal(t, want, bot.lines, "every line once, in order")
	assert.Equal(t, []wireResult{{ExitCode: 3, DurationMS: 10}}, bot.results)
}

func TestTheRunnerStopsWhenTheBotRefusesTheRun(t *testing.T) {
	for _, status := range []int{http.StatusGone, http.StatusUnauthorized} {
		bot := &fakeBot{status: status}
		srv := httptest.NewServer(bot)
		rep := newReporter(map[string]string{envReportURL: srv.URL + "/jobs/r", envReportToken: "tok"}, 0)
		rep.line("stdout", "x")
		assert.False(t, rep.finish(&wireResult{}, time.Hour), "returns without waiting out the grace")
		bot.mu.Lock()
		assert.Equal(t, 1, bot.requests, "no retries after %d", status)
		bot.mu.Unlock()
		srv.Close()
	}
}

func TestTheRunnerDropsTheOldestLinesBeyondItsBuffer(t *testing.T) {
	rep := &reporter{wake: make(chan struct{}, 1), url: "http://unused"}
	for i := range maxPendingLines + 10 {
		rep.line("stdout", fmt.Sprint(i))
	}
	assert.Len(t, rep.pending, maxPendingLines)
	assert.Equal(t, int64(10), rep.seq, "the numbers tell the bot which lines are missing")
	assert.Equal(t, "10", rep.pending[0].Text)
}

func TestTheTerminationMessageFitsKubernetesLimit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "termination-log")
	var tail []string
	for i := range tailLines {
		tail = append(tail, fmt.Sprintf("%d %s", i, strings.Repeat("x", 500)))
	}
	writeTermination(map[string]string{EnvTerminationLog: path}, terminationMessage{Result: &wireResult{ExitCode: 1}, Tail: tail})
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.LessOrEqual(t, len(b), 4096)
	msg := parseTermination(string(b))
	require.NotNil(t, msg.Result)
	assert.Equal(t, 1, msg.Result.ExitCode)
	require.NotEmpty(t, msg.Tail)
	assert.True(t, strings.HasPrefix(msg.Tail[len(msg.Tail)-1], fmt.Sprint(tailLines-1)), "the last lines are kept")

	assert.Equal(t, []string{"plain", "log"}, parseTermination("plain\nlog\n").Tail, "FallbackToLogsOnError text is output")
}
