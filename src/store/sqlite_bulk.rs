//! Bulk inserts of the embedded store (`insert_assets_bulk`: imports, benchmarks).
//!
//! They write exactly what `insert_asset` writes for each asset (the row, its value
//! rows, its packed facet row, its full text, the word, facet and asset counts), a batch
//! per transaction, but through a rusqlite connection of their own with cached prepared
//! statements: through sqlx every statement and every bound value crossed to the
//! connection's thread, and batches were split into statements of varying shape; at a
//! million assets that hand-off, not SQLite, was most of the load.
//!
//! The group-commit writer stays the one writer of everything else; a bulk insert takes
//! SQLite's write lock like any writer (`BEGIN IMMEDIATE`, waiting in the busy handler).

use super::sqlite_index::{self as index, CountDelta, ScopeCode, WordDelta};
use super::{fulltext, unique_rows, IndexRow, StoreError, StoreResult};
use crate::domain::asset::Asset;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::time::{Duration, Instant};

pub struct BulkWriter {
    conn: Connection,
}

impl BulkWriter {
    pub fn open(path: &Path) -> StoreResult<Self> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
        )?;
        conn.busy_timeout(Duration::from_secs(10))?;
        // The writer's settings (see `SqliteStore::open`), but for foreign keys: every value
        // and facet row inserted here belongs to an asset row inserted just before it in
        // the same transaction, and checking that costs a lookup per value row.
        conn.execute_batch("PRAGMA cache_size = -32768; PRAGMA synchronous = FULL; PRAGMA foreign_keys = OFF;")?;
        // Nor does it checkpoint at its commits, like the group-commit writer: the store's
        // checkpoint thread does, on the other core (a load's commits spent 3.5 s of its
        // thread's time at a million assets copying the log into the database).
        conn.execute_batch("PRAGMA wal_autocheckpoint = 0;")?;
        Ok(BulkWriter { conn })
    }

    /// An offline load (`bulk_load_begin`..`bulk_load_end`) commits without syncing; the
    /// end of the load makes it durable.
    pub fn set_offline(&self, offline: bool) -> StoreResult<()> {
        // A load also keeps more pages: the random parts of its writes (the live
        // sourcepath index, word and facet counts, full-text merges) then read less. 48 MiB:
        // 64 took the same time at a million assets and 16 MB more of the peak memory.
        //
        // And FTS5 gathers 8 MiB of a batch's text before writing it as a segment (1 MiB by
        // default, a setting kept in the database): fewer, larger segments, so fewer merges
        // on this thread (2 s less of its time at a million assets, the peak memory the same).
        self.conn.execute_batch(if offline {
            "PRAGMA synchronous = OFF; PRAGMA cache_size = -49152;
             INSERT INTO asset_fts (asset_fts, rank) VALUES ('hashsize', 8388608);"
        } else {
            "PRAGMA synchronous = FULL; PRAGMA cache_size = -32768;
             INSERT INTO asset_fts (asset_fts, rank) VALUES ('hashsize', 1048576);"
        })?;
        Ok(())
    }

    /// Ends an offline load: builds the value indexes it set aside, samples statistics
    /// and makes everything durable. Each step is logged with its time.
    pub fn finish_load(&self) -> StoreResult<()> {
        let step = |what: &str, sql: &str| -> StoreResult<()> {
            let t = Instant::now();
            self.conn.execute_batch(sql)?;
            tracing::info!(seconds = t.elapsed().as_secs_f64(), "bulk load: {what}");
            Ok(())
        };
        // Index builds sort: with worker threads SQLite sorts runs in parallel. A run is
        // as large as the cache, and small runs sort faster (they stay in the CPU's
        // caches; merging them is sequential): at a million assets the largest index took
        // 26 s of CPU with SQLite's default 2 MiB, 32 s with 8 MiB, 38 s with 48 MiB (and
        // 128 MiB made the load's peak memory 600 MB).
        self.conn
            .execute_batch("PRAGMA threads = 2; PRAGMA cache_size = -2048;")?;
        for (name, sql) in index::VALUE_INDEXES {
            step(name, sql)?;
        }
        // Statistics from a sample of each index: a full ANALYZE reads every index again,
        // for estimates the planner needs only roughly.
        step(
            "statistics",
            "PRAGMA analysis_limit = 1000; ANALYZE; PRAGMA analysis_limit = 0;",
        )?;
        // What the load wrote unsynced becomes durable here (the checkpoint syncs the WAL,
        // then the database), and the next start does not inherit a WAL of the whole load:
        // its first commit would otherwise run that checkpoint (measured: 250-340 ms to
        // healthy at 100,000 assets instead of < 100).
        let t = Instant::now();
        self.set_offline(false)?;
        // The checkpoint thread (store::sqlite_checkpoint) may hold the checkpoint lock for
        // a moment, which SQLite answers with "busy" at once rather than waiting: retried.
        let mut busy: i64 = 1;
        for _ in 0..200 {
            busy = self
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
            if busy == 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        if busy != 0 {
            return Err(StoreError::NotCommitted(
                "the end of a bulk load could not checkpoint (is something reading?)".into(),
            ));
        }
        tracing::info!(seconds = t.elapsed().as_secs_f64(), "bulk load: checkpoint");
        Ok(())
    }

    /// Inserts new live assets of `catalog` (live scope `live`) in one transaction; a
    /// taken id or live sourcepath is a `Conflict` naming the asset, and nothing is written.
    ///
    /// What needs no database (each asset's JSON, text, value rows and the counts) is
    /// made on a second thread, a chunk ahead of the inserts: that was two fifths of the
    /// time of a load, and SQLite keeps this thread busy meanwhile.
    pub fn insert(&mut self, catalog: &str, live: ScopeCode, assets: &[Asset], ts: &str) -> StoreResult<()> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // The transaction holds the write lock: the new rows take the next `seq`s in order,
        // given explicitly so the value rows can name them without asking.
        let last: i64 = tx.query_row(
            "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'assets'), 0),
                        COALESCE((SELECT MAX(seq) FROM assets), 0))",
            [],
            |r| r.get(0),
        )?;
        let (words, delta) = std::thread::scope(|scope| -> StoreResult<(WordDelta, CountDelta)> {
            let (chunks, ready) = std::sync::mpsc::sync_channel::<StoreResult<Vec<Prepared>>>(2);
            // Chunks inserted go back to be freed here too: freeing their strings was
            // a few seconds of the inserting thread's time at a million assets.
            let (used, unused) = std::sync::mpsc::channel::<Vec<Prepared>>();
            let maker = scope.spawn(move || {
                let mut words = WordDelta::default();
                let mut delta = CountDelta::default();
                for chunk in assets.chunks(CHUNK) {
                    unused.try_iter().for_each(drop);
                    let made = chunk
                        .iter()
                        .map(|a| Prepared::of(a, live, &mut words, &mut delta))
                        .collect::<StoreResult<Vec<_>>>();
                    let failed = made.is_err();
                    // The inserts stopped (an error): nothing more is wanted.
                    if chunks.send(made).is_err() || failed {
                        break;
                    }
                }
                // The last chunks, until the inserts end.
                drop(chunks);
                unused.into_iter().for_each(drop);
                (words, delta)
            });
            let mut done = 0;
            let mut ids = index::no_facet_ids();
            while let Ok(chunk) = ready.recv() {
                let chunk = chunk?;
                index::add_facet_ids(&tx, &mut ids, chunk.iter().flat_map(|p| p.rows.iter()))?;
                insert_prepared(
                    &tx,
                    catalog,
                    live,
                    &assets[done..done + chunk.len()],
                    &chunk,
                    last + 1 + done as i64,
                    ts,
                    &ids,
                )?;
                done += chunk.len();
                // Fails only once the preparing thread is gone: then the chunk is freed here.
                let _ = used.send(chunk);
            }
            drop(used);
            let counts = maker
                .join()
                .map_err(|_| StoreError::Corrupt("preparing a bulk insert panicked".into()))?;
            if done != assets.len() {
                return Err(StoreError::Corrupt("a bulk insert was not prepared whole".into()));
            }
            Ok(counts)
        })?;
        if !assets.is_empty() {
            // One statement for the batch's text: FTS5 writes a segment per statement.
            tx.prepare_cached(
                "INSERT INTO asset_fts (rowid, body) SELECT seq, fulltext FROM assets WHERE seq BETWEEN ? AND ?",
            )?
            .execute((last + 1, last + assets.len() as i64))?;
        }
        delta.apply_sync(&tx, catalog)?;
        words.apply_sync(&tx)?;
        tx.commit()?;
        Ok(())
    }
}

/// Assets prepared at a time (see `BulkWriter::insert`).
const CHUNK: usize = 1000;

/// What an asset's rows are made of.
struct Prepared {
    fields: String,
    text: String,
    rows: Vec<IndexRow>,
    /// `rows` in the order of the (seq, field, v) index, which a load keeps: each entry
    /// then goes at the index's end, as when the index is built by sorting.
    order: Vec<usize>,
}

impl Prepared {
    fn of(a: &Asset, live: ScopeCode, words: &mut WordDelta, delta: &mut CountDelta) -> StoreResult<Self> {
        let fields = serde_json::to_string(&a.fields).map_err(|e| StoreError::Corrupt(format!("asset fields: {e}")))?;
        let text = fulltext(a);
        words.text(&text, 1);
        let rows = unique_rows(a);
        delta.asset(live, true, &rows, 1);
        let mut order: Vec<usize> = (0..rows.len()).collect();
        order.sort_by(|&x, &y| {
            let (x, y) = (&rows[x], &rows[y]);
            x.field.cmp(&y.field).then_with(|| x.v.cmp(&y.v))
        });
        Ok(Prepared {
            fields,
            text,
            rows,
            order,
        })
    }
}

/// Inserts prepared assets, the first with `seq` `first`: rows, value rows, packed facets.
#[allow(clippy::too_many_arguments)]
fn insert_prepared(
    tx: &Connection,
    catalog: &str,
    live: ScopeCode,
    assets: &[Asset],
    prepared: &[Prepared],
    first: i64,
    ts: &str,
    ids: &index::FacetIds,
) -> StoreResult<()> {
    let mut row = tx.prepare_cached(
        "INSERT INTO assets (seq, catalog, id, sourcepath, fields, blob_key, filename, filesize, md5hex,
                             sha256hex, fulltext, created, modified)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )?;
    let mut packed = tx.prepare_cached("INSERT INTO asset_facets (seq, f) VALUES (?, ?)")?;
    let mut values: Vec<(i64, &IndexRow)> = Vec::with_capacity(prepared.iter().map(|p| p.rows.len()).sum());
    for (i, (a, p)) in assets.iter().zip(prepared).enumerate() {
        let seq = first + i as i64;
        let o = a.original.as_ref();
        let res = row.execute(rusqlite::params![
            seq,
            catalog,
            a.id,
            a.sourcepath,
            p.fields,
            o.map(|o| &o.blob_key),
            o.map(|o| &o.filename),
            o.map(|o| o.size as i64),
            o.map(|o| &o.md5hex),
            o.map(|o| &o.sha256hex),
            p.text,
            ts,
            ts,
        ]);
        match res {
            Err(rusqlite::Error::SqliteFailure(e, msg)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                return Err(StoreError::Conflict(
                    if msg.as_deref().unwrap_or_default().contains("sourcepath") {
                        format!("sourcepath \"{}\" is taken by another asset", a.sourcepath)
                    } else {
                        format!("asset id \"{}\" is taken", a.id)
                    },
                ));
            }
            r => r?,
        };
        values.extend(p.order.iter().map(|&j| (seq, &p.rows[j])));
        let f = index::pack_facets(&p.rows, ids);
        if !f.is_empty() {
            packed.execute((seq, f))?;
        }
    }
    insert_values(tx, live, &values)
}

/// Value rows per INSERT of a bulk load. One statement for many rows saves SQLite's
/// statement start, step and reset per row (13 million of them at a million assets).
const VALUE_ROWS: usize = 64;

/// Inserts value rows of scope `live` in the order given, `VALUE_ROWS` a statement.
pub(super) fn insert_values(tx: &Connection, live: ScopeCode, rows: &[(i64, &IndexRow)]) -> StoreResult<()> {
    const ONE: &str = "INSERT INTO asset_values (seq, scope, field, v, n) VALUES (?, ?, ?, ?, ?)";
    let mut groups = rows.chunks_exact(VALUE_ROWS);
    // Prepared only when used: an edit's few rows (on a connection whose statement cache
    // starts empty, `on_handle`) would parse its 320 parameters for nothing.
    if rows.len() >= VALUE_ROWS {
        let many_sql = format!(
            "INSERT INTO asset_values (seq, scope, field, v, n) VALUES {}",
            vec!["(?, ?, ?, ?, ?)"; VALUE_ROWS].join(", ")
        );
        let mut many = tx.prepare_cached(&many_sql)?;
        for group in &mut groups {
            for (k, (seq, r)) in group.iter().enumerate() {
                let at = k * 5;
                many.raw_bind_parameter(at + 1, seq)?;
                many.raw_bind_parameter(at + 2, live)?;
                many.raw_bind_parameter(at + 3, &r.field)?;
                many.raw_bind_parameter(at + 4, &r.v)?;
                many.raw_bind_parameter(at + 5, r.n)?;
            }
            many.raw_execute()?;
        }
    }
    let mut one = tx.prepare_cached(ONE)?;
    for (seq, r) in groups.remainder() {
        one.execute((seq, live, &r.field, &r.v, r.n))?;
    }
    Ok(())
}

/// Runs blocking SQLite work from async code: on a multi-threaded runtime the worker's
/// other tasks move to another thread meanwhile (as `Readers::scan` does).
pub fn blocking<R>(f: impl FnOnce() -> R) -> R {
    let multi = tokio::runtime::Handle::try_current()
        .map(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
        .unwrap_or(false);
    if multi {
        tokio::task::block_in_place(f)
    } else {
        f()
    }
}

#[cfg(test)]
mod tests {
    use crate::domain::asset::{Asset, Original};
    use crate::domain::query;
    use crate::ops::assets::field_info;
    use crate::store::sqlite::SqliteStore;
    use crate::store::{MetaStore, Scope, StoreError};
    use rand::SeedableRng;
    use rusqlite::types::Value as SqlValue;
    use serde_json::json;
    use std::path::Path;

    /// Synthetic assets as the benchmark makes them, and some that are not: an original,
    /// words FTS5 may split differently, repeated values, no facet values at all.
    fn assets() -> Vec<Asset> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let mut out: Vec<Asset> = (0..240)
            .map(|i| crate::bench::synthetic(i, &mut rng, 1_500_000_000_000, 86_400_000 * 900))
            .collect();
        out[3].original = Some(Original {
            blob_key: "ab/cd".into(),
            filename: "x.jpg".into(),
            size: 12,
            md5hex: "00".into(),
            sha256hex: "11".into(),
        });
        out[4]
            .fields
            .insert("longcaption".into(), json!("Café naïve x\u{303}bridge ｈａｒｂｏｒ"));
        out[5]
            .fields
            .insert("keywords".into(), json!(["kw", "KW", "kw", "Ünï"]));
        out[6].fields.retain(|k, _| k == "name");
        out
    }

    fn rows(conn: &rusqlite::Connection, sql: &str) -> Vec<Vec<SqlValue>> {
        let mut st = conn.prepare(sql).unwrap();
        let n = st.column_count();
        st.query_map([], |r| (0..n).map(|i| r.get::<_, SqlValue>(i)).collect())
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// Everything a catalog's search depends on, but the write times and the ids of
    /// facet values (given in the order values were first met, which differs).
    fn snapshot(path: &Path) -> Vec<(String, Vec<Vec<SqlValue>>)> {
        let conn = rusqlite::Connection::open(path).unwrap();
        let mut out: Vec<(String, Vec<Vec<SqlValue>>)> = [
            "SELECT seq, catalog, id, sourcepath, state, version, fields, blob_key, filename, filesize, md5hex,
                    sha256hex, fulltext, deleted_at, deleted_by FROM assets ORDER BY seq",
            "SELECT seq, scope, field, v, n FROM asset_values ORDER BY seq, field, v, n",
            "SELECT name, seq FROM sqlite_sequence ORDER BY name",
            "SELECT word, n, unsure FROM fts_words ORDER BY word",
            "SELECT catalog, field, v, n FROM facet_counts ORDER BY catalog, field, v",
            "SELECT scope, n FROM asset_counts ORDER BY scope",
            "SELECT code, name FROM catalogs ORDER BY code",
            "SELECT field, v FROM facet_values ORDER BY field, v",
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' ORDER BY name",
        ]
        .into_iter()
        .map(|sql| (sql.to_string(), rows(&conn, sql)))
        .collect();
        // The packed facet rows, decoded to their values.
        let mut facets = Vec::new();
        for r in rows(&conn, "SELECT seq, f FROM asset_facets ORDER BY seq") {
            let SqlValue::Blob(f) = &r[1] else {
                panic!("f is a blob")
            };
            let mut values = Vec::new();
            super::index::unpack_facets(f, |k| {
                let (id, field) = super::index::entry_parts(k);
                let v: String = conn
                    .query_row("SELECT v FROM facet_values WHERE id = ?", [id], |r| r.get(0))
                    .unwrap();
                values.push(SqlValue::Text(format!("{}={v}", crate::store::FACET_FIELDS[field])));
            })
            .unwrap();
            values.insert(0, r[0].clone());
            facets.push(values);
        }
        out.push(("asset_facets".into(), facets));
        // The full-text index: which assets each word and each prefix finds.
        let mut fts = Vec::new();
        for w in rows(&conn, "SELECT word FROM fts_words ORDER BY word") {
            let SqlValue::Text(w) = &w[0] else {
                panic!("a word is text")
            };
            for q in [format!("\"{w}\""), format!("\"{}\"*", &w[..1])] {
                let mut hits = rows(
                    &conn,
                    &format!("SELECT rowid FROM asset_fts WHERE asset_fts MATCH '{q}' ORDER BY rowid"),
                );
                hits.insert(0, vec![SqlValue::Text(q)]);
                fts.extend(hits);
            }
        }
        out.push(("asset_fts".into(), fts));
        out
    }

    /// A bulk load writes what inserting the same assets one by one writes.
    #[tokio::test]
    async fn a_bulk_load_equals_single_inserts() {
        let assets = assets();
        let dir = tempfile::tempdir().unwrap();
        let (bulk_path, single_path) = (dir.path().join("bulk.db"), dir.path().join("single.db"));
        let bulk = SqliteStore::open(&bulk_path).await.unwrap();
        bulk.migrate().await.unwrap();
        bulk.bulk_load_begin().await.unwrap();
        bulk.insert_assets_bulk("assets", &assets[..100]).await.unwrap();
        bulk.insert_assets_bulk("assets", &assets[100..200]).await.unwrap();
        bulk.insert_assets_bulk("other", &assets[200..]).await.unwrap();
        bulk.bulk_load_end().await.unwrap();
        // After a load, outside one.
        bulk.insert_assets_bulk(
            "assets",
            &assets[..20]
                .iter()
                .map(|a| {
                    let mut a = a.clone();
                    a.id.push('x');
                    a.sourcepath.push('x');
                    a
                })
                .collect::<Vec<_>>(),
        )
        .await
        .unwrap();

        let single = SqliteStore::open(&single_path).await.unwrap();
        single.migrate().await.unwrap();
        for (i, a) in assets.iter().enumerate() {
            single
                .insert_asset(if i < 200 { "assets" } else { "other" }, a, &[])
                .await
                .unwrap();
        }
        for a in &assets[..20] {
            let mut a = a.clone();
            a.id.push('x');
            a.sourcepath.push('x');
            single.insert_asset("assets", &a, &[]).await.unwrap();
        }

        let (got, want) = (snapshot(&bulk_path), snapshot(&single_path));
        for ((sql, got), (_, want)) in got.iter().zip(&want) {
            assert!(!want.is_empty(), "{sql} holds rows");
            assert_eq!(got, want, "{sql}");
        }

        // The same answers to searches, facets included.
        for term in [
            json!({"field":"keywords","operation":"matches","value":crate::bench::keyword(3)}),
            json!({"field":"description","operation":"freeform","value":"harbor"}),
            json!({"field":"description","operation":"freeform","value":"café"}),
            json!({"field":"assettype","operation":"matches","value":"photo"}),
            json!({"field":"id","operation":"matches","value":"*"}),
        ] {
            let body = json!({"hitsperpage": "1000", "query": {"terms": [term]}});
            let req = query::parse_search(body.as_object().unwrap(), "asset", &field_info).unwrap();
            for catalog in ["assets", "other"] {
                let (g, w) = (
                    bulk.search_assets(catalog, &req, Scope::Live).await.unwrap(),
                    single.search_assets(catalog, &req, Scope::Live).await.unwrap(),
                );
                assert!(w.total > 0 || catalog == "other", "{body} finds assets");
                assert_eq!(g.total, w.total, "{body} in {catalog}");
                let ids = |p: &crate::store::SearchPage<Asset>| p.hits.iter().map(|a| a.id.clone()).collect::<Vec<_>>();
                assert_eq!(ids(&g), ids(&w), "{body} in {catalog}");
                let fields = ["assettype", "keywords", "owner", "width"];
                assert_eq!(
                    bulk.facet_counts(catalog, &req, &fields, 20).await.unwrap(),
                    single.facet_counts(catalog, &req, &fields, 20).await.unwrap(),
                    "facets of {body} in {catalog}"
                );
            }
        }
    }

    /// A batch with a taken id or live sourcepath names it and writes nothing.
    #[tokio::test]
    async fn a_conflict_names_the_asset_and_writes_nothing() {
        let assets = assets();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = SqliteStore::open(&path).await.unwrap();
        store.migrate().await.unwrap();
        store.insert_assets_bulk("assets", &assets[..10]).await.unwrap();
        let before = snapshot(&path);
        let mut taken_id = assets[10..20].to_vec();
        taken_id[5].id = assets[2].id.clone();
        let mut taken_path = assets[10..20].to_vec();
        taken_path[7].sourcepath = assets[4].sourcepath.clone();
        for (batch, want) in [
            (taken_id, format!("asset id \"{}\" is taken", assets[2].id)),
            (
                taken_path,
                format!("sourcepath \"{}\" is taken by another asset", assets[4].sourcepath),
            ),
        ] {
            match store.insert_assets_bulk("assets", &batch).await {
                Err(StoreError::Conflict(msg)) => assert_eq!(msg, want),
                other => panic!("{other:?}"),
            }
            assert_eq!(snapshot(&path), before, "nothing written");
        }
        store.insert_assets_bulk("assets", &assets[10..20]).await.unwrap();
        assert_eq!(store.count_assets("assets", Scope::Live).await.unwrap(), 20);
    }
}
