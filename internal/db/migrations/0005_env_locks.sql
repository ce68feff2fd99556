-- Environment locks: at most one holder per (repo, environment), so that one apply runs at a time.
CREATE TABLE env_locks (
    forge       TEXT NOT NULL,
    repo        TEXT NOT NULL COLLATE NOCASE,
    environment TEXT NOT NULL,
    plan_id     INTEGER NOT NULL REFERENCES plans (id) ON DELETE CASCADE, -- the owner
    pr          INTEGER NOT NULL,
    user        TEXT NOT NULL,
    acquired_at INTEGER NOT NULL,
    PRIMARY KEY (forge, repo, environment)
) STRICT;

CREATE INDEX env_locks_by_pr ON env_locks (forge, repo, pr);
