-- Users, groups and API keys are shared by every catalog (EnterMediaDB keeps them in
-- the "system" catalog); assets and list values belong to one catalog.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    firstname     TEXT NOT NULL DEFAULT '',
    lastname      TEXT NOT NULL DEFAULT '',
    email         TEXT NOT NULL DEFAULT '',
    screenname    TEXT NOT NULL DEFAULT '',
    enabled       INTEGER NOT NULL DEFAULT 1,
    created       TEXT NOT NULL
);

CREATE TABLE groups (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    permissions TEXT NOT NULL DEFAULT '[]'
);

CREATE TABLE user_groups (
    user_id  TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    group_id TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, group_id)
);

-- Only a hash of each key is kept; the key itself is shown once, at login.
CREATE TABLE api_keys (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created    TEXT NOT NULL,
    expires    TEXT,
    revoked    TEXT
);
CREATE INDEX api_keys_user ON api_keys(user_id);

CREATE TABLE assets (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    catalog    TEXT NOT NULL,
    id         TEXT NOT NULL,
    sourcepath TEXT NOT NULL,
    state      TEXT NOT NULL DEFAULT 'live' CHECK (state IN ('live', 'trashed')),
    version    INTEGER NOT NULL DEFAULT 1,
    fields     TEXT NOT NULL,
    blob_key   TEXT,
    filename   TEXT,
    filesize   INTEGER,
    md5hex     TEXT,
    sha256hex  TEXT,
    fulltext   TEXT NOT NULL DEFAULT ' ',
    created    TEXT NOT NULL,
    modified   TEXT NOT NULL,
    deleted_at TEXT,
    deleted_by TEXT,
    UNIQUE (catalog, id)
);
-- A source path names one live asset; trashed assets keep theirs for a restore.
CREATE UNIQUE INDEX assets_live_sourcepath ON assets(catalog, sourcepath) WHERE state = 'live';
CREATE INDEX assets_catalog_state ON assets(catalog, state, seq);

-- One row per indexed value: text compared as v (lower case; analysed text padded
-- with spaces between words), numbers and dates (epoch ms) as n.
CREATE TABLE asset_values (
    seq   INTEGER NOT NULL REFERENCES assets(seq) ON DELETE CASCADE,
    field TEXT NOT NULL,
    v     TEXT,
    n     REAL
);
CREATE INDEX asset_values_field_v ON asset_values(field, v);
CREATE INDEX asset_values_field_n ON asset_values(field, n);
CREATE INDEX asset_values_seq ON asset_values(seq, field);
