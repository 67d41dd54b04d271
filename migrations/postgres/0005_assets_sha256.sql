-- `mediadb import` finds an original already in the catalog by its SHA-256.
CREATE INDEX IF NOT EXISTS assets_sha256 ON assets(catalog, sha256hex);
