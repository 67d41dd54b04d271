//! Custom asset fields (`settings/datamanager/fields/*`): definitions kept as records of
//! the `customfield` table of the `system` catalog (so every catalog and every process
//! of the server shares them), loaded into the registry of `domain::fields::custom`.
//! A removed field keeps a tombstone (`removed: true`), so a refresh elsewhere forgets it.

use super::{OpsError, OpsResult};
use crate::domain::asset::CONTROL_KEYS;
use crate::domain::fields::{self, custom, FieldDef, ASSET_FIELDS, DESCRIPTION};
use crate::domain::Invalid;
use crate::store::MetaStore;
use serde_json::{json, Map, Value};

pub const TABLE: &str = "customfield";
pub const CATALOG: &str = "system";

/// Loads every definition into the registry (and forgets removed ones).
pub async fn refresh(store: &dyn MetaStore) -> OpsResult<()> {
    for rec in super::tables::all_records(store, CATALOG, TABLE, &Map::new()).await? {
        let text = |k: &str| rec.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let id = text("id");
        if text("removed") == "true" {
            custom::unregister(&id);
        } else if let Some(kind) = custom::kind_of(&text("type"), &text("listid")) {
            custom::register(&id, &text("name"), kind);
        }
    }
    Ok(())
}

fn standard(id: &str) -> bool {
    id == DESCRIPTION || ASSET_FIELDS.iter().any(|d| d.id == id)
}

/// Adds (or redefines) a custom asset field.
pub async fn add(store: &dyn MetaStore, id: &str, name: &str, type_name: &str, list: &str) -> OpsResult<FieldDef> {
    let valid = !id.is_empty()
        && id.len() <= 64
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        return Err(Invalid::new(format!(
            "field id \"{id}\" must start with a lower-case letter and hold only a-z, 0-9 and '_' (at most 64)"
        ))
        .into());
    }
    if standard(id) || CONTROL_KEYS.contains(&id) {
        return Err(OpsError::Conflict(format!("\"{id}\" is a standard field")));
    }
    let list = if list.is_empty() { id } else { list };
    let kind = custom::kind_of(type_name, list).ok_or_else(|| {
        Invalid::new(format!(
            "type \"{type_name}\" is unknown; use keyword, text, number, date, boolean, list, multiselect or tags"
        ))
    })?;
    let name = if name.trim().is_empty() { id } else { name.trim() };
    let mut rec = Map::new();
    rec.insert("id".into(), json!(id));
    rec.insert("name".into(), json!(name));
    rec.insert("type".into(), json!(custom::type_name(kind)));
    if let Some(t) = kind.list_table() {
        rec.insert("listid".into(), json!(t));
    }
    rec.insert("removed".into(), json!("false"));
    store.put_record(CATALOG, TABLE, id, &rec).await?;
    custom::register(id, name, kind);
    fields::asset_field(id)
        .copied()
        .ok_or_else(|| OpsError::NotFound(id.to_string()))
}

/// Removes a custom field: values stay stored but are no longer read, written, searched
/// or counted (a reindex drops their index rows).
pub async fn remove(store: &dyn MetaStore, id: &str) -> OpsResult<()> {
    if standard(id) {
        return Err(OpsError::Conflict(format!(
            "\"{id}\" is a standard field and cannot be removed"
        )));
    }
    let Some(mut rec) = store.get_record(CATALOG, TABLE, id).await? else {
        return Err(OpsError::NotFound(id.to_string()));
    };
    if rec.get("removed").and_then(Value::as_str) == Some("true") {
        return Err(OpsError::NotFound(id.to_string()));
    }
    rec.insert("removed".into(), json!("true"));
    store.put_record(CATALOG, TABLE, id, &rec).await?;
    custom::unregister(id);
    Ok(())
}
