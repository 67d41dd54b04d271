//! `mediadb migrate`: copies an embedded installation (SQLite + files on the local disk)
//! to the scale-out setup (PostgreSQL + S3-compatible storage) without losing a byte.
//!
//! Order makes it safe to run again after any failure: first every blob is copied (and
//! checked against the SHA-256 recorded at upload; blobs already there with the right
//! size are skipped), then all metadata is copied in ONE PostgreSQL transaction, into a
//! target that must hold no data. Until that commit the target has no rows at all.

use crate::blobs::BlobStore;
use crate::progress::Progress;
use crate::store::postgres::PostgresStore;
use crate::store::sqlite::SqliteStore;
use crate::store::MetaStore;
use anyhow::{bail, Context};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use sqlx::postgres::Postgres;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{QueryBuilder, Row, SqlitePool};
use std::collections::HashMap;
use std::path::PathBuf;

#[derive(Debug, Clone, clap::Args)]
pub struct MigrateArgs {
    /// The embedded installation's data directory (stop its server first).
    #[arg(long)]
    pub from: PathBuf,
    /// The PostgreSQL database to fill (`postgres://...`); it must hold no data yet.
    #[arg(long, env = "MEDIADB_DATABASE_URL", hide_env_values = true)]
    pub to_database: String,
    /// Where the files go: `s3://bucket/prefix` (with the standard `AWS_*` variables).
    #[arg(long, env = "MEDIADB_STORAGE")]
    pub to_storage: String,
}

/// Tables copied, parents first. Every SQLite table must be here or in [`DERIVED`]:
/// an unknown table stops the migration rather than being left behind.
const TABLES: &[&str] = &[
    "users",
    "groups",
    "user_groups",
    "api_keys",
    "login_failures",
    "assets",
    "asset_values",
    "records",
    "record_values",
    "jobs",
];

/// SQLite-only tables that PostgreSQL rebuilds or does not need (full-text shadow
/// tables, maintained facet counts, bookkeeping).
fn derived(table: &str) -> bool {
    table.starts_with("sqlite_")
        || table.starts_with("_sqlx")
        || table == "asset_fts"
        || table.starts_with("asset_fts_")
        || table == "facet_counts"
        || table == "asset_counts"
        || table == "catalogs"
        // The full-text word counts and the store's pending maintenance (their recount).
        || table == "fts_words"
        || table == "store_tasks"
        // Each asset's facet values packed for counting (a copy of its value rows).
        || table == "asset_facets"
        || table == "facet_values"
        // Trashed assets whose value rows SQLite has yet to move: PostgreSQL derives each
        // value row's scope from its asset's state.
        || table == "trash_pending"
        // Records whose value rows SQLite writes later: opening the store (above) writes
        // any left, so `record_values` is whole when it is copied.
        || table == "records_pending"
}

/// Derived columns, not copied: the index scope of a value row (SQLite's and
/// PostgreSQL's differ in form; `PostgresStore::rebuild_counts` derives PostgreSQL's from
/// the copied assets, with the maintained counts).
const DERIVED_COLUMNS: &[(&str, &str)] = &[("asset_values", "scope")];

/// Rows per INSERT statement (PostgreSQL allows 65,535 parameters per statement).
const BATCH: i64 = 1000;

pub async fn run(args: MigrateArgs) -> anyhow::Result<()> {
    let db_path = args.from.join("mediadb.sqlite");
    anyhow::ensure!(
        db_path.is_file(),
        "{} is not a MediaDB data directory",
        args.from.display()
    );
    anyhow::ensure!(
        args.to_database.starts_with("postgres://") || args.to_database.starts_with("postgresql://"),
        "--to-database must be a postgres:// URL"
    );
    // Bring the embedded schema up to date first, so the copy knows every column.
    SqliteStore::open(&db_path).await?.migrate().await?;
    let sqlite = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(SqliteConnectOptions::new().filename(&db_path).read_only(true))
        .await?;
    let pg = PostgresStore::open(&args.to_database).await?;
    pg.migrate().await?;
    let pool = pg.pool();
    for table in ["users", "assets", "records"] {
        let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(pool)
            .await?;
        if n > 0 {
            bail!("the target database already holds {table}: migrate needs an empty one");
        }
    }
    let tables: Vec<String> = sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .fetch_all(&sqlite)
        .await?;
    for table in &tables {
        if !TABLES.contains(&table.as_str()) && !derived(table) {
            bail!("table {table} of the embedded database is unknown to this migrate: nothing copied");
        }
    }

    let source = BlobStore::local(args.from.join("blobs"))?;
    let target = BlobStore::open(&args.to_storage)?;
    copy_blobs(&sqlite, &source, &target).await?;

    let mut tx = pool.begin().await?;
    let mut counts = Vec::new();
    for table in TABLES {
        if tables.iter().any(|t| t == table) {
            let n = copy_table(&sqlite, &mut tx, table).await?;
            counts.push((*table, n));
        }
    }
    // Explicit keys were inserted: new rows must number after them.
    for table in ["assets", "records"] {
        sqlx::query(&format!(
            "SELECT setval(pg_get_serial_sequence('{table}', 'seq'), COALESCE((SELECT MAX(seq) FROM {table}), 0) + 1, false)"
        ))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    // The value scopes and maintained counts are derived: rebuilt from what was copied.
    pg.rebuild_counts().await?;

    // Check what landed against the source.
    for (table, n) in &counts {
        let m: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(pool)
            .await?;
        anyhow::ensure!(m as u64 == *n, "{table}: {n} rows read but {m} in the target");
    }
    println!(
        "migrated {}: {}",
        args.from.display(),
        counts
            .iter()
            .map(|(t, n)| format!("{n} {t}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

/// Copies every blob (originals and anything else stored), verifying originals against
/// their recorded SHA-256. Blobs already in the target with the right size are kept, so
/// an interrupted migration resumes.
async fn copy_blobs(sqlite: &SqlitePool, source: &BlobStore, target: &BlobStore) -> anyhow::Result<()> {
    let mut expected: HashMap<String, (u64, String)> = HashMap::new();
    for r in sqlx::query("SELECT blob_key, filesize, sha256hex FROM assets WHERE blob_key IS NOT NULL")
        .fetch_all(sqlite)
        .await?
    {
        let key: String = r.try_get("blob_key")?;
        let size: Option<i64> = r.try_get("filesize")?;
        let sha: Option<String> = r.try_get("sha256hex")?;
        expected.insert(key, (size.unwrap_or(0) as u64, sha.unwrap_or_default()));
    }
    let keys = source.list_keys().await?;
    for key in expected.keys() {
        anyhow::ensure!(
            keys.binary_search(key).is_ok(),
            "the original {key} of an asset is missing from the data directory"
        );
    }
    let progress = Progress::new("files", keys.len() as u64);
    let mut bytes = 0u64;
    for key in &keys {
        let want = expected.get(key);
        let read = source.get(key, None).await?;
        let size = read.size;
        if let Some((want_size, _)) = want {
            anyhow::ensure!(*want_size == size, "{key}: {size} bytes on disk, {want_size} recorded");
        }
        if target.size_of(key).await? == Some(size) {
            progress.add(1);
            continue;
        }
        let mut upload = target.begin(key.clone());
        let mut sha = Sha256::new();
        let mut stream = read.stream;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.with_context(|| format!("reading {key}"))?;
            sha.update(&chunk);
            if let Err(e) = upload.write(&chunk).await {
                upload.abort().await;
                return Err(e).with_context(|| format!("writing {key}"));
            }
        }
        if let Some((_, want_sha)) = want.filter(|(_, s)| !s.is_empty()) {
            let got = hex::encode(sha.finalize());
            if &got != want_sha {
                upload.abort().await;
                bail!("{key}: SHA-256 {got} differs from the recorded {want_sha}");
            }
        }
        upload.finish().await.with_context(|| format!("writing {key}"))?;
        bytes += size;
        progress.add(1);
    }
    progress.finish();
    println!("copied {:.1} MiB of files", bytes as f64 / (1024.0 * 1024.0));
    Ok(())
}

/// Copies one table column by column, converting each value to the target column's
/// type; a source column the target lacks stops the migration.
async fn copy_table(sqlite: &SqlitePool, tx: &mut sqlx::PgConnection, table: &str) -> anyhow::Result<u64> {
    let src_cols: Vec<String> = sqlx::query(&format!("PRAGMA table_info({table})"))
        .fetch_all(sqlite)
        .await?
        .iter()
        .map(|r| r.try_get::<String, _>("name"))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|c| !DERIVED_COLUMNS.contains(&(table, c.as_str())))
        .collect();
    let dst: Vec<(String, String)> = sqlx::query(
        "SELECT column_name::text, data_type::text FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name = $1",
    )
    .bind(table)
    .fetch_all(&mut *tx)
    .await?
    .iter()
    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
    .collect::<Result<_, sqlx::Error>>()?;
    let mut cols = Vec::new();
    for c in &src_cols {
        let Some((_, ty)) = dst.iter().find(|(n, _)| n == c) else {
            bail!("column {table}.{c} has no place in the PostgreSQL schema: nothing copied");
        };
        cols.push((c.clone(), ty.clone()));
    }
    let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(sqlite)
        .await?;
    let progress = Progress::new(table, total as u64);
    let select = format!(
        "SELECT rowid AS mediadb_rowid, {} FROM {table} WHERE rowid > ? ORDER BY rowid LIMIT {BATCH}",
        src_cols.join(", ")
    );
    let mut last: i64 = i64::MIN;
    let mut copied = 0u64;
    loop {
        let rows = sqlx::query(&select).bind(last).fetch_all(sqlite).await?;
        let Some(tail) = rows.last() else { break };
        last = tail.try_get("mediadb_rowid")?;
        let names: Vec<&str> = cols.iter().map(|(c, _)| c.as_str()).collect();
        let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(format!("INSERT INTO {table} ({}) ", names.join(", ")));
        let mut failure: Option<sqlx::Error> = None;
        qb.push_values(&rows, |mut b, row| {
            for (i, (_, ty)) in cols.iter().enumerate() {
                let i = i + 1;
                let r = match ty.as_str() {
                    "bigint" | "integer" | "smallint" => row.try_get::<Option<i64>, _>(i).map(|v| {
                        b.push_bind(v);
                    }),
                    "double precision" | "real" => row.try_get::<Option<f64>, _>(i).map(|v| {
                        b.push_bind(v);
                    }),
                    "boolean" => row.try_get::<Option<i64>, _>(i).map(|v| {
                        b.push_bind(v.map(|v| v != 0));
                    }),
                    "timestamp with time zone" => row.try_get::<Option<String>, _>(i).map(|v| {
                        b.push_bind(v).push_unseparated("::timestamptz");
                    }),
                    _ => row.try_get::<Option<String>, _>(i).map(|v| {
                        // PostgreSQL text cannot hold NUL (see store::postgres).
                        b.push_bind(v.map(|s| s.replace('\0', "\u{FFFD}")));
                    }),
                };
                if let Err(e) = r {
                    failure.get_or_insert(e);
                    b.push_bind(None::<String>);
                }
            }
        });
        if let Some(e) = failure {
            return Err(e).with_context(|| format!("reading {table}"));
        }
        qb.build()
            .execute(&mut *tx)
            .await
            .with_context(|| format!("writing {table}"))?;
        copied += rows.len() as u64;
        progress.add(rows.len() as u64);
    }
    progress.finish();
    Ok(copied)
}
