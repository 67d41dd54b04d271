-- Search at a million assets with PostgreSQL's own means (issue #8): a full-text (GIN)
-- index of the live assets' words, value indexes that also order by seq, and counts the
-- store maintains in every write transaction (facets of the whole catalog, live and
-- trashed totals), so neither is counted over the catalog per search.

-- The words of an asset's `description` text (`assets.fulltext`, already lower-cased
-- words between single spaces) as tsvector lexemes, taken as they are (no parser, no
-- stemming: a lexeme is exactly a word the LIKE tests look for), plus one lexeme naming
-- the catalog ('@' never occurs in a word). Words are cut to 250 characters (tsvector
-- lexemes are limited to 2 KiB): a cut word still answers a prefix test; a whole-word
-- test of such a word is confirmed by LIKE (store/postgres.rs, LEXEME_CHARS).
CREATE FUNCTION mediadb_words(catalog TEXT, fulltext TEXT) RETURNS tsvector
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT pg_catalog.array_to_tsvector(ARRAY(
        SELECT DISTINCT pg_catalog."left"(w, 250)
        FROM pg_catalog.unnest(pg_catalog.string_to_array(fulltext, ' ')) AS w
        WHERE w <> ''
        UNION
        SELECT pg_catalog."left"('@' || catalog, 250)))
$$;

-- Only live assets are searched by words through the index (the trash is small and
-- scanned); the partial predicate is written literally in the queries.
CREATE INDEX assets_words ON assets USING gin (mediadb_words(catalog, fulltext)) WHERE state = 'live';

-- Value indexes ending in seq: a date sort walks (field, n, seq) backwards and stops at
-- the page; equality and range sets are read from the index alone.
DROP INDEX asset_values_field_v;
DROP INDEX asset_values_field_n;
CREATE INDEX asset_values_field_v ON asset_values(field, v, seq);
CREATE INDEX asset_values_field_n ON asset_values(field, n, seq) WHERE n IS NOT NULL;

-- How many live assets of a catalog hold each value of the facet fields (store/mod.rs
-- FACET_FIELDS); each asset counts a value once.
CREATE TABLE facet_counts (
    catalog TEXT COLLATE "C" NOT NULL,
    field   TEXT COLLATE "C" NOT NULL,
    v       TEXT COLLATE "C" NOT NULL,
    n       BIGINT NOT NULL,
    PRIMARY KEY (catalog, field, v)
);

-- How many assets each catalog holds, live and trashed.
CREATE TABLE asset_counts (
    catalog TEXT COLLATE "C" NOT NULL,
    state   TEXT NOT NULL,
    n       BIGINT NOT NULL,
    PRIMARY KEY (catalog, state)
);

-- Existing installations: each asset's values once (the counts assume it), then the
-- counts from what is there.
DELETE FROM asset_values x USING asset_values y
    WHERE x.ctid > y.ctid AND x.seq = y.seq AND x.field = y.field
      AND x.v IS NOT DISTINCT FROM y.v AND x.n IS NOT DISTINCT FROM y.n;
INSERT INTO asset_counts (catalog, state, n)
    SELECT catalog, state, COUNT(*) FROM assets GROUP BY catalog, state;
INSERT INTO facet_counts (catalog, field, v, n)
    SELECT a.catalog, x.field, x.v, COUNT(*) FROM asset_values x JOIN assets a ON a.seq = x.seq
    WHERE a.state = 'live' AND x.v IS NOT NULL
      AND x.field IN ('assettype', 'fileformat', 'keywords', 'category-exact', 'editstatus', 'owner',
                      'importstatus', 'previewstatus')
    GROUP BY a.catalog, x.field, x.v;
