-- A run's log is capped (RunLogWriter): it keeps its head and its tail, and one line in between says how much
-- was dropped. The line's seq and the counts live on the run, so that a writer started after a restart goes on
-- capping the same log.
ALTER TABLE runs ADD COLUMN log_marker_seq INTEGER;
ALTER TABLE runs ADD COLUMN log_dropped_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN log_dropped_lines INTEGER NOT NULL DEFAULT 0;

-- A job's result lines (stdout lines starting with jobs.ResultPrefix), kept aside as they stream: the cap may
-- drop them from the log, never from here.
CREATE TABLE run_results (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq    INTEGER NOT NULL,
    text   TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
) STRICT;
