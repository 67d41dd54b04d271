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

/// The value indexes, as the migrations define them. A bulk load drops them and builds
/// them again at its end (one sort instead of millions of random inserts); every start
/// builds any that a load interrupted by a crash left missing.
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

pub async fn drop_value_indexes(pool: &SqlitePool) -> StoreResult<()> {
    for (name, _) in VALUE_INDEXES {
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

/// Replaces an asset's value rows.
pub async fn write_rows(tx: &mut SqliteConnection, seq: i64, scope: ScopeCode, rows: &[IndexRow]) -> StoreResult<()> {
    sqlx::query("DELETE FROM asset_values WHERE seq = ?")
        .bind(seq)
        .execute(&mut *tx)
        .await?;
    for chunk in rows.chunks(200) {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new("INSERT INTO asset_values (seq, scope, field, v, n) ");
        qb.push_values(chunk, |mut b, r| {
            b.push_bind(seq)
                .push_bind(scope)
                .push_bind(&r.field)
                .push_bind(&r.v)
                .push_bind(r.n);
        });
        qb.build().execute(&mut *tx).await?;
    }
    Ok(())
}

/// `(?, ?, ...)` of the values.
fn push_list<'a, T>(qb: &mut QueryBuilder<'a, Sqlite>, values: &'a [T])
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
    pub fn text(&mut self, text: &str, sign: i64) {
        let mut seen: std::collections::HashSet<(&str, bool)> = std::collections::HashSet::new();
        for run in text.split(' ').filter(|r| !r.is_empty()) {
            if run.bytes().all(|b| b.is_ascii_alphanumeric()) {
                seen.insert((run, true));
            } else {
                for piece in run
                    .split(|c: char| !c.is_ascii_alphanumeric())
                    .filter(|p| !p.is_empty())
                {
                    seen.insert((piece, false));
                }
            }
        }
        for (word, sure) in seen {
            let key = if word.bytes().any(|b| b.is_ascii_uppercase()) {
                word.to_ascii_lowercase()
            } else {
                word.to_string()
            };
            let e = self.words.entry(key).or_default();
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
    for chunk in seqs.chunks(500) {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new("DELETE FROM asset_fts WHERE rowid IN ");
        push_list(&mut qb, chunk);
        qb.build().execute(&mut *tx).await?;
    }
    words.apply(tx).await
}

/// Indexes a live asset's new text in place of `old`, the text it had.
pub async fn fts_replace(tx: &mut SqliteConnection, seq: i64, old: &str, new: &str) -> StoreResult<()> {
    sqlx::query("DELETE FROM asset_fts WHERE rowid = ?")
        .bind(seq)
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO asset_fts (rowid, body) VALUES (?, ?)")
        .bind(seq)
        .bind(new)
        .execute(&mut *tx)
        .await?;
    let mut words = WordDelta::default();
    words.text(old, -1);
    words.text(new, 1);
    words.apply(tx).await
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

/// Changes to the maintained counts, gathered over a transaction and written once.
#[derive(Default)]
pub struct CountDelta {
    facets: HashMap<(String, String), i64>,
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
                *self.facets.entry((r.field.clone(), v.clone())).or_default() += sign;
            }
        }
    }

    pub async fn apply(self, tx: &mut SqliteConnection, catalog: &str) -> StoreResult<()> {
        let facets: Vec<_> = self.facets.into_iter().filter(|(_, d)| *d != 0).collect();
        for chunk in facets.chunks(300) {
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new("INSERT INTO facet_counts (catalog, field, v, n) ");
            qb.push_values(chunk, |mut b, ((field, v), d)| {
                b.push_bind(catalog).push_bind(field).push_bind(v).push_bind(*d);
            });
            qb.push(" ON CONFLICT (catalog, field, v) DO UPDATE SET n = n + excluded.n");
            qb.build().execute(&mut *tx).await?;
        }
        for (scope, d) in self.totals.into_iter().filter(|(_, d)| *d != 0) {
            sqlx::query(
                "INSERT INTO asset_counts (scope, n) VALUES (?, ?) ON CONFLICT (scope) DO UPDATE SET n = n + excluded.n",
            )
            .bind(scope)
            .bind(d)
            .execute(&mut *tx)
            .await?;
        }
        Ok(())
    }
}

/// The facet rows an asset has now, read from its value rows.
pub async fn stored_facet_rows(tx: &mut SqliteConnection, seqs: &[i64]) -> StoreResult<Vec<IndexRow>> {
    let mut out = Vec::new();
    for chunk in seqs.chunks(500) {
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new("SELECT field, v FROM asset_values WHERE v IS NOT NULL AND seq IN ");
        push_list(&mut qb, chunk);
        qb.push(" AND field IN ");
        push_list(&mut qb, FACET_FIELDS);
        for r in qb.build().fetch_all(&mut *tx).await? {
            out.push(IndexRow {
                field: r.try_get("field")?,
                v: r.try_get("v")?,
                n: None,
            });
        }
    }
    Ok(out)
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
            .update_asset("assets", &changed.asset, changed.version, &[])
            .await
            .unwrap();
        let mut changed = store.get_asset_in("assets", "w3", Scope::Live).await.unwrap().unwrap();
        changed.asset.fields.insert("name".into(), json!("harbor harbor"));
        store
            .update_asset("assets", &changed.asset, changed.version, &[])
            .await
            .unwrap();
        check("updates").await;
        let gone: Vec<String> = ["w1", "w2", "w7"].iter().map(|s| s.to_string()).collect();
        store.trash_assets("assets", &gone, "admin", &[]).await.unwrap();
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
