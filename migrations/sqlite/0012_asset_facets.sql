-- Each asset's facet values (store::FACET_FIELDS) packed in one small row, so the facets
-- of a filtered search read one row per matching asset and are counted by id in a hash
-- map, instead of reading about nine value rows per asset and sorting them all for a
-- GROUP BY (half a second for a common keyword at a million assets).
--
-- facet_values is the dictionary: a value's id never changes and rows are never
-- deleted, so a committed id always names the same value. asset_facets.f lists the
-- asset's value ids (see pack_facets in src/store/sqlite_index.rs). The store writes it
-- beside the value rows in every write path; trash and restore leave it as it is
-- (searches choose the live assets; this table only describes them).
CREATE TABLE facet_values (
    id    INTEGER PRIMARY KEY,
    field TEXT NOT NULL,
    v     TEXT NOT NULL,
    UNIQUE (field, v)
);
CREATE TABLE asset_facets (
    seq INTEGER PRIMARY KEY REFERENCES assets(seq) ON DELETE CASCADE,
    f   BLOB NOT NULL
);

-- Packing needs Rust: the store fills the rows of assets already stored at its start.
INSERT INTO store_tasks (name) SELECT 'asset_facets' WHERE EXISTS (SELECT 1 FROM assets);
