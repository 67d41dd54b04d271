//! Administration of tables and fields (wire §9.6): `settings/modules/*` registers custom
//! modules (their tables work with every generic `module/{m}/*` and `lists/*` call), and
//! `settings/datamanager/*` lists tables and fields, adds and removes custom asset
//! fields, reindexes a table and exports it as CSV.

use super::error::{ApiError, ApiResult};
use super::export::{cell, csv_response, push_row, to_csv};
use super::{ok_json, Call};
use crate::domain::fields::{custom, FieldDef, ASSET_FIELDS};
use crate::ops::{customfields, tables};
use crate::store::{Scope, StoreError};
use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::Response;
use serde_json::{json, Map, Value};

/// The table of registered modules.
pub const MODULES: &str = "module";
/// The table of data tables added with `addtable` (no module of their own).
pub const TABLES: &str = "customtable";

/// Tables every catalog has, besides registered modules.
const BUILT_IN: &[&str] = &[
    "asset",
    "category",
    "librarycollection",
    "order",
    "orderitem",
    "purpose",
    "assettype",
    "fileformat",
    "library",
    "convertpreset",
    "endpoint",
    "docsection",
    "auditlog",
    "user",
    "group",
];

fn searchtype(call: &Call) -> ApiResult<String> {
    call.params
        .get("searchtype")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::bad("searchtype is required, e.g. {\"searchtype\":\"asset\"}"))
}

fn list_answer(searchtype: &str, results: Vec<Value>) -> Response {
    let n = results.len();
    ok_json(json!({
        "response": {
            "status": "ok", "totalhits": n.to_string(), "searchtype": searchtype,
            "hitsperpage": n.max(1).to_string(), "page": "1", "pages": "1"
        },
        "results": results
    }))
}

async fn modules(call: &Call) -> ApiResult<Vec<Map<String, Value>>> {
    Ok(tables::all_records(call.state.store.as_ref(), &call.catalog, MODULES, &Map::new()).await?)
}

async fn added_tables(call: &Call) -> ApiResult<Vec<Map<String, Value>>> {
    Ok(tables::all_records(call.state.store.as_ref(), &call.catalog, TABLES, &Map::new()).await?)
}

/// A table id as modules take them: a lower-case letter, then a-z, 0-9 and `_`.
fn valid_table_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

// ---- settings/modules ----

/// `settings/modules/create` `{"id":"project","name":"Projects"}`.
pub async fn module_create(call: &mut Call) -> ApiResult<Response> {
    let id = call
        .params
        .get("id")
        .or_else(|| call.params.get("moduleid"))
        .ok_or_else(|| ApiError::bad("id is required, e.g. {\"id\":\"project\",\"name\":\"Projects\"}"))?;
    if !valid_table_id(&id) {
        return Err(ApiError::bad(format!(
            "module id \"{id}\" must start with a lower-case letter and hold only a-z, 0-9 and '_'"
        )));
    }
    if BUILT_IN.contains(&id.as_str()) || id == MODULES || id == TABLES {
        return Err(ApiError::Conflict(format!("\"{id}\" is a built-in table")));
    }
    let store = call.state.store.as_ref();
    if store.get_record(&call.catalog, MODULES, &id).await?.is_some() {
        return Err(ApiError::Conflict(format!(
            "module \"{id}\" exists; update it with PUT"
        )));
    }
    let name = call
        .params
        .get("name")
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| id.clone());
    let mut rec = Map::new();
    rec.insert("id".into(), json!(id));
    rec.insert("name".into(), json!(name));
    rec.insert("searchtype".into(), json!(id));
    store.put_record(&call.catalog, MODULES, &id, &rec).await?;
    Ok(ok_json(json!({"response": {"status": "ok", "id": id}, "data": rec})))
}

/// `settings/modules/list`: the registered modules.
pub async fn module_list(call: &mut Call) -> ApiResult<Response> {
    let found = modules(call).await?;
    Ok(list_answer(MODULES, found.into_iter().map(Value::Object).collect()))
}

pub async fn module_get(call: &mut Call, id: &str) -> ApiResult<Response> {
    let rec = call
        .state
        .store
        .get_record(&call.catalog, MODULES, id)
        .await?
        .ok_or_else(|| ApiError::not_found(id))?;
    Ok(ok_json(json!({"response": {"status": "ok", "id": id}, "data": rec})))
}

/// Renames a module (`name`); the id is its table and stays.
pub async fn module_update(call: &mut Call, id: &str) -> ApiResult<Response> {
    let store = call.state.store.as_ref();
    let mut rec = store
        .get_record(&call.catalog, MODULES, id)
        .await?
        .ok_or_else(|| ApiError::not_found(id))?;
    let name = call
        .params
        .get("name")
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| ApiError::bad("name is required, e.g. {\"name\":\"Projects\"}"))?;
    rec.insert("name".into(), json!(name));
    store.put_record(&call.catalog, MODULES, id, &rec).await?;
    Ok(ok_json(json!({"response": {"status": "ok", "id": id}, "data": rec})))
}

/// Unregisters a module; the records of its table are kept.
pub async fn module_delete(call: &mut Call, id: &str) -> ApiResult<Response> {
    if !call.state.store.delete_record(&call.catalog, MODULES, id).await? {
        return Err(ApiError::not_found(id));
    }
    Ok(ok_json(
        json!({"response": {"status": "ok", "id": id, "deleted": "true"}}),
    ))
}

// ---- settings/datamanager ----

/// `listtables`: the built-in tables and the registered modules.
pub async fn list_tables(call: &mut Call) -> ApiResult<Response> {
    let mut results: Vec<Value> = BUILT_IN.iter().map(|t| json!({"id": t, "name": t})).collect();
    for m in modules(call).await? {
        let id = m.get("id").cloned().unwrap_or(Value::Null);
        results.push(json!({"id": id, "name": m.get("name").cloned().unwrap_or_else(|| id.clone()), "module": "true"}));
    }
    for t in added_tables(call).await? {
        let id = t.get("id").cloned().unwrap_or(Value::Null);
        if !results.iter().any(|r| r["id"] == id) {
            results.push(
                json!({"id": id, "name": t.get("name").cloned().unwrap_or_else(|| id.clone()), "module": "false"}),
            );
        }
    }
    Ok(list_answer("table", results))
}

/// `addtable` `{"tablename":"vendors"}` (or `id`, `searchtype`): a data table listed by
/// `listtables`. Every generic call works on any table anyway; this names it.
pub async fn add_table(call: &mut Call) -> ApiResult<Response> {
    let id = ["tablename", "searchtype", "id"]
        .iter()
        .find_map(|k| call.params.get(k).filter(|v| !v.is_empty()))
        .ok_or_else(|| ApiError::bad("tablename is required, e.g. {\"tablename\":\"vendors\"}"))?;
    if !valid_table_id(&id) {
        return Err(ApiError::bad(format!(
            "table id \"{id}\" must start with a lower-case letter and hold only a-z, 0-9 and '_'"
        )));
    }
    if BUILT_IN.contains(&id.as_str()) || id == MODULES || id == TABLES {
        return Err(ApiError::Conflict(format!("\"{id}\" is a built-in table")));
    }
    let store = call.state.store.as_ref();
    if store.get_record(&call.catalog, TABLES, &id).await?.is_some()
        || store.get_record(&call.catalog, MODULES, &id).await?.is_some()
    {
        return Err(ApiError::Conflict(format!("table \"{id}\" exists")));
    }
    let name = call
        .params
        .get("name")
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| id.clone());
    let mut rec = Map::new();
    rec.insert("id".into(), json!(id));
    rec.insert("name".into(), json!(name));
    store.put_record(&call.catalog, TABLES, &id, &rec).await?;
    Ok(ok_json(json!({"response": {"status": "ok", "id": id}, "data": rec})))
}

/// `table/deletetable` `{"searchtype":"vendors"}`: a table added with `addtable` or a
/// module's, with every record in it (a module's registration too). Built-in tables are
/// refused. Answers how many records went.
pub async fn delete_table(call: &mut Call) -> ApiResult<Response> {
    let st = searchtype(call)?;
    if BUILT_IN.contains(&st.as_str()) || st == MODULES || st == TABLES {
        return Err(ApiError::Conflict(format!(
            "\"{st}\" is a built-in table and cannot be deleted"
        )));
    }
    let store = call.state.store.as_ref();
    let added = store.get_record(&call.catalog, TABLES, &st).await?.is_some();
    let module = store.get_record(&call.catalog, MODULES, &st).await?.is_some();
    if !added && !module {
        return Err(ApiError::not_found(st));
    }
    let mut deleted = 0u64;
    for rec in tables::all_records(store, &call.catalog, &st, &Map::new()).await? {
        if let Some(id) = rec.get("id").and_then(Value::as_str) {
            if store.delete_record(&call.catalog, &st, id).await? {
                deleted += 1;
            }
        }
    }
    // Unregistered last: a failure above leaves the table listed, to be deleted again.
    store.delete_record(&call.catalog, TABLES, &st).await?;
    store.delete_record(&call.catalog, MODULES, &st).await?;
    Ok(ok_json(json!({
        "response": {"status": "ok", "id": st, "deleted": "true", "rowsdeleted": deleted.to_string()}
    })))
}

/// `reload`: the custom field definitions read again from the database now (other
/// processes of a scale-out installation otherwise pick changes up within 10 s).
pub async fn reload(call: &mut Call) -> ApiResult<Response> {
    customfields::refresh(call.state.store.as_ref()).await?;
    Ok(ok_json(json!({"response": {"status": "ok", "reloaded": "true"}})))
}

/// `fields/listfields?searchtype=x`: asset fields with their types (custom ones marked);
/// for a generic table, every field its records hold.
pub async fn list_fields(call: &mut Call) -> ApiResult<Response> {
    let st = searchtype(call)?;
    let results: Vec<Value> = if st == "asset" {
        let customs = custom::all();
        ASSET_FIELDS
            .iter()
            .chain(customs.iter().copied())
            .map(|d| {
                let is_custom = !ASSET_FIELDS.iter().any(|s| s.id == d.id);
                let mut v = field_json(d, is_custom);
                v["readonly"] = json!(d.readonly.to_string());
                v
            })
            .collect()
    } else {
        let mut seen: Vec<String> = vec!["id".into()];
        for r in tables::all_records(call.state.store.as_ref(), &call.catalog, &st, &Map::new()).await? {
            for k in r.keys() {
                if !seen.contains(k) {
                    seen.push(k.clone());
                }
            }
        }
        seen.into_iter()
            .map(|f| json!({"id": f, "name": f, "type": "text", "custom": "false"}))
            .collect()
    };
    Ok(list_answer("propertydetail", results))
}

/// A field definition as the field calls answer it.
fn field_json(d: &FieldDef, is_custom: bool) -> Value {
    let mut v = json!({
        "id": d.id, "name": d.name, "type": custom::type_name(d.kind),
        "custom": is_custom.to_string(), "faceted": custom::faceted(d.kind).to_string(),
    });
    if let Some(t) = d.kind.list_table() {
        v["listid"] = json!(t);
    }
    v
}

/// `fields/addnew` `{"searchtype":"asset","newproperty":"projectcode","name":"Project Code","type":"list"}`.
pub async fn add_field(call: &mut Call) -> ApiResult<Response> {
    let st = searchtype(call)?;
    let id = call
        .params
        .get("newproperty")
        .or_else(|| call.params.get("id"))
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApiError::bad("newproperty is required, e.g. {\"searchtype\":\"asset\",\"newproperty\":\"projectcode\"}")
        })?;
    if st != "asset" {
        // Generic tables keep any field a client writes: nothing to declare.
        return Ok(ok_json(json!({
            "response": {"status": "ok", "id": id, "searchtype": st},
            "data": {"id": id, "name": id, "type": "text"}
        })));
    }
    let name = call.params.get("name").unwrap_or_default();
    let type_name = call
        .params
        .get("type")
        .or_else(|| call.params.get("datatype"))
        .unwrap_or_default();
    let list = call.params.get("listid").unwrap_or_default();
    let def = customfields::add(call.state.store.as_ref(), &id, &name, &type_name, &list).await?;
    let data = field_json(&def, true);
    Ok(ok_json(
        json!({"response": {"status": "ok", "id": def.id, "searchtype": "asset"}, "data": data}),
    ))
}

/// `fields/save` `{"searchtype":"asset","id":"projectcode","name":"Project","type":"list"}`:
/// a custom field redefined (its name, type or list). A new type reindexes the assets at
/// once, so searches and facets follow it; values that do not fit it are not indexed.
pub async fn save_field(call: &mut Call) -> ApiResult<Response> {
    let st = searchtype(call)?;
    let id = call
        .params
        .get("id")
        .or_else(|| call.params.get("fieldid"))
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApiError::bad("id is required, e.g. {\"searchtype\":\"asset\",\"id\":\"projectcode\",\"name\":\"Project\"}")
        })?;
    if st != "asset" {
        return Err(ApiError::bad(
            "only asset fields are declared; generic tables take any field without a definition",
        ));
    }
    if ASSET_FIELDS.iter().any(|d| d.id == id) {
        return Err(ApiError::Conflict(format!(
            "\"{id}\" is a standard field and cannot be changed"
        )));
    }
    let Some(old) = custom::all().into_iter().find(|d| d.id == id).copied() else {
        return Err(ApiError::not_found(id));
    };
    let name = call.params.get("name").unwrap_or_else(|| old.name.to_string());
    let type_name = call
        .params
        .get("type")
        .or_else(|| call.params.get("datatype"))
        .unwrap_or_else(|| custom::type_name(old.kind).to_string());
    let list = call
        .params
        .get("listid")
        .or_else(|| old.kind.list_table().map(str::to_string))
        .unwrap_or_default();
    let def = customfields::add(call.state.store.as_ref(), &id, &name, &type_name, &list).await?;
    let reindexed = if def.kind != old.kind {
        reindex_assets(call).await?.to_string()
    } else {
        "0".to_string()
    };
    let data = field_json(&def, true);
    Ok(ok_json(json!({
        "response": {"status": "ok", "id": def.id, "searchtype": "asset", "reindexed": reindexed},
        "data": data
    })))
}

/// `fields/remove` `{"searchtype":"asset","id":"projectcode"}`.
pub async fn remove_field(call: &mut Call) -> ApiResult<Response> {
    let st = searchtype(call)?;
    let id = call
        .params
        .get("id")
        .or_else(|| call.params.get("fieldid"))
        .or_else(|| call.params.get("newproperty"))
        .ok_or_else(|| ApiError::bad("id is required, e.g. {\"searchtype\":\"asset\",\"id\":\"projectcode\"}"))?;
    if st != "asset" {
        return Err(ApiError::bad(
            "only asset fields are declared; fields of generic tables go when no record holds them",
        ));
    }
    customfields::remove(call.state.store.as_ref(), &id).await?;
    Ok(ok_json(
        json!({"response": {"status": "ok", "id": id, "searchtype": "asset"}}),
    ))
}

/// `table/reindex` `{"searchtype":"asset"}`: every record written again, so its index
/// rows follow the current field definitions. Synchronous; answers the count.
pub async fn reindex(call: &mut Call) -> ApiResult<Response> {
    let st = searchtype(call)?;
    let store = call.state.store.as_ref();
    let n = if st == "asset" {
        reindex_assets(call).await?
    } else {
        let mut n = 0u64;
        for rec in tables::all_records(store, &call.catalog, &st, &Map::new()).await? {
            let Some(id) = rec.get("id").and_then(Value::as_str).map(str::to_string) else {
                continue;
            };
            store.put_record(&call.catalog, &st, &id, &rec).await?;
            n += 1;
        }
        n
    };
    Ok(ok_json(
        json!({"response": {"status": "ok", "searchtype": st, "reindexed": n.to_string()}}),
    ))
}

/// Every live asset written again, so its index rows follow the current field
/// definitions; answers how many.
async fn reindex_assets(call: &Call) -> ApiResult<u64> {
    let store = call.state.store.as_ref();
    let mut n = 0u64;
    let all = crate::domain::query::parse_search(&Map::new(), "asset", &crate::ops::assets::field_info)?;
    let ids = store.search_asset_ids(&call.catalog, &all, Scope::Live).await?;
    for id in ids {
        // A concurrent write reindexes the asset itself; a deleted one needs nothing.
        for _ in 0..3 {
            let Some(stored) = store.get_asset(&call.catalog, &id).await? else {
                break;
            };
            match store
                .update_asset(&call.catalog, &stored.asset, stored.version, &[], None)
                .await
            {
                Ok(()) => {
                    n += 1;
                    break;
                }
                Err(StoreError::Stale) => continue,
                Err(StoreError::NotFound) => break,
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(n)
}

/// `table/export/{searchtype}.csv`: a whole table as CSV. Assets are streamed one row at
/// a time (columns: `id`, `sourcepath`, then every defined field); generic tables as in
/// `lists/export`.
pub async fn export_table(call: &mut Call, st: &str) -> ApiResult<Response> {
    let st = st.strip_suffix(".csv").unwrap_or(st);
    if st != "asset" {
        if matches!(st, "endpoint" | "docsection" | "convertpreset" | "user" | "group") {
            return Err(ApiError::bad(format!("the \"{st}\" table cannot be exported here")));
        }
        let records = tables::all_records(call.state.store.as_ref(), &call.catalog, st, &Map::new()).await?;
        return csv_response(st, to_csv(&records));
    }
    let all = crate::domain::query::parse_search(&Map::new(), "asset", &crate::ops::assets::field_info)?;
    let ids = call
        .state
        .store
        .search_asset_ids(&call.catalog, &all, Scope::Live)
        .await?;
    let customs = custom::all();
    let columns: Vec<&'static str> = ["id", "sourcepath"]
        .into_iter()
        .chain(
            ASSET_FIELDS
                .iter()
                .chain(customs.iter().copied())
                .map(|d| d.id)
                .filter(|f| *f != "id" && *f != "sourcepath"),
        )
        .collect();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<String, std::io::Error>>(16);
    let store = call.state.store.clone();
    let catalog = call.catalog.clone();
    tokio::spawn(async move {
        let mut header = String::new();
        push_row(&mut header, columns.iter().copied());
        if tx.send(Ok(header)).await.is_err() {
            return;
        }
        for id in ids {
            let row = match store.get_asset(&catalog, &id).await {
                Ok(Some(s)) => {
                    let a = s.asset;
                    let cells: Vec<String> = columns
                        .iter()
                        .map(|c| match *c {
                            "id" => a.id.clone(),
                            "sourcepath" => a.sourcepath.clone(),
                            f => cell(a.fields.get(f)),
                        })
                        .collect();
                    let mut line = String::new();
                    push_row(&mut line, cells.iter().map(String::as_str));
                    Ok(line)
                }
                // Deleted meanwhile: not in the export.
                Ok(None) => continue,
                Err(e) => Err(std::io::Error::other(e.to_string())),
            };
            let failed = row.is_err();
            if tx.send(row).await.is_err() || failed {
                return;
            }
        }
    });
    let stream = tokio_stream_from(rx);
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/csv; charset=utf-8")
        .header(header::CONTENT_DISPOSITION, "attachment; filename=\"asset.csv\"")
        .header(header::CACHE_CONTROL, "private, no-cache")
        .body(Body::from_stream(stream))
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// The receiver as a stream of body chunks.
fn tokio_stream_from(
    rx: tokio::sync::mpsc::Receiver<Result<String, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<String, std::io::Error>> {
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) })
}
