//! The embedded metadata store: SQLite in WAL mode with full synchronous commits, so
//! an acknowledged write survives a crash.

use super::*;
use crate::domain::asset::{Asset, ListItem, Original};
use crate::domain::query::{Cond, Query, SearchRequest, TextMode};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};
use std::borrow::Cow;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

const MIGRATIONS: &[(i64, &str, &str)] = &[(
    1,
    "initial",
    include_str!("../../migrations/sqlite/0001_initial.sql"),
)];

pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    pub async fn open(path: &Path) -> StoreResult<Self> {
        let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .min_connections(1)
            .connect_with(opts)
            .await?;
        Ok(SqliteStore { pool })
    }
}

fn now() -> String {
    crate::domain::dates::now_emdb()
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

const ASSET_COLUMNS: &str =
    "id, sourcepath, version, fields, blob_key, filename, filesize, md5hex, sha256hex";

fn asset_from_row(row: &SqliteRow) -> StoreResult<StoredAsset> {
    let fields: String = row.try_get("fields")?;
    let fields: serde_json::Map<String, Value> = serde_json::from_str(&fields)
        .map_err(|e| StoreError::Corrupt(format!("asset fields: {e}")))?;
    let blob_key: Option<String> = row.try_get("blob_key")?;
    let original = match blob_key {
        Some(blob_key) => Some(Original {
            blob_key,
            filename: row
                .try_get::<Option<String>, _>("filename")?
                .unwrap_or_default(),
            size: row.try_get::<Option<i64>, _>("filesize")?.unwrap_or(0) as u64,
            md5hex: row
                .try_get::<Option<String>, _>("md5hex")?
                .unwrap_or_default(),
            sha256hex: row
                .try_get::<Option<String>, _>("sha256hex")?
                .unwrap_or_default(),
        }),
        None => None,
    };
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

async fn write_index(tx: &mut sqlx::SqliteConnection, seq: i64, asset: &Asset) -> StoreResult<()> {
    sqlx::query("DELETE FROM asset_values WHERE seq = ?")
        .bind(seq)
        .execute(&mut *tx)
        .await?;
    let rows = index_rows(asset);
    for chunk in rows.chunks(200) {
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new("INSERT INTO asset_values (seq, field, v, n) ");
        qb.push_values(chunk, |mut b, r| {
            b.push_bind(seq)
                .push_bind(&r.field)
                .push_bind(&r.v)
                .push_bind(r.n);
        });
        qb.build().execute(&mut *tx).await?;
    }
    Ok(())
}

async fn write_list_items(
    tx: &mut sqlx::SqliteConnection,
    catalog: &str,
    items: &[ListItem],
) -> StoreResult<()> {
    for it in items {
        sqlx::query(
            "INSERT INTO list_items (catalog, searchtype, id, name) VALUES (?, ?, ?, ?)
             ON CONFLICT (catalog, searchtype, id) DO UPDATE SET name = excluded.name",
        )
        .bind(catalog)
        .bind(&it.table)
        .bind(&it.id)
        .bind(&it.name)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

#[async_trait]
impl MetaStore for SqliteStore {
    async fn migrate(&self) -> StoreResult<()> {
        let migrations: Vec<Migration> = MIGRATIONS
            .iter()
            .map(|(v, d, sql)| {
                Migration::new(
                    *v,
                    Cow::Borrowed(*d),
                    MigrationType::Simple,
                    Cow::Borrowed(*sql),
                    false,
                )
            })
            .collect();
        let migrator = Migrator {
            migrations: Cow::Owned(migrations),
            ..Migrator::DEFAULT
        };
        migrator
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Corrupt(format!("migration failed: {e}")))?;
        Ok(())
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
        let row = sqlx::query("SELECT * FROM users WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(User {
                id: r.try_get("id")?,
                password_hash: r.try_get("password_hash")?,
                firstname: r.try_get("firstname")?,
                lastname: r.try_get("lastname")?,
                email: r.try_get("email")?,
                screenname: r.try_get("screenname")?,
                enabled: r.try_get::<i64, _>("enabled")? != 0,
            })
        })
        .transpose()
    }

    async fn create_user(&self, u: &User, groups: &[&str]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        let res = sqlx::query(
            "INSERT INTO users (id, password_hash, firstname, lastname, email, screenname, enabled, created)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&u.id)
        .bind(&u.password_hash)
        .bind(&u.firstname)
        .bind(&u.lastname)
        .bind(&u.email)
        .bind(&u.screenname)
        .bind(u.enabled as i64)
        .bind(now())
        .execute(&mut *tx)
        .await;
        match res {
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Conflict(format!("user \"{}\" exists", u.id)))
            }
            r => r?,
        };
        for g in groups {
            sqlx::query("INSERT INTO user_groups (user_id, group_id) VALUES (?, ?)")
                .bind(&u.id)
                .bind(g)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn ensure_group(&self, id: &str, name: &str, permissions: &[&str]) -> StoreResult<()> {
        let perms = serde_json::to_string(permissions).unwrap_or_else(|_| "[]".into());
        sqlx::query(
            "INSERT INTO groups (id, name, permissions) VALUES (?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET permissions = excluded.permissions",
        )
        .bind(id)
        .bind(name)
        .bind(perms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn user_permissions(&self, user_id: &str) -> StoreResult<Vec<String>> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT g.permissions FROM groups g JOIN user_groups ug ON ug.group_id = g.id WHERE ug.user_id = ?",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<String> = Vec::new();
        for r in rows {
            let list: Vec<String> = serde_json::from_str(&r)
                .map_err(|e| StoreError::Corrupt(format!("group permissions: {e}")))?;
            for p in list {
                if !out.contains(&p) {
                    out.push(p);
                }
            }
        }
        Ok(out)
    }

    async fn insert_key(
        &self,
        token_hash: &str,
        user_id: &str,
        expires: Option<&str>,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO api_keys (token_hash, user_id, created, expires) VALUES (?, ?, ?, ?)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(now())
        .bind(expires)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn lookup_key(&self, token_hash: &str) -> StoreResult<Option<KeyRecord>> {
        let row =
            sqlx::query("SELECT user_id, expires, revoked FROM api_keys WHERE token_hash = ?")
                .bind(token_hash)
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
        let r =
            sqlx::query("UPDATE api_keys SET revoked = ? WHERE token_hash = ? AND revoked IS NULL")
                .bind(now())
                .bind(token_hash)
                .execute(&self.pool)
                .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn revoke_user_keys(&self, user_id: &str) -> StoreResult<u64> {
        let r =
            sqlx::query("UPDATE api_keys SET revoked = ? WHERE user_id = ? AND revoked IS NULL")
                .bind(now())
                .bind(user_id)
                .execute(&self.pool)
                .await?;
        Ok(r.rows_affected())
    }

    async fn insert_asset(
        &self,
        catalog: &str,
        asset: &Asset,
        items: &[ListItem],
    ) -> StoreResult<()> {
        let fields =
            serde_json::to_string(&asset.fields).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let o = asset.original.as_ref();
        let ts = now();
        let mut tx = self.pool.begin().await?;
        let res = sqlx::query(
            "INSERT INTO assets (catalog, id, sourcepath, fields, blob_key, filename, filesize, md5hex, sha256hex,
                                 fulltext, created, modified)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq",
        )
        .bind(catalog)
        .bind(&asset.id)
        .bind(&asset.sourcepath)
        .bind(fields)
        .bind(o.map(|o| &o.blob_key))
        .bind(o.map(|o| &o.filename))
        .bind(o.map(|o| o.size as i64))
        .bind(o.map(|o| &o.md5hex))
        .bind(o.map(|o| &o.sha256hex))
        .bind(fulltext(asset))
        .bind(&ts)
        .bind(&ts)
        .fetch_one(&mut *tx)
        .await;
        let seq: i64 = match res {
            Err(e) if is_unique_violation(&e) => {
                let msg = if e.to_string().contains("sourcepath") {
                    format!(
                        "sourcepath \"{}\" is taken by another asset",
                        asset.sourcepath
                    )
                } else {
                    format!("asset id \"{}\" is taken", asset.id)
                };
                return Err(StoreError::Conflict(msg));
            }
            r => r?.try_get("seq")?,
        };
        write_index(&mut tx, seq, asset).await?;
        write_list_items(&mut tx, catalog, items).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_asset(&self, catalog: &str, id: &str) -> StoreResult<Option<StoredAsset>> {
        let row = sqlx::query(&format!(
            "SELECT {ASSET_COLUMNS} FROM assets WHERE catalog = ? AND id = ? AND state = 'live'"
        ))
        .bind(catalog)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(asset_from_row).transpose()
    }

    async fn get_asset_by_sourcepath(
        &self,
        catalog: &str,
        sourcepath: &str,
    ) -> StoreResult<Option<StoredAsset>> {
        let row = sqlx::query(&format!(
            "SELECT {ASSET_COLUMNS} FROM assets WHERE catalog = ? AND sourcepath = ? AND state = 'live'"
        ))
        .bind(catalog)
        .bind(sourcepath)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(asset_from_row).transpose()
    }

    async fn asset_id_taken(&self, catalog: &str, id: &str) -> StoreResult<bool> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM assets WHERE catalog = ? AND id = ?")
            .bind(catalog)
            .bind(id)
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
    ) -> StoreResult<()> {
        let fields =
            serde_json::to_string(&asset.fields).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let o = asset.original.as_ref();
        let mut tx = self.pool.begin().await?;
        // The state and version guards make a write after a delete, or over a
        // concurrent write, change nothing.
        let res = sqlx::query(
            "UPDATE assets SET version = version + 1, fields = ?, sourcepath = ?, blob_key = ?, filename = ?,
                    filesize = ?, md5hex = ?, sha256hex = ?, fulltext = ?, modified = ?
             WHERE catalog = ? AND id = ? AND state = 'live' AND version = ? RETURNING seq",
        )
        .bind(fields)
        .bind(&asset.sourcepath)
        .bind(o.map(|o| &o.blob_key))
        .bind(o.map(|o| &o.filename))
        .bind(o.map(|o| o.size as i64))
        .bind(o.map(|o| &o.md5hex))
        .bind(o.map(|o| &o.sha256hex))
        .bind(fulltext(asset))
        .bind(now())
        .bind(catalog)
        .bind(&asset.id)
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
            let live: Option<i64> = sqlx::query_scalar(
                "SELECT version FROM assets WHERE catalog = ? AND id = ? AND state = 'live'",
            )
            .bind(catalog)
            .bind(&asset.id)
            .fetch_optional(&self.pool)
            .await?;
            return Err(if live.is_some() {
                StoreError::Stale
            } else {
                StoreError::NotFound
            });
        };
        let seq: i64 = row.try_get("seq")?;
        write_index(&mut tx, seq, asset).await?;
        write_list_items(&mut tx, catalog, items).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn trash_assets(
        &self,
        catalog: &str,
        ids: &[String],
        by: &str,
    ) -> StoreResult<Vec<String>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ts = now();
        let mut tx = self.pool.begin().await?;
        let mut done = Vec::new();
        for chunk in ids.chunks(500) {
            let mut qb: QueryBuilder<Sqlite> =
                QueryBuilder::new("UPDATE assets SET state = 'trashed', deleted_at = ");
            qb.push_bind(&ts)
                .push(", deleted_by = ")
                .push_bind(by)
                .push(", version = version + 1 WHERE catalog = ")
                .push_bind(catalog)
                .push(" AND state = 'live' AND id IN (");
            let mut sep = qb.separated(", ");
            for id in chunk {
                sep.push_bind(id);
            }
            qb.push(") RETURNING id");
            let rows = qb.build().fetch_all(&mut *tx).await?;
            for r in rows {
                done.push(r.try_get::<String, _>("id")?);
            }
        }
        tx.commit().await?;
        Ok(done)
    }

    async fn purge_asset(&self, catalog: &str, id: &str) -> StoreResult<Option<Original>> {
        let row = sqlx::query(&format!(
            "DELETE FROM assets WHERE catalog = ? AND id = ? RETURNING {ASSET_COLUMNS}"
        ))
        .bind(catalog)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            None => Err(StoreError::NotFound),
            Some(r) => Ok(asset_from_row(&r)?.asset.original),
        }
    }

    async fn search_assets(&self, catalog: &str, req: &SearchRequest) -> StoreResult<SearchPage> {
        let mut count: QueryBuilder<Sqlite> = QueryBuilder::new(
            "SELECT COUNT(*) FROM assets a WHERE a.state = 'live' AND a.catalog = ",
        );
        count.push_bind(catalog).push(" AND ");
        push_query(&mut count, &req.query);
        let total: i64 = count.build_query_scalar().fetch_one(&self.pool).await?;

        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(format!(
            "SELECT {} FROM assets a WHERE a.state = 'live' AND a.catalog = ",
            ASSET_COLUMNS
                .split(", ")
                .map(|c| format!("a.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        qb.push_bind(catalog).push(" AND ");
        push_query(&mut qb, &req.query);
        qb.push(" ORDER BY ");
        for key in &req.sort {
            push_sort_key(&mut qb, &key.field);
            qb.push(if key.descending { " DESC, " } else { " ASC, " });
        }
        qb.push("a.seq DESC LIMIT ")
            .push_bind(req.hits_per_page as i64)
            .push(" OFFSET ")
            .push_bind((req.page as i64 - 1) * req.hits_per_page as i64);
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

    async fn list_item_names(
        &self,
        catalog: &str,
        table: &str,
        ids: &[String],
    ) -> StoreResult<Vec<(String, String)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new("SELECT id, name FROM list_items WHERE catalog = ");
        qb.push_bind(catalog)
            .push(" AND searchtype = ")
            .push_bind(table)
            .push(" AND id IN (");
        let mut sep = qb.separated(", ");
        for id in ids {
            sep.push_bind(id);
        }
        qb.push(")");
        let rows = qb.build().fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("name")?)))
            .collect()
    }
}

fn push_sort_key(qb: &mut QueryBuilder<Sqlite>, field: &str) {
    match field {
        "id" => {
            qb.push("a.id");
        }
        "sourcepath" => {
            qb.push("a.sourcepath");
        }
        f => {
            let col = if field_kind(f).is_some_and(|k| k.is_numeric()) {
                "n"
            } else {
                "v"
            };
            qb.push(format!(
                "(SELECT MIN(x.{col}) FROM asset_values x WHERE x.seq = a.seq AND x.field = "
            ))
            .push_bind(f.to_string())
            .push(")");
        }
    }
}

/// `*` in a value is a wildcard; LIKE's own wildcards are escaped.
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

fn push_query(qb: &mut QueryBuilder<Sqlite>, q: &Query) {
    match q {
        Query::All => {
            qb.push("1 = 1");
        }
        Query::And(parts) | Query::Or(parts) => {
            let joiner = if matches!(q, Query::And(_)) {
                " AND "
            } else {
                " OR "
            };
            qb.push("(");
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    qb.push(joiner);
                }
                push_query(qb, p);
            }
            qb.push(")");
        }
        Query::Not(inner) => {
            qb.push("NOT ");
            push_query(qb, inner);
        }
        Query::Cond { field, cond } => push_cond(qb, field, cond),
    }
}

fn push_cond(qb: &mut QueryBuilder<Sqlite>, field: &str, cond: &Cond) {
    let kind = field_kind(field).unwrap_or(FieldKind::Keyword);
    let analysed = matches!(kind, FieldKind::Text | FieldKind::MultiLang);
    // Columns of the asset row itself.
    let direct = match field {
        "id" => Some("a.id"),
        "sourcepath" => Some("a.sourcepath"),
        fields::DESCRIPTION => Some("a.fulltext"),
        _ => None,
    };
    let text_test = |qb: &mut QueryBuilder<Sqlite>, col: &str, mode: TextMode, value: &str| {
        if analysed {
            let words = normalize_words(&value.replace('*', " \u{1} "));
            let words = words.trim().replace('\u{1}', "*");
            let pat = like_pattern(&words);
            let pat = match mode {
                TextMode::Matches => format!("% {pat} %"),
                TextMode::Exact => format!(" {pat} "),
                TextMode::StartsWith => format!(" {pat}%"),
                TextMode::Contains => format!("%{pat}%"),
            };
            qb.push(format!("{col} LIKE "))
                .push_bind(pat)
                .push(" ESCAPE '\\'");
        } else {
            let v = if col == "a.id" || col == "a.sourcepath" {
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
                    qb.push(format!("{col} LIKE "))
                        .push_bind(pat)
                        .push(" ESCAPE '\\'");
                }
            }
        }
    };
    let exists_open = |qb: &mut QueryBuilder<Sqlite>| {
        qb.push("EXISTS (SELECT 1 FROM asset_values x WHERE x.seq = a.seq AND x.field = ")
            .push_bind(field.to_string())
            .push(" AND ");
    };
    match cond {
        Cond::Text { mode, value } => match direct {
            Some(col) => text_test(qb, col, *mode, value),
            None => {
                exists_open(qb);
                text_test(qb, "x.v", *mode, value);
                qb.push(")");
            }
        },
        Cond::Freeform(words) => {
            qb.push("(");
            for (i, w) in words.iter().enumerate() {
                if i > 0 {
                    qb.push(" AND ");
                }
                match direct {
                    Some(col) => text_test(qb, col, TextMode::Matches, w),
                    None => {
                        exists_open(qb);
                        text_test(qb, "x.v", TextMode::Matches, w);
                        qb.push(")");
                    }
                }
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
                exists_open(qb);
                qb.push("1 = 1)");
            }
        }
        Cond::Range { min, max } => {
            exists_open(qb);
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
