-- Persisted jobs: bulk operations and (later) conversions. A job is claimed with a lease;
-- a worker that dies lets the lease run out and another worker takes the job again.
CREATE TABLE jobs (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    catalog     TEXT NOT NULL,
    payload     TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'done', 'failed')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    run_after   TEXT NOT NULL,
    lease_owner TEXT,
    lease_until TEXT,
    progress    TEXT NOT NULL DEFAULT '{}',
    result      TEXT,
    created     TEXT NOT NULL,
    updated     TEXT NOT NULL
);
CREATE INDEX jobs_claim ON jobs(state, run_after);

-- Generic records of any table (list values, the audit log, custom tables), indexed
-- like assets so the same search language serves them.
CREATE TABLE records (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    catalog    TEXT NOT NULL,
    searchtype TEXT NOT NULL,
    id         TEXT NOT NULL,
    data       TEXT NOT NULL,
    fulltext   TEXT NOT NULL DEFAULT ' ',
    created    TEXT NOT NULL,
    modified   TEXT NOT NULL,
    UNIQUE (catalog, searchtype, id)
);
CREATE INDEX records_type ON records(catalog, searchtype, seq);

CREATE TABLE record_values (
    seq   INTEGER NOT NULL REFERENCES records(seq) ON DELETE CASCADE,
    field TEXT NOT NULL,
    v     TEXT,
    n     REAL
);
CREATE INDEX record_values_field_v ON record_values(field, v);
CREATE INDEX record_values_field_n ON record_values(field, n);
CREATE INDEX record_values_seq ON record_values(seq, field);

CREATE INDEX assets_trash ON assets(state, deleted_at);
