-- The deploy image an apply built and pushed (a dbt project with an image repository), one per apply run:
-- the image by digest (`repository@sha256:...`, what the apply job ran on) and by tag. Written once the push
-- succeeded and before any dbt command runs, so an apply followed after a restart runs on the same image; kept
-- with the run (plans and runs are never pruned).
CREATE TABLE apply_images (
    run_id     INTEGER PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    plan_id    INTEGER NOT NULL,
    reference  TEXT NOT NULL,
    tagged     TEXT NOT NULL,
    built_at   INTEGER NOT NULL
) STRICT;
