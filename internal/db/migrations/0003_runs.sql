-- Runs: executions of a plan or an apply on an executor, and their output.
CREATE TABLE runs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: executors label their jobs with it
    plan_id         INTEGER NOT NULL REFERENCES plans (id) ON DELETE CASCADE,
    kind            TEXT NOT NULL CHECK (kind IN ('plan', 'apply')),
    executor        TEXT NOT NULL,
    executor_job_id TEXT NOT NULL DEFAULT '',
    status          TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    exit_code       INTEGER,
    reason          TEXT NOT NULL DEFAULT '',
    token_hash      BLOB NOT NULL, -- SHA-256 of the token the executor posts results back with
    created_at      INTEGER NOT NULL,
    started_at      INTEGER,
    finished_at     INTEGER
) STRICT;

CREATE INDEX runs_by_plan ON runs (plan_id, id);
CREATE INDEX runs_unfinished ON runs (id) WHERE status IN ('queued', 'running');

CREATE TABLE run_logs (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq    INTEGER NOT NULL, -- 1, 2, … per run, in arrival order
    stream TEXT NOT NULL,
    text   TEXT NOT NULL,
    at     INTEGER NOT NULL,
    PRIMARY KEY (run_id, seq)
) STRICT;
