-- FTS5 merges its segments at commit by default, which made an occasional commit take
-- 40-140 ms (one in a few dozen, in a burst of deletes). The writer merges in small steps
-- when it is idle instead (store::sqlite_index IndexUpkeep); FTS5's crisis merge (16
-- segments on a level) still bounds the segments a search reads.
INSERT INTO asset_fts (asset_fts, rank) VALUES ('automerge', 0);
