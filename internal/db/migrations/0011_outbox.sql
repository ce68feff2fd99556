-- The outbox: writes to the forge waiting to be sent, in the order a sender drains them (per account, by
-- priority, then first in first out). A sent write is deleted in the transaction that records its result, so
-- the table holds only what is still to send.
CREATE TABLE outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    forge       TEXT NOT NULL,
    account     TEXT NOT NULL,                  -- who the write is sent as (GitHub: the installation id)
    kind        TEXT NOT NULL,                  -- status, sticky_part, sticky_trim, reply, reaction
    coalesce_key TEXT,                          -- NULL: never coalesces (a reply)
    priority    INTEGER NOT NULL,               -- lower first
    repo        TEXT NOT NULL,                  -- vcs.Repo as JSON
    payload     TEXT NOT NULL,                  -- the kind's payload as JSON
    token       TEXT NOT NULL,                  -- a random per-write marker, to find a created comment after a crash
    state       TEXT NOT NULL CHECK (state IN ('pending', 'sending')),
    attempts    INTEGER NOT NULL DEFAULT 0,     -- sends begun; above 0 the forge may already have it
    not_before  INTEGER NOT NULL,
    enqueued_at INTEGER NOT NULL,
    last_error  TEXT
) STRICT;
-- At most one unsent state per key: a newer write of the key replaces the pending one.
CREATE UNIQUE INDEX outbox_pending_key ON outbox (forge, account, coalesce_key)
    WHERE coalesce_key IS NOT NULL AND state = 'pending';
CREATE INDEX outbox_drain ON outbox (forge, account, priority, id);

-- What later writes of a key need from the forge: a status's StatusRef, a sticky part's comment id. The core
-- never sees them.
CREATE TABLE outbox_refs (
    forge      TEXT NOT NULL,
    account    TEXT NOT NULL,
    ref_key    TEXT NOT NULL,
    ref        TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (forge, account, ref_key)
) STRICT;
CREATE INDEX outbox_refs_age ON outbox_refs (updated_at);
