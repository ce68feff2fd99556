package db

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
)

// DefaultRunLogMaxBytes is a run's stored log at most (DAGCTL_RUN_LOG_MAX_BYTES): a job printing without end
// costs the database this much, its head and its tail.
const DefaultRunLogMaxBytes = 10 << 20

// WithRunLogMaxBytes caps every run's stored log at n bytes of text (0: the default).
func WithRunLogMaxBytes(n int64) Option { return func(s *Store) { s.runLogMaxBytes = n } }

// markerReserve is room kept for the "… dropped …" line itself.
const markerReserve = 128

// logCap decides, over plain numbers, which lines of a run's log are stored: lines go to the head until it
// holds half the cap, then to the tail, whose oldest lines are dropped to keep it under the rest of the cap.
// It is a value: a flush works on a copy and keeps it only once its transaction committed.
type logCap struct {
	headMax, tailMax int64
	headBytes        int64
	capped           bool    // the head is full: lines go to the tail
	tail             []int64 // sizes of the stored tail lines, oldest first, from tailStart
	tailStart        int
	tailBytes        int64
	droppedBytes     int64
	droppedLines     int64
}

func newLogCap(max int64) logCap {
	head := max / 2
	return logCap{headMax: head, tailMax: max - head - markerReserve}
}

func lineBytes(l LogLine) int64 { return int64(len(l.Text)) + 1 }

// cappedBatch is what one flush does to the stored log.
type cappedBatch struct {
	head, tail  []LogLine // appended before the marker line, and after it
	startMarker bool      // this batch fills the head: the marker line goes between head and tail
	dropStored  int       // the oldest stored tail lines to delete
}

// add takes a batch of lines and says what to store. Lines that would be dropped again within the batch are
// never written.
func (c *logCap) add(lines []LogLine) cappedBatch {
	var b cappedBatch
	for i, l := range lines {
		if !c.capped && c.headBytes+lineBytes(l) <= c.headMax {
			c.headBytes += lineBytes(l)
			b.head = append(b.head, l)
			continue
		}
		if !c.capped {
			c.capped, b.startMarker = true, true
		}
		b.tail = lines[i:]
		break
	}
	if len(b.tail) == 0 {
		return b
	}
	for _, l := range b.tail {
		c.tail = append(c.tail, lineBytes(l))
		c.tailBytes += lineBytes(l)
	}
	stored := len(c.tail) - c.tailStart - len(b.tail) // tail lines already in the database
	dropped := 0
	for c.tailBytes > c.tailMax && c.tailStart < len(c.tail) {
		c.tailBytes -= c.tail[c.tailStart]
		c.droppedBytes += c.tail[c.tailStart]
		c.droppedLines++
		c.tailStart++
		dropped++
	}
	b.dropStored = min(dropped, stored)
	b.tail = b.tail[dropped-b.dropStored:]
	if c.tailStart > len(c.tail)/2 { // compact into a new array: a copy made before still sees its own
		c.tail, c.tailStart = append([]int64(nil), c.tail[c.tailStart:]...), 0
	}
	return b
}

// markerText is the line in place of what was dropped: "… 812 MiB (3,201,554 lines) dropped …".
func (c *logCap) markerText() string {
	return fmt.Sprintf("[dagctl] … %s (%s lines) dropped …", humanBytes(c.droppedBytes), thousands(c.droppedLines))
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// loadLogCap rebuilds a run's cap from what is stored: a writer started after a restart (a job followed again)
// goes on where the previous process stopped.
func (s *Store) loadLogCap(ctx context.Context, runID int64, max int64) (logCap, error) {
	c := newLogCap(max)
	var marker sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT log_marker_seq, log_dropped_bytes, log_dropped_lines FROM runs WHERE id = ?`,
		runID).Scan(&marker, &c.droppedBytes, &c.droppedLines)
	if err != nil {
		return c, fmt.Errorf("load the log cap of run %d: %w", runID, err)
	}
	if !marker.Valid {
		err := s.db.QueryRowContext(ctx, `SELECT coalesce(sum(length(CAST(text AS BLOB)) + 1), 0) FROM run_logs WHERE run_id = ?`,
			runID).Scan(&c.headBytes)
		return c, err
	}
	c.capped, c.headBytes = true, c.headMax
	rows, err := s.db.QueryContext(ctx, `SELECT length(CAST(text AS BLOB)) + 1 FROM run_logs WHERE run_id = ? AND seq > ? ORDER BY seq`,
		runID, marker.Int64)
	sizes, err := collect(rows, err, func(r scanner) (int64, error) { var n int64; return n, r.Scan(&n) })
	for _, n := range sizes {
		c.tail = append(c.tail, n)
		c.tailBytes += n
	}
	return c, err
}

// storeCapped writes one flush of a capped log, and the result lines kept aside, in one transaction.
func (s *Store) storeCapped(ctx context.Context, runID int64, b cappedBatch, c logCap, results []string) error {
	now := s.now()
	return s.write(ctx, func(tx *sql.Tx) error {
		if err := appendLines(ctx, tx, runID, b.head, now); err != nil {
			return err
		}
		if b.startMarker {
			if err := appendLines(ctx, tx, runID, []LogLine{{Stream: "stderr", Text: c.markerText()}}, now); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE runs SET log_marker_seq = (SELECT max(seq) FROM run_logs WHERE run_id = ?)
				WHERE id = ?`, runID, runID); err != nil {
				return err
			}
		}
		if b.dropStored > 0 {
			if _, err := tx.ExecContext(ctx, `DELETE FROM run_logs WHERE run_id = ? AND seq IN (
					SELECT seq FROM run_logs WHERE run_id = ? AND seq > (SELECT log_marker_seq FROM runs WHERE id = ?)
					ORDER BY seq LIMIT ?)`, runID, runID, runID, b.dropStored); err != nil {
				return err
			}
		}
		if err := appendLines(ctx, tx, runID, b.tail, now); err != nil {
			return err
		}
		if c.capped {
			if _, err := tx.ExecContext(ctx, `UPDATE runs SET log_dropped_bytes = ?, log_dropped_lines = ? WHERE id = ?`,
				c.droppedBytes, c.droppedLines, runID); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE run_logs SET text = ? WHERE run_id = ? AND seq = (SELECT log_marker_seq FROM runs WHERE id = ?)`,
				c.markerText(), runID, runID); err != nil {
				return err
			}
		}
		return appendResults(ctx, tx, runID, results)
	})
}

func appendResults(ctx context.Context, tx *sql.Tx, runID int64, results []string) error {
	for _, text := range results {
		if _, err := tx.ExecContext(ctx, `INSERT INTO run_results (run_id, seq, text)
			VALUES (?, (SELECT coalesce(max(seq), 0) + 1 FROM run_results WHERE run_id = ?), ?)`, runID, runID, text); err != nil {
			return fmt.Errorf("store a result line of run %d: %w", runID, err)
		}
	}
	return nil
}

// RunResultLines returns a job's result lines (jobs.ResultPrefix), in order, whatever the log's cap dropped.
func (s *Store) RunResultLines(ctx context.Context, runID int64) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT text FROM run_results WHERE run_id = ? ORDER BY seq`, runID)
	return collect(rows, err, func(r scanner) (string, error) { var t string; return t, r.Scan(&t) })
}
