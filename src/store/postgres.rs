//! The scale-out metadata store: PostgreSQL, shared by any number of `serve` and `worker`
//! processes. Same semantics as [`super::sqlite`] (optimistic versions, `state = 'live'`
//! filtering, the same search compiled to the same predicates); jobs are claimed with
//! `FOR UPDATE SKIP LOCKED` and leases timed by the database's clock.

use super::postgres_warm::WarmConns;
use super::*;
use crate::domain::asset::{Asset, ListItem, Original};
use crate::domain::query::{Cond, Query, SearchRequest, TextMode};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder, Row};
use std::borrow::Cow;
use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

/// Runs one statement outside a transaction on a warm connection (`postgres_warm`):
/// `on_warm!(self, |c| query.fetch_all(c))` answers the statement's `Result`.
macro_rules! on_warm {
    ($store:expr, |$c:ident| $statement:expr) => {{
        let mut warm = $store.warm.take(&$store.pool).await?;
        let $c = warm.conn();
        let result = $statement.await;
        warm.done(result)
    }};
}

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "initial", include_str!("../../migrations/postgres/0001_initial.sql")),
    (
        3,
        "auth epoch",
        include_str!("../../migrations/postgres/0003_auth_epoch.sql"),
    ),
    (
        5,
        "assets sha256",
        include_str!("../../migrations/postgres/0005_assets_sha256.sql"),
    ),
    (
        6,
        "search index",
        include_str!("../../migrations/postgres/0006_search_index.sql"),
    ),
    (
        7,
        "value scope",
        include_str!("../../migrations/postgres/0007_value_scope.sql"),
    ),
    (
        8,
        "asset facets",
        include_str!("../../migrations/postgres/0008_asset_facets.sql"),
    ),
    (
        9,
        "facet pairs",
        include_str!("../../migrations/postgres/0009_facet_pairs.sql"),
    ),
    (
        10,
        "assets added",
        include_str!("../../migrations/postgres/0010_assets_added.sql"),
    ),
];

/// The indexes a bulk load drops and builds again at its end (one sort each instead of
/// millions of random inserts), and the foreign key it checks once instead of per row.
/// Every start (`migrate`) puts back any that a load interrupted by a crash left missing.
const BULK_INDEXES: &[(&str, &str)] = &[
    (
        "asset_values_scope_v",
        "CREATE INDEX IF NOT EXISTS asset_values_scope_v ON asset_values(scope, field, v, seq)",
    ),
    (
        "asset_values_scope_n",
        "CREATE INDEX IF NOT EXISTS asset_values_scope_n ON asset_values(scope, field, n, seq) WHERE n IS NOT NULL",
    ),
    (
        "asset_values_seq_v",
        "CREATE INDEX IF NOT EXISTS asset_values_seq_v ON asset_values(seq, field) INCLUDE (v)",
    ),
    (
        "assets_added",
        "CREATE INDEX IF NOT EXISTS assets_added ON assets(catalog, state, added, seq) WHERE added IS NOT NULL",
    ),
    (
        "assets_words",
        "CREATE INDEX IF NOT EXISTS assets_words ON assets USING gin (mediadb_words(catalog, fulltext)) \
         WHERE state = 'live'",
    ),
];
const VALUES_FKEY: &str = "asset_values_seq_fkey";

/// How long a pooled connection may sit idle before it is pinged when taken again.
const IDLE_CHECK: Duration = Duration::from_secs(5);

pub struct PostgresStore {
    pool: PgPool,
    /// Connections for single statements outside transactions (`on_warm!`).
    warm: WarmConns,
    /// What this process has read of `facet_values` (committed rows only: a row's id
    /// never changes and rows are never deleted, so a read entry stays true).
    dict: std::sync::Mutex<FacetDict>,
}

/// The facet value dictionary, both ways.
#[derive(Default)]
struct FacetDict {
    ids: HashMap<(String, String), i32>,
    names: HashMap<i32, (String, String)>,
}

/// Entries past which the dictionary cache starts again empty (a catalog with millions of
/// distinct keywords must not grow the process without bound; misses are one query).
const DICT_CACHE: usize = 200_000;

impl FacetDict {
    fn add(&mut self, id: i32, field: String, v: String) {
        if self.names.len() >= DICT_CACHE {
            self.ids.clear();
            self.names.clear();
        }
        self.ids.insert((field.clone(), v.clone()), id);
        self.names.insert(id, (field, v));
    }
}

/// An asset's facet values (`FACET_FIELDS`) as stored in value rows and the dictionary.
fn facet_pairs(rows: &[IndexRow]) -> impl Iterator<Item = (String, String)> + '_ {
    rows.iter().filter_map(|r| match &r.v {
        Some(v) if FACET_FIELDS.contains(&r.field.as_str()) => Some((t(&r.field).into_owned(), t(v).into_owned())),
        _ => None,
    })
}

impl PostgresStore {
    /// Connects to `postgres://...` (a `?options=-c search_path=...` parameter selects a
    /// schema, as the tests do).
    pub async fn open(url: &str) -> StoreResult<Self> {
        // 64 MiB per sort or bitmap: a word common to a fifth of a million assets keeps an
        // exact bitmap (with the default 4 MiB it goes lossy, and every row of a lossy
        // page is re-tested by computing its words again: seconds instead of tens of ms).
        //
        // No Memoize nodes: their hash table is sized from work_mem and the estimated
        // rows and allocated when the statement starts, for lookups of distinct keys
        // (every join here probes unique seqs) where it never hits. A top-20 by date
        // at a million assets spent 0.2-0.7 ms of its 1 ms starting one.
        let opts = PgConnectOptions::from_str(url)?
            .application_name("mediadb")
            .options([("work_mem", "64MB"), ("enable_memoize", "off")]);
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(30))
            .idle_timeout(Duration::from_secs(60))
            // sqlx pings every connection it takes from the idle queue by default: a
            // round trip of its own before every statement sent through the pool. Only a
            // connection that sat idle a while is checked (the server may have closed
            // it); a dead one is dropped and another taken.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move { Ok(meta.idle_for < IDLE_CHECK || sqlx::Connection::ping(conn).await.is_ok()) })
            })
            .connect_with(opts)
            .await?;
        Ok(PostgresStore {
            pool,
            warm: WarmConns::default(),
            dict: Default::default(),
        })
    }

    /// The dictionary ids of facet values, added when new. New values are inserted in
    /// their own committed statement (in key order, so concurrent writers cannot
    /// deadlock on them), never inside a write transaction: an id read here is never
    /// rolled back, whatever becomes of the write that asked. Call before beginning the
    /// write's transaction (it takes a connection of the pool).
    async fn facet_ids(
        &self,
        pairs: std::collections::BTreeSet<(String, String)>,
    ) -> StoreResult<HashMap<(String, String), i32>> {
        let mut out = HashMap::with_capacity(pairs.len());
        let mut missing: (Vec<String>, Vec<String>) = Default::default();
        {
            let dict = self.dict.lock().unwrap_or_else(|e| e.into_inner());
            for p in pairs {
                match dict.ids.get(&p) {
                    Some(id) => {
                        out.insert(p, *id);
                    }
                    None => {
                        missing.0.push(p.0);
                        missing.1.push(p.1);
                    }
                }
            }
        }
        if missing.0.is_empty() {
            return Ok(out);
        }
        sqlx::query(
            "INSERT INTO facet_values (field, v) SELECT * FROM UNNEST($1::text[], $2::text[])
             ON CONFLICT (field, v) DO NOTHING",
        )
        .bind(&missing.0)
        .bind(&missing.1)
        .execute(&self.pool)
        .await?;
        let rows: Vec<(i32, String, String)> = sqlx::query_as(
            "SELECT d.id, d.field, d.v FROM facet_values d
             JOIN UNNEST($1::text[], $2::text[]) AS u(field, v) ON d.field = u.field AND d.v = u.v",
        )
        .bind(&missing.0)
        .bind(&missing.1)
        .fetch_all(&self.pool)
        .await?;
        let mut dict = self.dict.lock().unwrap_or_else(|e| e.into_inner());
        for (id, field, v) in rows {
            out.insert((field.clone(), v.clone()), id);
            dict.add(id, field, v);
        }
        Ok(out)
    }

    /// Each asset's `asset_facets.f`, as an array literal, from its value rows.
    async fn pack_facets(&self, assets: &[&[IndexRow]]) -> StoreResult<Vec<String>> {
        let ids = self
            .facet_ids(assets.iter().flat_map(|rows| facet_pairs(rows)).collect())
            .await?;
        assets
            .iter()
            .map(|rows| {
                let mut f = facet_pairs(rows)
                    .map(|p| {
                        ids.get(&p)
                            .copied()
                            .ok_or_else(|| StoreError::Corrupt(format!("facet value {p:?} has no id")))
                    })
                    .collect::<StoreResult<Vec<i32>>>()?;
                f.sort_unstable();
                f.dedup();
                let items: Vec<String> = f.iter().map(i32::to_string).collect();
                Ok(format!("{{{}}}", items.join(",")))
            })
            .collect()
    }

    /// The (field, value) of dictionary ids.
    async fn facet_names(&self, ids: impl Iterator<Item = i32>) -> StoreResult<HashMap<i32, (String, String)>> {
        let mut out = HashMap::new();
        let mut missing = Vec::new();
        {
            let dict = self.dict.lock().unwrap_or_else(|e| e.into_inner());
            for id in ids {
                match dict.names.get(&id) {
                    Some(name) => {
                        out.insert(id, name.clone());
                    }
                    None => missing.push(id),
                }
            }
        }
        if missing.is_empty() {
            return Ok(out);
        }
        let rows: Vec<(i32, String, String)> =
            sqlx::query_as("SELECT id, field, v FROM facet_values WHERE id = ANY($1)")
                .bind(&missing)
                .fetch_all(&self.pool)
                .await?;
        let mut dict = self.dict.lock().unwrap_or_else(|e| e.into_inner());
        for (id, field, v) in rows {
            out.insert(id, (field.clone(), v.clone()));
            dict.add(id, field, v);
        }
        Ok(out)
    }

    /// Builds whatever a bulk load set aside (nothing when every index is there; only
    /// the catalog is read then, so starting processes take no table lock).
    async fn ensure_bulk_indexes(&self) -> StoreResult<()> {
        let mut conn = self.pool.acquire().await?;
        // Index builds sort in memory rather than on disk.
        sqlx::query("SET maintenance_work_mem = '256MB'")
            .execute(&mut *conn)
            .await?;
        for (name, sql) in BULK_INDEXES {
            let there: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
                .bind(*name)
                .fetch_one(&mut *conn)
                .await?;
            if !there {
                sqlx::query(sql).execute(&mut *conn).await?;
            }
        }
        let has_fkey: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = $1 AND conrelid = 'asset_values'::regclass)",
        )
        .bind(VALUES_FKEY)
        .fetch_one(&mut *conn)
        .await?;
        if !has_fkey {
            sqlx::query(&format!(
                "ALTER TABLE asset_values ADD CONSTRAINT {VALUES_FKEY} FOREIGN KEY (seq) REFERENCES assets(seq) \
                 ON DELETE CASCADE"
            ))
            .execute(&mut *conn)
            .await?;
        }
        sqlx::query("RESET maintenance_work_mem").execute(&mut *conn).await?;
        drop(conn);
        let stale: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM facet_pairs_stale)")
            .fetch_one(&self.pool)
            .await?;
        if stale {
            let mut tx = self.pool.begin().await?;
            // Writers that move pairs wait (readers do not, and use the probes while
            // the marker is there): what they then add is on top of what is counted
            // here. Bulk inserts that left their pairs out hold the marker (`FOR SHARE`):
            // its delete waits for them to commit, so the count below sees their assets;
            // later ones find no marker and move their pairs themselves.
            sqlx::query("LOCK TABLE facet_pairs IN EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM facet_pairs_stale").execute(&mut *tx).await?;
            rebuild_pairs(&mut tx).await?;
            tx.commit().await?;
        }
        Ok(())
    }

    /// The facets of a search for one value of a facet field, from `facet_pairs`: how
    /// many of its matches hold each value (`None` while the pairs are being rebuilt).
    async fn paired_facet_counts(
        &self,
        catalog: &str,
        field: &str,
        v: &str,
        fields: &[&str],
    ) -> StoreResult<Option<Vec<(String, Vec<(String, u64)>)>>> {
        // The marker comes back as a row of its own (b = NULL).
        let rows: Vec<(Option<i32>, i64)> = sqlx::query_as(
            "SELECT p.b, p.n FROM facet_pairs p
             WHERE p.catalog = $1 AND p.a = (SELECT id FROM facet_values WHERE field = $2 AND v = $3) AND p.n > 0
             UNION ALL SELECT NULL, 0 FROM facet_pairs_stale",
        )
        .bind(t(catalog))
        .bind(t(field))
        .bind(t(v))
        .fetch_all(&self.pool)
        .await?;
        if rows.iter().any(|(b, _)| b.is_none()) {
            return Ok(None);
        }
        let names = self.facet_names(rows.iter().filter_map(|(b, _)| *b)).await?;
        let mut out: Vec<(String, Vec<(String, u64)>)> = fields.iter().map(|f| (f.to_string(), Vec::new())).collect();
        for (b, n) in rows {
            let id = b.expect("markers returned above");
            let (field, v) = names
                .get(&id)
                .ok_or_else(|| StoreError::Corrupt(format!("facet value id {id} is not in the dictionary")))?;
            if let Some(slot) = out.iter_mut().find(|(f, _)| f == field) {
                slot.1.push((v.clone(), n as u64));
            }
        }
        Ok(Some(out))
    }

    /// A page sorted by one single-valued field: first the assets holding a value, read
    /// in order from the (field, n|v, seq) index and stopping at the page (a top-20 by
    /// date of a million assets reads 20 rows); then, only when the page reaches past
    /// them, the assets without a value, newest first. The same order as the one-query
    /// `ORDER BY key IS NULL, key, seq DESC`.
    #[allow(clippy::too_many_arguments)]
    async fn sorted_page(
        &self,
        catalog: &str,
        scope: Scope,
        req: &SearchRequest,
        target: &Target<'_>,
        field: &str,
        col: &str,
        descending: bool,
        kept: Option<&Kept>,
    ) -> StoreResult<Vec<PgRow>> {
        let limit = req.hits_per_page as i64;
        let offset = (req.page as i64 - 1) * limit;
        let dir = if descending { "DESC" } else { "ASC" };
        let with_value = |qb: &mut QueryBuilder<Postgres>| {
            qb.push(" FROM asset_values s0 JOIN assets a ON a.seq = s0.seq WHERE ");
            push_value_scope(qb, "s0", target);
            qb.push("s0.field = ")
                .push_bind(t(field).into_owned())
                .push(format!(" AND s0.{col} IS NOT NULL AND "));
            push_scope(qb, catalog, scope);
            push_query(qb, &req.query, target);
        };
        let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(format!("SELECT {ASSET_COLUMNS}"));
        if let Some(kept) = kept {
            push_kept_total(&mut qb, catalog, kept);
        }
        if req.query == Query::All && field == ADDED_FIELD && col == "n" && descending {
            // The newest first, the default page: `assets_added` walked backwards, in
            // the order the value rows give (ties newest first). Ascending, the ties'
            // order is the other way round from the index's: the value rows then.
            qb.push(" FROM assets a WHERE ");
            push_scope(&mut qb, catalog, scope);
            qb.push("a.added IS NOT NULL ORDER BY a.added DESC, a.seq DESC");
        } else {
            with_value(&mut qb);
            qb.push(format!(" ORDER BY s0.{col} {dir}, s0.seq DESC"));
        }
        if req.query == Query::All {
            // The index walk is the plan whatever the values: one generic plan.
            push_literal_page(&mut qb, limit, offset);
        } else {
            // Whether to walk the sort index or collect the matches depends on them.
            qb.push(" LIMIT ").push_bind(limit).push(" OFFSET ").push_bind(offset);
        }
        let mut rows = on_warm!(self, |c| qb.build().fetch_all(c))?;
        if rows.len() as i64 == limit {
            return Ok(rows);
        }
        let before = if rows.is_empty() {
            let mut qb: QueryBuilder<Postgres> = QueryBuilder::new("SELECT COUNT(*)");
            with_value(&mut qb);
            on_warm!(self, |c| qb.build_query_scalar::<i64>().fetch_one(c))?
        } else {
            offset + rows.len() as i64
        };
        let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(format!("SELECT {ASSET_COLUMNS} FROM assets a WHERE "));
        push_scope(&mut qb, catalog, scope);
        push_query(&mut qb, &req.query, target);
        qb.push(" AND NOT EXISTS (SELECT 1 FROM asset_values s0 WHERE s0.seq = a.seq AND s0.field = ")
            .push_bind(t(field).into_owned())
            .push(format!(" AND s0.{col} IS NOT NULL) ORDER BY a.seq DESC LIMIT "))
            .push_bind(limit - rows.len() as i64)
            .push(" OFFSET ")
            .push_bind((offset - before).max(0));
        rows.extend(on_warm!(self, |c| qb.build().fetch_all(c))?);
        Ok(rows)
    }

    /// The exact number of live assets a driver matches, from its index alone.
    async fn driver_count(&self, catalog: &str, d: &Driver<'_>, target: &Target<'_>) -> StoreResult<i64> {
        match d {
            Driver::Word(word) => {
                let n: Option<i64> = sqlx::query_scalar("SELECT n FROM word_counts WHERE catalog = $1 AND word = $2")
                    .bind(t(catalog))
                    .bind(word)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(n.unwrap_or(0).max(0))
            }
            Driver::Values {
                field,
                conds,
                union: false,
                repeats: false,
                ..
            } if matches!(conds.as_slice(), [Cond::Range { min, max }] if whole_days(*min, *max).is_some()) => {
                // A range over whole days: their maintained counts, and the rows of the
                // partial days at either end counted from the index (each asset holds
                // one row of a single-valued field, as the plain count below assumes).
                let [Cond::Range { min, max }] = conds.as_slice() else {
                    unreachable!("matched above")
                };
                let (first, end) = whole_days(*min, *max).expect("matched above");
                let mut qb: QueryBuilder<Postgres> =
                    QueryBuilder::new("SELECT COALESCE((SELECT SUM(n) FROM value_days WHERE catalog = ");
                qb.push_bind(t(catalog).into_owned())
                    .push(" AND field = ")
                    .push_bind(t(field).into_owned())
                    .push(" AND day >= ")
                    .push_bind(first)
                    .push(" AND day < ")
                    .push_bind(end)
                    .push("), 0)::bigint + (SELECT COUNT(*) FROM asset_values x WHERE ");
                push_value_scope(&mut qb, "x", target);
                qb.push("x.field = ")
                    .push_bind(t(field).into_owned())
                    .push(" AND x.n IS NOT NULL");
                if let Some(lo) = min {
                    qb.push(" AND x.n >= ").push_bind(*lo);
                }
                qb.push(" AND x.n < ")
                    .push_bind(first as f64 * DAY_MS)
                    .push(") + (SELECT COUNT(*) FROM asset_values x WHERE ");
                push_value_scope(&mut qb, "x", target);
                qb.push("x.field = ")
                    .push_bind(t(field).into_owned())
                    .push(" AND x.n IS NOT NULL AND x.n >= ")
                    .push_bind(end as f64 * DAY_MS);
                if let Some(hi) = max {
                    qb.push(" AND x.n <= ").push_bind(*hi);
                }
                qb.push(")");
                Ok(on_warm!(self, |c| qb.build_query_scalar().fetch_one(c))?)
            }
            Driver::Values {
                field,
                conds,
                union: false,
                eq: true,
                ..
            } if FACET_FIELDS.contains(field) => {
                // One value of a facet field: its maintained count is the total (live
                // assets of the catalog holding it, each once).
                let n: Option<i64> =
                    sqlx::query_scalar("SELECT n FROM facet_counts WHERE catalog = $1 AND field = $2 AND v = $3")
                        .bind(t(catalog))
                        .bind(t(field))
                        .bind(equality_key(field, conds[0], target))
                        .fetch_optional(&self.pool)
                        .await?;
                Ok(n.unwrap_or(0).max(0))
            }
            Driver::Values {
                field, conds, repeats, ..
            } => {
                // Each asset holds a value once (`unique_rows`), and a single-valued
                // field once: then the matching rows are the matching assets.
                let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(if *repeats {
                    "SELECT COUNT(DISTINCT x.seq) FROM asset_values x WHERE "
                } else {
                    "SELECT COUNT(*) FROM asset_values x WHERE "
                });
                push_driver_rows(&mut qb, field, conds, target);
                Ok(on_warm!(self, |c| qb.build_query_scalar().fetch_one(c))?)
            }
        }
    }

    /// A page (newest first) of an `orsgroup` driver: the union of each value's newest
    /// `offset + limit` index entries, merged in asset order.
    async fn union_page(
        &self,
        catalog: &str,
        req: &SearchRequest,
        d: &Driver<'_>,
        target: &Target<'_>,
    ) -> StoreResult<Vec<PgRow>> {
        let limit = req.hits_per_page as i64;
        let offset = (req.page as i64 - 1) * limit;
        let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(format!("SELECT {ASSET_COLUMNS} FROM assets a WHERE "));
        push_scope(&mut qb, catalog, Scope::Live);
        if let Driver::Values { field, conds, .. } = d {
            qb.push("a.seq IN (SELECT seq FROM (");
            for (i, c) in conds.iter().enumerate() {
                qb.push(if i > 0 { " UNION (" } else { "(" });
                qb.push("SELECT x.seq FROM asset_values x WHERE ");
                push_driver_rows(&mut qb, field, std::slice::from_ref(c), target);
                // Equalities read backwards from their index whatever the values: a
                // generic plan (literal bounds, `push_literal_page`).
                qb.push(format!(" ORDER BY x.seq DESC LIMIT {})", offset + limit));
            }
            qb.push(") u ORDER BY seq DESC");
            push_literal_page(&mut qb, limit, offset);
            qb.push(") ORDER BY a.seq DESC");
        }
        Ok(on_warm!(self, |c| qb.build().fetch_all(c))?)
    }

    /// A page (newest first) of a driver's `total` matches (of `live` assets): a common
    /// value match by walking the newest live assets and testing each (about
    /// `wanted * live / total` of them; a common word is walked by `word_probe`); a rare
    /// one by collecting its matches from the index (values) or the full-text index (a
    /// word).
    async fn driver_page(
        &self,
        catalog: &str,
        req: &SearchRequest,
        d: &Driver<'_>,
        target: &Target<'_>,
        total: u64,
        live: u64,
    ) -> StoreResult<Vec<PgRow>> {
        let limit = req.hits_per_page as i64;
        let offset = (req.page as i64 - 1) * limit;
        let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(format!("SELECT {ASSET_COLUMNS} FROM assets a WHERE "));
        push_scope(&mut qb, catalog, Scope::Live);
        let wanted = (offset + limit) as f64;
        // A word's probe is `word_probe`'s, with its totals: here its matches are
        // collected from the full-text index.
        let probe = !matches!(d, Driver::Word(_)) && wanted * (live as f64) < (total as f64) * (total as f64);
        match (d, probe) {
            (Driver::Word(_), _) => {
                push_query(&mut qb, &req.query, target);
            }
            (Driver::Values { field, conds, .. }, true) => {
                // OFFSET 0 keeps the probe a per-asset subplan (PostgreSQL does not turn
                // it into a join that would collect every match first).
                qb.push("EXISTS (SELECT 1 FROM asset_values x WHERE x.seq = a.seq AND ");
                push_driver_rows(&mut qb, field, conds, target);
                qb.push(" OFFSET 0)");
            }
            (Driver::Values { field, conds, .. }, false) => {
                qb.push("a.seq IN (SELECT DISTINCT x.seq FROM asset_values x WHERE ");
                push_driver_rows(&mut qb, field, conds, target);
                qb.push(" ORDER BY x.seq DESC LIMIT ")
                    .push_bind(limit)
                    .push(" OFFSET ")
                    .push_bind(offset)
                    .push(")");
                qb.push(" ORDER BY a.seq DESC");
                return Ok(on_warm!(self, |c| qb.build().fetch_all(c))?);
            }
        }
        qb.push(" ORDER BY a.seq DESC");
        if probe {
            // Walking the newest assets is the plan whatever the values: a generic one.
            push_literal_page(&mut qb, limit, offset);
        } else {
            qb.push(" LIMIT ").push_bind(limit).push(" OFFSET ").push_bind(offset);
        }
        Ok(on_warm!(self, |c| qb.build().fetch_all(c))?)
    }

    /// A one-word search in one statement: the word's total and the live total, and,
    /// when the word is common enough for `driver_page` to probe, the page walked from
    /// the newest live assets (`None` otherwise: the walk is cut off by a one-time
    /// filter on the two totals). The word is tested with `strpos` (the same test as the
    /// probe's `LIKE '% word %'`: the word has no wildcard), whose estimate does not
    /// depend on the value, so PostgreSQL keeps one generic plan.
    async fn word_probe(
        &self,
        catalog: &str,
        req: &SearchRequest,
        word: &str,
    ) -> StoreResult<(i64, u64, Option<Vec<PgRow>>)> {
        let limit = req.hits_per_page as i64;
        let offset = (req.page as i64 - 1) * limit;
        // `probed` is `driver_page`'s test (page * live < total^2). OFFSET 0 keeps the
        // two totals a subquery of their own, read once: flattened, each use of them
        // (five) read `word_counts` again (0.086 ms a search in pgbench, 0.075 now).
        let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(format!(
            "SELECT c.total, c.live, c.probed, p.* FROM (SELECT t0.total, t0.live,
                 {}::float8 * t0.live < t0.total::float8 * t0.total AS probed
             FROM (SELECT (SELECT n FROM word_counts WHERE catalog = ",
            offset + limit
        ));
        qb.push_bind(t(catalog).into_owned())
            .push(" AND word = ")
            .push_bind(word.to_string())
            .push(") AS total, (SELECT n FROM asset_counts WHERE catalog = ")
            .push_bind(t(catalog).into_owned())
            .push(format!(
                " AND state = 'live') AS live OFFSET 0) t0) c LEFT JOIN LATERAL (SELECT a.seq, {ASSET_COLUMNS} FROM assets a WHERE "
            ));
        push_scope(&mut qb, catalog, Scope::Live);
        // Ordered as `assets_catalog_state` is (catalog and state are fixed), so the walk
        // reads that index and not every catalog's assets.
        qb.push("strpos(a.fulltext, ")
            .push_bind(format!(" {word} "))
            .push(") > 0 AND c.probed ORDER BY a.catalog DESC, a.state DESC, a.seq DESC");
        push_literal_page(&mut qb, limit, offset);
        qb.push(") p ON TRUE ORDER BY p.seq DESC");
        let rows = on_warm!(self, |c| qb.build().fetch_all(c))?;
        let first = rows
            .first()
            .ok_or_else(|| StoreError::Corrupt("the word's totals returned no row".into()))?;
        let total = first.try_get::<Option<i64>, _>("total")?.unwrap_or(0).max(0);
        let live = first.try_get::<Option<i64>, _>("live")?.unwrap_or(0).max(0) as u64;
        if first.try_get::<Option<bool>, _>("probed")? == Some(true) {
            // Probed: the page is the rows the walk found (none: one row of NULLs).
            let rows: Vec<PgRow> = rows
                .into_iter()
                .filter(|r| r.try_get::<Option<String>, _>("id").is_ok_and(|id| id.is_some()))
                .collect();
            Ok((total, live, Some(rows)))
        } else {
            Ok((total, live, None))
        }
    }

    /// Facets (`FACET_FIELDS` only) of the live assets a filtered search selects, from
    /// their packed rows: each match's row read once, its ids counted in a hash map here
    /// (no sort of ~9 value rows per match), then the ids named from the dictionary.
    async fn packed_facet_counts(
        &self,
        catalog: &str,
        req: &SearchRequest,
        fields: &[&str],
    ) -> StoreResult<Vec<(String, Vec<(String, u64)>)>> {
        use futures_util::TryStreamExt;
        let target = Target::assets(catalog, Scope::Live);
        let mut qb: QueryBuilder<Postgres> = QueryBuilder::new("SELECT p.f FROM asset_facets p ");
        match driver(&req.query, &target) {
            // The matches straight from their value index, in seq order (the probes of
            // `asset_facets` walk its key forwards); one row per asset.
            Some(Driver::Values {
                field,
                conds,
                repeats: false,
                ..
            }) => {
                qb.push("JOIN asset_values x ON x.seq = p.seq WHERE ");
                push_driver_rows(&mut qb, field, &conds, &target);
            }
            Some(Driver::Values { field, conds, .. }) => {
                qb.push("WHERE p.seq IN (SELECT x.seq FROM asset_values x WHERE ");
                push_driver_rows(&mut qb, field, &conds, &target);
                qb.push(")");
            }
            _ => {
                qb.push("WHERE p.seq IN (SELECT a.seq FROM assets a WHERE ");
                push_scope(&mut qb, catalog, Scope::Live);
                push_query(&mut qb, &req.query, &target);
                qb.push(")");
            }
        }
        let mut counts: HashMap<i32, u64> = HashMap::new();
        {
            let mut stream = qb.build_query_scalar::<Vec<i32>>().fetch(&self.pool);
            while let Some(ids) = stream.try_next().await? {
                for id in ids {
                    *counts.entry(id).or_default() += 1;
                }
            }
        }
        let names = self.facet_names(counts.keys().copied()).await?;
        let mut out: Vec<(String, Vec<(String, u64)>)> = fields.iter().map(|f| (f.to_string(), Vec::new())).collect();
        for (id, n) in counts {
            let (field, v) = names
                .get(&id)
                .ok_or_else(|| StoreError::Corrupt(format!("facet value id {id} is not in the dictionary")))?;
            if let Some(slot) = out.iter_mut().find(|(f, _)| f == field) {
                slot.1.push((v.clone(), n));
            }
        }
        Ok(out)
    }

    /// Recomputes what is derived from the assets and their values: the value rows'
    /// scope, `assets.added`, the maintained counts and word counts (after `mediadb
    /// migrate` copied them in, or to repair).
    pub async fn rebuild_counts(&self) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        // One grouped join over all assets, not a subquery per asset.
        sqlx::query(
            "UPDATE assets a SET added = x.n
             FROM (SELECT b.seq, max(v.n) AS n FROM assets b
                   LEFT JOIN asset_values v ON v.seq = b.seq AND v.field = $1
                   GROUP BY b.seq) x
             WHERE x.seq = a.seq AND a.added IS DISTINCT FROM x.n",
        )
        .bind(ADDED_FIELD)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE asset_values x SET scope = CASE WHEN a.state = 'live' THEN a.catalog END FROM assets a
             WHERE a.seq = x.seq AND x.scope IS DISTINCT FROM CASE WHEN a.state = 'live' THEN a.catalog END",
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM word_counts").execute(&mut *tx).await?;
        sqlx::query("DELETE FROM value_days").execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO value_days (catalog, field, day, n)
             SELECT scope, field, floor(floor(n) / $1)::bigint, COUNT(*) FROM asset_values
             WHERE scope IS NOT NULL AND abs(n) < $2 GROUP BY 1, 2, 3",
        )
        .bind(DAY_MS)
        .bind(BUCKETED)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO word_counts (catalog, word, n)
             SELECT a.catalog, w.word, COUNT(*) FROM assets a,
                  LATERAL (SELECT DISTINCT pg_catalog.\"left\"(s, $1) AS word
                           FROM pg_catalog.unnest(pg_catalog.string_to_array(a.fulltext, ' ')) AS s
                           WHERE s <> '') w
             WHERE a.state = 'live' GROUP BY a.catalog, w.word",
        )
        .bind(LEXEME_CHARS as i32)
        .execute(&mut *tx)
        .await?;
        // The packed facet rows from the value rows (the dictionary only grows: ids that
        // processes hold stay true).
        sqlx::query(
            "INSERT INTO facet_values (field, v) SELECT DISTINCT field, v FROM asset_values
             WHERE v IS NOT NULL AND field = ANY($1) ORDER BY 1, 2 ON CONFLICT (field, v) DO NOTHING",
        )
        .bind(FACET_FIELDS.iter().map(|f| f.to_string()).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM asset_facets").execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO asset_facets (seq, f)
             SELECT a.seq, COALESCE(p.f, '{}') FROM assets a
             LEFT JOIN (SELECT x.seq, array_agg(DISTINCT d.id ORDER BY d.id) AS f
                        FROM asset_values x JOIN facet_values d ON d.field = x.field AND d.v = x.v
                        GROUP BY x.seq) p ON p.seq = a.seq",
        )
        .execute(&mut *tx)
        .await?;
        rebuild_pairs(&mut tx).await?;
        sqlx::query("DELETE FROM asset_counts").execute(&mut *tx).await?;
        sqlx::query("DELETE FROM facet_counts").execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO asset_counts (catalog, state, n) SELECT catalog, state, COUNT(*) FROM assets \
             GROUP BY catalog, state",
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO facet_counts (catalog, field, v, n)
             SELECT a.catalog, x.field, x.v, COUNT(DISTINCT a.seq) FROM asset_values x JOIN assets a ON a.seq = x.seq
             WHERE a.state = 'live' AND x.v IS NOT NULL AND x.field = ANY($1)
             GROUP BY a.catalog, x.field, x.v",
        )
        .bind(FACET_FIELDS.iter().map(|f| f.to_string()).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The pool, for the embedded-to-PostgreSQL copy (`mediadb migrate`).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

fn now() -> String {
    crate::domain::dates::now_emdb()
}

/// PostgreSQL text cannot hold NUL, which SQLite (and a client) may send: it becomes
/// U+FFFD, so a lookup simply finds nothing instead of failing with a 500.
fn t(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(s)
    }
}

fn to(s: Option<&String>) -> Option<String> {
    s.map(|s| t(s).into_owned())
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

fn violated_constraint(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(d) => d.constraint().unwrap_or_default().to_string(),
        _ => String::new(),
    }
}

fn corrupt(what: &str) -> impl Fn(serde_json::Error) -> StoreError + '_ {
    move |e| StoreError::Corrupt(format!("{what}: {e}"))
}

const ASSET_COLUMNS: &str =
    "a.id, a.sourcepath, a.version, a.fields, a.blob_key, a.filename, a.filesize, a.md5hex, a.sha256hex, a.state, a.deleted_at, a.deleted_by";

fn asset_from_row(row: &PgRow) -> StoreResult<StoredAsset> {
    // By position from `id`, the first of `ASSET_COLUMNS` (statements put other columns
    // before or after them): one lookup by name per row instead of twelve.
    let at = sqlx::Column::ordinal(row.try_column("id")?);
    let fields: &str = row.try_get(at + 3)?;
    let mut fields: Map<String, Value> = serde_json::from_str(fields).map_err(corrupt("asset fields"))?;
    let blob_key: Option<String> = row.try_get(at + 4)?;
    let original = match blob_key {
        Some(blob_key) => Some(Original {
            blob_key,
            filename: row.try_get::<Option<String>, _>(at + 5)?.unwrap_or_default(),
            size: row.try_get::<Option<i64>, _>(at + 6)?.unwrap_or(0) as u64,
            md5hex: row.try_get::<Option<String>, _>(at + 7)?.unwrap_or_default(),
            sha256hex: row.try_get::<Option<String>, _>(at + 8)?.unwrap_or_default(),
        }),
        None => None,
    };
    if row.try_get::<&str, _>(at + 9)? == "trashed" {
        if let Some(by) = row.try_get::<Option<String>, _>(at + 11)? {
            fields.insert("deletedby".into(), Value::String(by));
        }
        if let Some(when) = row.try_get::<Option<String>, _>(at + 10)? {
            fields.insert("deleteddate".into(), Value::String(when));
        }
    }
    Ok(StoredAsset {
        asset: Asset {
            id: row.try_get(at)?,
            sourcepath: row.try_get(at + 1)?,
            fields,
            original,
        },
        version: row.try_get(at + 2)?,
    })
}

async fn write_index(tx: &mut PgConnection, table: &str, seq: i64, rows: &[IndexRow]) -> StoreResult<()> {
    sqlx::query(&format!("DELETE FROM {table} WHERE seq = $1"))
        .bind(seq)
        .execute(&mut *tx)
        .await?;
    for chunk in rows.chunks(200) {
        let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(format!("INSERT INTO {table} (seq, field, v, n) "));
        qb.push_values(chunk, |mut b, r| {
            b.push_bind(seq)
                .push_bind(t(&r.field).into_owned())
                .push_bind(to(r.v.as_ref()))
                .push_bind(r.n);
        });
        qb.build().execute(&mut *tx).await?;
    }
    Ok(())
}

/// Replaces a live asset's value rows (in the scope of its catalog); returns the facet
/// values it held before.
async fn write_asset_values(
    tx: &mut PgConnection,
    catalog: &str,
    seq: i64,
    rows: &[IndexRow],
) -> StoreResult<Vec<IndexRow>> {
    let old = sqlx::query("DELETE FROM asset_values WHERE seq = $1 RETURNING field, v, n")
        .bind(seq)
        .fetch_all(&mut *tx)
        .await?;
    let old = old
        .iter()
        .map(|r| {
            Ok(IndexRow {
                field: r.try_get("field")?,
                v: r.try_get("v")?,
                n: r.try_get("n")?,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    let rows: Vec<(i64, &IndexRow)> = rows.iter().map(|r| (seq, r)).collect();
    insert_values(tx, catalog, &rows).await?;
    Ok(old)
}

/// Inserts value rows of any number of live assets of a catalog in one statement per
/// 20,000 rows (arrays bound as parameters, so the statement does not grow with the rows).
async fn insert_values(tx: &mut PgConnection, catalog: &str, rows: &[(i64, &IndexRow)]) -> StoreResult<()> {
    for chunk in rows.chunks(20_000) {
        let seqs: Vec<i64> = chunk.iter().map(|(s, _)| *s).collect();
        let fields: Vec<String> = chunk.iter().map(|(_, r)| t(&r.field).into_owned()).collect();
        let vs: Vec<Option<String>> = chunk.iter().map(|(_, r)| to(r.v.as_ref())).collect();
        let ns: Vec<Option<f64>> = chunk.iter().map(|(_, r)| r.n).collect();
        sqlx::query(
            "INSERT INTO asset_values (scope, seq, field, v, n)
             SELECT $1, * FROM UNNEST($2::bigint[], $3::text[], $4::text[], $5::float8[])",
        )
        .bind(t(catalog))
        .bind(seqs)
        .bind(fields)
        .bind(vs)
        .bind(ns)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// Sets assets' packed facet rows (`pack_facets`), replacing what they held.
async fn write_facets(tx: &mut PgConnection, seqs: &[i64], packed: &[String]) -> StoreResult<()> {
    for (seqs, packed) in seqs.chunks(20_000).zip(packed.chunks(20_000)) {
        sqlx::query(
            "INSERT INTO asset_facets (seq, f) SELECT s, f::int[] FROM UNNEST($1::bigint[], $2::text[]) AS u(s, f)
             ON CONFLICT (seq) DO UPDATE SET f = excluded.f",
        )
        .bind(seqs)
        .bind(packed)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// Moves `facet_pairs` by assets leaving the live scope (`minus`: their stored packed
/// rows, read before they change) and entering it (`plus`: their stored rows; `packed`:
/// rows about to be stored). One statement, its rows locked in key order; pairs that
/// cancel out (an edit that keeps the facets) touch nothing.
async fn shift_pairs(
    tx: &mut PgConnection,
    catalog: &str,
    minus: &[i64],
    plus: &[i64],
    packed: &[String],
) -> StoreResult<()> {
    if minus.is_empty() && plus.is_empty() && packed.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO facet_pairs (catalog, a, b, n)
         SELECT $1, x, y, SUM(d.s) FROM (
             SELECT p.f, -1 AS s FROM asset_facets p WHERE p.seq = ANY($2)
             UNION ALL SELECT p.f, 1 FROM asset_facets p WHERE p.seq = ANY($3)
             UNION ALL SELECT u.f::int[], 1 FROM UNNEST($4::text[]) AS u(f)
         ) d, unnest(d.f) x, unnest(d.f) y
         GROUP BY x, y HAVING SUM(d.s) <> 0 ORDER BY x, y
         ON CONFLICT (catalog, a, b) DO UPDATE SET n = facet_pairs.n + excluded.n",
    )
    .bind(t(catalog))
    .bind(minus)
    .bind(plus)
    .bind(packed)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// `facet_pairs` again from the live assets' packed rows, in key order: a value's pairs
/// on a few adjacent pages (in hash order they were one page each, and its facets took
/// 8 ms instead of 1).
async fn rebuild_pairs(tx: &mut PgConnection) -> StoreResult<()> {
    sqlx::query("DELETE FROM facet_pairs").execute(&mut *tx).await?;
    sqlx::query(
        "INSERT INTO facet_pairs (catalog, a, b, n)
         SELECT a.catalog, x, y, COUNT(*)
         FROM assets a JOIN asset_facets p ON p.seq = a.seq, unnest(p.f) x, unnest(p.f) y
         WHERE a.state = 'live'
         GROUP BY 1, 2, 3
         ORDER BY 1, 2, 3",
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The stored value rows of assets that the maintained counts hold (facet values and
/// numbers), read before they leave or after they enter the live scope.
async fn stored_counted_rows(tx: &mut PgConnection, seqs: &[i64]) -> StoreResult<Vec<IndexRow>> {
    let rows = sqlx::query(
        "SELECT field, v, n FROM asset_values WHERE seq = ANY($1)
             AND ((field = ANY($2) AND v IS NOT NULL) OR n IS NOT NULL)",
    )
    .bind(seqs)
    .bind(FACET_FIELDS.iter().map(|f| f.to_string()).collect::<Vec<_>>())
    .fetch_all(&mut *tx)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(IndexRow {
                field: r.try_get("field")?,
                v: r.try_get("v")?,
                n: r.try_get("n")?,
            })
        })
        .collect()
}

/// The width of a `value_days` bucket: a day in epoch milliseconds (dates are held so).
const DAY_MS: f64 = 86_400_000.0;
/// Numbers at least this large (or not finite) are in no bucket: the day of every
/// bucketed number fits a BIGINT, in Rust and in SQL alike.
const BUCKETED: f64 = 1e15;

/// The `value_days` bucket of a number (`floor(floor(n) / DAY_MS)`, as migration 0007
/// computes it): `floor(n)` is an exact integer below 2^53, and an integer's quotient by
/// the day never rounds across a whole number, so the bucket is exactly the day that
/// holds n (a bucket and the index ranges beside it never both count a row).
fn day_of(n: f64) -> Option<i64> {
    (n.abs() < BUCKETED).then(|| (n.floor() / DAY_MS).floor() as i64)
}

/// The whole buckets inside `[min, max]` (`None`: unbounded), as `[first, end)`, when
/// there are any.
fn whole_days(min: Option<f64>, max: Option<f64>) -> Option<(i64, i64)> {
    let lo = min.unwrap_or(f64::NEG_INFINITY).max(-BUCKETED);
    let hi = max.unwrap_or(f64::INFINITY).min(BUCKETED);
    if lo.is_nan() || hi.is_nan() {
        return None;
    }
    // k * DAY_MS is exact here: the first day starting at or after lo, the last ending
    // at or before hi.
    let mut first = (lo / DAY_MS).ceil() as i64;
    while (first as f64) * DAY_MS < lo {
        first += 1;
    }
    let mut end = (hi / DAY_MS).floor() as i64;
    while (end as f64) * DAY_MS > hi {
        end -= 1;
    }
    (first < end).then_some((first, end))
}

/// The words of a stored `fulltext` as the full-text index and `word_counts` hold them:
/// each once, cut to `LEXEME_CHARS` characters (`mediadb_words` in migrations/postgres/0006).
fn text_words(fulltext: &str) -> std::collections::BTreeSet<String> {
    fulltext
        .split(' ')
        .filter(|w| !w.is_empty())
        .map(|w| w.chars().take(LEXEME_CHARS).collect())
        .collect()
}

/// The `fulltext` column of an asset as stored.
fn stored_fulltext(asset: &Asset) -> String {
    t(&fulltext(asset)).into_owned()
}

/// Changes to the maintained counts (facets and words of live assets, totals per state),
/// gathered over a write transaction and applied at its end in key order, so concurrent
/// writers lock the count rows in the same order and cannot deadlock on them.
#[derive(Default)]
struct CountDelta {
    facets: std::collections::BTreeMap<(String, String), i64>,
    days: std::collections::BTreeMap<(String, i64), i64>,
    words: std::collections::BTreeMap<String, i64>,
    totals: std::collections::BTreeMap<&'static str, i64>,
}

impl CountDelta {
    /// A live asset's text enters (`sign` 1) or leaves (-1) the word counts.
    fn words(&mut self, fulltext: &str, sign: i64) {
        for w in text_words(fulltext) {
            *self.words.entry(w).or_default() += sign;
        }
    }
    /// Assets enter (`sign` 1) or leave (-1) a state; `rows` are their facet values,
    /// counted only for live assets.
    fn assets(&mut self, state: &'static str, count: i64, rows: &[IndexRow], sign: i64) {
        *self.totals.entry(state).or_default() += sign * count;
        if state == "live" {
            self.values(rows, sign);
        }
    }
    fn values(&mut self, rows: &[IndexRow], sign: i64) {
        for r in rows {
            if let (true, Some(v)) = (FACET_FIELDS.contains(&r.field.as_str()), &r.v) {
                *self.facets.entry((r.field.clone(), v.clone())).or_default() += sign;
            }
            if let Some(day) = r.n.and_then(day_of) {
                *self.days.entry((r.field.clone(), day)).or_default() += sign;
            }
        }
    }
    /// One statement for every count table (one round trip inside the window in which
    /// the transaction holds count rows that concurrent writers of the same values
    /// wait for). PostgreSQL runs the main INSERT first, then the WITH inserts in their
    /// order, so every writer locks count rows in one order: no deadlock.
    async fn apply(self, tx: &mut PgConnection, catalog: &str) -> StoreResult<()> {
        let facets: Vec<_> = self.facets.into_iter().filter(|(_, d)| *d != 0).collect();
        let days: Vec<_> = self.days.into_iter().filter(|(_, d)| *d != 0).collect();
        let words: Vec<_> = self.words.into_iter().filter(|(_, d)| *d != 0).collect();
        let totals: Vec<_> = self.totals.into_iter().filter(|(_, d)| *d != 0).collect();
        if facets.is_empty() && days.is_empty() && words.is_empty() && totals.is_empty() {
            return Ok(());
        }
        let (words, word_ds): (Vec<String>, Vec<i64>) = words.into_iter().unzip();
        sqlx::query(
            "WITH f AS (INSERT INTO facet_counts (catalog, field, v, n)
                        SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::bigint[])
                        ON CONFLICT (catalog, field, v) DO UPDATE SET n = facet_counts.n + excluded.n),
                  d AS (INSERT INTO value_days (catalog, field, day, n)
                        SELECT $1, * FROM UNNEST($5::text[], $6::bigint[], $7::bigint[])
                        ON CONFLICT (catalog, field, day) DO UPDATE SET n = value_days.n + excluded.n),
                  w AS (INSERT INTO word_counts (catalog, word, n)
                        SELECT $1, * FROM UNNEST($8::text[], $9::bigint[])
                        ON CONFLICT (catalog, word) DO UPDATE SET n = word_counts.n + excluded.n)
             INSERT INTO asset_counts (catalog, state, n)
             SELECT $1, * FROM UNNEST($10::text[], $11::bigint[])
             ON CONFLICT (catalog, state) DO UPDATE SET n = asset_counts.n + excluded.n",
        )
        .bind(t(catalog))
        .bind(facets.iter().map(|((f, _), _)| t(f).into_owned()).collect::<Vec<_>>())
        .bind(facets.iter().map(|((_, v), _)| t(v).into_owned()).collect::<Vec<_>>())
        .bind(facets.iter().map(|(_, d)| *d).collect::<Vec<_>>())
        .bind(days.iter().map(|((f, _), _)| t(f).into_owned()).collect::<Vec<_>>())
        .bind(days.iter().map(|((_, k), _)| *k).collect::<Vec<_>>())
        .bind(days.iter().map(|(_, d)| *d).collect::<Vec<_>>())
        .bind(words)
        .bind(word_ds)
        .bind(totals.iter().map(|(s, _)| s.to_string()).collect::<Vec<_>>())
        .bind(totals.iter().map(|(_, d)| *d).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}

fn record_kind(searchtype: &str) -> impl Fn(&str) -> Option<FieldKind> + '_ {
    move |f| Some(fields::record_field_kind(searchtype, f))
}

async fn upsert_record(
    tx: &mut PgConnection,
    catalog: &str,
    searchtype: &str,
    id: &str,
    data: &Map<String, Value>,
) -> StoreResult<()> {
    let text = serde_json::to_string(data).map_err(corrupt("record"))?;
    let full = fulltext_of(data, &|f| f != "id", "");
    let ts = now();
    let row = sqlx::query(
        "INSERT INTO records (catalog, searchtype, id, data, fulltext, created, modified) VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (catalog, searchtype, id) DO UPDATE SET data = excluded.data, fulltext = excluded.fulltext,
             modified = excluded.modified
         RETURNING seq",
    )
    .bind(t(catalog))
    .bind(t(searchtype))
    .bind(t(id))
    .bind(text)
    .bind(t(&full))
    .bind(&ts)
    .bind(&ts)
    .fetch_one(&mut *tx)
    .await?;
    let seq: i64 = row.try_get("seq")?;
    let rows = index_values(data, &record_kind(searchtype));
    write_index(tx, "record_values", seq, &rows).await
}

/// The field whose value the newest-first page sorts by (`assets.added`, migration 0010).
const ADDED_FIELD: &str = "assetaddeddate";

/// `assets.added` of an asset with value rows `rows`: its `assetaddeddate` as a number,
/// the largest if it has several (as `max(n)` in migration 0010).
fn added_of(rows: &[IndexRow]) -> Option<f64> {
    rows.iter()
        .filter(|r| r.field == ADDED_FIELD)
        .filter_map(|r| r.n)
        .reduce(f64::max)
}

/// Inserts an asset's row (not its index) and returns its `seq`; a taken id or live
/// sourcepath is a `Conflict` naming which.
async fn insert_asset_row(
    tx: &mut PgConnection,
    catalog: &str,
    asset: &Asset,
    rows: &[IndexRow],
    ts: &str,
) -> StoreResult<i64> {
    let fields = serde_json::to_string(&asset.fields).map_err(corrupt("asset fields"))?;
    let o = asset.original.as_ref();
    let res = sqlx::query_scalar(
        "INSERT INTO assets (catalog, id, sourcepath, fields, blob_key, filename, filesize, md5hex, sha256hex,
                             fulltext, created, modified, added)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING seq",
    )
    .bind(t(catalog))
    .bind(t(&asset.id))
    .bind(t(&asset.sourcepath))
    .bind(fields)
    .bind(o.map(|o| &o.blob_key))
    .bind(to(o.map(|o| &o.filename)))
    .bind(o.map(|o| o.size as i64))
    .bind(o.map(|o| &o.md5hex))
    .bind(o.map(|o| &o.sha256hex))
    .bind(stored_fulltext(asset))
    .bind(ts)
    .bind(ts)
    .bind(added_of(rows))
    .fetch_one(&mut *tx)
    .await;
    match res {
        Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(
            if violated_constraint(&e).contains("sourcepath") {
                format!("sourcepath \"{}\" is taken by another asset", asset.sourcepath)
            } else {
                format!("asset id \"{}\" is taken", asset.id)
            },
        )),
        r => Ok(r?),
    }
}

async fn write_list_items(tx: &mut PgConnection, catalog: &str, items: &[ListItem]) -> StoreResult<()> {
    // Always the same lock order, so two uploads naming the same list values in a
    // different order cannot deadlock.
    let mut items: Vec<&ListItem> = items.iter().collect();
    items.sort_by(|a, b| (&a.table, &a.id).cmp(&(&b.table, &b.id)));
    for it in items {
        let existing: Option<String> =
            sqlx::query_scalar("SELECT data FROM records WHERE catalog = $1 AND searchtype = $2 AND id = $3")
                .bind(t(catalog))
                .bind(t(&it.table))
                .bind(t(&it.id))
                .fetch_optional(&mut *tx)
                .await?;
        let mut data: Map<String, Value> = match existing {
            Some(t) => serde_json::from_str(&t).map_err(corrupt("record"))?,
            None => Map::new(),
        };
        if data.get("name").and_then(Value::as_str) == Some(it.name.as_str()) {
            continue;
        }
        data.insert("id".into(), Value::String(it.id.clone()));
        data.insert("name".into(), Value::String(it.name.clone()));
        upsert_record(tx, catalog, &it.table, &it.id, &data).await?;
    }
    Ok(())
}

fn user_from_row(r: &PgRow) -> StoreResult<User> {
    Ok(User {
        id: r.try_get("id")?,
        password_hash: r.try_get("password_hash")?,
        firstname: r.try_get("firstname")?,
        lastname: r.try_get("lastname")?,
        email: r.try_get("email")?,
        screenname: r.try_get("screenname")?,
        enabled: r.try_get("enabled")?,
        legacy_key_hash: r.try_get("legacy_key_hash")?,
    })
}

fn job_from_row(r: &PgRow) -> StoreResult<Job> {
    let payload: String = r.try_get("payload")?;
    let progress: String = r.try_get("progress")?;
    let result: Option<String> = r.try_get("result")?;
    Ok(Job {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        catalog: r.try_get("catalog")?,
        payload: serde_json::from_str(&payload).map_err(corrupt("job payload"))?,
        state: r.try_get("state")?,
        attempts: r.try_get("attempts")?,
        progress: serde_json::from_str(&progress).map_err(corrupt("job progress"))?,
        result: result
            .map(|t| serde_json::from_str(&t))
            .transpose()
            .map_err(corrupt("job result"))?,
        created: r.try_get("created")?,
        updated: r.try_get("updated")?,
    })
}

fn state_of(scope: Scope) -> &'static str {
    match scope {
        Scope::Live => "live",
        Scope::Trash => "trashed",
    }
}

/// Queues a job inside a caller's transaction (or on a plain connection).
async fn insert_job(conn: &mut PgConnection, kind: &str, catalog: &str, payload: &Value) -> StoreResult<String> {
    let id = new_job_id();
    let ts = now();
    sqlx::query(
        "INSERT INTO jobs (id, kind, catalog, payload, run_after, created, updated)
         VALUES ($1, $2, $3, $4, now(), $5, $6)",
    )
    .bind(&id)
    .bind(t(kind))
    .bind(t(catalog))
    .bind(payload.to_string())
    .bind(&ts)
    .bind(&ts)
    .execute(&mut *conn)
    .await?;
    Ok(id)
}

#[async_trait]
impl MetaStore for PostgresStore {
    async fn migrate(&self) -> StoreResult<()> {
        let migrations: Vec<Migration> = MIGRATIONS
            .iter()
            .map(|(v, d, sql)| Migration::new(*v, Cow::Borrowed(*d), MigrationType::Simple, Cow::Borrowed(*sql), false))
            .collect();
        // sqlx takes an advisory lock: processes starting together migrate one at a time.
        let migrator = Migrator {
            migrations: Cow::Owned(migrations),
            ..Migrator::DEFAULT
        };
        migrator
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Corrupt(format!("migration failed: {e}")))?;
        // A bulk load that died before its end left indexes out.
        self.ensure_bulk_indexes().await?;
        // Unlike SQLite, running jobs are NOT requeued here: other processes may be
        // running them. Expired leases come back through `requeue_expired_jobs`.
        Ok(())
    }

    async fn analyze(&self) -> StoreResult<()> {
        sqlx::query("ANALYZE").execute(&self.pool).await?;
        Ok(())
    }

    async fn auth_epoch(&self) -> StoreResult<i64> {
        // Changed by triggers (migration 0003) in the same transaction as the change.
        Ok(sqlx::query_scalar("SELECT n FROM auth_epoch WHERE id = 1")
            .fetch_one(&self.pool)
            .await?)
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn user_count(&self) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await?;
        Ok(n as u64)
    }

    async fn get_user(&self, id: &str) -> StoreResult<Option<User>> {
        let row = sqlx::query("SELECT * FROM users WHERE id = $1")
            .bind(t(id))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn create_user(&self, u: &User, groups: &[&str]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        let res = sqlx::query(
            "INSERT INTO users (id, password_hash, firstname, lastname, email, screenname, enabled, created, legacy_key_hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(t(&u.id))
        .bind(&u.password_hash)
        .bind(t(&u.firstname))
        .bind(t(&u.lastname))
        .bind(t(&u.email))
        .bind(t(&u.screenname))
        .bind(u.enabled)
        .bind(now())
        .bind(&u.legacy_key_hash)
        .execute(&mut *tx)
        .await;
        match res {
            Err(e) if is_unique_violation(&e) => return Err(StoreError::Conflict(format!("user \"{}\" exists", u.id))),
            r => r?,
        };
        for g in groups {
            sqlx::query("INSERT INTO user_groups (user_id, group_id) VALUES ($1, $2)")
                .bind(t(&u.id))
                .bind(t(g))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn ensure_group(&self, id: &str, name: &str, permissions: &[&str]) -> StoreResult<()> {
        let perms = serde_json::to_string(permissions).map_err(corrupt("permissions"))?;
        sqlx::query(
            "INSERT INTO groups (id, name, permissions) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET permissions = excluded.permissions",
        )
        .bind(t(id))
        .bind(t(name))
        .bind(perms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn user_permissions(&self, user_id: &str) -> StoreResult<Vec<String>> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT g.permissions FROM groups g JOIN user_groups ug ON ug.group_id = g.id WHERE ug.user_id = $1",
        )
        .bind(t(user_id))
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<String> = Vec::new();
        for r in rows {
            let list: Vec<String> = serde_json::from_str(&r).map_err(corrupt("group permissions"))?;
            for p in list {
                if !out.contains(&p) {
                    out.push(p);
                }
            }
        }
        Ok(out)
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        let rows = sqlx::query("SELECT * FROM users ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(user_from_row).collect()
    }

    async fn update_user(&self, u: &User) -> StoreResult<()> {
        let r = sqlx::query(
            "UPDATE users SET password_hash = $1, firstname = $2, lastname = $3, email = $4, screenname = $5,
                    enabled = $6, legacy_key_hash = $7 WHERE id = $8",
        )
        .bind(&u.password_hash)
        .bind(t(&u.firstname))
        .bind(t(&u.lastname))
        .bind(t(&u.email))
        .bind(t(&u.screenname))
        .bind(u.enabled)
        .bind(&u.legacy_key_hash)
        .bind(t(&u.id))
        .execute(&self.pool)
        .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn delete_user(&self, id: &str) -> StoreResult<bool> {
        let r = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(t(id))
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn user_groups(&self, user_id: &str) -> StoreResult<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT group_id FROM user_groups WHERE user_id = $1 ORDER BY group_id")
                .bind(t(user_id))
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn set_user_group(&self, user_id: &str, group_id: &str, member: bool) -> StoreResult<bool> {
        let r = if member {
            sqlx::query("INSERT INTO user_groups (user_id, group_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(t(user_id))
                .bind(t(group_id))
                .execute(&self.pool)
                .await
        } else {
            sqlx::query("DELETE FROM user_groups WHERE user_id = $1 AND group_id = $2")
                .bind(t(user_id))
                .bind(t(group_id))
                .execute(&self.pool)
                .await
        };
        match r {
            Ok(r) => Ok(r.rows_affected() > 0),
            Err(sqlx::Error::Database(d)) if d.is_foreign_key_violation() => Err(StoreError::NotFound),
            Err(e) => Err(e.into()),
        }
    }

    async fn list_groups(&self) -> StoreResult<Vec<Group>> {
        let rows = sqlx::query("SELECT id, name, permissions FROM groups ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let perms: String = r.try_get("permissions")?;
                Ok(Group {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    permissions: serde_json::from_str(&perms).map_err(corrupt("group permissions"))?,
                })
            })
            .collect()
    }

    async fn get_group(&self, id: &str) -> StoreResult<Option<Group>> {
        Ok(self.list_groups().await?.into_iter().find(|g| g.id == id))
    }

    async fn put_group(&self, g: &Group) -> StoreResult<()> {
        let perms = serde_json::to_string(&g.permissions).map_err(corrupt("permissions"))?;
        sqlx::query(
            "INSERT INTO groups (id, name, permissions) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, permissions = excluded.permissions",
        )
        .bind(t(&g.id))
        .bind(t(&g.name))
        .bind(perms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn delete_group(&self, id: &str) -> StoreResult<bool> {
        let r = sqlx::query("DELETE FROM groups WHERE id = $1")
            .bind(t(id))
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn find_user_by_legacy_key(&self, key_hash: &str) -> StoreResult<Option<User>> {
        let row = sqlx::query("SELECT * FROM users WHERE legacy_key_hash = $1")
            .bind(t(key_hash))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn record_login_failure(&self, user_id: &str, address: &str) -> StoreResult<()> {
        sqlx::query("INSERT INTO login_failures (user_id, address, at) VALUES ($1, $2, $3)")
            .bind(t(user_id))
            .bind(t(address))
            .bind(now())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn login_failures_for_user(&self, user_id: &str, since: &str) -> StoreResult<(u64, Option<String>)> {
        let r =
            sqlx::query("SELECT COUNT(*) AS n, MAX(at) AS last FROM login_failures WHERE user_id = $1 AND at >= $2")
                .bind(t(user_id))
                .bind(t(since))
                .fetch_one(&self.pool)
                .await?;
        Ok((r.try_get::<i64, _>("n")? as u64, r.try_get("last")?))
    }

    async fn login_failures_from(&self, address: &str, since: &str) -> StoreResult<(u64, Option<String>)> {
        let r =
            sqlx::query("SELECT COUNT(*) AS n, MAX(at) AS last FROM login_failures WHERE address = $1 AND at >= $2")
                .bind(t(address))
                .bind(t(since))
                .fetch_one(&self.pool)
                .await?;
        Ok((r.try_get::<i64, _>("n")? as u64, r.try_get("last")?))
    }

    async fn clear_login_failures(&self, user_id: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM login_failures WHERE user_id = $1")
            .bind(t(user_id))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn list_keys(&self, user_id: &str) -> StoreResult<Vec<KeyInfo>> {
        let rows = sqlx::query(
            "SELECT token_hash, created, expires, revoked FROM api_keys WHERE user_id = $1 ORDER BY created",
        )
        .bind(t(user_id))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let h: String = r.try_get("token_hash")?;
                Ok(KeyInfo {
                    id: h.chars().take(12).collect(),
                    created: r.try_get("created")?,
                    expires: r.try_get("expires")?,
                    revoked: r.try_get("revoked")?,
                })
            })
            .collect()
    }

    async fn revoke_key_by_id(&self, user_id: &str, id: &str) -> StoreResult<bool> {
        if id.len() < 8 || !id.chars().all(|c| c.is_ascii_hexdigit()) {
            return Ok(false);
        }
        let r = sqlx::query(
            "UPDATE api_keys SET revoked = $1 WHERE user_id = $2 AND substr(token_hash, 1, $3) = $4 AND revoked IS NULL",
        )
        .bind(now())
        .bind(t(user_id))
        .bind(id.len() as i32)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn insert_key(&self, token_hash: &str, user_id: &str, expires: Option<&str>) -> StoreResult<()> {
        sqlx::query("INSERT INTO api_keys (token_hash, user_id, created, expires) VALUES ($1, $2, $3, $4)")
            .bind(t(token_hash))
            .bind(t(user_id))
            .bind(now())
            .bind(expires)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn lookup_key(&self, token_hash: &str) -> StoreResult<Option<KeyRecord>> {
        let row = sqlx::query("SELECT user_id, expires, revoked FROM api_keys WHERE token_hash = $1")
            .bind(t(token_hash))
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(KeyRecord {
                user_id: r.try_get("user_id")?,
                expires: r.try_get("expires")?,
                revoked: r.try_get::<Option<String>, _>("revoked")?.is_some(),
            })
        })
        .transpose()
    }

    async fn revoke_key(&self, token_hash: &str) -> StoreResult<bool> {
        let r = sqlx::query("UPDATE api_keys SET revoked = $1 WHERE token_hash = $2 AND revoked IS NULL")
            .bind(now())
            .bind(t(token_hash))
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn revoke_user_keys(&self, user_id: &str) -> StoreResult<u64> {
        let r = sqlx::query("UPDATE api_keys SET revoked = $1 WHERE user_id = $2 AND revoked IS NULL")
            .bind(now())
            .bind(t(user_id))
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    async fn insert_asset(&self, catalog: &str, asset: &Asset, items: &[ListItem]) -> StoreResult<()> {
        let rows = unique_rows(asset);
        let packed = self.pack_facets(&[&rows]).await?;
        let mut tx = self.pool.begin().await?;
        let seq = insert_asset_row(&mut tx, catalog, asset, &rows, &now()).await?;
        write_asset_values(&mut tx, catalog, seq, &rows).await?;
        write_facets(&mut tx, &[seq], &packed).await?;
        shift_pairs(&mut tx, catalog, &[], &[seq], &[]).await?;
        write_list_items(&mut tx, catalog, items).await?;
        let mut delta = CountDelta::default();
        delta.assets("live", 1, &rows, 1);
        delta.words(&stored_fulltext(asset), 1);
        delta.apply(&mut tx, catalog).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn insert_asset_with_job(
        &self,
        catalog: &str,
        asset: &Asset,
        items: &[ListItem],
        kind: &str,
        payload: &Value,
    ) -> StoreResult<String> {
        let rows = unique_rows(asset);
        let packed = self.pack_facets(&[&rows]).await?;
        let mut tx = self.pool.begin().await?;
        let seq = insert_asset_row(&mut tx, catalog, asset, &rows, &now()).await?;
        write_asset_values(&mut tx, catalog, seq, &rows).await?;
        write_facets(&mut tx, &[seq], &packed).await?;
        shift_pairs(&mut tx, catalog, &[], &[seq], &[]).await?;
        write_list_items(&mut tx, catalog, items).await?;
        let mut delta = CountDelta::default();
        delta.assets("live", 1, &rows, 1);
        delta.words(&stored_fulltext(asset), 1);
        delta.apply(&mut tx, catalog).await?;
        let job = insert_job(&mut tx, kind, catalog, payload).await?;
        tx.commit().await?;
        Ok(job)
    }

    async fn blob_referenced(&self, key: &str) -> StoreResult<bool> {
        // A scan (no index on blob keys): only start-up recovery asks, for the few
        // blobs that were being written when a process died.
        let found: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM assets WHERE blob_key = $1 OR strpos(fields, $1) > 0)")
                .bind(t(key))
                .fetch_one(&self.pool)
                .await?;
        Ok(found)
    }

    async fn get_asset_in(&self, catalog: &str, id: &str, scope: Scope) -> StoreResult<Option<StoredAsset>> {
        let sql = format!("SELECT {ASSET_COLUMNS} FROM assets a WHERE a.catalog = $1 AND a.id = $2 AND a.state = $3");
        let row = on_warm!(self, |c| sqlx::query(&sql)
            .bind(t(catalog))
            .bind(t(id))
            .bind(state_of(scope))
            .fetch_optional(c))?;
        row.as_ref().map(asset_from_row).transpose()
    }

    async fn get_asset_by_sourcepath(&self, catalog: &str, sourcepath: &str) -> StoreResult<Option<StoredAsset>> {
        let row = sqlx::query(&format!(
            "SELECT {ASSET_COLUMNS} FROM assets a WHERE a.catalog = $1 AND a.sourcepath = $2 AND a.state = 'live'"
        ))
        .bind(t(catalog))
        .bind(t(sourcepath))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(asset_from_row).transpose()
    }

    async fn live_sourcepaths_numbered(&self, catalog: &str, prefix: &str) -> StoreResult<Vec<String>> {
        let (lower, upper) = super::numbered_bounds(prefix)?;
        // sourcepath is COLLATE "C": byte order, as the bounds assume.
        Ok(sqlx::query_scalar(
            "SELECT sourcepath FROM assets WHERE catalog = $1 AND state = 'live' AND sourcepath >= $2 AND sourcepath < $3",
        )
        .bind(t(catalog))
        .bind(t(&lower))
        .bind(t(&upper))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn asset_id_taken(&self, catalog: &str, id: &str) -> StoreResult<bool> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM assets WHERE catalog = $1 AND id = $2")
            .bind(t(catalog))
            .bind(t(id))
            .fetch_one(&self.pool)
            .await?;
        Ok(n > 0)
    }

    async fn update_asset(
        &self,
        catalog: &str,
        asset: &Asset,
        version: i64,
        items: &[ListItem],
        audit: Option<&AuditRecord>,
    ) -> StoreResult<()> {
        let fields = serde_json::to_string(&asset.fields).map_err(corrupt("asset fields"))?;
        let o = asset.original.as_ref();
        let text = stored_fulltext(asset);
        let rows = unique_rows(asset);
        let packed = self.pack_facets(&[&rows]).await?;
        let mut tx = self.pool.begin().await?;
        // The state and version guards make a write after a delete, or over a
        // concurrent write, change nothing (a concurrent writer waits for our row lock,
        // then re-checks the guards against the committed row). The row is locked
        // first to read the text it replaces (its words leave the word counts).
        let old: Option<(i64, String)> = sqlx::query_as(
            "SELECT seq, fulltext FROM assets WHERE catalog = $1 AND id = $2 AND state = 'live' AND version = $3
             FOR UPDATE",
        )
        .bind(t(catalog))
        .bind(t(&asset.id))
        .bind(version)
        .fetch_optional(&mut *tx)
        .await?;
        let res = match &old {
            None => Ok(None),
            Some((seq, _)) => {
                sqlx::query(
                    "UPDATE assets SET version = version + 1, fields = $1, sourcepath = $2, blob_key = $3,
                            filename = $4, filesize = $5, md5hex = $6, sha256hex = $7, fulltext = $8, modified = $9,
                            added = $12
                     WHERE seq = $10 AND state = 'live' AND version = $11 RETURNING seq",
                )
                .bind(fields)
                .bind(t(&asset.sourcepath))
                .bind(o.map(|o| &o.blob_key))
                .bind(to(o.map(|o| &o.filename)))
                .bind(o.map(|o| o.size as i64))
                .bind(o.map(|o| &o.md5hex))
                .bind(o.map(|o| &o.sha256hex))
                .bind(&text)
                .bind(now())
                .bind(seq)
                .bind(version)
                .bind(added_of(&rows))
                .fetch_optional(&mut *tx)
                .await
            }
        };
        let row = match res {
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Conflict(format!(
                    "sourcepath \"{}\" is taken by another asset",
                    asset.sourcepath
                )))
            }
            r => r?,
        };
        let Some(row) = row else {
            drop(tx);
            let live: Option<i64> =
                sqlx::query_scalar("SELECT version FROM assets WHERE catalog = $1 AND id = $2 AND state = 'live'")
                    .bind(t(catalog))
                    .bind(t(&asset.id))
                    .fetch_optional(&self.pool)
                    .await?;
            return Err(if live.is_some() {
                StoreError::Stale
            } else {
                StoreError::NotFound
            });
        };
        let seq: i64 = row.try_get("seq")?;
        let old_rows = write_asset_values(&mut tx, catalog, seq, &rows).await?;
        shift_pairs(&mut tx, catalog, &[seq], &[], &packed).await?;
        write_facets(&mut tx, &[seq], &packed).await?;
        write_list_items(&mut tx, catalog, items).await?;
        if let Some(a) = audit {
            upsert_record(&mut tx, catalog, "auditlog", &a.id, &a.data).await?;
        }
        let mut delta = CountDelta::default();
        delta.values(&old_rows, -1);
        delta.values(&rows, 1);
        if let Some((_, old_text)) = &old {
            delta.words(old_text, -1);
        }
        delta.words(&text, 1);
        delta.apply(&mut tx, catalog).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn trash_assets(
        &self,
        catalog: &str,
        ids: &[String],
        by: &str,
        audit: &[AuditRecord],
    ) -> StoreResult<Vec<String>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ts = now();
        let mut tx = self.pool.begin().await?;
        let mut done = Vec::new();
        let mut seqs = Vec::new();
        let mut delta = CountDelta::default();
        for chunk in ids.chunks(500) {
            let ids: Vec<String> = chunk.iter().map(|i| t(i).into_owned()).collect();
            let rows = sqlx::query(
                "UPDATE assets SET state = 'trashed', deleted_at = $1, deleted_by = $2, version = version + 1
                 WHERE catalog = $3 AND state = 'live' AND id = ANY($4) RETURNING id, seq, fulltext",
            )
            .bind(&ts)
            .bind(t(by))
            .bind(t(catalog))
            .bind(ids)
            .fetch_all(&mut *tx)
            .await?;
            for r in rows {
                done.push(r.try_get::<String, _>("id")?);
                seqs.push(r.try_get::<i64, _>("seq")?);
                delta.words(&r.try_get::<String, _>("fulltext")?, -1);
            }
        }
        // Out of the live scope and counts in the same transaction: a trashed asset is
        // never a hit nor counted.
        sqlx::query("UPDATE asset_values SET scope = NULL WHERE seq = ANY($1)")
            .bind(&seqs)
            .execute(&mut *tx)
            .await?;
        shift_pairs(&mut tx, catalog, &seqs, &[], &[]).await?;
        delta.assets(
            "live",
            seqs.len() as i64,
            &stored_counted_rows(&mut tx, &seqs).await?,
            -1,
        );
        delta.assets("trashed", seqs.len() as i64, &[], 1);
        delta.apply(&mut tx, catalog).await?;
        for a in audit_of(audit, &done) {
            upsert_record(&mut tx, catalog, "auditlog", &a.id, &a.data).await?;
        }
        tx.commit().await?;
        Ok(done)
    }

    async fn restore_assets(&self, catalog: &str, ids: &[String]) -> StoreResult<Vec<(String, RestoreOutcome)>> {
        let mut out = Vec::new();
        for id in ids {
            let mut tx = self.pool.begin().await?;
            let res = sqlx::query_as::<_, (i64, String)>(
                "UPDATE assets SET state = 'live', deleted_at = NULL, deleted_by = NULL, version = version + 1,
                        modified = $1
                 WHERE catalog = $2 AND id = $3 AND state = 'trashed' RETURNING seq, fulltext",
            )
            .bind(now())
            .bind(t(catalog))
            .bind(t(id))
            .fetch_optional(&mut *tx)
            .await;
            let outcome = match res {
                Ok(Some((seq, text))) => {
                    sqlx::query("UPDATE asset_values SET scope = $1 WHERE seq = $2")
                        .bind(t(catalog))
                        .bind(seq)
                        .execute(&mut *tx)
                        .await?;
                    shift_pairs(&mut tx, catalog, &[], &[seq], &[]).await?;
                    let mut delta = CountDelta::default();
                    delta.assets("trashed", 1, &[], -1);
                    delta.assets("live", 1, &stored_counted_rows(&mut tx, &[seq]).await?, 1);
                    delta.words(&text, 1);
                    delta.apply(&mut tx, catalog).await?;
                    tx.commit().await?;
                    RestoreOutcome::Restored
                }
                Ok(None) => RestoreOutcome::NotInTrash,
                Err(e) if is_unique_violation(&e) => {
                    drop(tx);
                    let sp: String = sqlx::query_scalar("SELECT sourcepath FROM assets WHERE catalog = $1 AND id = $2")
                        .bind(t(catalog))
                        .bind(t(id))
                        .fetch_one(&self.pool)
                        .await?;
                    RestoreOutcome::SourcepathTaken(sp)
                }
                Err(e) => return Err(e.into()),
            };
            out.push((id.clone(), outcome));
        }
        Ok(out)
    }

    async fn purge_asset(&self, catalog: &str, id: &str) -> StoreResult<Asset> {
        let mut tx = self.pool.begin().await?;
        let found: Option<(i64, String)> =
            sqlx::query_as("SELECT seq, state FROM assets WHERE catalog = $1 AND id = $2 FOR UPDATE")
                .bind(t(catalog))
                .bind(t(id))
                .fetch_optional(&mut *tx)
                .await?;
        let Some((seq, state)) = found else {
            return Err(StoreError::NotFound);
        };
        let facets = if state == "live" {
            shift_pairs(&mut tx, catalog, &[seq], &[], &[]).await?;
            stored_counted_rows(&mut tx, &[seq]).await?
        } else {
            Vec::new()
        };
        let row = sqlx::query(&format!(
            "DELETE FROM assets a WHERE a.seq = $1 RETURNING {ASSET_COLUMNS}, a.fulltext"
        ))
        .bind(seq)
        .fetch_one(&mut *tx)
        .await?;
        let asset = asset_from_row(&row)?.asset;
        sqlx::query("DELETE FROM asset_facets WHERE seq = $1")
            .bind(seq)
            .execute(&mut *tx)
            .await?;
        let mut delta = CountDelta::default();
        delta.assets(if state == "live" { "live" } else { "trashed" }, 1, &facets, -1);
        if state == "live" {
            delta.words(&row.try_get::<String, _>("fulltext")?, -1);
        }
        delta.apply(&mut tx, catalog).await?;
        tx.commit().await?;
        Ok(asset)
    }

    async fn trashed_before(&self, cutoff: &str, limit: u32) -> StoreResult<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT catalog, id FROM assets WHERE state = 'trashed' AND deleted_at < $1 ORDER BY deleted_at LIMIT $2",
        )
        .bind(t(cutoff))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("catalog")?, r.try_get("id")?)))
            .collect()
    }

    async fn search_assets(&self, catalog: &str, req: &SearchRequest, scope: Scope) -> StoreResult<SearchPage<Asset>> {
        let target = Target::assets(catalog, scope);
        let driver = driver(&req.query, &target);
        let count = async {
            if req.query == Query::All {
                // The whole catalog: the maintained total.
                Ok(self.count_assets(catalog, scope).await? as i64)
            } else if let Some(d) = &driver {
                self.driver_count(catalog, d, &target).await
            } else {
                let mut count: QueryBuilder<Postgres> = QueryBuilder::new("SELECT COUNT(*) FROM assets a WHERE ");
                push_scope(&mut count, catalog, scope);
                push_query(&mut count, &req.query, &target);
                Ok(on_warm!(self, |c| count.build_query_scalar().fetch_one(c))?)
            }
        };
        let sort = date_like_sort(req, &target);
        let (total, rows) = match &driver {
            // How a driver's page is read depends on its total (probe or collect): the
            // total first, the live total beside it.
            Some(d) if sort.is_none() && req.sort.is_empty() && d.pages_by_total() => {
                let (total, live, probed) = match d {
                    Driver::Word(word) => self.word_probe(catalog, req, word).await?,
                    _ => {
                        let (total, live) = tokio::try_join!(count, self.count_assets(catalog, Scope::Live))?;
                        (total, live, None)
                    }
                };
                let rows = match probed {
                    Some(rows) => rows,
                    None if total == 0 => Vec::new(),
                    None => self.driver_page(catalog, req, d, &target, total as u64, live).await?,
                };
                (total, rows)
            }
            _ => {
                // A maintained total is read by the page's own statement; any other is
                // counted beside the page, on another connection (one round trip of
                // latency instead of two).
                let kept = kept_total(req, scope, driver.as_ref(), &target);
                let page = async {
                    Ok::<_, StoreError>(match sort {
                        Some((field, col, descending)) => {
                            self.sorted_page(catalog, scope, req, &target, field, col, descending, kept.as_ref())
                                .await?
                        }
                        None if req.sort.is_empty() && driver.as_ref().is_some_and(Driver::is_union) => {
                            self.union_page(catalog, req, driver.as_ref().expect("checked above"), &target)
                                .await?
                        }
                        None if req.sort.is_empty() && equality_driver(&req.query, &target) => {
                            // One equality on a value field, newest first: its index entries
                            // are in seq order, so the page is read backwards from the index
                            // and only its own assets are fetched (each asset holds a value
                            // once).
                            let Query::Cond { field, cond } = &req.query else {
                                unreachable!("equality_driver accepts conditions only")
                            };
                            let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(format!("SELECT {ASSET_COLUMNS}"));
                            if let Some(kept) = &kept {
                                push_kept_total(&mut qb, catalog, kept);
                            }
                            qb.push(" FROM asset_values x JOIN assets a ON a.seq = x.seq WHERE ");
                            push_set_test(&mut qb, field, cond, &target);
                            qb.push(" AND ");
                            push_scope(&mut qb, catalog, scope);
                            // Read backwards from the index whatever the value: a generic plan.
                            qb.push("1 = 1 ORDER BY x.seq DESC");
                            push_literal_page(
                                &mut qb,
                                req.hits_per_page as i64,
                                (req.page as i64 - 1) * req.hits_per_page as i64,
                            );
                            on_warm!(self, |c| qb.build().fetch_all(c))?
                        }
                        None => {
                            let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(format!("SELECT {ASSET_COLUMNS}"));
                            if let Some(kept) = &kept {
                                push_kept_total(&mut qb, catalog, kept);
                            }
                            push_from(&mut qb, "assets", req, &target);
                            qb.push(" WHERE ");
                            push_scope(&mut qb, catalog, scope);
                            push_query(&mut qb, &req.query, &target);
                            push_order_and_page(&mut qb, req, &target, true);
                            on_warm!(self, |c| qb.build().fetch_all(c))?
                        }
                    })
                };
                if kept.is_some() {
                    let rows = page.await?;
                    // An empty page carries no total (nor does a page of assets without
                    // the sort key only): counted then.
                    match rows.first().map(|r| r.try_get::<Option<i64>, _>("total")) {
                        Some(Ok(n)) => (n.unwrap_or(0).max(0), rows),
                        _ => (count.await?, rows),
                    }
                } else {
                    tokio::try_join!(count, page)?
                }
            }
        };
        let hits = rows
            .iter()
            .map(|r| asset_from_row(r).map(|s| s.asset))
            .collect::<Result<_, _>>()?;
        Ok(SearchPage {
            total: total as u64,
            hits,
        })
    }

    async fn search_asset_ids(&self, catalog: &str, req: &SearchRequest, scope: Scope) -> StoreResult<Vec<String>> {
        let target = Target::assets(catalog, scope);
        let mut qb: QueryBuilder<Postgres> = QueryBuilder::new("SELECT a.id");
        push_from(&mut qb, "assets", req, &target);
        qb.push(" WHERE ");
        push_scope(&mut qb, catalog, scope);
        push_query(&mut qb, &req.query, &target);
        push_order_and_page(&mut qb, req, &target, false);
        Ok(on_warm!(self, |c| qb.build_query_scalar().fetch_all(c))?)
    }

    async fn facet_counts(
        &self,
        catalog: &str,
        req: &SearchRequest,
        fields: &[&str],
        per_field: u32,
    ) -> StoreResult<Vec<(String, Vec<(String, u64)>)>> {
        if fields.is_empty() {
            return Ok(Vec::new());
        }
        let mut out: Vec<(String, Vec<(String, u64)>)> = fields.iter().map(|f| (f.to_string(), Vec::new())).collect();
        // The whole catalog: the maintained counts where they are kept.
        let (kept, counted): (Vec<&str>, Vec<&str>) = if req.query == Query::All {
            fields.iter().partition(|f| FACET_FIELDS.contains(f))
        } else {
            (Vec::new(), fields.to_vec())
        };
        let list = |l: &[&str]| l.iter().map(|f| t(f).into_owned()).collect::<Vec<_>>();
        let mut rows = Vec::new();
        if !kept.is_empty() {
            rows.extend(
                // Each field's top values read in order from `facet_counts_top` (the
                // whole keyword list is not sorted per search).
                sqlx::query(
                    "SELECT f.field AS field, c.v AS v, c.n AS n FROM UNNEST($2::text[]) AS f(field),
                     LATERAL (SELECT v, n FROM facet_counts WHERE catalog = $1 AND field = f.field AND n > 0
                              ORDER BY n DESC, v LIMIT $3) c",
                )
                .bind(t(catalog))
                .bind(list(&kept))
                .bind(per_field as i64)
                .fetch_all(&self.pool)
                .await?,
            );
        }
        // Facet fields: counted from the matches' packed rows (one small row per match,
        // counted by id here); other fields (custom ones) from their value rows.
        let (packed, counted): (Vec<&str>, Vec<&str>) = counted.into_iter().partition(|f| FACET_FIELDS.contains(f));
        let target = Target::assets(catalog, Scope::Live);
        let paired = match driver(&req.query, &target) {
            // One value of a facet field: its row range of the pairs.
            Some(Driver::Values {
                field,
                conds,
                union: false,
                eq: true,
                ..
            }) if FACET_FIELDS.contains(&field) && !packed.is_empty() => {
                self.paired_facet_counts(catalog, field, &equality_key(field, conds[0], &target), &packed)
                    .await?
            }
            _ => None,
        };
        if let Some(paired) = paired {
            for (field, values) in paired {
                if let Some(slot) = out.iter_mut().find(|(f, _)| *f == field) {
                    slot.1 = values;
                }
            }
        } else if !packed.is_empty() {
            for (field, values) in self.packed_facet_counts(catalog, req, &packed).await? {
                if let Some(slot) = out.iter_mut().find(|(f, _)| *f == field) {
                    slot.1 = values;
                }
            }
        }
        if !counted.is_empty() {
            // Counted from the values of the live assets the search selects: each asset
            // holds a value once (unique rows), the same numbers the maintained table keeps.
            // The value rows come from the index alone (`asset_values_seq_v` covers v).
            let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(
                "SELECT field, v, n FROM (SELECT field, v, n, ROW_NUMBER() OVER (PARTITION BY field ORDER BY n DESC, v) AS rn
                 FROM (SELECT f.field AS field, f.v AS v, COUNT(*) AS n FROM asset_values f
                       WHERE f.v IS NOT NULL AND f.field = ANY(",
            );
            qb.push_bind(list(&counted));
            match driver(&req.query, &target) {
                // The matches straight from their value index (its scope is the live
                // assets of the catalog): no probe of `assets` per match.
                Some(Driver::Values { field, conds, .. }) => {
                    qb.push(") AND f.seq IN (SELECT x.seq FROM asset_values x WHERE ");
                    push_driver_rows(&mut qb, field, &conds, &target);
                }
                _ => {
                    qb.push(") AND f.seq IN (SELECT a.seq FROM assets a WHERE ");
                    push_scope(&mut qb, catalog, Scope::Live);
                    push_query(&mut qb, &req.query, &target);
                }
            }
            qb.push(") GROUP BY f.field, f.v) c) r WHERE n > 0 AND rn <= ")
                .push_bind(per_field as i64);
            rows.extend(on_warm!(self, |c| qb.build().fetch_all(c))?);
        }
        for r in rows {
            let field: String = r.try_get("field")?;
            if let Some(slot) = out.iter_mut().find(|(f, _)| *f == field) {
                slot.1.push((r.try_get("v")?, r.try_get::<i64, _>("n")? as u64));
            }
        }
        for (_, values) in &mut out {
            values.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            values.truncate(per_field as usize);
        }
        Ok(out)
    }

    async fn insert_assets_bulk(&self, catalog: &str, assets: &[Asset]) -> StoreResult<()> {
        if assets.is_empty() {
            return Ok(());
        }
        let ts = now();
        // Columns as arrays: one INSERT for the whole batch, one for all its values.
        let mut cols: (Vec<String>, Vec<String>, Vec<String>, Vec<String>) = Default::default();
        let mut blobs: (Vec<Option<String>>, Vec<Option<String>>, Vec<Option<i64>>) = Default::default();
        let mut sums: (Vec<Option<String>>, Vec<Option<String>>) = Default::default();
        for a in assets {
            let o = a.original.as_ref();
            cols.0.push(t(&a.id).into_owned());
            cols.1.push(t(&a.sourcepath).into_owned());
            cols.2
                .push(serde_json::to_string(&a.fields).map_err(corrupt("asset fields"))?);
            cols.3.push(stored_fulltext(a));
            blobs.0.push(o.map(|o| o.blob_key.clone()));
            blobs.1.push(to(o.map(|o| &o.filename)));
            blobs.2.push(o.map(|o| o.size as i64));
            sums.0.push(o.map(|o| o.md5hex.clone()));
            sums.1.push(o.map(|o| o.sha256hex.clone()));
        }
        let cols_text = cols.3.clone();
        let asset_rows: Vec<Vec<IndexRow>> = assets.iter().map(unique_rows).collect();
        let packed = self
            .pack_facets(&asset_rows.iter().map(Vec::as_slice).collect::<Vec<_>>())
            .await?;
        let mut tx = self.pool.begin().await?;
        let res = sqlx::query(
            "INSERT INTO assets (catalog, id, sourcepath, fields, fulltext, blob_key, filename, filesize, md5hex,
                                 sha256hex, added, created, modified)
             SELECT $1, u.*, $2, $2 FROM UNNEST($3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                                               $8::text[], $9::bigint[], $10::text[], $11::text[],
                                               $12::float8[]) AS u
             RETURNING id, seq",
        )
        .bind(t(catalog))
        .bind(&ts)
        .bind(cols.0)
        .bind(cols.1)
        .bind(cols.2)
        .bind(cols.3)
        .bind(blobs.0)
        .bind(blobs.1)
        .bind(blobs.2)
        .bind(sums.0)
        .bind(sums.1)
        .bind(asset_rows.iter().map(|r| added_of(r)).collect::<Vec<_>>())
        .fetch_all(&mut *tx)
        .await;
        let returned = match res {
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Conflict(format!(
                    "an asset id or live sourcepath of the batch is taken ({})",
                    violated_constraint(&e)
                )))
            }
            r => r?,
        };
        // RETURNING promises no order: seqs are matched to assets by id.
        let mut seq_of = std::collections::HashMap::with_capacity(returned.len());
        for r in &returned {
            seq_of.insert(r.try_get::<String, _>("id")?, r.try_get::<i64, _>("seq")?);
        }
        let mut delta = CountDelta::default();
        for text in &cols_text {
            delta.words(text, 1);
        }
        let mut seqs = Vec::with_capacity(assets.len());
        for (a, r) in assets.iter().zip(&asset_rows) {
            let seq = *seq_of
                .get(t(&a.id).as_ref())
                .ok_or_else(|| StoreError::Corrupt(format!("asset {} was not inserted", a.id)))?;
            delta.assets("live", 1, r, 1);
            seqs.push(seq);
        }
        let flat: Vec<(i64, &IndexRow)> = seqs
            .iter()
            .zip(&asset_rows)
            .flat_map(|(seq, r)| r.iter().map(move |r| (*seq, r)))
            .collect();
        insert_values(&mut tx, catalog, &flat).await?;
        write_facets(&mut tx, &seqs, &packed).await?;
        // During a bulk load (the marker is there: in any process) the pairs are left
        // to its rebuild; the marker is held until this commits (see
        // `ensure_bulk_indexes`).
        let deferred = sqlx::query("SELECT stale FROM facet_pairs_stale FOR SHARE")
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !deferred {
            shift_pairs(&mut tx, catalog, &[], &seqs, &[]).await?;
        }
        delta.apply(&mut tx, catalog).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn bulk_load_begin(&self) -> StoreResult<()> {
        // Marked before any insert leaves the pairs behind: searches stop using them,
        // and a load that dies is rebuilt at the next start.
        sqlx::query("INSERT INTO facet_pairs_stale VALUES (TRUE) ON CONFLICT DO NOTHING")
            .execute(&self.pool)
            .await?;
        for (name, _) in BULK_INDEXES {
            sqlx::query(&format!("DROP INDEX IF EXISTS {name}"))
                .execute(&self.pool)
                .await?;
        }
        sqlx::query(&format!(
            "ALTER TABLE asset_values DROP CONSTRAINT IF EXISTS {VALUES_FKEY}"
        ))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn bulk_load_end(&self) -> StoreResult<()> {
        self.ensure_bulk_indexes().await?;
        // VACUUM sets the visibility map, so counts answered by an index skip the heap.
        sqlx::query("VACUUM (ANALYZE) assets").execute(&self.pool).await?;
        sqlx::query("VACUUM (ANALYZE) asset_values").execute(&self.pool).await?;
        self.analyze().await
    }

    async fn count_assets(&self, catalog: &str, scope: Scope) -> StoreResult<u64> {
        let n: Option<i64> = on_warm!(self, |c| sqlx::query_scalar(
            "SELECT n FROM asset_counts WHERE catalog = $1 AND state = $2"
        )
        .bind(t(catalog))
        .bind(state_of(scope))
        .fetch_optional(c))?;
        Ok(n.unwrap_or(0).max(0) as u64)
    }

    async fn put_record(
        &self,
        catalog: &str,
        searchtype: &str,
        id: &str,
        data: &Map<String, Value>,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        upsert_record(&mut tx, catalog, searchtype, id, data).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_record(&self, catalog: &str, searchtype: &str, id: &str) -> StoreResult<Option<Map<String, Value>>> {
        let data: Option<String> =
            sqlx::query_scalar("SELECT data FROM records WHERE catalog = $1 AND searchtype = $2 AND id = $3")
                .bind(t(catalog))
                .bind(t(searchtype))
                .bind(t(id))
                .fetch_optional(&self.pool)
                .await?;
        data.map(|t| serde_json::from_str(&t).map_err(corrupt("record")))
            .transpose()
    }

    async fn delete_record(&self, catalog: &str, searchtype: &str, id: &str) -> StoreResult<bool> {
        let r = sqlx::query("DELETE FROM records WHERE catalog = $1 AND searchtype = $2 AND id = $3")
            .bind(t(catalog))
            .bind(t(searchtype))
            .bind(t(id))
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn search_records(
        &self,
        catalog: &str,
        searchtype: &str,
        req: &SearchRequest,
    ) -> StoreResult<SearchPage<Map<String, Value>>> {
        let target = Target::records(searchtype);
        let mut count: QueryBuilder<Postgres> = QueryBuilder::new("SELECT COUNT(*) FROM records a WHERE a.catalog = ");
        count
            .push_bind(t(catalog).into_owned())
            .push(" AND a.searchtype = ")
            .push_bind(t(searchtype).into_owned())
            .push(" AND ");
        push_query(&mut count, &req.query, &target);
        let total: i64 = on_warm!(self, |c| count.build_query_scalar().fetch_one(c))?;
        let mut qb: QueryBuilder<Postgres> = QueryBuilder::new("SELECT a.data");
        push_from(&mut qb, "records", req, &target);
        qb.push(" WHERE a.catalog = ")
            .push_bind(t(catalog).into_owned())
            .push(" AND a.searchtype = ")
            .push_bind(t(searchtype).into_owned())
            .push(" AND ");
        push_query(&mut qb, &req.query, &target);
        push_order_and_page(&mut qb, req, &target, true);
        let rows: Vec<String> = on_warm!(self, |c| qb.build_query_scalar().fetch_all(c))?;
        let hits = rows
            .iter()
            .map(|t| serde_json::from_str(t).map_err(corrupt("record")))
            .collect::<Result<_, _>>()?;
        Ok(SearchPage {
            total: total as u64,
            hits,
        })
    }

    async fn record_names(
        &self,
        catalog: &str,
        searchtype: &str,
        ids: &[String],
    ) -> StoreResult<Vec<(String, String)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = ids.iter().map(|i| t(i).into_owned()).collect();
        // The name is read in Rust rather than with a JSON operator: jsonb refuses
        // some values (\u0000) that the TEXT column holds fine.
        let rows = sqlx::query("SELECT id, data FROM records WHERE catalog = $1 AND searchtype = $2 AND id = ANY($3)")
            .bind(t(catalog))
            .bind(t(searchtype))
            .bind(ids)
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::new();
        for r in rows {
            let data: String = r.try_get("data")?;
            let data: Map<String, Value> = serde_json::from_str(&data).map_err(corrupt("record"))?;
            if let Some(Value::String(name)) = data.get("name") {
                out.push((r.try_get("id")?, name.clone()));
            }
        }
        Ok(out)
    }

    async fn enqueue_job(&self, kind: &str, catalog: &str, payload: &Value) -> StoreResult<String> {
        let mut conn = self.pool.acquire().await?;
        insert_job(&mut conn, kind, catalog, payload).await
    }

    async fn claim_job(&self, owner: &str, lease_secs: u64) -> StoreResult<Option<Job>> {
        // SKIP LOCKED: concurrent workers in any process each lock a different queued
        // job instead of waiting on (or double-claiming) the same one.
        let row = sqlx::query(
            "UPDATE jobs SET state = 'running', lease_owner = $1, lease_until = now() + make_interval(secs => $2),
                    attempts = attempts + 1, updated = $3
             WHERE id = (SELECT id FROM jobs WHERE state = 'queued' AND run_after <= now()
                         ORDER BY run_after, id LIMIT 1 FOR UPDATE SKIP LOCKED)
               AND state = 'queued'
             RETURNING *",
        )
        .bind(t(owner))
        .bind(lease_secs as f64)
        .bind(now())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(job_from_row).transpose()
    }

    async fn job_progress(&self, id: &str, owner: &str, progress: &Value, lease_secs: u64) -> StoreResult<()> {
        sqlx::query(
            "UPDATE jobs SET progress = COALESCE($1, progress), lease_until = now() + make_interval(secs => $2), updated = $3
             WHERE id = $4 AND lease_owner = $5 AND state = 'running'",
        )
        .bind((!progress.is_null()).then(|| progress.to_string()))
        .bind(lease_secs as f64)
        .bind(now())
        .bind(t(id))
        .bind(t(owner))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn finish_job(&self, id: &str, owner: &str, ok: bool, result: &Value) -> StoreResult<()> {
        // Conditional on the lease: a worker whose lease ran out (and whose job another
        // worker took) cannot overwrite that worker's outcome.
        sqlx::query(
            "UPDATE jobs SET state = $1, result = $2, lease_owner = NULL, lease_until = NULL, updated = $3
             WHERE id = $4 AND lease_owner = $5",
        )
        .bind(if ok { "done" } else { "failed" })
        .bind(result.to_string())
        .bind(now())
        .bind(t(id))
        .bind(t(owner))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn retry_job(&self, id: &str, owner: &str, delay_secs: u64, error: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE jobs SET state = 'queued', run_after = now() + make_interval(secs => $1), lease_owner = NULL,
                    lease_until = NULL, updated = $2, result = $3
             WHERE id = $4 AND lease_owner = $5",
        )
        .bind(delay_secs as f64)
        .bind(now())
        .bind(serde_json::json!({"lasterror": error}).to_string())
        .bind(t(id))
        .bind(t(owner))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_job(&self, id: &str) -> StoreResult<Option<Job>> {
        let row = sqlx::query("SELECT * FROM jobs WHERE id = $1")
            .bind(t(id))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(job_from_row).transpose()
    }

    async fn expired_job_count(&self) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE state = 'running' AND lease_until < now()")
            .fetch_one(&self.pool)
            .await?;
        Ok(n as u64)
    }

    async fn job_counts(&self) -> StoreResult<Vec<(String, String, u64)>> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT kind, state, COUNT(*) FROM jobs WHERE state IN ('queued', 'running') GROUP BY kind, state",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(k, s, n)| (k, s, n as u64)).collect())
    }

    fn pool_stats(&self) -> crate::store::PoolStats {
        crate::store::PoolStats {
            size: self.pool.size() as u64,
            idle: self.pool.num_idle() as u64,
            max: self.pool.options().get_max_connections() as u64,
        }
    }

    async fn find_asset_by_sha256(&self, catalog: &str, sha256hex: &str) -> StoreResult<Option<(String, String)>> {
        Ok(sqlx::query_as(
            "SELECT id, sourcepath FROM assets WHERE catalog = $1 AND sha256hex = $2 AND state = 'live' LIMIT 1",
        )
        .bind(catalog)
        .bind(sha256hex)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn requeue_expired_jobs(&self) -> StoreResult<u64> {
        let r = sqlx::query(
            "UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_until = NULL, updated = $1
             WHERE state = 'running' AND lease_until < now()",
        )
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }
}

/// What a search runs over: the assets, or the records of one generic table.
struct Target<'a> {
    values: &'static str,
    kind: Box<dyn Fn(&str) -> FieldKind + Send + Sync + 'a>,
    assets: bool,
    /// The catalog, when the search is over live assets: their words are in the
    /// full-text index (`assets_words`), their value rows in its scope.
    words: Option<&'a str>,
    /// Which value rows belong to the searched assets (`asset_values.scope`).
    scope: ValueScope<'a>,
}

/// The value rows a search reads: asset value rows carry their live asset's catalog,
/// NULL in the trash (migrations/postgres/0007), so the value indexes, which lead with
/// it, hold a live search's matches as one range.
#[derive(Clone, Copy)]
enum ValueScope<'a> {
    /// Record values: no scope column (the records are filtered on their own row).
    Records,
    Live(&'a str),
    Trash,
}

impl<'a> Target<'a> {
    fn assets(catalog: &'a str, scope: Scope) -> Self {
        Target {
            values: "asset_values",
            kind: Box::new(|f| field_kind(f).unwrap_or(FieldKind::Keyword)),
            assets: true,
            words: (scope == Scope::Live).then_some(catalog),
            scope: match scope {
                Scope::Live => ValueScope::Live(catalog),
                Scope::Trash => ValueScope::Trash,
            },
        }
    }
    fn records(searchtype: &'a str) -> Self {
        Target {
            values: "record_values",
            kind: Box::new(move |f| match f {
                fields::DESCRIPTION => FieldKind::Text,
                _ => fields::record_field_kind(searchtype, f),
            }),
            assets: false,
            words: None,
            scope: ValueScope::Records,
        }
    }
    /// Fields held in a column of the row itself.
    fn direct(&self, field: &str) -> Option<&'static str> {
        match field {
            "id" => Some("a.id"),
            "sourcepath" if self.assets => Some("a.sourcepath"),
            fields::DESCRIPTION => Some("a.fulltext"),
            _ => None,
        }
    }
}

/// `a.state = '...' AND a.catalog = $n AND `: the state written literally, so the
/// planner can use the indexes kept for live assets only (a bound value would not match
/// their predicate in a generic plan).
fn push_scope(qb: &mut QueryBuilder<Postgres>, catalog: &str, scope: Scope) {
    qb.push(format!("a.state = '{}' AND a.catalog = ", state_of(scope)))
        .push_bind(t(catalog).into_owned())
        .push(" AND ");
}

/// A search's total that the store maintains, read as a column of the page's own
/// statement (an uncorrelated subquery, evaluated once, in the page's snapshot): one
/// statement and one connection per search instead of two.
enum Kept {
    /// The whole scope: `asset_counts`.
    Assets(&'static str),
    /// One value of a facet field: its `facet_counts` row.
    Facet(String, String),
}

/// The maintained total of a search, if it has one (as `driver_count` and
/// `count_assets` read it).
fn kept_total(req: &SearchRequest, scope: Scope, d: Option<&Driver>, target: &Target) -> Option<Kept> {
    if req.query == Query::All {
        return Some(Kept::Assets(state_of(scope)));
    }
    match d? {
        Driver::Values {
            field,
            conds,
            union: false,
            eq: true,
            ..
        } if FACET_FIELDS.contains(field) => Some(Kept::Facet(
            t(field).into_owned(),
            equality_key(field, conds[0], target),
        )),
        _ => None,
    }
}

/// `, (SELECT n ...) AS total` after a page's columns (`Kept`).
fn push_kept_total(qb: &mut QueryBuilder<Postgres>, catalog: &str, kept: &Kept) {
    match kept {
        Kept::Assets(state) => {
            qb.push(", (SELECT n FROM asset_counts WHERE catalog = ")
                .push_bind(t(catalog).into_owned())
                .push(format!(" AND state = '{state}') AS total"));
        }
        Kept::Facet(field, v) => {
            qb.push(", (SELECT n FROM facet_counts WHERE catalog = ")
                .push_bind(t(catalog).into_owned())
                .push(" AND field = ")
                .push_bind(field.clone())
                .push(" AND v = ")
                .push_bind(v.clone())
                .push(") AS total");
        }
    }
}

/// ` LIMIT n OFFSET m` written as constants, for statements whose plan is the same
/// whatever their bound values (an index read in order and stopped at the page). A
/// bound LIMIT makes PostgreSQL cost the statement's generic plan as fetching a tenth of
/// its rows, so it plans every execution again with the values (a custom plan: 0.2-0.8
/// ms of a 1 ms top-20 search at a million assets); with constants the generic plan
/// costs what the custom ones do and is kept after five executions. Statements whose
/// best plan depends on the values (a sort index walked or the matches collected) keep
/// bound bounds, and so their custom plans.
fn push_literal_page(qb: &mut QueryBuilder<Postgres>, limit: i64, offset: i64) {
    qb.push(format!(" LIMIT {limit} OFFSET {offset}"));
}

/// `{alias}.scope = $n AND ` (or `IS NULL` in the trash): the searched assets' value rows.
/// The assets' own state is tested too wherever they are read, so the two agree by
/// construction (both change in one transaction).
fn push_value_scope(qb: &mut QueryBuilder<Postgres>, alias: &str, target: &Target) {
    match target.scope {
        ValueScope::Records => {}
        ValueScope::Live(catalog) => {
            qb.push(format!("{alias}.scope = "))
                .push_bind(t(catalog).into_owned())
                .push(" AND ");
        }
        ValueScope::Trash => {
            qb.push(format!("{alias}.scope IS NULL AND "));
        }
    }
}

/// The one sort key a page can be read for in index order: a single-valued field held
/// in value rows (dates, numbers, single keywords), with its column and direction.
fn date_like_sort<'r>(req: &'r SearchRequest, target: &Target) -> Option<(&'r str, &'static str, bool)> {
    match req.sort.as_slice() {
        [key] if target.direct(&key.field).is_none() => {
            let kind = target.kind.as_ref()(&key.field);
            joinable(kind).then(|| {
                let col = if kind.is_numeric() { "n" } else { "v" };
                (key.field.as_str(), col, key.descending)
            })
        }
        _ => None,
    }
}

/// A condition `push_set_test` compiles to `x.field = $f AND x.v = $v`: an equality on
/// a value field that is not analysed text (so one value row per matching asset).
fn equality_driver(q: &Query, target: &Target) -> bool {
    match q {
        Query::Cond {
            field,
            cond: Cond::Text { mode, value },
        } => {
            let kind = target.kind.as_ref()(field);
            target.direct(field).is_none()
                && matches!(mode, TextMode::Matches | TextMode::Exact)
                && !value.contains('*')
                && !matches!(kind, FieldKind::Text | FieldKind::MultiLang)
        }
        _ => false,
    }
}

/// A query that one index answers alone over the live assets of a catalog: its total
/// is read or counted from that index without visiting `assets`, and its page read
/// from it or probed (`PostgresStore::driver_page`).
#[derive(Debug)]
enum Driver<'q> {
    /// One whole word of `description` (normalised): its total is a `word_counts` row.
    Word(String),
    /// Tests of one value field: one condition, or an `orsgroup` (`union`) of
    /// equalities (`eq`: every test is one). `repeats`: an asset may have several
    /// matching rows.
    Values {
        field: &'q str,
        conds: Vec<&'q Cond>,
        union: bool,
        eq: bool,
        repeats: bool,
    },
}

impl Driver<'_> {
    fn is_union(&self) -> bool {
        matches!(self, Driver::Values { union: true, .. })
    }
    /// Whether its page is read by `driver_page`, whose plan depends on the total (one
    /// equality is read backwards from its index, a union value by value).
    fn pages_by_total(&self) -> bool {
        !matches!(
            self,
            Driver::Values { union: true, .. } | Driver::Values { eq: true, .. }
        )
    }
}

/// A text test that is one value row per matching asset: an equality on a value field
/// whose values are not analysed text (`push_text_test` compiles it to `x.v = $v`).
fn is_equality(cond: &Cond, kind: FieldKind) -> bool {
    matches!(cond, Cond::Text { mode: TextMode::Matches | TextMode::Exact, value } if !value.contains('*'))
        && !matches!(kind, FieldKind::Text | FieldKind::MultiLang)
}

fn driver<'q>(q: &'q Query, target: &Target) -> Option<Driver<'q>> {
    let ValueScope::Live(_) = target.scope else {
        return None;
    };
    match q {
        Query::Cond { field, cond } if field == fields::DESCRIPTION => {
            let value = match cond {
                Cond::Freeform(words) if words.len() == 1 => &words[0],
                Cond::Text {
                    mode: TextMode::Matches,
                    value,
                } => value,
                _ => return None,
            };
            if value.contains('*') {
                return None;
            }
            // Exactly the one-word test `push_text_test` compiles (the tsquery alone).
            let words = normalize_words(&t(value));
            let word = words.trim();
            (!word.is_empty() && !word.contains(' ') && word.chars().count() < LEXEME_CHARS)
                .then(|| Driver::Word(word.to_string()))
        }
        Query::Cond { field, cond } => {
            if target.direct(field).is_some() {
                return None;
            }
            if !super::value_drivable(cond) {
                return None;
            }
            let kind = target.kind.as_ref()(field);
            let eq = is_equality(cond, kind);
            Some(Driver::Values {
                field,
                conds: vec![cond],
                union: false,
                eq,
                repeats: !eq && !joinable(kind),
            })
        }
        Query::Or(parts) if parts.len() > 1 => {
            let mut field: Option<&str> = None;
            let mut conds = Vec::new();
            for p in parts {
                let Query::Cond { field: f, cond } = p else {
                    return None;
                };
                let kind = target.kind.as_ref()(f);
                if target.direct(f).is_some() || !is_equality(cond, kind) || field.is_some_and(|x| x != f) {
                    return None;
                }
                field = Some(f);
                conds.push(cond);
            }
            let field = field?;
            Some(Driver::Values {
                field,
                conds,
                union: true,
                eq: true,
                repeats: !joinable(target.kind.as_ref()(field)),
            })
        }
        _ => None,
    }
}

/// The value an equality compares with, as stored: as `push_text_test` compares it
/// (list value ids keep their case, other values are lower-cased).
fn equality_key(field: &str, cond: &Cond, target: &Target) -> String {
    let Cond::Text { value, .. } = cond else {
        return String::new();
    };
    let v = t(value);
    if target.kind.as_ref()(field).list_table().is_some() {
        v.into_owned()
    } else {
        v.to_lowercase()
    }
}

/// The value rows of a `Values` driver's matches (`x`): its conditions OR-ed; equalities
/// as one `= ANY` over the index range of the field (an index-only scan, where an OR
/// of ranges is a bitmap that visits the table).
fn push_driver_rows(qb: &mut QueryBuilder<Postgres>, field: &str, conds: &[&Cond], target: &Target) {
    let kind = target.kind.as_ref()(field);
    if conds.len() > 1 && conds.iter().all(|c| is_equality(c, kind)) {
        let mut keys: Vec<String> = Vec::with_capacity(conds.len());
        for c in conds {
            let k = equality_key(field, c, target);
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        push_value_scope(qb, "x", target);
        qb.push("x.field = ")
            .push_bind(t(field).into_owned())
            .push(" AND x.v = ANY(")
            .push_bind(keys)
            .push(")");
        return;
    }
    qb.push("(");
    for (i, c) in conds.iter().enumerate() {
        qb.push(if i > 0 { " OR (" } else { "(" });
        push_set_test(qb, field, c, target);
        qb.push(")");
    }
    qb.push(")");
}

/// Words longer than this (in characters) are cut to it in the full-text index
/// (`mediadb_words` in migrations/postgres/0006): tsvector lexemes are limited to 2 KiB.
const LEXEME_CHARS: usize = 250;

/// A tsquery literal's quoted lexeme (`:*` for a prefix).
fn lexeme(s: &str, prefix: bool) -> String {
    format!(
        "'{}'{}",
        s.replace('\\', "\\\\").replace('\'', "''"),
        if prefix { ":*" } else { "" }
    )
}

/// A tsquery over `mediadb_words(catalog, fulltext)` that every live asset of the
/// catalog whose padded words pass the LIKE test of `mode` satisfies, and whether it is
/// exactly that test (then the LIKE is not needed). `words` are normalised words
/// separated by single spaces.
fn words_tsquery(catalog: &str, mode: TextMode, words: &str) -> Option<(String, bool)> {
    let ws: Vec<&str> = words.split(' ').filter(|w| !w.is_empty()).collect();
    if ws.is_empty() || mode == TextMode::Contains {
        // A substring of a word: no lexeme says it.
        return None;
    }
    let mut parts = Vec::new();
    // One word: "% w %" is "some word is w", "% w%" is "some word starts with w".
    // Several: each word is somewhere (the LIKE then checks they are adjacent).
    let mut exact = ws.len() == 1 && mode != TextMode::Exact;
    for (i, w) in ws.iter().enumerate() {
        if w.chars().count() >= LEXEME_CHARS {
            // Cut in the index: no exact lexeme for it.
            exact = false;
            continue;
        }
        parts.push(lexeme(w, mode == TextMode::StartsWith && i == ws.len() - 1));
    }
    if parts.is_empty() {
        return None;
    }
    // The catalog's lexeme, cut as the index cuts it (the catalog is also compared on
    // the row, so two catalogs alike in their first 249 characters are still apart).
    let catalog: String = format!("@{catalog}").chars().take(LEXEME_CHARS).collect();
    parts.push(lexeme(&catalog, false));
    Some((parts.join(" & "), exact))
}

/// Sort keys read from a joined value row (single-valued fields); multi-valued fields
/// sort by their smallest value (as in the SQLite store).
fn joinable(kind: FieldKind) -> bool {
    !kind.is_multi() && kind != FieldKind::MultiLang
}

/// `FROM {table} a` plus one LEFT JOIN per joinable sort key.
fn push_from(qb: &mut QueryBuilder<Postgres>, table: &str, req: &SearchRequest, target: &Target) {
    qb.push(format!(" FROM {table} a"));
    for (i, key) in req.sort.iter().enumerate() {
        if target.direct(&key.field).is_none() && joinable(target.kind.as_ref()(&key.field)) {
            qb.push(format!(
                " LEFT JOIN {} s{i} ON s{i}.seq = a.seq AND s{i}.field = ",
                target.values
            ))
            .push_bind(t(&key.field).into_owned());
        }
    }
}

fn push_order_and_page(qb: &mut QueryBuilder<Postgres>, req: &SearchRequest, target: &Target, paged: bool) {
    qb.push(" ORDER BY ");
    for (i, key) in req.sort.iter().enumerate() {
        let kind = target.kind.as_ref()(&key.field);
        let col = if kind.is_numeric() { "n" } else { "v" };
        // SQLite sorts NULL before every value; PostgreSQL after, unless told.
        let mut nulls = if key.descending { " NULLS LAST" } else { " NULLS FIRST" };
        match target.direct(&key.field) {
            Some(direct) if key.field != fields::DESCRIPTION => {
                qb.push(direct);
            }
            _ if joinable(kind) => {
                // Assets without the field last, in either direction.
                qb.push(format!("s{i}.{col} IS NULL, s{i}.{col}"));
                nulls = "";
            }
            _ => {
                qb.push(format!(
                    "(SELECT MIN(x.{col}) FROM {} x WHERE x.seq = a.seq AND x.field = ",
                    target.values
                ))
                .push_bind(t(&key.field).into_owned())
                .push(")");
            }
        }
        qb.push(if key.descending { " DESC" } else { " ASC" });
        qb.push(nulls).push(", ");
    }
    qb.push("a.seq DESC");
    if paged && req.sort.is_empty() && req.query == Query::All {
        // The scope's index walked backwards whatever the values: a generic plan.
        push_literal_page(
            qb,
            req.hits_per_page as i64,
            (req.page as i64 - 1) * req.hits_per_page as i64,
        );
    } else if paged {
        qb.push(" LIMIT ")
            .push_bind(req.hits_per_page as i64)
            .push(" OFFSET ")
            .push_bind((req.page as i64 - 1) * req.hits_per_page as i64);
    }
}

/// `*` in a value is a wildcard; LIKE's own wildcards are escaped (backslash is
/// PostgreSQL's default LIKE escape).
fn like_pattern(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '%' | '_' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '*' => out.push('%'),
            c => out.push(c),
        }
    }
    out
}

fn push_query(qb: &mut QueryBuilder<Postgres>, q: &Query, target: &Target) {
    match q {
        Query::All => {
            qb.push("1 = 1");
        }
        Query::Or(parts) if parts.len() > 1 && parts.iter().all(|p| set_test(p, target)) => {
            qb.push(format!("a.seq IN (SELECT x.seq FROM {} x WHERE ", target.values));
            for (i, p) in parts.iter().enumerate() {
                if let Query::Cond { field, cond } = p {
                    qb.push(if i > 0 { " OR (" } else { "(" });
                    push_set_test(qb, field, cond, target);
                    qb.push(")");
                }
            }
            qb.push(")");
        }
        Query::And(parts) | Query::Or(parts) => {
            let joiner = if matches!(q, Query::And(_)) { " AND " } else { " OR " };
            qb.push("(");
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    qb.push(joiner);
                }
                push_query(qb, p, target);
            }
            qb.push(")");
        }
        Query::Not(inner) => {
            qb.push("NOT ");
            push_query(qb, inner, target);
        }
        Query::Cond { field, cond } => push_cond(qb, field, cond, target),
    }
}

/// SQLite's LIKE ignores ASCII case. Lower-cased values (analysed text, most indexed
/// values) have lower-case patterns, so a plain, index-friendly LIKE is the same test;
/// case-keeping columns (ids, source paths, list value ids) need ILIKE, which on a
/// COLLATE "C" column folds ASCII only, exactly as SQLite does.
fn like_op(col: &str, keep_case: bool) -> &'static str {
    if keep_case && col != "a.fulltext" {
        " ILIKE "
    } else {
        " LIKE "
    }
}

fn push_text_test(
    qb: &mut QueryBuilder<Postgres>,
    col: &str,
    analysed: bool,
    keep_case: bool,
    mode: TextMode,
    value: &str,
    words_of: Option<&str>,
) {
    let value = t(value);
    if analysed {
        let words = normalize_words(&value.replace('*', " \u{1} "));
        let words = words.trim().replace('\u{1}', "*");
        let pat = like_pattern(&words);
        let pat = match mode {
            TextMode::Matches => format!("% {pat} %"),
            TextMode::Exact => format!(" {pat} "),
            // A word that starts so, anywhere in the text (as `domain::query_eval` and
            // the SQLite store's full-text path answer it).
            TextMode::StartsWith => format!("% {pat}%"),
            TextMode::Contains => format!("%{pat}%"),
        };
        // Live assets' words: the GIN index finds the candidates; the LIKE decides
        // where the lexemes alone do not say the same.
        let ts = match words_of {
            Some(catalog) if col == "a.fulltext" => words_tsquery(catalog, mode, &words),
            _ => None,
        };
        match ts {
            Some((q, true)) => {
                qb.push("mediadb_words(a.catalog, a.fulltext) @@ ")
                    .push_bind(q)
                    .push("::tsquery");
            }
            Some((q, false)) => {
                qb.push("(mediadb_words(a.catalog, a.fulltext) @@ ")
                    .push_bind(q)
                    .push("::tsquery AND ")
                    .push(col)
                    .push(like_op(col, keep_case))
                    .push_bind(pat)
                    .push(")");
            }
            None => {
                qb.push(col).push(like_op(col, keep_case)).push_bind(pat);
            }
        }
        return;
    }
    // Ids (of assets and of list values) and source paths keep their case; other
    // indexed values are lower-cased.
    let v = if keep_case {
        value.to_string()
    } else {
        value.to_lowercase()
    };
    match mode {
        TextMode::Matches | TextMode::Exact if !v.contains('*') => {
            qb.push(format!("{col} = ")).push_bind(v);
        }
        _ => {
            let pat = like_pattern(&v);
            let pat = match mode {
                TextMode::StartsWith => format!("{pat}%"),
                TextMode::Contains => format!("%{pat}%"),
                _ => pat,
            };
            qb.push(col).push(like_op(col, keep_case)).push_bind(pat);
        }
    }
}

/// Conditions answered by one membership test on the value rows (`x.field = ... AND
/// ...`), so an OR of them is one set (a BitmapOr of index scans) rather than one
/// hashed subplan per part tested on every asset.
fn set_test(q: &Query, target: &Target) -> bool {
    match q {
        Query::Cond { field, cond } => {
            target.direct(field).is_none()
                && match cond {
                    Cond::Text { .. } | Cond::Exists | Cond::Range { .. } => true,
                    Cond::Freeform(words) => words.len() == 1,
                    Cond::Missing => false,
                }
        }
        _ => false,
    }
}

/// `x.field = $f AND <test on x>` of a condition `set_test` accepts.
fn push_set_test(qb: &mut QueryBuilder<Postgres>, field: &str, cond: &Cond, target: &Target) {
    let kind = target.kind.as_ref()(field);
    let analysed = matches!(kind, FieldKind::Text | FieldKind::MultiLang) && field != "id";
    let keep_case = kind.list_table().is_some();
    push_value_scope(qb, "x", target);
    qb.push("x.field = ").push_bind(t(field).into_owned()).push(" AND ");
    match cond {
        Cond::Text { mode, value } => push_text_test(qb, "x.v", analysed, keep_case, *mode, value, None),
        Cond::Freeform(words) => push_text_test(qb, "x.v", analysed, keep_case, TextMode::Matches, &words[0], None),
        Cond::Exists | Cond::Missing => {
            qb.push("1 = 1");
        }
        Cond::Range { min, max } => {
            qb.push("x.n IS NOT NULL");
            if let Some(lo) = min {
                qb.push(" AND x.n >= ").push_bind(*lo);
            }
            if let Some(hi) = max {
                qb.push(" AND x.n <= ").push_bind(*hi);
            }
        }
    }
}

fn push_cond(qb: &mut QueryBuilder<Postgres>, field: &str, cond: &Cond, target: &Target) {
    let kind = target.kind.as_ref()(field);
    let direct = target.direct(field);
    let analysed = matches!(kind, FieldKind::Text | FieldKind::MultiLang) && field != "id";
    let values = target.values;
    // `a.seq IN (...)`: the matching set is built once from the (field, v, seq) index.
    let set = |qb: &mut QueryBuilder<Postgres>, cond: &Cond| {
        qb.push(format!("a.seq IN (SELECT x.seq FROM {values} x WHERE "));
        push_set_test(qb, field, cond, target);
        qb.push(")");
    };
    let text = |qb: &mut QueryBuilder<Postgres>, mode: TextMode, value: &str| match direct {
        Some(col) => push_text_test(qb, col, analysed, true, mode, value, target.words),
        None => set(
            qb,
            &Cond::Text {
                mode,
                value: value.to_string(),
            },
        ),
    };
    match cond {
        Cond::Text { mode, value } => text(qb, *mode, value),
        Cond::Freeform(words) => {
            qb.push("(");
            for (i, w) in words.iter().enumerate() {
                if i > 0 {
                    qb.push(" AND ");
                }
                text(qb, TextMode::Matches, w);
            }
            qb.push(")");
        }
        Cond::Exists | Cond::Missing => {
            if matches!(cond, Cond::Missing) {
                qb.push("NOT ");
            }
            if direct.is_some() {
                qb.push("(1 = 1)");
            } else {
                set(qb, &Cond::Exists);
            }
        }
        Cond::Range { .. } => set(qb, cond),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tsquery is a superset of the LIKE test, exact only where the lexemes alone
    /// decide; a wrong flag would drop the LIKE of a phrase or keep hits it excludes.
    #[test]
    fn words_tsquery_says_what_the_like_says() {
        let q = |mode, w| words_tsquery("assets", mode, w);
        assert_eq!(
            q(TextMode::Matches, "bird"),
            Some(("'bird' & '@assets'".to_string(), true))
        );
        assert_eq!(
            q(TextMode::StartsWith, "big bi"),
            Some(("'big' & 'bi':* & '@assets'".to_string(), false))
        );
        assert_eq!(q(TextMode::StartsWith, "bi").map(|(_, e)| e), Some(true));
        assert_eq!(q(TextMode::Exact, "bird").map(|(_, e)| e), Some(false));
        assert_eq!(q(TextMode::Contains, "ird"), None);
        assert_eq!(q(TextMode::Matches, ""), None);
        // A word the index cuts: only the other words, confirmed by LIKE.
        let long = "x".repeat(LEXEME_CHARS);
        assert_eq!(q(TextMode::Matches, &long), None);
        assert_eq!(
            q(TextMode::Matches, &format!("a {long}")),
            Some(("'a' & '@assets'".to_string(), false))
        );
        assert_eq!(
            words_tsquery("it's \\", TextMode::Matches, "a"),
            Some(("'a' & '@it''s \\\\'".to_string(), true))
        );
    }
}

/// The drivers' shortcuts must answer what the in-memory evaluator does, after every
/// kind of write (`store::planner_check`), and the maintained counts must be what a
/// recount finds. Needs `MEDIADB_TEST_DATABASE_URL` (skipped without it, failed under
/// `MEDIADB_REQUIRE_ALL=1`).
#[cfg(test)]
mod planner_agrees {
    use super::PostgresStore;
    use crate::store::planner_check::writes_then_searches;
    use crate::store::MetaStore;

    #[tokio::test]
    async fn shortcuts_match_the_evaluator() {
        let Some(base) = crate::store::test_database_url() else {
            return;
        };
        let schema = format!("mediadb_unit_{:016x}", rand::random::<u64>());
        let admin = PostgresStore::open(&base).await.unwrap();
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(admin.pool())
            .await
            .unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        let store = PostgresStore::open(&format!("{base}{sep}options=-c%20search_path%3D{schema}"))
            .await
            .unwrap();
        store.migrate().await.unwrap();

        writes_then_searches(&store, true).await;
        // The value rows' scope follows their asset's state, and the maintained word
        // counts are what a recount finds.
        let astray: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM asset_values x JOIN assets a ON a.seq = x.seq
             WHERE x.scope IS DISTINCT FROM CASE WHEN a.state = 'live' THEN a.catalog END",
        )
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert_eq!(astray, 0);
        // Every write path set `assets.added` as the value rows have it (the largest
        // `assetaddeddate` number, as `added_of` computes it).
        let added = move |store: &PostgresStore| {
            let pool = store.pool().clone();
            async move {
                sqlx::query_as::<_, (i64, i64)>(
                    "SELECT COUNT(a.added), COUNT(*) FILTER (WHERE a.added IS DISTINCT FROM
                         (SELECT max(x.n) FROM asset_values x WHERE x.seq = a.seq AND x.field = 'assetaddeddate'))
                     FROM assets a",
                )
                .fetch_one(&pool)
                .await
                .unwrap()
            }
        };
        let (dated, astray) = added(&store).await;
        assert!(dated > 300, "{dated} dated assets");
        assert_eq!(astray, 0);
        // A rebuild puts back what was lost.
        sqlx::query("UPDATE assets SET added = NULL WHERE seq % 3 = 0")
            .execute(store.pool())
            .await
            .unwrap();
        store.rebuild_counts().await.unwrap();
        assert_eq!(added(&store).await, (dated, 0));
        let st = &store;
        let counts = move |sql: &'static str| async move {
            sqlx::query_as::<_, (String, String, String)>(sql)
                .fetch_all(st.pool())
                .await
                .unwrap()
        };
        let tables = [
            "SELECT catalog, word, n::text FROM word_counts WHERE n <> 0 ORDER BY 1, 2",
            "SELECT catalog, field || ':' || day, n::text FROM value_days WHERE n <> 0 ORDER BY 1, 2",
            "SELECT catalog, field || ':' || v, n::text FROM facet_counts WHERE n <> 0 ORDER BY 1, 2",
            // The packed facet rows are what the value rows say (dictionary ids are kept).
            "SELECT seq::text, f::text, '' FROM asset_facets ORDER BY seq",
            // The pairs moved by every write are what the live packed rows say.
            "SELECT catalog, a || ':' || b, n::text FROM facet_pairs WHERE n <> 0 ORDER BY 1, a, b",
        ];
        let mut kept = Vec::new();
        for sql in tables {
            kept.push(counts(sql).await);
        }
        assert!(kept[0].iter().any(|(c, w, _)| c == "assets" && w == "moonrise"));
        assert!(kept[3].iter().any(|(_, f, _)| f.len() > 2), "packed facet rows written");
        assert!(
            kept[4].iter().any(|(c, _, _)| c == "other"),
            "pairs of the later bulk insert"
        );
        assert!(kept[1]
            .iter()
            .any(|(c, f, _)| c == "assets" && f.starts_with("assetaddeddate:")));
        store.rebuild_counts().await.unwrap();
        for (sql, kept) in tables.iter().zip(kept) {
            assert_eq!(kept, counts(sql).await, "{sql}");
        }

        drop(store);
        sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
            .execute(admin.pool())
            .await
            .unwrap();
    }
}
