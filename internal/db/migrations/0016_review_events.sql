-- Review events the bot received from a forge's verified webhooks (GitLab's Merge Request Hook approval,
-- approved, unapproval, unapproved), per (forge, repo, PR, user): whether the user approved or withdrew, at the
-- forge's time. GitLab's approvals API names who approves but, on most versions, not when: the newest approval
-- no later withdrawal voids dates it (internal/approval.DateApprovals). A redelivery inserts nothing (the key).
CREATE TABLE review_events (
    forge       TEXT NOT NULL,
    repo        TEXT NOT NULL COLLATE NOCASE,
    pr          INTEGER NOT NULL,
    user        TEXT NOT NULL COLLATE NOCASE,
    approved    INTEGER NOT NULL CHECK (approved IN (0, 1)),
    at          INTEGER NOT NULL, -- the forge's time of the event (ms), the clock a status's posting is on
    received_at INTEGER NOT NULL, -- the store's clock when it was recorded: what retention goes by
    PRIMARY KEY (forge, repo, pr, user, approved, at)
) STRICT;
