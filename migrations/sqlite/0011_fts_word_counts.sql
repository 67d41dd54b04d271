-- Maintained word counts of the full-text index, so a one-word search's total is read,
-- not counted over every matching text (a common word is in a fifth of a catalog). The
-- store keeps them in step with asset_fts in the same transactions; see WordDelta in
-- src/store/sqlite_index.rs for what `n` and `unsure` mean.
CREATE TABLE fts_words (
    word   TEXT PRIMARY KEY,
    n      INTEGER NOT NULL,
    unsure INTEGER NOT NULL
) WITHOUT ROWID;

-- One-time work the store does itself after the migrations (tokenizing needs Rust):
-- here, counting the words of the texts already indexed.
CREATE TABLE store_tasks (name TEXT PRIMARY KEY) WITHOUT ROWID;
INSERT INTO store_tasks (name) SELECT 'fts_words' WHERE EXISTS (SELECT 1 FROM assets WHERE state = 'live');
