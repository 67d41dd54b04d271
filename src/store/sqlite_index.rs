//! How the embedded store keeps its asset index: value rows tagged with their asset's
//! scope (catalog and live/trash), the maintained facet counts and the live totals.
//!
//! Every write path of `sqlite.rs` that adds, changes, trashes, restores or removes an
//! asset goes through here inside its own transaction, so counts and index never
//! disagree with the rows; the deltas of a whole batch are applied at once.

use super::{IndexRow, StoreResult, FACET_FIELDS};
use rusqlite::OptionalExtension;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection, SqlitePool};
use std::collections::HashMap;
use std::sync::RwLock;

/// The scope of a catalog's live assets; its trash is `live + 1`.
pub type ScopeCode = i64;

pub fn trash_of(live: ScopeCode) -> ScopeCode {
    live + 1
}

/// The value indexes, as the migrations define them. A bulk load drops all but
/// `KEPT_BY_LOADS` and builds them again at its end (one sort instead of millions of
/// random inserts); every start builds any that a load interrupted by a crash left missing.
pub const VALUE_INDEXES: &[(&str, &str)] = &[
    (
        "asset_values_v",
        "CREATE INDEX IF NOT EXISTS asset_values_v ON asset_values(scope, field, v, seq)",
    ),
    (
        "asset_values_n",
        "CREATE INDEX IF NOT EXISTS asset_values_n ON asset_values(scope, field, n, seq) WHERE n IS NOT NULL",
    ),
    (
        "asset_values_seq",
        "CREATE INDEX IF NOT EXISTS asset_values_seq ON asset_values(seq, field, v)",
    ),
];

pub async fn build_value_indexes(pool: &SqlitePool) -> StoreResult<()> {
    for (_, sql) in VALUE_INDEXES {
        sqlx::query(sql).execute(pool).await?;
    }
    Ok(())
}

/// The value index a bulk load keeps: the load inserts value rows in its order (an
/// asset's `seq` is the newest), so its entries go at its end, no dearer than a sort.
const KEPT_BY_LOADS: &str = "asset_values_seq";

/// Drops the value indexes a bulk load builds at its end.
pub async fn drop_value_indexes(pool: &SqlitePool) -> StoreResult<()> {
    for (name, _) in VALUE_INDEXES.iter().filter(|(name, _)| *name != KEPT_BY_LOADS) {
        sqlx::query(&format!("DROP INDEX IF EXISTS {name}"))
            .execute(pool)
            .await?;
    }
    Ok(())
}

/// Catalog names to their codes. Codes are never reused or removed, so once read they
/// can be kept for the life of the process.
#[derive(Default)]
pub struct CatalogCodes {
    known: RwLock<HashMap<String, i64>>,
}

impl CatalogCodes {
    /// The live scope of a catalog that may hold no asset yet (`None`).
    pub fn find(&self, conn: &rusqlite::Connection, catalog: &str) -> StoreResult<Option<ScopeCode>> {
        if let Some(code) = self.cached(catalog) {
            return Ok(Some(code * 2));
        }
        let code: Option<i64> = conn
            .prepare_cached("SELECT code FROM catalogs WHERE name = ?")?
            .query_row([catalog], |r| r.get(0))
            .optional()?;
        if let Some(code) = code {
            self.remember(catalog, code);
        }
        Ok(code.map(|c| c * 2))
    }

    /// The live scope of a catalog, registering it first when new. Runs outside the
    /// caller's transaction so a rolled-back write never leaves a cached code behind.
    pub async fn get_or_create(&self, pool: &SqlitePool, catalog: &str) -> StoreResult<ScopeCode> {
        if let Some(code) = self.cached(catalog) {
            return Ok(code * 2);
        }
        sqlx::query("INSERT OR IGNORE INTO catalogs (name) VALUES (?)")
            .bind(catalog)
            .execute(pool)
            .await?;
        let code: i64 = sqlx::query_scalar("SELECT code FROM catalogs WHERE name = ?")
            .bind(catalog)
            .fetch_one(pool)
            .await?;
        self.remember(catalog, code);
        Ok(code * 2)
    }

    fn cached(&self, catalog: &str) -> Option<i64> {
        self.known.read().ok().and_then(|m| m.get(catalog).copied())
    }

    fn remember(&self, catalog: &str, code: i64) {
        if let Ok(mut m) = self.known.write() {
            m.insert(catalog.to_string(), code);
        }
    }
}

pub use super::unique_rows;

/// Writes a live asset's value rows: all of them for a new asset; after an edit only the
/// rows that changed (an edit of one field rewrote all of an asset's ~13 rows, each in
/// three indexes, most of them on pages of their own). The packed facet row is rewritten
/// only if a facet changed. Answers the rows the asset had. On the writer's own handle
/// (`on_handle`).
pub fn replace_rows(
    c: &rusqlite::Connection,
    seq: i64,
    scope: ScopeCode,
    rows: &[IndexRow],
) -> StoreResult<Vec<IndexRow>> {
    let old: Vec<(i64, IndexRow)> = c
        .prepare_cached("SELECT rowid, field, v, n FROM asset_values WHERE seq = ?")?
        .query_map([seq], |r| {
            Ok((
                r.get(0)?,
                IndexRow {
                    field: r.get(1)?,
                    v: r.get(2)?,
                    n: r.get(3)?,
                },
            ))
        })?
        .collect::<Result<_, _>>()?;
    let same =
        |a: &IndexRow, b: &IndexRow| a.field == b.field && a.v == b.v && a.n.map(f64::to_bits) == b.n.map(f64::to_bits);
    let gone: Vec<i64> = old
        .iter()
        .filter(|(_, o)| !rows.iter().any(|r| same(o, r)))
        .map(|(rowid, _)| *rowid)
        .collect();
    let added: Vec<(i64, &IndexRow)> = rows
        .iter()
        .filter(|r| !old.iter().any(|(_, o)| same(o, r)))
        .map(|r| (seq, r))
        .collect();
    let mut delete = c.prepare_cached("DELETE FROM asset_values WHERE rowid = ?")?;
    for rowid in &gone {
        delete.execute([rowid])?;
    }
    super::sqlite_bulk::insert_values(c, scope, &added)?;
    let facet_changed = old
        .iter()
        .filter(|(rowid, _)| gone.contains(rowid))
        .map(|(_, r)| r)
        .chain(added.iter().map(|(_, r)| *r))
        .any(|r| facet_value(r).is_some());
    if facet_changed {
        c.prepare_cached("DELETE FROM asset_facets WHERE seq = ?")?
            .execute([seq])?;
        let mut ids = no_facet_ids();
        add_facet_ids(c, &mut ids, rows.iter())?;
        let packed = pack_facets(rows, &ids);
        if !packed.is_empty() {
            c.prepare_cached("INSERT INTO asset_facets (seq, f) VALUES (?, ?)")?
                .execute((seq, packed))?;
        }
    }
    Ok(old.into_iter().map(|(_, r)| r).collect())
}

/// Adds the packed facet rows of assets that have none (new assets, or after a delete);
/// an asset without facet values gets no row.
pub async fn insert_facets(tx: &mut SqliteConnection, assets: &[(i64, &[IndexRow])]) -> StoreResult<()> {
    let ids = facet_ids(tx, assets.iter().flat_map(|(_, rows)| rows.iter())).await?;
    let packed: Vec<(i64, Vec<u8>)> = assets
        .iter()
        .map(|(seq, rows)| (*seq, pack_facets(rows, &ids)))
        .filter(|(_, f)| !f.is_empty())
        .collect();
    for chunk in packed.chunks(400) {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new("INSERT INTO asset_facets (seq, f) ");
        qb.push_values(chunk, |mut b, (seq, f)| {
            b.push_bind(*seq).push_bind(f.as_slice());
        });
        qb.build().execute(&mut *tx).await?;
    }
    Ok(())
}

/// Dictionary ids of facet values, per field (indexed as `FACET_FIELDS`), by text.
pub type FacetIds = Vec<HashMap<String, i64>>;

/// The facet value of an index row, if it is one.
fn facet_value(r: &IndexRow) -> Option<(usize, &str)> {
    let i = FACET_FIELDS.iter().position(|f| *f == r.field)?;
    Some((i, r.v.as_deref()?))
}

/// The dictionary ids of facet values (`facet_values`), added when new. Read inside the
/// writing transaction every time: an id handed out by a write that then rolled back
/// may be given to another value, so ids are never cached on the write side.
async fn facet_ids<'r>(tx: &mut SqliteConnection, rows: impl Iterator<Item = &'r IndexRow>) -> StoreResult<FacetIds> {
    let mut wanted: Vec<(usize, &str)> = rows.filter_map(facet_value).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut ids: FacetIds = vec![HashMap::new(); FACET_FIELDS.len()];
    for chunk in wanted.chunks(400) {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new("INSERT INTO facet_values (field, v) ");
        qb.push_values(chunk, |mut b, (i, v)| {
            b.push_bind(FACET_FIELDS[*i]).push_bind(*v);
        });
        // DO UPDATE (a no-op) rather than DO NOTHING, so RETURNING names the values
        // that were already there too.
        qb.push(" ON CONFLICT (field, v) DO UPDATE SET v = excluded.v RETURNING id, field, v");
        for r in qb.build().fetch_all(&mut *tx).await? {
            let field: String = r.try_get("field")?;
            let i = FACET_FIELDS
                .iter()
                .position(|f| *f == field)
                .ok_or_else(|| super::StoreError::Corrupt(format!("facet value of {field}")))?;
            ids[i].insert(r.try_get("v")?, r.try_get("id")?);
        }
    }
    Ok(ids)
}

/// Adds to `ids` the dictionary ids of facet values it lacks, adding the values that are
/// new: `facet_ids` for a bulk load's rusqlite connection (a cached lookup per value).
/// `ids` must hold only ids read or added inside the caller's transaction, for the
/// reason `facet_ids` gives.
pub fn add_facet_ids<'r>(
    conn: &rusqlite::Connection,
    ids: &mut FacetIds,
    rows: impl Iterator<Item = &'r IndexRow>,
) -> StoreResult<()> {
    let mut wanted: Vec<(usize, &str)> = rows
        .filter_map(facet_value)
        .filter(|(i, v)| !ids[*i].contains_key(*v))
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut find = conn.prepare_cached("SELECT id FROM facet_values WHERE field = ? AND v = ?")?;
    let mut add = conn.prepare_cached("INSERT INTO facet_values (field, v) VALUES (?, ?)")?;
    for (i, v) in wanted {
        let id = match find
            .query_row((FACET_FIELDS[i], v), |r| r.get::<_, i64>(0))
            .optional()?
        {
            Some(id) => id,
            None => {
                add.execute((FACET_FIELDS[i], v))?;
                conn.last_insert_rowid()
            }
        };
        ids[i].insert(v.to_string(), id);
    }
    Ok(())
}

/// No ids yet (see `add_facet_ids`).
pub fn no_facet_ids() -> FacetIds {
    vec![HashMap::new(); FACET_FIELDS.len()]
}

/// How many fields a packed entry can name (its low bits).
const FIELD_BITS: u32 = 4;
const _: () = assert!(FACET_FIELDS.len() <= 1 << FIELD_BITS);

/// An asset's facet values (the rows of `FACET_FIELDS` with a text value) as one small
/// blob: per value, `id << 4 | field index` as an unsigned LEB128 number, `id` being the
/// value's row in `facet_values`. Decoded by `unpack_facets`. A few bytes per value keep
/// the table of a million assets within one connection's page cache.
pub fn pack_facets(rows: &[IndexRow], ids: &FacetIds) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, v) in rows.iter().filter_map(facet_value) {
        // `facet_ids` was given these rows: every value has its id.
        let Some(id) = ids[i].get(v) else {
            continue;
        };
        let mut key = ((*id as u64) << FIELD_BITS) | i as u64;
        loop {
            let byte = (key & 0x7f) as u8;
            key >>= 7;
            if key == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
    }
    out
}

/// A packed entry: the value's id in `facet_values`, and its field's index in `FACET_FIELDS`.
pub fn entry_parts(key: u64) -> (i64, usize) {
    ((key >> FIELD_BITS) as i64, (key & ((1 << FIELD_BITS) - 1)) as usize)
}

/// Calls `each` with every entry of a packed blob (see `entry_parts`).
pub fn unpack_facets(blob: &[u8], mut each: impl FnMut(u64)) -> StoreResult<()> {
    let mut key = 0u64;
    let mut shift = 0;
    for &byte in blob {
        if shift > 56 {
            return Err(super::StoreError::Corrupt("a packed facet row is malformed".into()));
        }
        key |= ((byte & 0x7f) as u64) << shift;
        if byte & 0x80 == 0 {
            each(key);
            key = 0;
            shift = 0;
        } else {
            shift += 7;
        }
    }
    if shift != 0 {
        return Err(super::StoreError::Corrupt("a packed facet row is cut short".into()));
    }
    Ok(())
}

/// The text of facet value ids, as read: a row of `facet_values` never changes and a
/// committed id is never given to another value, so what a reader saw holds for good.
#[derive(Default)]
pub struct FacetNames {
    known: RwLock<HashMap<i64, String>>,
}

/// Names kept at most (a catalog with more distinct facet values reads the rest again).
const FACET_NAMES_KEPT: usize = 200_000;

impl FacetNames {
    /// The texts of `ids` (ids of committed rows, as a packed row read names them).
    pub fn get(&self, conn: &rusqlite::Connection, ids: &[i64]) -> StoreResult<HashMap<i64, String>> {
        let mut out = HashMap::with_capacity(ids.len());
        let mut missing = Vec::new();
        {
            let known = self.known.read().unwrap_or_else(|e| e.into_inner());
            for id in ids {
                match known.get(id) {
                    Some(v) => {
                        out.insert(*id, v.clone());
                    }
                    None => missing.push(*id),
                }
            }
        }
        if missing.is_empty() {
            return Ok(out);
        }
        let mut stmt = conn.prepare_cached("SELECT v FROM facet_values WHERE id = ?")?;
        let mut found = Vec::with_capacity(missing.len());
        for id in missing {
            let v: String = stmt
                .query_row([id], |r| r.get(0))
                .optional()?
                .ok_or_else(|| super::StoreError::Corrupt(format!("facet value {id} is missing")))?;
            found.push((id, v));
        }
        let mut known = self.known.write().unwrap_or_else(|e| e.into_inner());
        if known.len() + found.len() > FACET_NAMES_KEPT {
            known.clear();
        }
        for (id, v) in found {
            known.insert(id, v.clone());
            out.insert(id, v);
        }
        Ok(out)
    }
}

/// Packs the facet rows of every stored asset, when a migration asked for it (the
/// table came after the assets). Read from the value rows, which hold the same values.
pub async fn finish_asset_facets(pool: &SqlitePool) -> StoreResult<()> {
    let pending: Option<String> = sqlx::query_scalar("SELECT name FROM store_tasks WHERE name = 'asset_facets'")
        .fetch_optional(pool)
        .await?;
    if pending.is_none() {
        return Ok(());
    }
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM asset_facets").execute(&mut *tx).await?;
    let last: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM assets")
        .fetch_one(&mut *tx)
        .await?;
    let mut from = 0i64;
    while from < last {
        let to = from + 5000;
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new("SELECT seq, field, v FROM asset_values WHERE v IS NOT NULL AND seq > ");
        qb.push_bind(from)
            .push(" AND seq <= ")
            .push_bind(to)
            .push(" AND field IN ");
        push_list(&mut qb, FACET_FIELDS);
        qb.push(" ORDER BY seq");
        let mut by_seq: Vec<(i64, Vec<IndexRow>)> = Vec::new();
        for r in qb.build().fetch_all(&mut *tx).await? {
            let seq: i64 = r.try_get("seq")?;
            let row = IndexRow {
                field: r.try_get("field")?,
                v: r.try_get("v")?,
                n: None,
            };
            match by_seq.last_mut() {
                Some((s, rows)) if *s == seq => rows.push(row),
                _ => by_seq.push((seq, vec![row])),
            }
        }
        let assets: Vec<(i64, &[IndexRow])> = by_seq.iter().map(|(seq, rows)| (*seq, rows.as_slice())).collect();
        insert_facets(&mut tx, &assets).await?;
        from = to;
    }
    sqlx::query("DELETE FROM store_tasks WHERE name = 'asset_facets'")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// `(?, ?, ...)` of the values.
pub fn push_list<'a, T>(qb: &mut QueryBuilder<'a, Sqlite>, values: &'a [T])
where
    T: 'a + sqlx::Encode<'a, Sqlite> + sqlx::Type<Sqlite> + Send + Sync + Copy,
{
    qb.push("(");
    let mut sep = qb.separated(", ");
    for v in values {
        sep.push_bind(*v);
    }
    qb.push(")");
}

/// Changes to the maintained word counts of the full-text index (`fts_words`): for each
/// word, in how many indexed texts it is a token for sure (`n`) and in how many it might
/// be one (`unsure`).
///
/// Stored texts are `normalize_words` output: lower-case runs of alphanumerics between
/// spaces. A run of ASCII letters and digits is exactly one FTS5 token. A run with other
/// characters may be split by FTS5's tokenizer (whose character classes and Unicode
/// version differ from Rust's) at any of them, so each ASCII piece of such a run counts as
/// unsure, and a word with unsure texts is counted by the index itself. Non-ASCII words
/// are never counted here.
#[derive(Default)]
pub struct WordDelta {
    words: HashMap<String, (i64, i64)>,
}

impl WordDelta {
    /// A text enters (`sign` 1) or leaves (-1) the full-text index.
    pub fn text<'a>(&mut self, text: &'a str, sign: i64) {
        // Each (word, sure) once per text. Most texts have a few dozen words: a list beats
        // hashing them, and a long text switches to a set.
        let mut seen: Vec<(&str, bool)> = Vec::new();
        let mut many: std::collections::HashSet<(&str, bool)> = std::collections::HashSet::new();
        let mut see = |w: (&'a str, bool)| {
            if seen.len() < 64 {
                if !seen.contains(&w) {
                    seen.push(w);
                }
            } else {
                if many.is_empty() {
                    many.extend(seen.iter().copied());
                }
                if many.insert(w) {
                    seen.push(w);
                }
            }
        };
        for run in text.split(' ').filter(|r| !r.is_empty()) {
            if run.bytes().all(|b| b.is_ascii_alphanumeric()) {
                see((run, true));
            } else {
                for piece in run
                    .split(|c: char| !c.is_ascii_alphanumeric())
                    .filter(|p| !p.is_empty())
                {
                    see((piece, false));
                }
            }
        }
        for (word, sure) in seen {
            let lower;
            let key = if word.bytes().any(|b| b.is_ascii_uppercase()) {
                lower = word.to_ascii_lowercase();
                lower.as_str()
            } else {
                word
            };
            // A word already counted in this delta is found without a copy of it.
            if !self.words.contains_key(key) {
                self.words.insert(key.to_string(), (0, 0));
            }
            let Some(e) = self.words.get_mut(key) else { continue };
            if sure {
                e.0 += sign;
            } else {
                e.1 += sign;
            }
        }
    }

    pub async fn apply(self, tx: &mut SqliteConnection) -> StoreResult<()> {
        let words: Vec<_> = self.words.into_iter().filter(|(_, d)| *d != (0, 0)).collect();
        for chunk in words.chunks(300) {
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new("INSERT INTO fts_words (word, n, unsure) ");
            qb.push_values(chunk, |mut b, (word, (n, unsure))| {
                b.push_bind(word).push_bind(*n).push_bind(*unsure);
            });
            qb.push(" ON CONFLICT (word) DO UPDATE SET n = n + excluded.n, unsure = unsure + excluded.unsure");
            qb.build().execute(&mut *tx).await?;
        }
        Ok(())
    }
}

impl WordDelta {
    /// `apply` on a bulk load's rusqlite connection, inside its transaction. Words in
    /// order, so the upserts walk the table's pages once.
    pub fn apply_sync(self, conn: &rusqlite::Connection) -> StoreResult<()> {
        let mut words: Vec<_> = self.words.into_iter().filter(|(_, d)| *d != (0, 0)).collect();
        words.sort_unstable();
        let mut st = conn.prepare_cached(
            "INSERT INTO fts_words (word, n, unsure) VALUES (?, ?, ?)
             ON CONFLICT (word) DO UPDATE SET n = n + excluded.n, unsure = unsure + excluded.unsure",
        )?;
        for (word, (n, unsure)) in words {
            st.execute((word, n, unsure))?;
        }
        Ok(())
    }
}

/// The stored texts of assets, for the word counts.
async fn texts_of(tx: &mut SqliteConnection, seqs: &[i64], delta: &mut WordDelta, sign: i64) -> StoreResult<()> {
    for chunk in seqs.chunks(500) {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new("SELECT fulltext FROM assets WHERE seq IN ");
        push_list(&mut qb, chunk);
        for text in qb.build_query_scalar::<String>().fetch_all(&mut *tx).await? {
            delta.text(&text, sign);
        }
    }
    Ok(())
}

/// Adds live assets' stored text to the full-text index, in one statement (FTS5 writes
/// a segment per statement).
pub async fn fts_add(tx: &mut SqliteConnection, seqs: &[i64]) -> StoreResult<()> {
    let mut words = WordDelta::default();
    texts_of(tx, seqs, &mut words, 1).await?;
    for chunk in seqs.chunks(500) {
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new("INSERT INTO asset_fts (rowid, body) SELECT seq, fulltext FROM assets WHERE seq IN ");
        push_list(&mut qb, chunk);
        qb.build().execute(&mut *tx).await?;
    }
    words.apply(tx).await
}

/// Removes assets from the full-text index (they leave the live scope); their stored
/// text must still be the text that was indexed.
pub async fn fts_remove(tx: &mut SqliteConnection, seqs: &[i64]) -> StoreResult<()> {
    let mut words = WordDelta::default();
    texts_of(tx, seqs, &mut words, -1).await?;
    fts_delete(tx, seqs, words).await
}

/// `fts_remove` of assets whose stored texts the caller has read already.
pub fn fts_remove_texts(c: &rusqlite::Connection, seqs: &[i64], texts: &[String]) -> StoreResult<()> {
    let mut words = WordDelta::default();
    for text in texts {
        words.text(text, -1);
    }
    if !seqs.is_empty() {
        // One statement for all (FTS5 writes a segment per statement).
        let list = serde_json::to_string(seqs).map_err(|e| super::StoreError::Corrupt(format!("seqs: {e}")))?;
        c.prepare_cached("DELETE FROM asset_fts WHERE rowid IN (SELECT value FROM json_each(?))")?
            .execute([list])?;
    }
    words.apply_sync(c)
}

async fn fts_delete(tx: &mut SqliteConnection, seqs: &[i64], words: WordDelta) -> StoreResult<()> {
    for chunk in seqs.chunks(500) {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new("DELETE FROM asset_fts WHERE rowid IN ");
        push_list(&mut qb, chunk);
        qb.build().execute(&mut *tx).await?;
    }
    words.apply(tx).await
}

/// Indexes a live asset's new text in place of `old`, the text it had. On the writer's
/// own handle (`on_handle`).
pub fn fts_replace(c: &rusqlite::Connection, seq: i64, old: &str, new: &str) -> StoreResult<()> {
    // An edit of a field outside the text (a status, a rating) leaves the index as it is:
    // FTS5 writes a segment for every statement, however small.
    if old == new {
        return Ok(());
    }
    c.prepare_cached("DELETE FROM asset_fts WHERE rowid = ?")?
        .execute([seq])?;
    c.prepare_cached("INSERT INTO asset_fts (rowid, body) VALUES (?, ?)")?
        .execute((seq, new))?;
    let mut words = WordDelta::default();
    words.text(old, -1);
    words.text(new, 1);
    words.apply_sync(c)
}

/// Counts the words of every indexed text, when a migration asked for it (the table came
/// after the texts).
pub async fn finish_fts_words(pool: &SqlitePool) -> StoreResult<()> {
    let pending: Option<String> = sqlx::query_scalar("SELECT name FROM store_tasks WHERE name = 'fts_words'")
        .fetch_optional(pool)
        .await?;
    if pending.is_none() {
        return Ok(());
    }
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM fts_words").execute(&mut *tx).await?;
    let mut after = 0i64;
    loop {
        let rows: Vec<(i64, String)> =
            sqlx::query_as("SELECT seq, fulltext FROM assets WHERE state = 'live' AND seq > ? ORDER BY seq LIMIT 5000")
                .bind(after)
                .fetch_all(&mut *tx)
                .await?;
        let Some((last, _)) = rows.last() else {
            break;
        };
        after = *last;
        let mut words = WordDelta::default();
        for (_, text) in &rows {
            words.text(text, 1);
        }
        words.apply(&mut tx).await?;
    }
    sqlx::query("DELETE FROM store_tasks WHERE name = 'fts_words'")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// How many indexed texts hold `word` as a token, when the maintained counts know it
/// exactly (`None`: ask the index).
pub fn fts_word_count(conn: &rusqlite::Connection, word: &str) -> StoreResult<Option<u64>> {
    if word.is_empty() || !word.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) {
        return Ok(None);
    }
    let row: Option<(i64, i64)> = conn
        .prepare_cached("SELECT n, unsure FROM fts_words WHERE word = ?")?
        .query_row([word], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(match row {
        None => Some(0),
        Some((n, 0)) => Some(n.max(0) as u64),
        Some(_) => None,
    })
}

/// How many trashed assets the sweeper has not reached hold `word` (they are still in the
/// full-text index and its word counts).
pub fn fts_unswept_count(conn: &rusqlite::Connection, word: &str) -> StoreResult<u64> {
    let n: i64 = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM asset_fts WHERE asset_fts MATCH ? AND rowid IN (SELECT seq FROM trash_pending)",
        )?
        .query_row([format!("\"{word}\"")], |r| r.get(0))?;
    Ok(n as u64)
}

/// Moves assets' value rows to another scope (trash and restore).
pub async fn move_rows(tx: &mut SqliteConnection, seqs: &[i64], scope: ScopeCode) -> StoreResult<()> {
    for chunk in seqs.chunks(500) {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new("UPDATE asset_values SET scope = ");
        qb.push_bind(scope).push(" WHERE seq IN ");
        push_list(&mut qb, chunk);
        qb.build().execute(&mut *tx).await?;
    }
    Ok(())
}

/// Trashed assets whose value rows are still in the live scope (`trash_pending`, see
/// migration 0013), and the writer's idle work that moves them to the trash scope.
///
/// A search of the live scope leaves the listed assets out whenever any are listed
/// (`Backlog`).
#[derive(Default)]
pub struct TrashSweeper {
    pending: Backlog,
    chunk: ChunkSize,
}

/// Work listed for the writer to finish later: how much, and since when.
///
/// `n` is never less than what is listed: it is raised before a write lists anything,
/// and only the writer task lowers it, right after a chunk of the work committed.
#[derive(Default)]
struct Backlog {
    n: std::sync::atomic::AtomicI64,
    /// When the oldest listing still waiting was made.
    since: std::sync::Mutex<Option<std::time::Instant>>,
}

impl Backlog {
    fn add(&self, n: i64) {
        if n > 0 {
            self.since
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_or_insert_with(std::time::Instant::now);
        }
        self.n.fetch_add(n, std::sync::atomic::Ordering::SeqCst);
    }

    fn any(&self) -> bool {
        self.n.load(std::sync::atomic::Ordering::SeqCst) > 0
    }

    /// After a chunk committed, on the writer task: `left` are still listed (and as old).
    fn left(&self, left: i64) {
        self.n.store(left, std::sync::atomic::Ordering::SeqCst);
        if left == 0 {
            *self.since.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }

    /// Whether the writer must work through the backlog between batches, busy or not:
    /// readers pay for each listed item (an exclusion, a correction) until it is done.
    fn pressing(&self) -> bool {
        let old = self
            .since
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|t| t.elapsed() > BACKLOG_AGE);
        self.any() && (old || self.n.load(std::sync::atomic::Ordering::SeqCst) > SWEEP_PRESSING)
    }
}

/// A backlog this old is worked through even while writes keep coming (a server that
/// is never idle for `IDLE_AFTER` still catches up).
const BACKLOG_AGE: std::time::Duration = std::time::Duration::from_secs(30);

/// How many items the next chunk of idle work takes, so that it runs for about
/// `CHUNK_TIME`: a write that arrives meanwhile waits for one chunk. What an item costs
/// depends on the catalog: a trashed asset moves ~13 index entries, each on a leaf of its
/// own once the index is large (a fixed 1,000 took ~0.4 s at 100,000 assets, and ~50 MB
/// of log).
struct ChunkSize {
    n: std::sync::atomic::AtomicI64,
}

const CHUNK_TIME: std::time::Duration = std::time::Duration::from_millis(15);
const CHUNK_MIN: i64 = 8;
const CHUNK_MAX: i64 = 1000;

impl Default for ChunkSize {
    fn default() -> Self {
        ChunkSize {
            n: std::sync::atomic::AtomicI64::new(64),
        }
    }
}

impl ChunkSize {
    fn get(&self) -> i64 {
        self.n.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A chunk of `done` items took `took`; a chunk cut short by the backlog's end tells
    /// too little (its fixed costs dominate) and leaves the size as it is.
    fn took(&self, done: i64, took: std::time::Duration) {
        let asked = self.get();
        if done < asked {
            return;
        }
        let fitting = (done as f64 * CHUNK_TIME.as_secs_f64() / took.as_secs_f64().max(1e-6)) as i64;
        // Halfway there each time: one chunk slowed by something else does not swing it.
        let next = ((asked + fitting) / 2).clamp(CHUNK_MIN, CHUNK_MAX);
        self.n.store(next, std::sync::atomic::Ordering::Relaxed);
    }
}
/// Past this many, sweeps run between batches even while writes keep coming, so that
/// the searches' exclusion list stays short.
const SWEEP_PRESSING: i64 = 50_000;

impl TrashSweeper {
    /// `n` assets may be listed from now on.
    pub fn note(&self, n: i64) {
        self.pending.add(n);
    }

    /// Whether a search of the live scope must leave listed assets out.
    pub fn any(&self) -> bool {
        self.pending.any()
    }

    /// Lists trashed assets (their value rows stay where they are, for now).
    pub fn list(&self, c: &rusqlite::Connection, seqs: &[i64]) -> StoreResult<()> {
        self.note(seqs.len() as i64);
        let mut insert = c.prepare_cached("INSERT OR IGNORE INTO trash_pending (seq) VALUES (?)")?;
        for seq in seqs {
            insert.execute([seq])?;
        }
        Ok(())
    }

    /// Finishes the move to the trash of a chunk of listed assets (their value rows go
    /// to the trash scope; their text leaves the full-text index; word and facet counts
    /// drop) and takes them off the list; answers how many stay listed.
    fn sweep(&self, c: &rusqlite::Connection) -> StoreResult<i64> {
        let started = std::time::Instant::now();
        let mut by_catalog: HashMap<String, (Vec<i64>, Vec<String>)> = HashMap::new();
        let mut seqs = Vec::new();
        {
            // A listing whose asset is gone (the cascade keeps none, but a list that
            // could never empty would keep every search excluding it) is only taken off.
            let mut listed = c.prepare_cached(
                "SELECT p.seq, a.catalog, a.fulltext FROM trash_pending p LEFT JOIN assets a ON a.seq = p.seq
                 ORDER BY p.seq LIMIT ?",
            )?;
            let mut rows = listed.query([self.chunk.get()])?;
            while let Some(r) = rows.next()? {
                let seq: i64 = r.get(0)?;
                if let Some(catalog) = r.get::<_, Option<String>>(1)? {
                    let entry = by_catalog.entry(catalog).or_default();
                    entry.0.push(seq);
                    entry.1.push(r.get(2)?);
                }
                seqs.push(seq);
            }
        }
        if !seqs.is_empty() {
            for (catalog, (seqs, texts)) in &by_catalog {
                let mut delta = CountDelta::default();
                delta.values(&stored_facet_rows(c, seqs)?, -1);
                fts_remove_texts(c, seqs, texts)?;
                delta.apply_sync(c, catalog)?;
            }
            let list = serde_json::to_string(&seqs).map_err(|e| super::StoreError::Corrupt(format!("seqs: {e}")))?;
            // Live scopes are even, each trash the odd code after it (`trash_of`).
            c.prepare_cached(
                "UPDATE asset_values SET scope = scope + 1 WHERE seq IN (SELECT value FROM json_each(?)) AND scope % 2 = 0",
            )?
            .execute([&list])?;
            c.prepare_cached("DELETE FROM trash_pending WHERE seq IN (SELECT value FROM json_each(?))")?
                .execute([&list])?;
        }
        self.chunk.took(seqs.len() as i64, started.elapsed());
        Ok(c.prepare_cached("SELECT COUNT(*) FROM trash_pending")?
            .query_row([], |r| r.get(0))?)
    }

    /// After a sweep committed, on the writer task: no trash can run in between.
    fn swept(&self, left: i64) {
        self.pending.left(left);
    }

    /// Takes an asset off the list (it is restored or purged before a sweep reached it);
    /// answers whether it was listed, that is, whether its move to the trash is unfinished:
    /// its value rows, text and facet counts are still those of a live asset.
    pub fn unlist(c: &rusqlite::Connection, seq: i64) -> StoreResult<bool> {
        Ok(c.prepare_cached("DELETE FROM trash_pending WHERE seq = ?")?
            .execute([seq])?
            > 0)
    }
}

/// Records written without their value rows (`records_pending`, migration 0016: the
/// audit entries of a burst of deletes), and the writer's idle work that indexes them.
/// A search of records has the writer finish (`Idle::owed`) whenever any are listed.
#[derive(Default)]
pub struct RecordIndexer {
    pending: Backlog,
    chunk: ChunkSize,
    /// The (catalog, searchtype) pairs listed since the backlog was last empty: a search
    /// of any other table (the custom fields, reread every 10 s) need not wait.
    tables: std::sync::Mutex<std::collections::HashSet<(String, String)>>,
}

impl RecordIndexer {
    pub fn any(&self) -> bool {
        self.pending.any()
    }

    /// Whether records of this table may still be unindexed.
    pub fn lists(&self, catalog: &str, searchtype: &str) -> bool {
        self.any()
            && self
                .tables
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&(catalog.to_string(), searchtype.to_string()))
    }

    /// Lists a record of a table to be indexed later.
    pub fn list(&self, c: &rusqlite::Connection, catalog: &str, searchtype: &str, seq: i64) -> StoreResult<()> {
        self.tables
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((catalog.to_string(), searchtype.to_string()));
        self.pending.add(1);
        c.prepare_cached("INSERT OR IGNORE INTO records_pending (seq) VALUES (?)")?
            .execute([seq])?;
        Ok(())
    }

    /// Indexes a chunk of the listed records; answers how many stay listed.
    fn index_chunk(&self, c: &rusqlite::Connection) -> StoreResult<i64> {
        let started = std::time::Instant::now();
        let (done, left) = super::sqlite::index_listed_records(c, self.chunk.get())?;
        self.chunk.took(done, started.elapsed());
        Ok(left)
    }

    /// After an indexing chunk committed, on the writer task.
    fn indexed(&self, left: i64) {
        // Cleared under the lock `list` takes: a table listed meanwhile is in `left`.
        let mut tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        self.pending.left(left);
        if left == 0 {
            tables.clear();
        }
    }
}

/// The writer's upkeep of the index when it is idle: trashed assets' value rows moved to
/// the trash scope (`TrashSweeper`), then the full-text index's segments merged. FTS5
/// merges by itself at commit by default (`automerge`), which made one commit in a few
/// dozen take 40-140 ms at 100,000 assets (measured: a burst of 64-row deletes, p99 71 ms
/// per commit, 2 ms with `automerge = 0`); migration 0014 turns that off and the merging
/// happens here, in small steps. FTS5 still merges at commit once a level holds
/// `crisismerge` (16) segments, which bounds the segments a search reads.
pub struct IndexUpkeep {
    pub trash: std::sync::Arc<TrashSweeper>,
    pub records: std::sync::Arc<RecordIndexer>,
    /// Whether a write may have added full-text segments since the last merge found
    /// nothing to do.
    fts_merge_due: std::sync::atomic::AtomicBool,
    /// Set during a bulk load, which writes through a connection of its own: merging
    /// meanwhile would only contend with it for the write lock.
    paused: std::sync::atomic::AtomicBool,
}

/// Pages of full-text segments one merge step writes: a few milliseconds.
const FTS_MERGE_PAGES: i64 = 64;

impl IndexUpkeep {
    pub fn new(trash: std::sync::Arc<TrashSweeper>, records: std::sync::Arc<RecordIndexer>) -> Self {
        IndexUpkeep {
            trash,
            records,
            fts_merge_due: std::sync::atomic::AtomicBool::new(true),
            paused: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Holds (or resumes) the idle work, for a bulk load.
    pub fn pause(&self, paused: bool) {
        self.paused.store(paused, std::sync::atomic::Ordering::SeqCst);
    }

    fn is_paused(&self) -> bool {
        self.paused.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl super::sqlite_writer::Idle for IndexUpkeep {
    fn wanted(&self) -> bool {
        !self.is_paused()
            && (self.trash.any() || self.records.any() || self.fts_merge_due.load(std::sync::atomic::Ordering::SeqCst))
    }

    fn owed(&self, what: super::sqlite_writer::Owed) -> bool {
        match what {
            super::sqlite_writer::Owed::Trash => self.trash.any(),
            super::sqlite_writer::Owed::Records => self.records.any(),
        }
    }

    fn pressing(&self) -> bool {
        !self.is_paused() && (self.trash.pending.pressing() || self.records.pending.pressing())
    }

    fn wrote(&self) {
        self.fts_merge_due.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    fn run<'s: 'c, 'c>(
        &'s self,
        tx: &'c mut SqliteConnection,
        only: Option<super::sqlite_writer::Owed>,
    ) -> futures_util::future::BoxFuture<'c, StoreResult<super::sqlite_writer::AfterCommit<'s>>> {
        use super::sqlite_writer::Owed;
        Box::pin(async move {
            if only != Some(Owed::Records) && self.trash.any() {
                let left = super::sqlite_writer::on_handle(tx, |c| self.trash.sweep(c)).await?;
                return Ok(Box::new(move || self.trash.swept(left)) as super::sqlite_writer::AfterCommit<'s>);
            }
            if only != Some(Owed::Trash) && self.records.any() {
                let left = super::sqlite_writer::on_handle(tx, |c| self.records.index_chunk(c)).await?;
                return Ok(Box::new(move || self.records.indexed(left)) as super::sqlite_writer::AfterCommit<'s>);
            }
            if only.is_some() {
                return Ok(Box::new(|| {}) as super::sqlite_writer::AfterCommit<'s>);
            }
            // FTS5 tells whether a merge step found work by the rows it changed.
            let before: i64 = sqlx::query_scalar("SELECT total_changes()").fetch_one(&mut *tx).await?;
            sqlx::query("INSERT INTO asset_fts (asset_fts, rank) VALUES ('merge', ?)")
                .bind(FTS_MERGE_PAGES)
                .execute(&mut *tx)
                .await?;
            let after: i64 = sqlx::query_scalar("SELECT total_changes()").fetch_one(&mut *tx).await?;
            let finished = after - before < 2;
            Ok(Box::new(move || {
                if finished {
                    self.fts_merge_due.store(false, std::sync::atomic::Ordering::SeqCst);
                }
            }) as super::sqlite_writer::AfterCommit<'s>)
        })
    }
}

/// Changes to the maintained counts, gathered over a transaction and written once.
#[derive(Default)]
pub struct CountDelta {
    /// By field, then value: a value already counted is found without copying it.
    facets: HashMap<String, HashMap<String, i64>>,
    totals: HashMap<ScopeCode, i64>,
}

impl CountDelta {
    /// An asset with these rows enters (`sign` 1) or leaves (-1) a scope.
    pub fn asset(&mut self, scope: ScopeCode, live: bool, rows: &[IndexRow], sign: i64) {
        *self.totals.entry(scope).or_default() += sign;
        if live {
            self.values(rows, sign);
        }
    }

    /// The facet values of a live asset change (`sign` 1 for new, -1 for old values).
    pub fn values(&mut self, rows: &[IndexRow], sign: i64) {
        for r in rows {
            if let (true, Some(v)) = (FACET_FIELDS.contains(&r.field.as_str()), &r.v) {
                if !self.facets.contains_key(&r.field) {
                    self.facets.insert(r.field.clone(), HashMap::new());
                }
                let Some(values) = self.facets.get_mut(&r.field) else {
                    continue;
                };
                match values.get_mut(v) {
                    Some(n) => *n += sign,
                    None => {
                        values.insert(v.clone(), sign);
                    }
                }
            }
        }
    }

    /// The counts that change: ((field, value), by how much).
    fn changed_facets(&mut self) -> Vec<((String, String), i64)> {
        std::mem::take(&mut self.facets)
            .into_iter()
            .flat_map(|(f, values)| values.into_iter().map(move |(v, d)| ((f.clone(), v), d)))
            .filter(|(_, d)| *d != 0)
            .collect()
    }

    pub async fn apply(mut self, tx: &mut SqliteConnection, catalog: &str) -> StoreResult<()> {
        let facets = self.changed_facets();
        for chunk in facets.chunks(300) {
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new("INSERT INTO facet_counts (catalog, field, v, n) ");
            qb.push_values(chunk, |mut b, ((field, v), d)| {
                b.push_bind(catalog).push_bind(field).push_bind(v).push_bind(*d);
            });
            qb.push(" ON CONFLICT (catalog, field, v) DO UPDATE SET n = n + excluded.n");
            qb.build().execute(&mut *tx).await?;
        }
        // One statement for every scope (a delete moves an asset between two).
        let totals: Vec<(ScopeCode, i64)> = self.totals.into_iter().filter(|(_, d)| *d != 0).collect();
        if !totals.is_empty() {
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new("INSERT INTO asset_counts (scope, n) ");
            qb.push_values(&totals, |mut b, (scope, d)| {
                b.push_bind(*scope).push_bind(*d);
            });
            qb.push(" ON CONFLICT (scope) DO UPDATE SET n = n + excluded.n");
            qb.build().execute(&mut *tx).await?;
        }
        Ok(())
    }
}

impl CountDelta {
    /// `apply` on a bulk load's rusqlite connection, inside its transaction.
    pub fn apply_sync(mut self, conn: &rusqlite::Connection, catalog: &str) -> StoreResult<()> {
        let mut facets = self.changed_facets();
        facets.sort_unstable();
        let mut st = conn.prepare_cached(
            "INSERT INTO facet_counts (catalog, field, v, n) VALUES (?, ?, ?, ?)
             ON CONFLICT (catalog, field, v) DO UPDATE SET n = n + excluded.n",
        )?;
        for ((field, v), d) in facets {
            st.execute((catalog, field, v, d))?;
        }
        let mut st = conn.prepare_cached(
            "INSERT INTO asset_counts (scope, n) VALUES (?, ?) ON CONFLICT (scope) DO UPDATE SET n = n + excluded.n",
        )?;
        for (scope, d) in self.totals.into_iter().filter(|(_, d)| *d != 0) {
            st.execute((scope, d))?;
        }
        Ok(())
    }
}

/// The facet rows assets have now, read from their packed rows (`asset_facets`): one row
/// per asset and a dictionary lookup per distinct value, where their value rows were a
/// seek per asset and facet field (1.4 ms for a burst of 32 deletes, most of its reads).
pub fn stored_facet_rows(c: &rusqlite::Connection, seqs: &[i64]) -> StoreResult<Vec<IndexRow>> {
    let mut ids: Vec<i64> = Vec::new();
    let mut packed = c.prepare_cached("SELECT f FROM asset_facets WHERE seq = ?")?;
    for seq in seqs {
        let f: Option<Vec<u8>> = packed.query_row([seq], |r| r.get(0)).optional()?;
        if let Some(f) = f {
            unpack_facets(&f, |k| ids.push(entry_parts(k).0))?;
        }
    }
    let mut distinct = ids.clone();
    distinct.sort_unstable();
    distinct.dedup();
    // Read in the writer's transaction: the ids may be this batch's own new values.
    let mut values: HashMap<i64, (String, String)> = HashMap::with_capacity(distinct.len());
    let mut value = c.prepare_cached("SELECT field, v FROM facet_values WHERE id = ?")?;
    for id in distinct {
        values.insert(id, value.query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))?);
    }
    ids.iter()
        .map(|id| {
            let (field, v) = values
                .get(id)
                .ok_or_else(|| super::StoreError::Corrupt(format!("facet value {id} is missing")))?;
            Ok(IndexRow {
                field: field.clone(),
                v: Some(v.clone()),
                n: None,
            })
        })
        .collect()
}

/// How many assets a scope holds, as kept.
pub fn total(conn: &rusqlite::Connection, scope: ScopeCode) -> StoreResult<u64> {
    let n: Option<i64> = conn
        .prepare_cached("SELECT n FROM asset_counts WHERE scope = ?")?
        .query_row([scope], |r| r.get(0))
        .optional()?;
    Ok(n.unwrap_or(0).max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::asset::Asset;
    use crate::domain::query;
    use crate::ops::assets::field_info;
    use crate::store::sqlite::SqliteStore;
    use crate::store::{MetaStore, Scope};
    use serde_json::{json, Map};

    #[test]
    fn ascii_runs_are_sure_and_pieces_of_mixed_runs_unsure() {
        let mut d = WordDelta::default();
        d.text(" harbor café harbor 42 naïve x\u{303}bridge ", 1);
        let get = |w: &str| d.words.get(w).copied();
        assert_eq!(get("harbor"), Some((1, 0)), "counted once per text");
        assert_eq!(get("42"), Some((1, 0)));
        assert_eq!(get("caf"), Some((0, 1)));
        assert_eq!(get("na"), Some((0, 1)));
        assert_eq!(get("ve"), Some((0, 1)));
        assert_eq!(get("bridge"), Some((0, 1)));
        assert_eq!(get("café"), None, "non-ASCII words are not counted");
    }

    #[test]
    fn packed_facets_round_trip() {
        let rows = vec![
            IndexRow {
                field: "keywords".into(),
                v: Some("harbor".into()),
                n: None,
            },
            IndexRow {
                field: "name".into(),
                v: Some(" not a facet ".into()),
                n: None,
            },
            IndexRow {
                field: "owner".into(),
                v: Some("é".repeat(200)),
                n: None,
            },
            IndexRow {
                field: "assettype".into(),
                v: None,
                n: Some(1.0),
            },
            IndexRow {
                field: "previewstatus".into(),
                v: Some("2".into()),
                n: None,
            },
        ];
        let mut ids: FacetIds = vec![HashMap::new(); FACET_FIELDS.len()];
        ids[2].insert("harbor".into(), 1);
        ids[5].insert("é".repeat(200), 300_000_000_000);
        ids[7].insert("2".into(), 127);
        let packed = pack_facets(&rows, &ids);
        let mut got = Vec::new();
        unpack_facets(&packed, |k| got.push(entry_parts(k))).unwrap();
        assert_eq!(got, vec![(1, 2), (300_000_000_000, 5), (127, 7)]);
        assert!(pack_facets(&rows[1..2], &ids).is_empty(), "no facet values, no bytes");
        // A cut blob is an error, never a wrong count.
        assert!(unpack_facets(&packed[..packed.len() - 1], |_| {}).is_err());
        assert!(unpack_facets(&[0xff; 12], |_| {}).is_err());
    }

    fn facet_asset(i: usize, rng: &mut rand::rngs::StdRng) -> Asset {
        use rand::Rng;
        let mut f = Map::new();
        f.insert("name".into(), json!(format!("asset {i}")));
        if rng.gen_bool(0.9) {
            f.insert(
                "assettype".into(),
                json!(["photo", "video", "document"][rng.gen_range(0..3)]),
            );
        }
        // Repeated values (one counted once) and values differing in case.
        let kws: Vec<serde_json::Value> = (0..rng.gen_range(0..5))
            .map(|_| json!(["kw1", "kw2", "KW2", "kw3", "Ünï"][rng.gen_range(0..5)]))
            .collect();
        if !kws.is_empty() {
            f.insert("keywords".into(), serde_json::Value::Array(kws));
        }
        f.insert("owner".into(), json!(format!("user{}", rng.gen_range(0..4))));
        f.insert("width".into(), json!(rng.gen_range(1..4).to_string()));
        f.insert(
            "assetaddeddate".into(),
            json!(format!("2020-02-{:02}T10:00:00.000Z", rng.gen_range(1..29))),
        );
        Asset {
            id: format!("f{i}"),
            sourcepath: format!("f/{i}.jpg"),
            fields: f,
            original: None,
        }
    }

    /// Facets of a filtered search are counted from the packed rows; they must equal a
    /// recount of the matching live assets' own values after every kind of write.
    #[tokio::test]
    async fn packed_facet_counts_match_a_recount() {
        use rand::SeedableRng;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = SqliteStore::open(&path).await.unwrap();
        store.migrate().await.unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let assets: Vec<Asset> = (0..120).map(|i| facet_asset(i, &mut rng)).collect();
        store.insert_assets_bulk("assets", &assets[..80]).await.unwrap();
        for a in &assets[80..] {
            store.insert_asset("assets", a, &[]).await.unwrap();
        }
        let terms = [
            json!({"field":"keywords","operation":"matches","value":"kw2"}),
            json!({"field":"keywords","operation":"orsgroup","values":["kw1","kw3"]}),
            json!({"field":"assettype","operation":"matches","value":"photo"}),
            json!({"field":"description","operation":"freeform","value":"asset"}),
            json!({"field":"assetaddeddate","operation":"betweendates","after":"2020-02-05","before":"2020-02-20"}),
            json!({"field":"owner","operation":"startswith","value":"user"}),
        ];
        let fields = ["keywords", "assettype", "owner", "editstatus", "width"];
        let check = |stage: &'static str| {
            let store = &store;
            let terms = &terms;
            async move {
                for term in terms {
                    // One term alone (an index driver), and with a second (the assets' predicate).
                    let extra = json!({"field":"owner","operation":"not","value":"user0"});
                    for body in [
                        json!({"query": {"terms": [term]}}),
                        json!({"query": {"terms": [term, extra]}}),
                    ] {
                        let req = query::parse_search(body.as_object().unwrap(), "asset", &field_info).unwrap();
                        let mut all = body.clone();
                        all["hitsperpage"] = json!("1000");
                        let all = query::parse_search(all.as_object().unwrap(), "asset", &field_info).unwrap();
                        let hits = store.search_assets("assets", &all, Scope::Live).await.unwrap().hits;
                        let mut want: HashMap<(String, String), u64> = HashMap::new();
                        for a in &hits {
                            for r in unique_rows(a) {
                                if let (true, Some(v)) = (fields.contains(&r.field.as_str()), r.v) {
                                    *want.entry((r.field, v)).or_default() += 1;
                                }
                            }
                        }
                        for per_field in [1000, 2] {
                            let got = store.facet_counts("assets", &req, &fields, per_field).await.unwrap();
                            for (field, values) in got {
                                let mut expect: Vec<(String, u64)> = want
                                    .iter()
                                    .filter(|((f, _), _)| *f == field)
                                    .map(|((_, v), n)| (v.clone(), *n))
                                    .collect();
                                expect.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                                expect.truncate(per_field as usize);
                                assert_eq!(values, expect, "{field} of {body} after {stage} (top {per_field})");
                            }
                        }
                    }
                }
            }
        };
        check("inserts").await;
        for id in ["f3", "f85"] {
            let mut changed = store.get_asset_in("assets", id, Scope::Live).await.unwrap().unwrap();
            changed.asset.fields.insert("keywords".into(), json!(["kw2", "kw9"]));
            changed.asset.fields.remove("assettype");
            store
                .update_asset("assets", &changed.asset, changed.version, &[], None)
                .await
                .unwrap();
        }
        check("updates").await;
        let gone: Vec<String> = (0..120).step_by(5).map(|i| format!("f{i}")).collect();
        store.trash_assets("assets", &gone, "admin", &[]).await.unwrap();
        check("trash").await;
        store.restore_assets("assets", &gone[..4]).await.unwrap();
        store.purge_asset("assets", "f10").await.unwrap();
        store.purge_asset("assets", "f1").await.unwrap();
        check("restore and purge").await;
        // A catalog stored before the packed rows existed: the migration asks for them.
        let pool = SqlitePool::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        sqlx::query("DELETE FROM asset_facets").execute(&pool).await.unwrap();
        sqlx::query("INSERT INTO store_tasks (name) VALUES ('asset_facets')")
            .execute(&pool)
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM asset_facets")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert!(rows > 100, "packed again: {rows}");
        check("a migration's repack").await;
    }

    fn asset(i: usize, name: &str) -> Asset {
        let mut f = Map::new();
        f.insert("name".into(), json!(name));
        f.insert("assetaddeddate".into(), json!("2020-02-02T10:00:00.000Z"));
        Asset {
            id: format!("w{i}"),
            sourcepath: format!("w/{i}.jpg"),
            fields: f,
            original: None,
        }
    }

    #[test]
    fn a_chunk_is_sized_to_take_about_chunk_time() {
        let size = ChunkSize::default();
        let asked = size.get();
        // Twice too slow: halfway to half the size.
        size.took(asked, CHUNK_TIME * 2);
        assert_eq!(size.get(), (asked + asked / 2) / 2);
        // A chunk the backlog cut short says nothing.
        let now = size.get();
        size.took(1, CHUNK_TIME * 100);
        assert_eq!(size.get(), now);
        // Very fast items grow it to the cap, very slow ones shrink it to the floor.
        for _ in 0..40 {
            size.took(size.get(), std::time::Duration::from_micros(1));
        }
        assert_eq!(size.get(), CHUNK_MAX);
        for _ in 0..40 {
            size.took(size.get(), std::time::Duration::from_secs(5));
        }
        assert_eq!(size.get(), CHUNK_MIN);
    }

    /// A search of records waits only for its own table's unindexed records, never for
    /// the trash sweep: a search of the custom fields (reread every 10 s) once had the
    /// writer sweep 50,000 trashed assets first, and every write waited 22 s with it.
    #[tokio::test]
    async fn a_records_search_waits_only_for_its_own_backlog() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
        store.migrate().await.unwrap();
        let assets: Vec<Asset> = (0..3).map(|i| asset(i, "harbor")).collect();
        for a in &assets {
            store.insert_asset("assets", a, &[]).await.unwrap();
        }
        // No idle work by itself from here: only what a search asks for runs.
        store.upkeep.pause(true);
        let audit: Vec<crate::store::AuditRecord> = assets
            .iter()
            .map(|a| crate::store::AuditRecord {
                assetid: a.id.clone(),
                id: format!("del-{}", a.id),
                data: json!({"assetid": a.id, "operation": "delete"})
                    .as_object()
                    .unwrap()
                    .clone(),
            })
            .collect();
        let ids: Vec<String> = assets.iter().map(|a| a.id.clone()).collect();
        store.trash_assets("assets", &ids, "admin", &audit).await.unwrap();
        assert!(store.upkeep.records.any() && store.upkeep.trash.any());
        let all = query::SearchRequest {
            query: query::Query::All,
            sort: Vec::new(),
            page: 1,
            hits_per_page: 100,
            show_filters: false,
            echo_terms: Vec::new(),
            friendly: String::new(),
        };
        store.search_records("system", "customfield", &all).await.unwrap();
        assert!(
            store.upkeep.records.any(),
            "another table's search indexed the audit entries"
        );
        assert!(store.upkeep.trash.any(), "a records search swept the trash");
        let found = store.search_records("assets", "auditlog", &all).await.unwrap();
        assert_eq!(found.total, 3, "the audit entries are found once indexed");
        assert!(!store.upkeep.records.any());
        assert!(
            store.upkeep.trash.any(),
            "the trash sweep is not a records search's to wait for"
        );
    }

    /// Wherever the maintained count is used it must equal what the full-text index
    /// itself counts, through every write that changes what the index holds.
    #[tokio::test]
    async fn word_counts_follow_the_full_text_index() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = SqliteStore::open(&path).await.unwrap();
        store.migrate().await.unwrap();
        let names = [
            "harbor bridge",
            "Harbor at night",
            "café harbor",
            "naïve river",
            "x\u{303}bridge harbor",
            "\u{90b}\u{937}\u{93f}forest",
            "ｈａｒｂｏｒ forest",
            "river river river",
            "sunset 42",
        ];
        let assets: Vec<Asset> = names.iter().enumerate().map(|(i, n)| asset(i, n)).collect();
        store.insert_assets_bulk("assets", &assets[..5]).await.unwrap();
        for a in &assets[5..] {
            store.insert_asset("assets", a, &[]).await.unwrap();
        }
        let words = [
            "harbor", "bridge", "river", "forest", "night", "caf", "na", "ve", "sunset", "42", "at", "absent",
        ];
        let pool = SqlitePool::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        let check = |stage: &'static str| {
            let (pool, store, path) = (pool.clone(), &store, &path);
            async move {
                let mut known = 0;
                for w in words {
                    let fts: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM asset_fts WHERE asset_fts MATCH ?")
                        .bind(format!("\"{w}\""))
                        .fetch_one(&pool)
                        .await
                        .unwrap();
                    let conn = rusqlite::Connection::open(path).unwrap();
                    if let Some(n) = fts_word_count(&conn, w).unwrap() {
                        known += 1;
                        assert_eq!(n, fts as u64, "maintained count of {w} after {stage}");
                    }
                    let body =
                        json!({"query": {"terms": [{"field": "description", "operation": "freeform", "value": w}]}});
                    let req = query::parse_search(body.as_object().unwrap(), "asset", &field_info).unwrap();
                    let page = store.search_assets("assets", &req, Scope::Live).await.unwrap();
                    assert_eq!(page.total, fts as u64, "total of {w} after {stage}");
                }
                assert!(known >= 8, "the counts answer plain words ({known} after {stage})");
            }
        };
        check("inserts").await;
        let mut changed = store.get_asset_in("assets", "w0", Scope::Live).await.unwrap().unwrap();
        changed.asset.fields.insert("name".into(), json!("sunset only"));
        store
            .update_asset("assets", &changed.asset, changed.version, &[], None)
            .await
            .unwrap();
        let mut changed = store.get_asset_in("assets", "w3", Scope::Live).await.unwrap().unwrap();
        changed.asset.fields.insert("name".into(), json!("harbor harbor"));
        store
            .update_asset("assets", &changed.asset, changed.version, &[], None)
            .await
            .unwrap();
        check("updates").await;
        let gone: Vec<String> = ["w1", "w2", "w7"].iter().map(|s| s.to_string()).collect();
        // A trash leaves its text in the index until the writer's sweep (searches leave
        // it out meanwhile: `trash_sweep::unswept_deletes_are_out_of_every_count_at_once`).
        store.trash_assets("assets", &gone, "admin", &[]).await.unwrap();
        store
            .commits
            .finish_idle_work(crate::store::sqlite_writer::Owed::Trash)
            .await
            .unwrap();
        check("trash").await;
        store.restore_assets("assets", &gone[..1]).await.unwrap();
        store.purge_asset("assets", "w4").await.unwrap();
        store.purge_asset("assets", "w7").await.unwrap();
        check("restore and purge").await;
        // A catalog indexed before the counts existed: the migration asks for a count.
        sqlx::query("DELETE FROM fts_words").execute(&pool).await.unwrap();
        sqlx::query("INSERT INTO store_tasks (name) VALUES ('fts_words')")
            .execute(&pool)
            .await
            .unwrap();
        store.migrate().await.unwrap();
        check("a migration's recount").await;
    }
}
