-- When the forge says a plan's result was posted (its check completed), on the forge's clock: approvals count
-- for the plan only when given after it. NULL: not known yet.
ALTER TABLE plans ADD COLUMN result_posted_at INTEGER;

-- What each (project, environment) was last applied from: the commit and a hash of the project's files at it, so
-- an apply can name the files that changed since and were not reviewed.
CREATE TABLE applied_content (
    forge        TEXT NOT NULL,
    repo         TEXT NOT NULL COLLATE NOCASE,
    project      TEXT NOT NULL,
    environment  TEXT NOT NULL,
    commit_sha   TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    plan_id      INTEGER NOT NULL,
    applied_at   INTEGER NOT NULL,
    PRIMARY KEY (forge, repo, project, environment)
) STRICT;
