-- Facets of a one-value search at a million assets (issue #8): how many live assets of a
-- catalog hold both of two facet values (dictionary ids of `facet_values`, each
-- ordered pair, a value with itself too), so the facets of a keyword's matches are the
-- row range of its id (a few thousand rows, read in order) instead of one probe of
-- `asset_facets` per match (2,232 probes took 11 ms for a median keyword; 55,000 for
-- the commonest). Changed with `asset_facets` in every write transaction
-- (store/postgres.rs, `shift_pairs`), as `facet_counts` is; each write locks its rows
-- in key order (one statement), so concurrent writers cannot deadlock on them.
CREATE TABLE facet_pairs (
    catalog TEXT COLLATE "C" NOT NULL,
    a       INT NOT NULL,
    b       INT NOT NULL,
    n       BIGINT NOT NULL,
    PRIMARY KEY (catalog, a, b)
);

-- A row while the pairs are behind the assets: a bulk load (`bench search`) leaves
-- them out and rebuilds them at its end; a load that died is rebuilt at the next start.
-- Searches use the pairs only while it is empty.
CREATE TABLE facet_pairs_stale (
    stale BOOLEAN PRIMARY KEY
);

-- Existing installations: from the live assets' packed rows, in key order (a value's
-- pairs on a few adjacent pages, not one page each).
INSERT INTO facet_pairs (catalog, a, b, n)
    SELECT a.catalog, x, y, COUNT(*)
    FROM assets a JOIN asset_facets p ON p.seq = a.seq, unnest(p.f) x, unnest(p.f) y
    WHERE a.state = 'live'
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3;
ANALYZE facet_pairs;
