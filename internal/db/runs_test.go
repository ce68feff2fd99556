package db

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dagctl/dagctl-bot/internal/jobs"
)

func TestRunLifecycle(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s, path := openTemp(t, WithClock(clk.Now))
	p := mustCreatePlan(t, s, newPlan(12, "prod", "sha1"))

	r, token, err := s.CreateRun(ctx, p.ID, jobs.KindPlan, "local")
	require.NoError(t, err)
	assert.Equal(t, RunQueued, r.Status)
	assert.Len(t, token, 64)

	clk.Advance(time.Second)
	started, err := s.StartRun(ctx, r.ID, "local-123")
	require.NoError(t, err)
	assert.Equal(t, RunRunning, started.Status)
	assert.Equal(t, clk.Now(), started.StartedAt)
	// A run's next job (an apply's apply after its verifying plan) replaces the job id; the start time stays.
	clk.Advance(time.Second)
	next, err := s.StartRun(ctx, r.ID, "local-124")
	require.NoError(t, err)
	assert.Equal(t, "local-124", next.ExecutorJobID)
	assert.Equal(t, started.StartedAt, next.StartedAt)
	started.ExecutorJobID = "local-124"

	apply, _, err := s.CreateRun(ctx, p.ID, jobs.KindApply, "kubernetes")
	require.NoError(t, err)
	_, _, err = s.CreateRun(ctx, p.ID, "destroy", "local")
	assert.Error(t, err)
	_, _, err = s.CreateRun(ctx, 4242, jobs.KindPlan, "local")
	assert.Error(t, err, "the plan must exist")

	// A restart finds both unfinished runs, with what is needed to attach to them.
	s = reopen(t, s, path, WithClock(clk.Now))
	unfinished, err := s.ListUnfinishedRuns(ctx)
	require.NoError(t, err)
	assert.Equal(t, []Run{started, apply}, unfinished)

	ok, err := s.VerifyRunToken(ctx, r.ID, token)
	require.NoError(t, err)
	assert.True(t, ok, "the token survives a restart")
	other := "0"
	if strings.HasSuffix(token, "0") {
		other = "1" // a different last digit, whatever the token ends with
	}
	for _, bad := range []string{"", "x", token[:63] + other} {
		ok, err = s.VerifyRunToken(ctx, r.ID, bad)
		require.NoError(t, err)
		assert.False(t, ok, bad)
	}
	ok, err = s.VerifyRunToken(ctx, apply.ID, token)
	require.NoError(t, err)
	assert.False(t, ok, "a token belongs to one run")
	ok, err = s.VerifyRunToken(ctx, 4242, token)
	require.NoError(t, err)
	assert.False(t, ok)

	clk.Advance(time.Minute)
	finished, err := s.FinishRun(ctx, r.ID, RunResultFrom(jobs.Result{ExitCode: 0}))
	require.NoError(t, err)
	assert.Equal(t, RunSucceeded, finished.Status)
	require.NotNil(t, finished.ExitCode)
	assert.Equal(t, 0, *finished.ExitCode)
	assert.Equal(t, clk.Now(), finished.FinishedAt)
	_, err = s.FinishRun(ctx, r.ID, RunResult{Status: RunCancelled, Reason: "cancelled"})
	assert.ErrorIs(t, err, ErrTransition, "a finished run stays finished")
	_, err = s.FinishRun(ctx, apply.ID, RunResult{Status: RunRunning})
	assert.Error(t, err)

	cancelled, err := s.FinishRun(ctx, apply.ID, RunResult{Status: RunCancelled, Reason: "cancelled"})
	require.NoError(t, err, "a queued run can be cancelled before it starts")
	assert.Nil(t, cancelled.ExitCode)

	got, err := s.GetRun(ctx, r.ID)
	require.NoError(t, err)
	assert.Equal(t, finished, got)
	runs, err := s.ListRuns(ctx, p.ID)
	require.NoError(t, err)
	assert.Equal(t, []Run{finished, cancelled}, runs)
	unfinished, err = s.ListUnfinishedRuns(ctx)
	require.NoError(t, err)
	assert.Empty(t, unfinished)
	_, err = s.GetRun(ctx, 4242)
	assert.ErrorIs(t, err, ErrNotFound)
}

func TestRunResultFrom(t *testing.T) {
	assert.Equal(t, RunSucceeded, RunResultFrom(jobs.Result{ExitCode: 0}).Status)
	assert.Equal(t, RunFailed, RunResultFrom(jobs.Result{ExitCode: 1}).Status)
	assert.Equal(t, RunFailed, RunResultFrom(jobs.Result{ExitCode: 0, Reason: "OOMKilled"}).Status)
	assert.Equal(t, RunFailed, RunResultFrom(jobs.Result{ExitCode: -1, Reason: "timeout"}).Status)
	r := RunResultFrom(jobs.Result{ExitCode: -1, Reason: "cancelled"})
	assert.Equal(t, RunCancelled, r.Status)
	assert.Equal(t, "cancelled", r.Reason)
}

func TestRunLog(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s, path := openTemp(t, WithClock(clk.Now))
	p := mustCreatePlan(t, s, newPlan(12, "prod", "sha1"))
	r, _, err := s.CreateRun(ctx, p.ID, jobs.KindPlan, "local")
	require.NoError(t, err)
	other, _, err := s.CreateRun(ctx, p.ID, jobs.KindPlan, "local")
	require.NoError(t, err)

	require.NoError(t, s.AppendRunLog(ctx, r.ID, []LogLine{{Stream: "stdout", Text: "one"}, {Stream: "stderr", Text: "two"}}))
	require.NoError(t, s.AppendRunLog(ctx, other.ID, []LogLine{{Stream: "stdout", Text: "elsewhere"}}))
	require.NoError(t, s.AppendRunLog(ctx, r.ID, nil))
	at := clk.Now().Add(time.Hour)
	require.NoError(t, s.AppendRunLog(ctx, r.ID, []LogLine{{Stream: "stdout", Text: "three", At: at}, {Stream: "stdout", Text: "four"}}))

	s = reopen(t, s, path, WithClock(clk.Now))
	log, err := s.RunLog(ctx, r.ID)
	require.NoError(t, err)
	assert.Equal(t, []LogLine{
		{Seq: 1, Stream: "stdout", Text: "one", At: clk.Now()},
		{Seq: 2, Stream: "stderr", Text: "two", At: clk.Now()},
		{Seq: 3, Stream: "stdout", Text: "three", At: at},
		{Seq: 4, Stream: "stdout", Text: "four", At: clk.Now()},
	}, log)

	tail, err := s.RunLogTail(ctx, r.ID, 2)
	require.NoError(t, err)
	assert.Equal(t, log[2:], tail)
	tail, err = s.RunLogTail(ctx, r.ID, 10)
	require.NoError(t, err)
	assert.Equal(t, log, tail)

	since, err := s.RunLogSince(ctx, r.ID, 1, 2)
	require.NoError(t, err)
	assert.Equal(t, log[1:3], since)
	since, err = s.RunLogSince(ctx, r.ID, 4, -1)
	require.NoError(t, err)
	assert.Empty(t, since)

	assert.Error(t, s.AppendRunLog(ctx, 4242, []LogLine{{Text: "x"}}), "the run must exist")
}

func TestRunLogWriterKeepsEveryLineInOrder(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	p := mustCreatePlan(t, s, newPlan(12, "prod", "sha1"))
	r, _, err := s.CreateRun(ctx, p.ID, jobs.KindPlan, "local")
	require.NoError(t, err)

	// A short interval and more than a batch of lines from two streams at once: the background flushes race
	// with the sinks, and still every line arrives once, each stream in its own order.
	w := s.NewRunLogWriter(r.ID, time.Millisecond)
	const perStream = 3 * logBatch
	var wg sync.WaitGroup
	for _, stream := range []string{"stdout", "stderr"} {
		wg.Add(1)
		go func(stream string) {
			defer wg.Done()
			for i := 0; i < perStream; i++ {
				w.Sink(jobs.Line{Stream: stream, Text: fmt.Sprint(i)})
			}
		}(stream)
	}
	wg.Wait()
	require.NoError(t, w.Close(ctx))
	require.NoError(t, w.Close(ctx), "closing twice is harmless")

	log, err := s.RunLog(ctx, r.ID)
	require.NoError(t, err)
	require.Len(t, log, 2*perStream)
	next := map[string]int{}
	for i, l := range log {
		assert.Equal(t, int64(i+1), l.Seq)
		assert.Equal(t, fmt.Sprint(next[l.Stream]), l.Text, "stream %s out of order", l.Stream)
		next[l.Stream]++
	}
}

func TestRunLogWriterDropsBeyondItsBufferAndSaysSo(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	p := mustCreatePlan(t, s, newPlan(12, "prod", "sha1"))
	r, _, err := s.CreateRun(ctx, p.ID, jobs.KindPlan, "local")
	require.NoError(t, err)

	// No background loop: nothing flushes until the test does.
	w := &RunLogWriter{store: s, runID: r.ID, bufferMax: 100, bufferMaxBytes: logBufferMaxBytes, wake: make(chan struct{}, 1)}
	for i := 0; i < 100+7; i++ {
		w.Sink(jobs.Line{Stream: "stdout", Text: "x"})
	}
	require.NoError(t, w.Flush(ctx))
	tail, err := s.RunLogTail(ctx, r.ID, 2)
	require.NoError(t, err)
	require.Len(t, tail, 2)
	assert.Equal(t, int64(100+1), tail[1].Seq)
	assert.Contains(t, tail[1].Text, "7 lines of output were dropped")
}

func TestFinishedRunCannotStartAgain(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	p := mustCreatePlan(t, s, newPlan(1, "prod", "sha"))
	r, _, err := s.CreateRun(ctx, p.ID, jobs.KindPlan, "local")
	require.NoError(t, err)
	_, err = s.FinishRun(ctx, r.ID, RunResult{Status: RunCancelled})
	require.NoError(t, err)
	_, err = s.StartRun(ctx, r.ID, "late")
	assert.ErrorIs(t, err, ErrTransition)
}
