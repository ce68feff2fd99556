-- Retention (internal/db/retention.go): handled deliveries lose their bodies after a while, keeping their row (its
-- id still deduplicates a redelivery); runs finished long ago lose their log lines and result lines, keeping the
-- run. Each prune takes a small batch from the front of one of these indexes: a seek, whatever the history.

-- Done deliveries whose body is still stored, oldest first. A body is pruned by emptying it, which drops the row
-- out of this index; pending, in-flight and given-up deliveries are never in it.
CREATE INDEX deliveries_done_with_body ON deliveries (finished_at) WHERE status = 'done' AND length(body) > 0;

-- When a run's log (run_logs, run_results) was pruned; NULL while it is kept.
ALTER TABLE runs ADD COLUMN log_pruned_at INTEGER;

-- Finished runs whose log is still stored, oldest first.
CREATE INDEX runs_log_kept ON runs (finished_at) WHERE finished_at IS NOT NULL AND log_pruned_at IS NULL;
