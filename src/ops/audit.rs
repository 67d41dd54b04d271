//! The audit log: who did what to which asset, when, from where. Kept as records of the
//! `auditlog` table, searchable with the search language, independent of the trash.

use crate::store::{AuditRecord, MetaStore};
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
    let (catalog, action) = (e.catalog, e.action);
    let (id, data) = entry_record(e);
    if let Err(err) = store.put_record(catalog, "auditlog", &id, &data).await {
        tracing::error!(error = %err, action, "could not write the audit log");
    }
}

/// An entry as the store writes it with the change it describes (see `trash_assets`).
pub fn prepare(e: Entry<'_>) -> AuditRecord {
    let assetid = e.assetid.unwrap_or_default().to_string();
    let (id, data) = entry_record(e);
    AuditRecord { assetid, id, data }
}

/// The record id (time-ordered) and fields of an entry.
fn entry_record(e: Entry<'_>) -> (String, Map<String, Value>) {
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
    (id, data)
}
