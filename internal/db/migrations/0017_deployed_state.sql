-- What each (project, environment) was last deployed from by an apply job that succeeded (every command): the
-- commit, and for dbt the manifest.json the job left (its production state, given to the next plans and
-- applies as an input). Kept apart from applied_content, the reviewed-content record, which an approved merge
-- that deployed nothing also moves: a merge that deployed nothing must not move the base the next plan
-- compares with. manifest is NULL when the job left none (a framework without production state).
CREATE TABLE deployed_state (
    forge       TEXT NOT NULL,
    repo        TEXT NOT NULL COLLATE NOCASE,
    project     TEXT NOT NULL,
    environment TEXT NOT NULL,
    commit_sha  TEXT NOT NULL,
    manifest    BLOB,
    plan_id     INTEGER NOT NULL,
    deployed_at INTEGER NOT NULL,
    PRIMARY KEY (forge, repo, project, environment)
) STRICT;
