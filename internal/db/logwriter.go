package db

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/dagctl/dagctl-bot/internal/jobs"
)

const (
	// logBatch lines wake the flusher early; a chatty job then costs one write per batch.
	logBatch = 500
	// logBufferMax bounds the lines held while the database is slow; beyond it lines are counted and dropped,
	// so that a job's output can never block the job or exhaust memory.
	logBufferMax = 50_000
)

// RunLogWriter collects a running job's output and appends it to the run's log in batches: every interval,
// when a batch fills, and on Flush and Close. Its Sink never blocks on the database.
type RunLogWriter struct {
	store     *Store
	runID     int64
	bufferMax int

	mu      sync.Mutex
	buf     []LogLine
	dropped int

	flushMu sync.Mutex // one flush at a time keeps the lines in order
	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// NewRunLogWriter starts a writer for a run's log that flushes at least every interval. Close it when the
// job has ended.
func (s *Store) NewRunLogWriter(runID int64, interval time.Duration) *RunLogWriter {
	w := &RunLogWriter{store: s, runID: runID, bufferMax: logBufferMax, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go w.loop(interval)
	return w
}

// Sink is a jobs.Sink: pass w.Sink to an executor.
func (w *RunLogWriter) Sink(l jobs.Line) {
	w.mu.Lock()
	if len(w.buf) >= w.bufferMax {
		w.dropped++
	} else {
		w.buf = append(w.buf, LogLine{Stream: l.Stream, Text: l.Text, At: w.store.now()})
	}
	full := len(w.buf) >= logBatch
	w.mu.Unlock()
	if full {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

var _ jobs.Sink = (*RunLogWriter)(nil).Sink

func (w *RunLogWriter) loop(interval time.Duration) {
	defer close(w.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
		case <-w.wake:
		}
		// A failed background flush keeps its lines; the next flush, or Close, retries and reports.
		_ = w.Flush(context.Background())
	}
}

// Flush appends the buffered lines now. On error the lines stay buffered for the next flush.
func (w *RunLogWriter) Flush(ctx context.Context) error {
	w.flushMu.Lock()
	defer w.flushMu.Unlock()
	w.mu.Lock()
	batch, dropped := w.buf, w.dropped
	w.buf, w.dropped = nil, 0
	w.mu.Unlock()
	if dropped > 0 {
		batch = append(batch, LogLine{Stream: "stderr", Text: fmt.Sprintf("[dagctl] %d lines of output were dropped: the log could not be stored fast enough", dropped)})
	}
	if err := w.store.AppendRunLog(ctx, w.runID, batch); err != nil {
		w.mu.Lock()
		if dropped > 0 {
			batch = batch[:len(batch)-1]
		}
		w.buf, w.dropped = append(batch, w.buf...), w.dropped+dropped
		w.mu.Unlock()
		return err
	}
	return nil
}

// Close stops the background flushing and flushes what is left.
func (w *RunLogWriter) Close(ctx context.Context) error {
	w.once.Do(func() { close(w.stop) })
	<-w.done
	return w.Flush(ctx)
}
