-- The runnable keys of the intake queue: one row per ordering key whose first delivery in line is pending and
-- no delivery of the key is in flight, naming that delivery. A claim takes the row of the lowest id that is due
-- instead of scanning every key's backlog; a key with a delivery in flight has no row, so it stays blocked.
-- Every change of a delivery's status recomputes its key's row (internal/db/deliveries.go, refreshHead).
CREATE TABLE delivery_heads (
    ordering_key TEXT PRIMARY KEY,
    delivery_id  INTEGER NOT NULL UNIQUE REFERENCES deliveries (id) ON DELETE CASCADE, -- claim order
    available_at INTEGER NOT NULL -- the head's, copied: a retried head keeps its key blocked until then
) STRICT;

-- What refreshHead seeks on: a key's first pending delivery, and whether the key has one in flight.
CREATE INDEX deliveries_pending_by_key ON deliveries (ordering_key, id) WHERE status = 'pending';
CREATE INDEX deliveries_in_flight_by_key ON deliveries (ordering_key) WHERE status = 'in_flight';

INSERT INTO delivery_heads (ordering_key, delivery_id, available_at)
SELECT d.ordering_key, d.id, d.available_at FROM deliveries d
WHERE d.status = 'pending'
    AND d.id = (SELECT min(p.id) FROM deliveries p WHERE p.ordering_key = d.ordering_key AND p.status = 'pending')
    AND NOT EXISTS (SELECT 1 FROM deliveries f WHERE f.ordering_key = d.ordering_key AND f.status = 'in_flight');
