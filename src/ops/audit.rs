//! The audit log: who did what to which asset, when, from where. Kept as records of the
//! `auditlog` table, searchable with the search language, independent of the trash.

use crate::store::MetaStore;
use serde_json::{json, Map, Value};

pub struct Entry<'a> {
    pub catalog: &'a str,
    pub user: &'a str,
    pub address: &'a str,
    pub action: &'a str,
    pub assetid: Option<&'a str>,
    /// Field names touched (for updates).
    pub fields: Vec<String>,
    pub details: Value,
}

/// Appends an entry. An audit failure is logged, never turned into a failed request:
/// the change it describes has already been committed.
pub async fn record(store: &dyn MetaStore, e: Entry<'_>) {
    let id = {
        use rand::Rng;
        let r: u32 = rand::thread_rng().gen();
        format!("{}{:08x}", chrono::Utc::now().format("%Y%m%d%H%M%S%3f"), r)
    };
    let mut data = Map::new();
    data.insert("id".into(), json!(id));
    data.insert("date".into(), json!(crate::domain::dates::now_emdb()));
    data.insert("user".into(), json!(e.user));
    data.insert("address".into(), json!(e.address));
    data.insert("action".into(), json!(e.action));
    data.insert("searchtype".into(), json!("asset"));
    if let Some(a) = e.assetid {
        data.insert("assetid".into(), json!(a));
    }
    if !e.fields.is_empty() {
        data.insert("fields".into(), json!(e.fields));
    }
    if !e.details.is_null() {
        data.insert("details".into(), e.details);
    }
    if let Err(err) = store.put_record(e.catalog, "auditlog", &id, &data).await {
        tracing::error!(error = %err, action = e.action, "could not write the audit log");
    }
}
