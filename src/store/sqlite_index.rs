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

/// Adds live assets' stored text to the full-text index, in one statement (FTS5 writes
/// a segment per statement).
pub async fn fts_add(tx: &mut SqliteConnection, seqs: &[i64]) -> StoreResult<()> {
    for chunk in seqs.chunks(500) {
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new("INSERT INTO asset_fts (rowid, body) SELECT seq, fulltext FROM assets WHERE seq IN ");
        push_list(&mut qb, chunk);
        qb.build().execute(&mut *tx).await?;
    }
    Ok(())
}

/// Removes assets from the full-text index (they leave the live scope or change).
pub async fn fts_remove(tx: &mut SqliteConnection, seqs: &[i64]) -> StoreResult<()> {
    for chunk in seqs.chunks(500) {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new("DELETE FROM asset_fts WHERE rowid IN ");
        push_list(&mut qb, chunk);
        qb.build().execute(&mut *tx).await?;
    }
    Ok(())
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
