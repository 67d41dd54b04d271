//! The metadata store: users, keys, assets, generic records, jobs, and their search.
//! The database is the source of truth; searches are answered by it, in the same
//! transactions as writes, so a deleted asset is never a hit.
//!
//! One trait, one implementation per engine (SQLite embedded, PostgreSQL for scale-out).
//! Engine-independent pieces (how values are indexed) live here.

#[cfg(test)]
mod planner_check;

/// The PostgreSQL database of the unit tests that need one (`MEDIADB_TEST_DATABASE_URL`),
/// or `None`, said on stderr, for a test to skip; under `MEDIADB_REQUIRE_ALL=1` a missing
/// one fails the test instead.
#[cfg(test)]
pub(crate) fn test_database_url() -> Option<String> {
    let url = std::env::var("MEDIADB_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty());
    if url.is_none() {
        assert_ne!(
            std::env::var("MEDIADB_REQUIRE_ALL").as_deref(),
            Ok("1"),
            "needs MEDIADB_TEST_DATABASE_URL"
        );
        eprintln!("skipped: needs MEDIADB_TEST_DATABASE_URL");
    }
    url
}
pub mod postgres;
mod postgres_warm;
pub mod sqlite;
mod sqlite_bulk;
mod sqlite_checkpoint;
mod sqlite_index;
mod sqlite_read;
mod sqlite_search;
mod sqlite_writer;

use crate::domain::asset::{Asset, ListItem};
use crate::domain::fields::{self, FieldKind};
use crate::domain::query::SearchRequest;
use async_trait::async_trait;
use serde_json::{Map, Value};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A uniqueness rule would be broken; the message says which.
    #[error("{0}")]
    Conflict(String),
    /// The record changed since it was read (optimistic concurrency); retry.
    #[error("the record changed concurrently")]
    Stale,
    #[error("database error: {0}")]
    Backend(#[from] sqlx::Error),
    /// A read of the embedded store failed (see `sqlite_read`).
    #[error("database error: {0}")]
    Read(#[from] rusqlite::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// A write's batch did not commit (the disk failed, or the store is stopping).
    #[error("the write was not committed: {0}")]
    NotCommitted(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub password_hash: String,
    pub firstname: String,
    pub lastname: String,
    pub email: String,
    pub screenname: String,
    pub enabled: bool,
    /// SHA-256 of the EnterMediaDB-derived key (legacy mode only).
    pub legacy_key_hash: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub id: String,
    pub name: String,
    pub permissions: Vec<String>,
}

/// A key as an administrator sees it: never the key itself.
#[derive(Debug, Clone)]
pub struct KeyInfo {
    /// The first characters of the key's hash, to tell keys apart.
    pub id: String,
    pub created: String,
    pub expires: Option<String>,
    pub revoked: Option<String>,
}

impl User {
    pub fn new(id: &str, password_hash: String) -> Self {
        User {
            id: id.to_string(),
            password_hash,
            firstname: String::new(),
            lastname: String::new(),
            email: String::new(),
            screenname: String::new(),
            enabled: true,
            legacy_key_hash: None,
        }
    }

    /// How EnterMediaDB names a user in list renderings (`owner`).
    pub fn display_name(&self) -> String {
        let full = format!("{} {}", self.firstname, self.lastname);
        let full = full.trim();
        if !full.is_empty() {
            full.to_string()
        } else if !self.screenname.is_empty() {
            self.screenname.clone()
        } else {
            self.id.clone()
        }
    }
}

/// An audit log entry (an `auditlog` record) about one asset, prepared before the write
/// it describes so the store can commit both together.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub assetid: String,
    pub id: String,
    pub data: Map<String, Value>,
}

/// Whether one value condition can drive a search by itself in either backend: its
/// matches are one or a few ranges of the value index (text, range, existence, one
/// free-form word).
pub(crate) fn value_drivable(cond: &crate::domain::query::Cond) -> bool {
    use crate::domain::query::Cond;
    match cond {
        Cond::Text { .. } | Cond::Range { .. } | Cond::Exists => true,
        Cond::Freeform(words) => words.len() == 1,
        _ => false,
    }
}

/// The audit entries of the assets among `done`.
pub fn audit_of<'a>(audit: &'a [AuditRecord], done: &'a [String]) -> impl Iterator<Item = &'a AuditRecord> {
    audit.iter().filter(move |a| done.contains(&a.assetid))
}

#[derive(Debug, Clone)]
pub struct KeyRecord {
    pub user_id: String,
    pub expires: Option<String>,
    pub revoked: bool,
}

/// An asset as stored, with the version used for optimistic updates.
#[derive(Debug, Clone)]
pub struct StoredAsset {
    pub asset: Asset,
    pub version: i64,
}

#[derive(Debug, Clone)]
pub struct SearchPage<T> {
    pub total: u64,
    pub hits: Vec<T>,
}

/// Which assets a search or lookup sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Live,
    Trash,
}

/// Why one asset could not be restored from the trash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreOutcome {
    Restored,
    NotInTrash,
    /// Another live asset holds its sourcepath now.
    SourcepathTaken(String),
}

#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    pub kind: String,
    pub catalog: String,
    pub payload: Value,
    pub state: String,
    pub attempts: i64,
    pub progress: Value,
    pub result: Option<Value>,
    pub created: String,
    pub updated: String,
}

#[async_trait]
pub trait MetaStore: Send + Sync {
    /// Brings the schema up to date. Safe to run on every start.
    async fn migrate(&self) -> StoreResult<()>;
    /// Answers when the database can be reached.
    async fn ping(&self) -> StoreResult<()>;
    /// Refreshes the planner's statistics (after a bulk load).
    async fn analyze(&self) -> StoreResult<()>;

    /// A number that changes whenever a key is revoked or a user, a membership or a
    /// group changes: what a cached caller depends on. Cheap: read on every request.
    async fn auth_epoch(&self) -> StoreResult<i64>;

    async fn user_count(&self) -> StoreResult<u64>;
    async fn get_user(&self, id: &str) -> StoreResult<Option<User>>;
    /// Creates a user in the given groups; `Conflict` if the id is taken.
    async fn create_user(&self, user: &User, groups: &[&str]) -> StoreResult<()>;
    async fn ensure_group(&self, id: &str, name: &str, permissions: &[&str]) -> StoreResult<()>;
    /// The union of the permissions of the user's groups.
    async fn user_permissions(&self, user_id: &str) -> StoreResult<Vec<String>>;

    async fn list_users(&self) -> StoreResult<Vec<User>>;
    /// Saves a user's profile, password hash and legacy key; `NotFound` if absent.
    async fn update_user(&self, user: &User) -> StoreResult<()>;
    async fn delete_user(&self, id: &str) -> StoreResult<bool>;
    async fn user_groups(&self, user_id: &str) -> StoreResult<Vec<String>>;
    /// Adds or removes a membership; false when nothing changed.
    async fn set_user_group(&self, user_id: &str, group_id: &str, member: bool) -> StoreResult<bool>;
    async fn list_groups(&self) -> StoreResult<Vec<Group>>;
    async fn get_group(&self, id: &str) -> StoreResult<Option<Group>>;
    /// Creates or replaces a group.
    async fn put_group(&self, group: &Group) -> StoreResult<()>;
    async fn delete_group(&self, id: &str) -> StoreResult<bool>;
    async fn find_user_by_legacy_key(&self, key_hash: &str) -> StoreResult<Option<User>>;

    async fn record_login_failure(&self, user_id: &str, address: &str) -> StoreResult<()>;
    /// Failures since `since` for a user (count, time of the last).
    async fn login_failures_for_user(&self, user_id: &str, since: &str) -> StoreResult<(u64, Option<String>)>;
    async fn login_failures_from(&self, address: &str, since: &str) -> StoreResult<(u64, Option<String>)>;
    async fn clear_login_failures(&self, user_id: &str) -> StoreResult<()>;
    async fn list_keys(&self, user_id: &str) -> StoreResult<Vec<KeyInfo>>;
    /// Revokes the user's key whose hash starts with `id` (as `list_keys` shows it).
    async fn revoke_key_by_id(&self, user_id: &str, id: &str) -> StoreResult<bool>;

    async fn insert_key(&self, token_hash: &str, user_id: &str, expires: Option<&str>) -> StoreResult<()>;
    async fn lookup_key(&self, token_hash: &str) -> StoreResult<Option<KeyRecord>>;
    /// Revokes one key; false when it was unknown or already revoked.
    async fn revoke_key(&self, token_hash: &str) -> StoreResult<bool>;
    async fn revoke_user_keys(&self, user_id: &str) -> StoreResult<u64>;

    /// Inserts a new live asset; `Conflict` if its id or live source path is taken.
    async fn insert_asset(&self, catalog: &str, asset: &Asset, items: &[ListItem]) -> StoreResult<()>;
    /// Inserts a new live asset and queues a job for it in the same transaction, so a
    /// crash cannot leave the asset without its job (an upload stuck at `created`).
    /// Returns the job's id.
    async fn insert_asset_with_job(
        &self,
        catalog: &str,
        asset: &Asset,
        items: &[ListItem],
        kind: &str,
        payload: &Value,
    ) -> StoreResult<String>;
    /// Whether any asset, live or trashed, refers to a blob (as its original or a
    /// rendition). For start-up recovery, not for request paths: it may scan.
    async fn blob_referenced(&self, key: &str) -> StoreResult<bool>;
    /// A live asset by id.
    async fn get_asset(&self, catalog: &str, id: &str) -> StoreResult<Option<StoredAsset>> {
        self.get_asset_in(catalog, id, Scope::Live).await
    }
    /// An asset by id in the given scope.
    async fn get_asset_in(&self, catalog: &str, id: &str, scope: Scope) -> StoreResult<Option<StoredAsset>>;
    async fn get_asset_by_sourcepath(&self, catalog: &str, sourcepath: &str) -> StoreResult<Option<StoredAsset>>;
    /// The live source paths of a catalog that begin with `prefix`, which must end with
    /// `-` (the numbered twins of a taken path: `photo-2.jpg`, `photo-3.jpg`, ...).
    async fn live_sourcepaths_numbered(&self, catalog: &str, prefix: &str) -> StoreResult<Vec<String>>;
    /// Whether any asset, live or trashed, holds this id.
    async fn asset_id_taken(&self, catalog: &str, id: &str) -> StoreResult<bool>;
    /// Replaces a live asset's fields (and original) if it is still at `version`:
    /// `NotFound` if it is gone (deleted), `Stale` if it changed meanwhile. `audit`, the
    /// entry that records the edit, is written in the same transaction (never an edit
    /// without its entry, nor an entry of an edit that did not happen).
    async fn update_asset(
        &self,
        catalog: &str,
        asset: &Asset,
        version: i64,
        items: &[ListItem],
        audit: Option<&AuditRecord>,
    ) -> StoreResult<()>;
    /// Moves live assets to the trash at once; returns the ids that were live. The audit
    /// entries of the assets that were live are written in the same transaction (one
    /// commit, and never a delete without its entry).
    async fn trash_assets(
        &self,
        catalog: &str,
        ids: &[String],
        by: &str,
        audit: &[AuditRecord],
    ) -> StoreResult<Vec<String>>;
    /// Brings trashed assets back, each with its id, fields and original.
    async fn restore_assets(&self, catalog: &str, ids: &[String]) -> StoreResult<Vec<(String, RestoreOutcome)>>;
    /// Removes an asset (live or trashed) entirely, returning it (its files to delete).
    async fn purge_asset(&self, catalog: &str, id: &str) -> StoreResult<Asset>;
    /// Trashed assets deleted before `cutoff` (an EMDB date), oldest first.
    async fn trashed_before(&self, cutoff: &str, limit: u32) -> StoreResult<Vec<(String, String)>>;
    /// Runs a search over the assets of a scope. Trashed hits carry `deletedby` and
    /// `deleteddate`.
    async fn search_assets(&self, catalog: &str, req: &SearchRequest, scope: Scope) -> StoreResult<SearchPage<Asset>>;
    /// The ids a search matches, all of them, in order.
    async fn search_asset_ids(&self, catalog: &str, req: &SearchRequest, scope: Scope) -> StoreResult<Vec<String>>;
    /// Counts of the values of `fields` among the live assets a search matches, at most
    /// `per_field` values per field, most frequent first.
    async fn facet_counts(
        &self,
        catalog: &str,
        req: &SearchRequest,
        fields: &[&str],
        per_field: u32,
    ) -> StoreResult<Vec<(String, Vec<(String, u64)>)>> {
        // Engine-independent fallback: counts over the matching assets' values.
        // Engines override it with counts their database keeps or computes.
        let ids = self.search_asset_ids(catalog, req, Scope::Live).await?;
        let mut counts: Vec<(String, std::collections::HashMap<String, u64>)> =
            fields.iter().map(|f| (f.to_string(), Default::default())).collect();
        for id in ids {
            let Some(stored) = self.get_asset(catalog, &id).await? else {
                continue;
            };
            for row in index_rows(&stored.asset) {
                if let (Some(slot), Some(v)) = (counts.iter_mut().find(|(f, _)| *f == row.field), row.v) {
                    *slot.1.entry(v).or_default() += 1;
                }
            }
        }
        Ok(counts
            .into_iter()
            .map(|(f, m)| {
                let mut list: Vec<(String, u64)> = m.into_iter().collect();
                list.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                list.truncate(per_field as usize);
                (f, list)
            })
            .collect())
    }
    /// Inserts many new live assets at once (imports, benchmarks). Engines override it
    /// with one transaction; this fallback inserts them one by one.
    async fn insert_assets_bulk(&self, catalog: &str, assets: &[Asset]) -> StoreResult<()> {
        for a in assets {
            self.insert_asset(catalog, a, &[]).await?;
        }
        Ok(())
    }
    /// Prepares an offline load of many assets (no searches meanwhile): engines may
    /// set aside indexes that are cheaper to build once at the end.
    async fn bulk_load_begin(&self) -> StoreResult<()> {
        Ok(())
    }
    /// Ends a bulk load: every index is complete again and statistics are fresh.
    async fn bulk_load_end(&self) -> StoreResult<()> {
        self.analyze().await
    }
    /// How many assets a scope holds.
    async fn count_assets(&self, catalog: &str, scope: Scope) -> StoreResult<u64>;

    /// Creates or replaces a record of a generic table.
    async fn put_record(&self, catalog: &str, searchtype: &str, id: &str, data: &Map<String, Value>)
        -> StoreResult<()>;
    async fn get_record(&self, catalog: &str, searchtype: &str, id: &str) -> StoreResult<Option<Map<String, Value>>>;
    async fn delete_record(&self, catalog: &str, searchtype: &str, id: &str) -> StoreResult<bool>;
    async fn search_records(
        &self,
        catalog: &str,
        searchtype: &str,
        req: &SearchRequest,
    ) -> StoreResult<SearchPage<Map<String, Value>>>;
    /// The `name`s of the given records of a table.
    async fn record_names(&self, catalog: &str, searchtype: &str, ids: &[String])
        -> StoreResult<Vec<(String, String)>>;

    async fn enqueue_job(&self, kind: &str, catalog: &str, payload: &Value) -> StoreResult<String>;
    /// Claims the oldest runnable job with a lease of `lease_secs`.
    async fn claim_job(&self, owner: &str, lease_secs: u64) -> StoreResult<Option<Job>>;
    /// Records progress (unless `progress` is null) and extends the lease (a heartbeat).
    async fn job_progress(&self, id: &str, owner: &str, progress: &Value, lease_secs: u64) -> StoreResult<()>;
    async fn finish_job(&self, id: &str, owner: &str, ok: bool, result: &Value) -> StoreResult<()>;
    /// Puts a job back in the queue to run after `delay_secs`.
    async fn retry_job(&self, id: &str, owner: &str, delay_secs: u64, error: &str) -> StoreResult<()>;
    async fn get_job(&self, id: &str) -> StoreResult<Option<Job>>;
    /// Returns jobs whose lease ran out to the queue; the number returned.
    async fn requeue_expired_jobs(&self) -> StoreResult<u64>;
    /// How many running jobs hold a lease that ran out (stuck: their worker is gone).
    async fn expired_job_count(&self) -> StoreResult<u64>;

    // ---- Operations (#11) ----
    /// Queued and running jobs: `(kind, state, count)`.
    async fn job_counts(&self) -> StoreResult<Vec<(String, String, u64)>>;
    /// This process's database connections.
    fn pool_stats(&self) -> PoolStats;
    /// A live asset whose original has this SHA-256: `(id, sourcepath)`.
    async fn find_asset_by_sha256(&self, catalog: &str, sha256hex: &str) -> StoreResult<Option<(String, String)>>;
}

/// Connections of a pool: open, of which idle, and the most it opens.
#[derive(Debug, Clone, Copy, Default)]
pub struct PoolStats {
    pub size: u64,
    pub idle: u64,
    pub max: u64,
}

/// The fields whose value counts over a whole catalog's live assets are kept up to date
/// on every write, so unfiltered facets are read rather than counted.
pub const FACET_FIELDS: &[&str] = &[
    "assettype",
    "fileformat",
    "keywords",
    "category-exact",
    "editstatus",
    "owner",
    "importstatus",
    "previewstatus",
];

/// A new job id: time-ordered, then random.
pub fn new_job_id() -> String {
    use rand::Rng;
    let r: u64 = rand::thread_rng().gen();
    format!("{}{:016x}", chrono::Utc::now().format("%Y%m%d%H%M%S"), r)
}

/// The kind of an asset field for indexing and search, including the virtual ones.
pub fn field_kind(field: &str) -> Option<FieldKind> {
    match field {
        fields::DESCRIPTION => Some(FieldKind::Text),
        _ => fields::asset_field(field).map(|d| d.kind),
    }
}

/// One indexed value: text compared as `v`, numbers and dates as `n`.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexRow {
    pub field: String,
    pub v: Option<String>,
    pub n: Option<f64>,
}

pub use crate::domain::query::normalize_words;

/// The index rows of a set of field values; `kind` says how each field is compared.
pub fn index_values(values: &Map<String, Value>, kind: &dyn Fn(&str) -> Option<FieldKind>) -> Vec<IndexRow> {
    let mut rows = Vec::new();
    for (field, value) in values {
        let Some(kind) = kind(field) else { continue };
        let mut push = |s: &str| {
            let (v, n) = match kind {
                FieldKind::Text | FieldKind::MultiLang => (Some(normalize_words(s)), None),
                FieldKind::Number => (Some(s.to_lowercase()), s.parse::<f64>().ok()),
                FieldKind::Date => (
                    Some(s.to_lowercase()),
                    crate::domain::dates::parse_flexible(s).map(|t| t.timestamp_millis() as f64),
                ),
                // List values are ids: kept as they are, so facets can name them.
                FieldKind::List(_) | FieldKind::MultiList(_) => (Some(s.to_string()), None),
                _ => (Some(s.to_lowercase()), None),
            };
            rows.push(IndexRow {
                field: field.clone(),
                v,
                n,
            });
        };
        match value {
            Value::String(s) => push(s),
            Value::Array(a) => a.iter().filter_map(Value::as_str).for_each(&mut push),
            Value::Object(m) => m.values().filter_map(Value::as_str).for_each(&mut push),
            Value::Number(n) => push(&n.to_string()),
            Value::Bool(b) => push(&b.to_string()),
            Value::Null => {}
        }
    }
    rows
}

/// The index rows of an asset's fields.
pub fn index_rows(asset: &Asset) -> Vec<IndexRow> {
    index_values(&asset.fields, &field_kind)
}

/// Index rows without repeats: a value listed twice counts once, so the rows of one
/// value can be counted without DISTINCT (and the maintained facet counts agree).
pub fn unique_rows(asset: &Asset) -> Vec<IndexRow> {
    let rows = index_rows(asset);
    let same =
        |a: &IndexRow, b: &IndexRow| a.field == b.field && a.v == b.v && a.n.map(f64::to_bits) == b.n.map(f64::to_bits);
    let mut out: Vec<IndexRow> = Vec::with_capacity(rows.len());
    if rows.len() <= 64 {
        // A few rows (nearly every asset): comparing them is cheaper than hashing copies.
        for r in rows {
            if !out.iter().any(|o| same(o, &r)) {
                out.push(r);
            }
        }
    } else {
        let mut seen = std::collections::HashSet::new();
        for r in rows {
            if seen.insert((r.field.clone(), r.v.clone(), r.n.map(f64::to_bits))) {
                out.push(r);
            }
        }
    }
    out
}

/// Words of every value whose field `include` accepts, for the composite `description`.
pub fn fulltext_of(values: &Map<String, Value>, include: &dyn Fn(&str) -> bool, extra: &str) -> String {
    let mut text = String::new();
    for (field, value) in values {
        if !include(field) {
            continue;
        }
        let mut add = |s: &str| {
            text.push_str(s);
            text.push(' ');
        };
        match value {
            Value::String(s) => add(s),
            Value::Array(a) => a.iter().filter_map(Value::as_str).for_each(&mut add),
            Value::Object(m) => m.values().filter_map(Value::as_str).for_each(&mut add),
            _ => {}
        }
    }
    text.push_str(extra);
    normalize_words(&text)
}

/// The composite full-text value behind an asset's `description` field.
pub fn fulltext(asset: &Asset) -> String {
    fulltext_of(
        &asset.fields,
        &|f| fields::asset_field(f).is_some_and(|d| d.fulltext),
        &asset.sourcepath.replace('/', " "),
    )
}

/// The bounds of the source paths beginning with `prefix` (which ends with `-`), as
/// `path >= lower AND path < upper` in byte order: `-` and `.` are neighbours in ASCII.
pub(crate) fn numbered_bounds(prefix: &str) -> StoreResult<(String, String)> {
    match prefix.strip_suffix('-') {
        Some(stem) => Ok((prefix.to_string(), format!("{stem}."))),
        None => Err(StoreError::Corrupt(format!("not a numbered prefix: {prefix:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn words_are_padded_and_lowered() {
        assert_eq!(normalize_words("Big, RED bird!"), " big red bird ");
        assert_eq!(normalize_words(""), " ");
    }

    #[test]
    fn rows_follow_field_kinds() {
        let a = Asset {
            id: "1".into(),
            sourcepath: "x/y.jpg".into(),
            fields: json!({"name":"Y.jpg","keywords":["Bird","cat"],"width":"40","assetaddeddate":"2020-01-01T00:00:00.000Z","unknown":"z"})
                .as_object()
                .unwrap()
                .clone(),
            original: None,
        };
        let rows = index_rows(&a);
        assert!(rows.contains(&IndexRow {
            field: "name".into(),
            v: Some(" y jpg ".into()),
            n: None
        }));
        assert!(rows.contains(&IndexRow {
            field: "keywords".into(),
            v: Some("bird".into()),
            n: None
        }));
        assert!(rows.contains(&IndexRow {
            field: "width".into(),
            v: Some("40".into()),
            n: Some(40.0)
        }));
        assert!(rows
            .iter()
            .any(|r| r.field == "assetaddeddate" && r.n == Some(1577836800000.0)));
        assert!(!rows.iter().any(|r| r.field == "unknown"));
        assert!(fulltext(&a).contains(" bird "));
    }
}
