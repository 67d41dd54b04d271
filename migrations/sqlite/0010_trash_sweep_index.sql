-- The retention sweep asks for the oldest trashed assets. The old index led with `state`,
-- which statistics show as unselective (nearly every asset is live), so SQLite scanned the
-- whole table at every start and sweep. A partial index holds the trashed assets alone.
DROP INDEX IF EXISTS assets_trash;
CREATE INDEX assets_trashed ON assets(deleted_at) WHERE state = 'trashed';
