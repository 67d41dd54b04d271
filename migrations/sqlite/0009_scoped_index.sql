-- Search at a million assets.
--
-- Each value row carries its asset's scope (catalog and live/trash), so the live assets
-- matching a term are one range of an index: counted and paged without visiting the
-- assets table. The full-text index holds live assets only, for the same reason (the
-- trash, small by design, is searched by its stored text). Facet counts, totals and the
-- full-text index are kept by the store itself, batched per transaction, not by triggers.

CREATE TABLE catalogs (
    code INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
INSERT OR IGNORE INTO catalogs (name) SELECT DISTINCT catalog FROM assets ORDER BY catalog;

DROP TRIGGER facet_value_insert;
DROP TRIGGER facet_value_delete;
DROP TRIGGER facet_state_change;
DROP TRIGGER facet_asset_delete;

-- scope = catalogs.code * 2, plus 1 in the trash.
ALTER TABLE asset_values ADD COLUMN scope INTEGER NOT NULL DEFAULT 0;
UPDATE asset_values SET scope = (
    SELECT c.code * 2 + (a.state = 'trashed') FROM assets a JOIN catalogs c ON c.name = a.catalog
    WHERE a.seq = asset_values.seq
);
DROP INDEX asset_values_field_v;
DROP INDEX asset_values_field_n;
DROP INDEX asset_values_seq;
-- Entries of one value are in asset order, so a term's newest matches are read backwards.
CREATE INDEX asset_values_v ON asset_values(scope, field, v, seq);
CREATE INDEX asset_values_n ON asset_values(scope, field, n, seq) WHERE n IS NOT NULL;
-- One asset's values (facets of a result set, sort keys, deletes).
CREATE INDEX asset_values_seq ON asset_values(seq, field, v);

-- Live assets per scope, so an unfiltered search does not count a million rows.
CREATE TABLE asset_counts (
    scope INTEGER PRIMARY KEY,
    n     INTEGER NOT NULL
);
INSERT INTO asset_counts (scope, n)
SELECT c.code * 2 + (a.state = 'trashed'), COUNT(*) FROM assets a JOIN catalogs c ON c.name = a.catalog
GROUP BY 1;

DROP TRIGGER asset_fts_insert;
DROP TRIGGER asset_fts_update;
DROP TRIGGER asset_fts_delete;
DROP TABLE asset_fts;
-- Contentless: only the index is kept (the text is assets.fulltext). The store keeps it
-- in step itself: a trigger would make FTS5 write a segment per asset, since it flushes
-- at every statement, while a batch of new assets goes in with one statement.
CREATE VIRTUAL TABLE asset_fts USING fts5(
    body, content = '', contentless_delete = 1, tokenize = 'unicode61 remove_diacritics 0'
);
INSERT INTO asset_fts (rowid, body) SELECT seq, fulltext FROM assets WHERE state = 'live';
