-- Search at catalog scale.

-- Covering indexes: a term's matching assets come from the index alone.
DROP INDEX asset_values_field_v;
DROP INDEX asset_values_field_n;
CREATE INDEX asset_values_field_v ON asset_values(field, v, seq);
CREATE INDEX asset_values_field_n ON asset_values(field, n, seq);

-- Full text of the composite `description` field, kept in step with assets.fulltext.
-- The tokenizer splits and folds case like the stores' normalize_words, keeping
-- diacritics, so FTS and LIKE agree.
CREATE VIRTUAL TABLE asset_fts USING fts5(body, tokenize = 'unicode61 remove_diacritics 0');
INSERT INTO asset_fts(rowid, body) SELECT seq, fulltext FROM assets;
CREATE TRIGGER asset_fts_insert AFTER INSERT ON assets BEGIN
    INSERT INTO asset_fts(rowid, body) VALUES (NEW.seq, NEW.fulltext);
END;
CREATE TRIGGER asset_fts_update AFTER UPDATE OF fulltext ON assets BEGIN
    DELETE FROM asset_fts WHERE rowid = OLD.seq;
    INSERT INTO asset_fts(rowid, body) VALUES (NEW.seq, NEW.fulltext);
END;
CREATE TRIGGER asset_fts_delete AFTER DELETE ON assets BEGIN
    DELETE FROM asset_fts WHERE rowid = OLD.seq;
END;

-- Maintained counts of the facet fields over live assets, so the facets of a whole
-- catalog are read, not counted. Every change of a value or of an asset's state
-- adjusts them in the same transaction.
CREATE TABLE facet_counts (
    catalog TEXT NOT NULL,
    field   TEXT NOT NULL,
    v       TEXT NOT NULL,
    n       INTEGER NOT NULL,
    PRIMARY KEY (catalog, field, v)
) WITHOUT ROWID;

CREATE TRIGGER facet_value_insert AFTER INSERT ON asset_values
WHEN NEW.field IN ('assettype', 'fileformat', 'keywords', 'category-exact', 'editstatus', 'owner', 'importstatus', 'previewstatus')
 AND (SELECT state FROM assets WHERE seq = NEW.seq) = 'live'
BEGIN
    INSERT INTO facet_counts (catalog, field, v, n)
    VALUES ((SELECT catalog FROM assets WHERE seq = NEW.seq), NEW.field, NEW.v, 1)
    ON CONFLICT (catalog, field, v) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER facet_value_delete AFTER DELETE ON asset_values
WHEN OLD.field IN ('assettype', 'fileformat', 'keywords', 'category-exact', 'editstatus', 'owner', 'importstatus', 'previewstatus')
 AND (SELECT state FROM assets WHERE seq = OLD.seq) = 'live'
BEGIN
    UPDATE facet_counts SET n = n - 1
    WHERE catalog = (SELECT catalog FROM assets WHERE seq = OLD.seq) AND field = OLD.field AND v = OLD.v;
END;

CREATE TRIGGER facet_state_change AFTER UPDATE OF state ON assets
WHEN OLD.state <> NEW.state
BEGIN
    INSERT INTO facet_counts (catalog, field, v, n)
    SELECT NEW.catalog, x.field, x.v, CASE WHEN NEW.state = 'live' THEN 1 ELSE -1 END
    FROM asset_values x
    WHERE x.seq = NEW.seq AND x.v IS NOT NULL
      AND x.field IN ('assettype', 'fileformat', 'keywords', 'category-exact', 'editstatus', 'owner', 'importstatus', 'previewstatus')
    ON CONFLICT (catalog, field, v) DO UPDATE SET n = n + excluded.n;
END;

-- A live asset deleted outright: its values leave the counts before the cascade
-- removes them (the cascade finds no live parent and changes nothing).
CREATE TRIGGER facet_asset_delete BEFORE DELETE ON assets
WHEN OLD.state = 'live'
BEGIN
    UPDATE facet_counts SET n = n - 1
    WHERE catalog = OLD.catalog
      AND (field, v) IN (SELECT x.field, x.v FROM asset_values x WHERE x.seq = OLD.seq);
END;

INSERT INTO facet_counts (catalog, field, v, n)
SELECT a.catalog, x.field, x.v, COUNT(*)
FROM asset_values x JOIN assets a ON a.seq = x.seq
WHERE a.state = 'live' AND x.v IS NOT NULL
  AND x.field IN ('assettype', 'fileformat', 'keywords', 'category-exact', 'editstatus', 'owner', 'importstatus', 'previewstatus')
GROUP BY a.catalog, x.field, x.v;
