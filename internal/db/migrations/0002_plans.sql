-- Plans, the models each plan changes, the last approval evaluation of each plan, and the check runs it drives.
-- Plans name their repo by (forge, full name) rather than by reference, so that history outlives the repo row.
CREATE TABLE plans (
    id           INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused, even after deletes
    forge        TEXT NOT NULL,
    repo         TEXT NOT NULL COLLATE NOCASE,
    pr           INTEGER NOT NULL,
    project      TEXT NOT NULL,
    environment  TEXT NOT NULL,
    head_sha     TEXT NOT NULL,
    base_sha     TEXT NOT NULL,
    trigger_user TEXT NOT NULL,
    flags        TEXT NOT NULL,  -- plan.Flags as JSON
    status       TEXT NOT NULL,  -- plan.Status; changes only through plan.Transition
    summary      TEXT,           -- plan.Summary as JSON; NULL until the plan has a result
    error        TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
) STRICT;

CREATE INDEX plans_by_pr ON plans (forge, repo, pr, project, environment, id);

CREATE TABLE plan_models (
    plan_id     INTEGER NOT NULL REFERENCES plans (id) ON DELETE CASCADE,
    model       TEXT NOT NULL,
    change      TEXT NOT NULL CHECK (change IN ('added', 'removed', 'direct', 'indirect', 'metadata', 'backfill')),
    category    TEXT NOT NULL, -- plan.Category, '' when the tool gives none
    kind        TEXT NOT NULL, -- the model kind, '' when unknown
    backfill    TEXT NOT NULL, -- plan.BackfillKind, '' when applying computes no data for the model
    restatement INTEGER NOT NULL,
    PRIMARY KEY (plan_id, model)
) STRICT;

CREATE INDEX plan_models_by_model ON plan_models (model);

CREATE TABLE approvals (
    plan_id      INTEGER PRIMARY KEY REFERENCES plans (id) ON DELETE CASCADE,
    sha          TEXT NOT NULL,    -- the head commit the evaluation was made at
    satisfied    INTEGER NOT NULL,
    approvers    TEXT NOT NULL,    -- JSON [{"user", "sha", "at"}]
    missing      TEXT NOT NULL,    -- JSON [string]
    evaluated_at INTEGER NOT NULL
) STRICT;

-- Check runs are keyed by plan and check name, so that creating or completing one is idempotent.
CREATE TABLE plan_checks (
    plan_id      INTEGER NOT NULL REFERENCES plans (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    check_run_id INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (plan_id, name)
) STRICT;
