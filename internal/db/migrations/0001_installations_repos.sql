-- The forge installations of the app and the repositories they give it access to.
CREATE TABLE installations (
    forge           TEXT NOT NULL,
    installation_id INTEGER NOT NULL,
    account         TEXT NOT NULL,
    suspended       INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (forge, installation_id)
) STRICT;

CREATE TABLE repos (
    forge           TEXT NOT NULL,
    full_name       TEXT NOT NULL COLLATE NOCASE, -- "owner/name", as the forge spells it
    installation_id INTEGER NOT NULL,
    clone_url       TEXT NOT NULL,
    default_branch  TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (forge, full_name),
    FOREIGN KEY (forge, installation_id) REFERENCES installations (forge, installation_id) ON DELETE CASCADE
) STRICT;

CREATE INDEX repos_by_installation ON repos (forge, installation_id);
