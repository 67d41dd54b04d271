//! Generic tables (wire §9.1-9.2): `lists/{create,data}/{table}` and
//! `module/{module}/{create,data}` for every table but assets, over the store's records.
//! The EMDB envelopes differ by family: `lists/create` answers without `status`, a
//! module's DELETE adds `"deleted":"true"`.

use super::error::{ApiError, ApiResult};
use super::{ok_json, Call};
use crate::domain::asset::CONTROL_KEYS;
use crate::ops::assets::{new_asset_id, validate_id};
use axum::response::Response;
use serde_json::{json, Map, Value};

/// Tables the server keeps itself: readable through the API, never written by it.
fn read_only(table: &str) -> bool {
    matches!(
        table,
        "endpoint"
            | "docsection"
            | "convertpreset"
            | "auditlog"
            | "asset"
            | "user"
            | "group"
            // Kept through their own calls: baskets and orders per user, modules by
            // administrators.
            | "orderitem"
            | "order"
            | "module"
            | "customtable"
            | "customfield"
    )
}

pub(super) fn writable(table: &str) -> ApiResult<()> {
    if read_only(table) {
        return Err(ApiError::Forbidden(format!(
            "the \"{table}\" table is kept by the server and is read-only here"
        )));
    }
    Ok(())
}

/// The record's fields from the request: every parameter but the ones that steer the call.
fn body_fields(call: &Call) -> Map<String, Value> {
    call.params
        .merged()
        .into_iter()
        .filter(|(k, _)| !CONTROL_KEYS.contains(&k.as_str()) || k == "id")
        .filter(|(_, v)| !v.is_null())
        .collect()
}

async fn audit(call: &Call, action: &'static str, table: &str, id: &str) {
    let mut e = call.ops().audit(action, None);
    e.details = json!({"searchtype": table, "id": id});
    crate::ops::audit::record(call.state.store.as_ref(), e).await;
}

pub async fn create(call: &mut Call, table: &str, module: bool) -> ApiResult<Response> {
    let (id, data) = insert(call, table).await?;
    let response = if module {
        json!({"status": "ok", "id": id})
    } else {
        json!({"id": id})
    };
    Ok(ok_json(json!({"response": response, "data": data})))
}

/// Stores a new record from the request's fields; its id and fields.
async fn insert(call: &mut Call, table: &str) -> ApiResult<(String, Map<String, Value>)> {
    writable(table)?;
    let mut data = body_fields(call);
    let id = match data.get("id").and_then(Value::as_str) {
        Some(id) => id.to_string(),
        None => new_asset_id(),
    };
    validate_id(&id)?;
    if call.state.store.get_record(&call.catalog, table, &id).await?.is_some() {
        return Err(ApiError::Conflict(format!(
            "{table} \"{id}\" exists; update it with PUT"
        )));
    }
    data.insert("id".into(), json!(id));
    if table == super::collections::TABLE {
        super::collections::with_root_category(call, &mut data).await?;
    }
    call.state.store.put_record(&call.catalog, table, &id, &data).await?;
    audit(call, "recordcreate", table, &id).await;
    Ok((id, data))
}

pub async fn get(call: &mut Call, table: &str, id: &str) -> ApiResult<Response> {
    let data = match table {
        "endpoint" | "docsection" | "convertpreset" => None,
        _ => call.state.store.get_record(&call.catalog, table, id).await?,
    };
    let data = data.ok_or_else(|| ApiError::not_found(id))?;
    Ok(ok_json(json!({"response": {"status": "ok", "id": id}, "data": data})))
}

/// Updates a record; an unknown id creates it (EMDB does), under the id of the URL.
pub async fn update(call: &mut Call, table: &str, id: &str, _module: bool) -> ApiResult<Response> {
    writable(table)?;
    let changes = body_fields(call);
    if changes.keys().all(|k| k == "id") {
        return Err(ApiError::bad(
            "nothing to update: send the fields as JSON, e.g. {\"name\":\"...\"}",
        ));
    }
    let mut data = call
        .state
        .store
        .get_record(&call.catalog, table, id)
        .await?
        .unwrap_or_default();
    for (k, v) in changes {
        if k == "id" {
            continue;
        }
        if v.as_str() == Some("") {
            data.remove(&k);
        } else {
            data.insert(k, v);
        }
    }
    data.insert("id".into(), json!(id));
    call.state.store.put_record(&call.catalog, table, id, &data).await?;
    audit(call, "recordupdate", table, id).await;
    Ok(ok_json(json!({"response": {"status": "ok", "id": id}, "data": data})))
}

pub async fn delete(call: &mut Call, table: &str, id: &str, module: bool) -> ApiResult<Response> {
    writable(table)?;
    if !call.state.store.delete_record(&call.catalog, table, id).await? {
        return Err(ApiError::not_found(id));
    }
    audit(call, "recorddelete", table, id).await;
    let mut response = json!({"status": "ok", "id": id});
    if module {
        response["deleted"] = json!("true");
    }
    Ok(ok_json(json!({ "response": response })))
}

/// `module/{module}/searchorcreate`: the record whose `name` is the one sent, else a new
/// record made from the body (as `module/{module}/create`). `created` tells which.
pub async fn search_or_create(call: &mut Call, table: &str) -> ApiResult<Response> {
    let name = call
        .params
        .get("name")
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| ApiError::bad("name is required, e.g. {\"name\":\"Sales\"}"))?;
    let body = json!({
        "hitsperpage": "1000",
        "query": {"terms": [{"field": "name", "operation": "exact", "value": name}]}
    });
    let body = body.as_object().cloned().unwrap_or_default();
    let resolve = |f: &str| {
        Some(crate::domain::query::FieldInfo {
            kind: crate::domain::fields::record_field_kind(table, f),
            name: "",
        })
    };
    let req = crate::domain::query::parse_search(&body, table, &resolve)?;
    let page = call.state.store.search_records(&call.catalog, table, &req).await?;
    // The index compares words; the name itself must be the same text.
    let found = page
        .hits
        .into_iter()
        .find(|r| r.get("name").and_then(Value::as_str) == Some(name.as_str()));
    if let Some(data) = found {
        let id = data.get("id").cloned().unwrap_or(Value::Null);
        return Ok(ok_json(json!({
            "response": {"status": "ok", "id": id, "created": "false"},
            "data": data
        })));
    }
    let (id, data) = insert(call, table).await?;
    Ok(ok_json(json!({
        "response": {"status": "ok", "id": id, "created": "true"},
        "data": data
    })))
}
