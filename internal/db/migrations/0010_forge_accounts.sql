-- Installations and repos are keyed by a forge-neutral account (vcs.Repo.Account) instead of GitHub's integer
-- installation id: GitHub's installation id in decimal, "" for a forge with one configured token (GitLab), which
-- keeps one installations row of its own. The login the app is installed on is now "owner". SQLite cannot
-- change a primary key in place, so both tables are rebuilt with their rows; repos is dropped before
-- installations, so that the foreign key's cascade deletes nothing, and renaming installations_new rewrites
-- the new repos table's reference.
CREATE TABLE installations_new (
    forge      TEXT NOT NULL,
    account    TEXT NOT NULL,
    owner      TEXT NOT NULL,
    suspended  INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (forge, account)
) STRICT;

INSERT INTO installations_new (forge, account, owner, suspended, created_at, updated_at)
    SELECT forge, CAST(installation_id AS TEXT), account, suspended, created_at, updated_at FROM installations;

CREATE TABLE repos_new (
    forge          TEXT NOT NULL,
    full_name      TEXT NOT NULL COLLATE NOCASE, -- "owner/name", as the forge spells it
    account        TEXT NOT NULL,
    clone_url      TEXT NOT NULL,
    default_branch TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    PRIMARY KEY (forge, full_name),
    FOREIGN KEY (forge, account) REFERENCES installations_new (forge, account) ON DELETE CASCADE
) STRICT;

INSERT INTO repos_new (forge, full_name, account, clone_url, default_branch, created_at, updated_at)
    SELECT forge, full_name, CAST(installation_id AS TEXT), clone_url, default_branch, created_at, updated_at FROM repos;

DROP TABLE repos;
DROP TABLE installations;
ALTER TABLE installations_new RENAME TO installations;
ALTER TABLE repos_new RENAME TO repos;
CREATE INDEX repos_by_account ON repos (forge, account);
