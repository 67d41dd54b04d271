-- The default page of a DAM, the newest `assetaddeddate` first, read from `assets` alone
-- (issue #8): `added` is the asset's `assetaddeddate` as its value row holds it (epoch
-- ms, the largest when there are several; NULL without one), written by every statement
-- that writes the asset's value rows (store/postgres.rs: `added_of`). Its index gives
-- the page in one backward walk with the assets' rows beside it, where the walk of
-- `asset_values_scope_n` probed `assets` once per hit (99 buffers for a page of 20 at a
-- million assets; 26 now).
ALTER TABLE assets ADD COLUMN added DOUBLE PRECISION;
UPDATE assets a SET added = x.n
FROM (SELECT seq, max(n) AS n FROM asset_values
      WHERE field = 'assetaddeddate' AND n IS NOT NULL GROUP BY seq) x
WHERE x.seq = a.seq;
CREATE INDEX IF NOT EXISTS assets_added ON assets(catalog, state, added, seq) WHERE added IS NOT NULL;
