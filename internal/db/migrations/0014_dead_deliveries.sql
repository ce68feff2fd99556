-- Outages are waited out (issue 10, item 1). A delivery is retried for a window after its first failure (the
-- dispatcher's retry policy decides when); one that outlives it is kept as 'dead', with its body and last error,
-- until an operator retries it. 'failed' (given up after a count of attempts) is gone: rows of it become 'dead'.
-- The status CHECK cannot change in place, so the table is rebuilt; delivery_heads, which references it, is
-- emptied first and recomputed at the end.
DELETE FROM delivery_heads;

CREATE TABLE deliveries_0014 (
    id              INTEGER PRIMARY KEY AUTOINCREMENT, -- queue order
    forge           TEXT NOT NULL,
    delivery_id     TEXT NOT NULL, -- the forge's id of the delivery (GitHub: X-GitHub-Delivery)
    event           TEXT NOT NULL,
    ordering_key    TEXT NOT NULL, -- e.g. "owner/repo#12": deliveries with one key are processed in order
    body            BLOB NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'in_flight', 'done', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0, -- how many times it was claimed
    last_error      TEXT NOT NULL DEFAULT '',
    worker          TEXT NOT NULL DEFAULT '',
    received_at     INTEGER NOT NULL,
    available_at    INTEGER NOT NULL, -- a retried delivery waits until then
    claimed_at      INTEGER,
    finished_at     INTEGER,
    first_failed_at INTEGER, -- the retry window runs from here; NULL until it fails
    interruptions   INTEGER NOT NULL DEFAULT 0, -- how often the bot stopped while processing it (crash-loop guard)
    UNIQUE (forge, delivery_id)
) STRICT;

INSERT INTO deliveries_0014 (id, forge, delivery_id, event, ordering_key, body, status, attempts, last_error, worker,
        received_at, available_at, claimed_at, finished_at, first_failed_at)
    SELECT id, forge, delivery_id, event, ordering_key, body, CASE status WHEN 'failed' THEN 'dead' ELSE status END,
        attempts, last_error, worker, received_at, available_at, claimed_at, finished_at,
        CASE WHEN last_error != '' THEN received_at END
    FROM deliveries;
-- Ids are never reused: the new table goes on from the old one's sequence.
UPDATE sqlite_sequence SET seq = max(seq, (SELECT seq FROM sqlite_sequence WHERE name = 'deliveries'))
    WHERE name = 'deliveries_0014';
DROP TABLE deliveries;
ALTER TABLE deliveries_0014 RENAME TO deliveries;

CREATE INDEX deliveries_open_by_key ON deliveries (ordering_key, id) WHERE status IN ('pending', 'in_flight');
CREATE INDEX deliveries_pending ON deliveries (id) WHERE status = 'pending';
-- What pruning seeks on: only done deliveries are pruned (dead ones are kept until retried).
CREATE INDEX deliveries_finished ON deliveries (finished_at) WHERE status = 'done';
CREATE INDEX deliveries_pending_by_key ON deliveries (ordering_key, id) WHERE status = 'pending';
CREATE INDEX deliveries_in_flight_by_key ON deliveries (ordering_key) WHERE status = 'in_flight';
-- What deliveries list --dead and /readyz read.
CREATE INDEX deliveries_dead ON deliveries (id) WHERE status = 'dead';

INSERT INTO delivery_heads (ordering_key, delivery_id, available_at)
SELECT d.ordering_key, d.id, d.available_at FROM deliveries d
WHERE d.status = 'pending'
    AND d.id = (SELECT min(p.id) FROM deliveries p WHERE p.ordering_key = d.ordering_key AND p.status = 'pending')
    AND NOT EXISTS (SELECT 1 FROM deliveries f WHERE f.ordering_key = d.ordering_key AND f.status = 'in_flight');

-- An outbox write is retried for the same window after its first failed send.
ALTER TABLE outbox ADD COLUMN first_failed_at INTEGER;
