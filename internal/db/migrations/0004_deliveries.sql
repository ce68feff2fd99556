-- The webhook intake queue. Deliveries are claimed in id order, one at a time per ordering key.
CREATE TABLE deliveries (
    id           INTEGER PRIMARY KEY AUTOINCREMENT, -- queue order
    forge        TEXT NOT NULL,
    delivery_id  TEXT NOT NULL, -- the forge's id of the delivery (GitHub: X-GitHub-Delivery)
    event        TEXT NOT NULL,
    ordering_key TEXT NOT NULL, -- e.g. "owner/repo#12": deliveries with one key are processed in order
    body         BLOB NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'in_flight', 'done', 'failed')),
    attempts     INTEGER NOT NULL DEFAULT 0, -- how many times it was claimed
    last_error   TEXT NOT NULL DEFAULT '',
    worker       TEXT NOT NULL DEFAULT '',
    received_at  INTEGER NOT NULL,
    available_at INTEGER NOT NULL, -- a retried delivery waits until then
    claimed_at   INTEGER,
    finished_at  INTEGER,
    UNIQUE (forge, delivery_id)
) STRICT;

CREATE INDEX deliveries_open_by_key ON deliveries (ordering_key, id) WHERE status IN ('pending', 'in_flight');
CREATE INDEX deliveries_pending ON deliveries (id) WHERE status = 'pending';
CREATE INDEX deliveries_finished ON deliveries (finished_at) WHERE status IN ('done', 'failed');
