//! The scale-out metadata store: PostgreSQL, shared by any number of `serve` and `worker`
//! processes. Same semantics as [`super::sqlite`] (optimistic versions, `state = 'live'`
//! filtering, the same search compiled to the same predicates); jobs are claimed with
//! `FOR UPDATE SKIP LOCKED` and leases timed by the database's clock.

use super::*;
use crate::domain::asset::{Asset, ListItem, Original};
use crate::domain::query::{Cond, Query, SearchRequest, TextMode};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder, Row};
use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

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
];

pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to `postgres://...` (a `?options=-c search_path=...` parameter selects a
    /// schema, as the tests do).
    pub async fn open(url: &str) -> StoreResult<Self> {
        let opts = PgConnectOptions::from_str(url)?.application_name("mediadb");
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(30))
            .idle_timeout(Duration::from_secs(60))
            .connect_with(opts)
            .await?;
        Ok(PostgresStore { pool })
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
    let fields: String = row.try_get("fields")?;
    let mut fields: Map<String, Value> = serde_json::from_str(&fields).map_err(corrupt("asset fields"))?;
    let blob_key: Option<String> = row.try_get("blob_key")?;
    let original = match blob_key {
        Some(blob_key) => Some(Original {
            blob_key,
            filename: row.try_get::<Option<String>, _>("filename")?.unwrap_or_default(),
            size: row.try_get::<Option<i64>, _>("filesize")?.unwrap_or(0) as u64,
            md5hex: row.try_get::<Option<String>, _>("md5hex")?.unwrap_or_default(),
            sha256hex: row.try_get::<Option<String>, _>("sha256hex")?.unwrap_or_default(),
        }),
        None => None,
    };
    if row.try_get::<String, _>("state")? == "trashed" {
        if let Some(by) = row.try_get::<Option<String>, _>("deleted_by")? {
            fields.insert("deletedby".into(), Value::String(by));
        }
        if let Some(at) = row.try_get::<Option<String>, _>("deleted_at")? {
            fields.insert("deleteddate".into(), Value::String(at));
        }
    }
    Ok(StoredAsset {
        asset: Asset {
            id: row.try_get("id")?,
            sourcepath: row.try_get("sourcepath")?,
            fields,
            original,
        },
        version: row.try_get("version")?,
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

/// Inserts an asset's row (not its index) and returns its `seq`; a taken id or live
/// sourcepath is a `Conflict` naming which.
async fn insert_asset_row(tx: &mut PgConnection, catalog: &str, asset: &Asset, ts: &str) -> StoreResult<i64> {
    let fields = serde_json::to_string(&asset.fields).map_err(corrupt("asset fields"))?;
    let o = asset.original.as_ref();
    let res = sqlx::query_scalar(
        "INSERT INTO assets (catalog, id, sourcepath, fields, blob_key, filename, filesize, md5hex, sha256hex,
                             fulltext, created, modified)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING seq",
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
    .bind(t(&fulltext(asset)).into_owned())
    .bind(ts)
    .bind(ts)
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
        let mut tx = self.pool.begin().await?;
        let seq = insert_asset_row(&mut tx, catalog, asset, &now()).await?;
        write_index(&mut tx, "asset_values", seq, &index_rows(asset)).await?;
        write_list_items(&mut tx, catalog, items).await?;
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
        let mut tx = self.pool.begin().await?;
        let seq = insert_asset_row(&mut tx, catalog, asset, &now()).await?;
        write_index(&mut tx, "asset_values", seq, &index_rows(asset)).await?;
        write_list_items(&mut tx, catalog, items).await?;
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
        let row = sqlx::query(&format!(
            "SELECT {ASSET_COLUMNS} FROM assets a WHERE a.catalog = $1 AND a.id = $2 AND a.state = $3"
        ))
        .bind(t(catalog))
        .bind(t(id))
        .bind(state_of(scope))
        .fetch_optional(&self.pool)
        .await?;
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

    async fn asset_id_taken(&self, catalog: &str, id: &str) -> StoreResult<bool> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM assets WHERE catalog = $1 AND id = $2")
            .bind(t(catalog))
            .bind(t(id))
            .fetch_one(&self.pool)
            .await?;
        Ok(n > 0)
    }

    async fn update_asset(&self, catalog: &str, asset: &Asset, version: i64, items: &[ListItem]) -> StoreResult<()> {
        let fields = serde_json::to_string(&asset.fields).map_err(corrupt("asset fields"))?;
        let o = asset.original.as_ref();
        let mut tx = self.pool.begin().await?;
        // The state and version guards make a write after a delete, or over a
        // concurrent write, change nothing (a concurrent writer's UPDATE waits for our
        // row lock, then re-checks the guards against the committed row).
        let res = sqlx::query(
            "UPDATE assets SET version = version + 1, fields = $1, sourcepath = $2, blob_key = $3, filename = $4,
                    filesize = $5, md5hex = $6, sha256hex = $7, fulltext = $8, modified = $9
             WHERE catalog = $10 AND id = $11 AND state = 'live' AND version = $12 RETURNING seq",
        )
        .bind(fields)
        .bind(t(&asset.sourcepath))
        .bind(o.map(|o| &o.blob_key))
        .bind(to(o.map(|o| &o.filename)))
        .bind(o.map(|o| o.size as i64))
        .bind(o.map(|o| &o.md5hex))
        .bind(o.map(|o| &o.sha256hex))
        .bind(t(&fulltext(asset)).into_owned())
        .bind(now())
        .bind(t(catalog))
        .bind(t(&asset.id))
        .bind(version)
        .fetch_optional(&mut *tx)
        .await;
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
        write_index(&mut tx, "asset_values", seq, &index_rows(asset)).await?;
        write_list_items(&mut tx, catalog, items).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn trash_assets(&self, catalog: &str, ids: &[String], by: &str) -> StoreResult<Vec<String>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ts = now();
        let mut tx = self.pool.begin().await?;
        let mut done = Vec::new();
        for chunk in ids.chunks(500) {
            let ids: Vec<String> = chunk.iter().map(|i| t(i).into_owned()).collect();
            let rows = sqlx::query(
                "UPDATE assets SET state = 'trashed', deleted_at = $1, deleted_by = $2, version = version + 1
                 WHERE catalog = $3 AND state = 'live' AND id = ANY($4) RETURNING id",
            )
            .bind(&ts)
            .bind(t(by))
            .bind(t(catalog))
            .bind(ids)
            .fetch_all(&mut *tx)
            .await?;
            for r in rows {
                done.push(r.try_get::<String, _>("id")?);
            }
        }
        tx.commit().await?;
        Ok(done)
    }

    async fn restore_assets(&self, catalog: &str, ids: &[String]) -> StoreResult<Vec<(String, RestoreOutcome)>> {
        let mut out = Vec::new();
        for id in ids {
            let res = sqlx::query(
                "UPDATE assets SET state = 'live', deleted_at = NULL, deleted_by = NULL, version = version + 1,
                        modified = $1
                 WHERE catalog = $2 AND id = $3 AND state = 'trashed'",
            )
            .bind(now())
            .bind(t(catalog))
            .bind(t(id))
            .execute(&self.pool)
            .await;
            let outcome = match res {
                Ok(r) if r.rows_affected() == 1 => RestoreOutcome::Restored,
                Ok(_) => RestoreOutcome::NotInTrash,
                Err(e) if is_unique_violation(&e) => {
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
        let row = sqlx::query(&format!(
            "DELETE FROM assets a WHERE a.catalog = $1 AND a.id = $2 RETURNING {ASSET_COLUMNS}"
        ))
        .bind(t(catalog))
        .bind(t(id))
        .fetch_optional(&self.pool)
        .await?;
        match row {
            None => Err(StoreError::NotFound),
            Some(r) => Ok(asset_from_row(&r)?.asset),
        }
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
        let target = Target::assets();
        let mut count: QueryBuilder<Postgres> = QueryBuilder::new("SELECT COUNT(*) FROM assets a WHERE a.state = ");
        count
            .push_bind(state_of(scope))
            .push(" AND a.catalog = ")
            .push_bind(t(catalog).into_owned())
            .push(" AND ");
        push_query(&mut count, &req.query, &target);
        let total: i64 = count.build_query_scalar().fetch_one(&self.pool).await?;

        let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(format!("SELECT {ASSET_COLUMNS}"));
        push_from(&mut qb, "assets", req, &target);
        qb.push(" WHERE a.state = ")
            .push_bind(state_of(scope))
            .push(" AND a.catalog = ")
            .push_bind(t(catalog).into_owned())
            .push(" AND ");
        push_query(&mut qb, &req.query, &target);
        push_order_and_page(&mut qb, req, &target, true);
        let rows = qb.build().fetch_all(&self.pool).await?;
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
        let target = Target::assets();
        let mut qb: QueryBuilder<Postgres> = QueryBuilder::new("SELECT a.id");
        push_from(&mut qb, "assets", req, &target);
        qb.push(" WHERE a.state = ")
            .push_bind(state_of(scope))
            .push(" AND a.catalog = ")
            .push_bind(t(catalog).into_owned())
            .push(" AND ");
        push_query(&mut qb, &req.query, &target);
        push_order_and_page(&mut qb, req, &target, false);
        Ok(qb.build_query_scalar().fetch_all(&self.pool).await?)
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
        // Counted from the values of the live assets the search selects (the whole
        // catalog included): the same numbers SQLite keeps in its maintained table.
        let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(
            "SELECT field, v, n FROM (SELECT field, v, n, ROW_NUMBER() OVER (PARTITION BY field ORDER BY n DESC, v) AS rn
             FROM (SELECT x.field AS field, x.v AS v, COUNT(*) AS n FROM asset_values x
                   WHERE x.v IS NOT NULL AND x.field = ANY(",
        );
        qb.push_bind(fields.iter().map(|f| t(f).into_owned()).collect::<Vec<_>>())
            .push(") AND x.seq IN (SELECT a.seq FROM assets a WHERE a.state = 'live' AND a.catalog = ")
            .push_bind(t(catalog).into_owned())
            .push(" AND ");
        push_query(&mut qb, &req.query, &Target::assets());
        qb.push(") GROUP BY x.field, x.v) c) r WHERE n > 0 AND rn <= ")
            .push_bind(per_field as i64)
            .push(" ORDER BY field, n DESC, v");
        let rows = qb.build().fetch_all(&self.pool).await?;
        let mut out: Vec<(String, Vec<(String, u64)>)> = fields.iter().map(|f| (f.to_string(), Vec::new())).collect();
        for r in rows {
            let field: String = r.try_get("field")?;
            if let Some(slot) = out.iter_mut().find(|(f, _)| *f == field) {
                slot.1.push((r.try_get("v")?, r.try_get::<i64, _>("n")? as u64));
            }
        }
        Ok(out)
    }

    async fn insert_assets_bulk(&self, catalog: &str, assets: &[Asset]) -> StoreResult<()> {
        let ts = now();
        let mut tx = self.pool.begin().await?;
        for asset in assets {
            let seq = insert_asset_row(&mut tx, catalog, asset, &ts).await?;
            write_index(&mut tx, "asset_values", seq, &index_rows(asset)).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn count_assets(&self, catalog: &str, scope: Scope) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM assets WHERE catalog = $1 AND state = $2")
            .bind(t(catalog))
            .bind(state_of(scope))
            .fetch_one(&self.pool)
            .await?;
        Ok(n as u64)
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
        let total: i64 = count.build_query_scalar().fetch_one(&self.pool).await?;
        let mut qb: QueryBuilder<Postgres> = QueryBuilder::new("SELECT a.data");
        push_from(&mut qb, "records", req, &target);
        qb.push(" WHERE a.catalog = ")
            .push_bind(t(catalog).into_owned())
            .push(" AND a.searchtype = ")
            .push_bind(t(searchtype).into_owned())
            .push(" AND ");
        push_query(&mut qb, &req.query, &target);
        push_order_and_page(&mut qb, req, &target, true);
        let rows: Vec<String> = qb.build_query_scalar().fetch_all(&self.pool).await?;
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
}

impl<'a> Target<'a> {
    fn assets() -> Self {
        Target {
            values: "asset_values",
            kind: Box::new(|f| field_kind(f).unwrap_or(FieldKind::Keyword)),
            assets: true,
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
    if paged {
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
        qb.push(col).push(like_op(col, keep_case)).push_bind(pat);
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

fn push_cond(qb: &mut QueryBuilder<Postgres>, field: &str, cond: &Cond, target: &Target) {
    let kind = target.kind.as_ref()(field);
    let direct = target.direct(field);
    let analysed = matches!(kind, FieldKind::Text | FieldKind::MultiLang) && field != "id";
    let values = target.values;
    // `a.seq IN (...)`: the matching set is built once from the (field, v, seq) index.
    let set_open = |qb: &mut QueryBuilder<Postgres>| {
        qb.push(format!("a.seq IN (SELECT x.seq FROM {values} x WHERE x.field = "))
            .push_bind(t(field).into_owned())
            .push(" AND ");
    };
    let text = |qb: &mut QueryBuilder<Postgres>, mode: TextMode, value: &str| match direct {
        Some(col) => push_text_test(qb, col, analysed, true, mode, value),
        None => {
            set_open(qb);
            push_text_test(qb, "x.v", analysed, kind.list_table().is_some(), mode, value);
            qb.push(")");
        }
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
                set_open(qb);
                qb.push("1 = 1)");
            }
        }
        Cond::Range { min, max } => {
            set_open(qb);
            qb.push("x.n IS NOT NULL");
            if let Some(lo) = min {
                qb.push(" AND x.n >= ").push_bind(*lo);
            }
            if let Some(hi) = max {
                qb.push(" AND x.n <= ").push_bind(*hi);
            }
            qb.push(")");
        }
    }
}
