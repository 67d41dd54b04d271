-- Search totals at a million assets without visiting `assets` (issue #8).
--
-- 1. Each value row carries the catalog of its asset while the asset is live, and NULL
--    while it is in the trash (`scope`), changed in the same transaction as the asset's
--    state (store/postgres.rs: insert, trash, restore; a purge deletes the rows). The
--    value indexes lead with it, so a live search's matches are one index range that is
--    counted (and paged) from the index alone: a year of dates (100,000 matches) no
--    longer probes `assets` once per match to learn whether it is live.
-- 2. `word_counts`: per catalog and word of `assets.fulltext`, how many live assets hold
--    the word (each asset counts a word once; words cut to 250 characters, as
--    `mediadb_words` cuts its lexemes). Changed with the assets by every write path,
--    so the total of a one-word full-text search is a read instead of a count of up to
--    a fifth of the catalog.
-- 3. `value_days`: per catalog, field and day (`floor(n / 86400000)`, n in epoch ms for
--    dates; floor(n) first, so the division is exact to the day), how many live value
--    rows hold a number in that day (numbers of magnitude
--    1e15 or more, or not finite, are in none). A date range's total is the sum of its
--    whole days plus the rows of its two partial days counted from the index: a year is
--    about 365 rows and two short index ranges instead of 100,000 index entries.

ALTER TABLE asset_values ADD COLUMN scope TEXT COLLATE "C";
UPDATE asset_values x SET scope = a.catalog FROM assets a WHERE a.seq = x.seq AND a.state = 'live';

DROP INDEX IF EXISTS asset_values_field_v;
DROP INDEX IF EXISTS asset_values_field_n;
CREATE INDEX IF NOT EXISTS asset_values_scope_v ON asset_values(scope, field, v, seq);
CREATE INDEX IF NOT EXISTS asset_values_scope_n ON asset_values(scope, field, n, seq) WHERE n IS NOT NULL;
-- An asset's value rows with their values: facets counted over a search's matches read
-- them from the index alone (the table is read at random otherwise, a page or two per
-- match).
DROP INDEX IF EXISTS asset_values_seq;
CREATE INDEX IF NOT EXISTS asset_values_seq_v ON asset_values(seq, field) INCLUDE (v);

CREATE TABLE word_counts (
    catalog TEXT COLLATE "C" NOT NULL,
    word    TEXT COLLATE "C" NOT NULL,
    n       BIGINT NOT NULL,
    PRIMARY KEY (catalog, word)
);
INSERT INTO word_counts (catalog, word, n)
    SELECT a.catalog, w.word, COUNT(*)
    FROM assets a,
         LATERAL (SELECT DISTINCT pg_catalog."left"(s, 250) AS word
                  FROM pg_catalog.unnest(pg_catalog.string_to_array(a.fulltext, ' ')) AS s
                  WHERE s <> '') w
    WHERE a.state = 'live'
    GROUP BY a.catalog, w.word;

CREATE TABLE value_days (
    catalog TEXT COLLATE "C" NOT NULL,
    field   TEXT COLLATE "C" NOT NULL,
    day     BIGINT NOT NULL,
    n       BIGINT NOT NULL,
    PRIMARY KEY (catalog, field, day)
);
INSERT INTO value_days (catalog, field, day, n)
    SELECT scope, field, floor(floor(n) / 86400000.0)::bigint, COUNT(*) FROM asset_values
    WHERE scope IS NOT NULL AND abs(n) < 1e15
    GROUP BY 1, 2, 3;

-- Each facet field's top values in order: a whole-catalog `showfilters` reads the first
-- rows of each field instead of sorting all of them (3,000 keywords) per search.
CREATE INDEX facet_counts_top ON facet_counts(catalog, field, n DESC, v);
