-- Settings the bot writes for itself, such as the app credentials from GitHub's manifest flow.
CREATE TABLE settings (
    key        TEXT PRIMARY KEY,
    value      BLOB NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
