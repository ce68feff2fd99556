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
	// logBufferMaxBytes bounds the same by bytes: lines are cut at jobs.MaxLineBytes, so 50,000 of them could
	// otherwise be 3 GiB.
	logBufferMaxBytes = 8 << 20
	// logBatchBytes of buffered lines wake the flusher early too, so that one write stores at most about that.
	logBatchBytes = 1 << 20
)

// RunLogWriter collects a running job's output and appends it to the run's log in batches: every interval,
// when a batch fills, and on Flush and Close. Its Sink never blocks on the database. The stored log is capped
// (WithRunLogMaxBytes): past the cap its middle is dropped for one line saying how much; the job's result
// lines (jobs.Line.IsResult) are kept aside too, up to the cap, so a capped log still yields the result.
type RunLogWriter struct {
	store          *Store
	runID          int64
	bufferMax      int
	bufferMaxBytes int64

	mu       sync.Mutex
	buf      []LogLine
	bufBytes int64 // the text bytes in buf
	dropped  int
	results  []string // result lines not stored yet
	// resultBytes counts every result line taken: beyond the cap they are not kept (the result then fails
	// to parse, closed).
	resultBytes int64

	cap       logCap // guarded by flushMu, loaded from the store by the first flush
	capLoaded bool

	flushMu sync.Mutex // one flush at a time keeps the lines in order
	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// NewRunLogWriter starts a writer for a run's log that flushes at least every interval. Close it when the
// job has ended.
func (s *Store) NewRunLogWriter(runID int64, interval time.Duration) *RunLogWriter {
	w := &RunLogWriter{store: s, runID: runID, bufferMax: logBufferMax, bufferMaxBytes: logBufferMaxBytes, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go w.loop(interval)
	return w
}

// Sink is a jobs.Sink: pass w.Sink to an executor.
func (w *RunLogWriter) Sink(l jobs.Line) {
	w.mu.Lock()
	if len(w.buf) >= w.bufferMax || w.bufBytes+int64(len(l.Text)) > w.bufferMaxBytes {
		w.dropped++
	} else {
		w.buf = append(w.buf, LogLine{Stream: l.Stream, Text: l.Text, At: w.store.now()})
		w.bufBytes += int64(len(l.Text))
	}
	if l.IsResult() && w.resultBytes+int64(len(l.Text)) <= w.store.runLogMaxBytes {
		w.resultBytes += int64(len(l.Text))
		w.results = append(w.results, l.Text)
	}
	full := len(w.buf) >= logBatch || w.bufBytes >= logBatchBytes
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
	if !w.capLoaded {
		c, err := w.store.loadLogCap(ctx, w.runID, w.store.runLogMaxBytes)
		if err != nil {
			return err
		}
		w.cap, w.capLoaded = c, true
	}
	w.mu.Lock()
	batch, dropped, results := w.buf, w.dropped, w.results
	w.buf, w.bufBytes, w.dropped, w.results = nil, 0, 0, nil
	w.mu.Unlock()
	if dropped > 0 {
		batch = append(batch, LogLine{Stream: "stderr", Text: fmt.Sprintf("[dagctl] %d lines of output were dropped: the log could not be stored fast enough", dropped)})
	}
	if len(batch) == 0 && len(results) == 0 {
		return nil
	}
	c := w.cap // a copy: kept only once stored
	stored := c.add(batch)
	if err := w.store.storeCapped(ctx, w.runID, stored, c, results); err != nil {
		w.mu.Lock()
		if dropped > 0 {
			batch = batch[:len(batch)-1]
		}
		w.buf, w.dropped, w.results = append(batch, w.buf...), w.dropped+dropped, append(results, w.results...)
		w.bufBytes = 0
		for _, l := range w.buf {
			w.bufBytes += int64(len(l.Text))
		}
		w.mu.Unlock()
		return err
	}
	w.cap = c
	return nil
}

// Close stops the background flushing and flushes what is left.
func (w *RunLogWriter) Close(ctx context.Context) error {
	w.once.Do(func() { close(w.stop) })
	<-w.done
	return w.Flush(ctx)
}
