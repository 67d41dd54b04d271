//! Orders (wire §9.5): each user's basket of assets, kept as `orderitem` records
//! (`userid`, `assetid`, `assetname`, `date`), and its download as one streamed ZIP of
//! the originals or of one preset's renditions. Every download is kept as an `order`
//! record (who, when, which preset, its items inside it) that its user reads back with
//! `listopenorders`, `recentorderitems` and `orderdetails`/`updateorderstatus`; user
//! managers see every user's through the generic `module/order/search`.

use super::assets::{asset_ids, not_found_ids};
use super::error::{ApiError, ApiResult};
use super::zipstream::ZipItem;
use super::{ok_json, Call};
use crate::ops::assets as ops_assets;
use crate::ops::import;
use axum::response::Response;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

pub const TABLE: &str = "orderitem";
/// Placed orders. Their items are kept inside them, so that the basket's `orderitem`
/// records stay the basket's alone however many orders a user has placed.
pub const ORDERS: &str = "order";
/// How far back `listopenorders` and `recentorderitems` look (EnterMediaDB's 90 days).
const OPEN_DAYS: i64 = 90;

fn caller_id(call: &Call) -> ApiResult<String> {
    call.caller
        .as_ref()
        .map(|c| c.user.id.clone())
        .ok_or_else(|| ApiError::Unauthorized("a key is required".into()))
}

/// One item per user and asset: its id is derived from both, so adding twice is a no-op.
fn item_id(user: &str, assetid: &str) -> String {
    let digest = Sha256::digest(format!("{user}\0{assetid}").as_bytes());
    format!("oi{}", &hex::encode(digest)[..24])
}

/// The caller's basket, oldest first.
async fn items(call: &Call, user: &str) -> ApiResult<Vec<Map<String, Value>>> {
    // Newest first, then reversed: a search breaks ties newest first whatever the
    // direction, so two items added in the same millisecond came out of "dateUp" in the
    // reverse of the order they were added.
    let body = json!({
        "sortby": "dateDown",
        "query": {"terms": [{"field": "userid", "operation": "exact", "value": user}]}
    });
    let found = crate::ops::tables::all_records(
        call.state.store.as_ref(),
        &call.catalog,
        TABLE,
        body.as_object().expect("an object"),
    )
    .await?;
    // The index lower-cases keywords; the basket is the exact user's.
    Ok(found
        .into_iter()
        .rev()
        .filter(|r| r.get("userid").and_then(Value::as_str) == Some(user))
        .collect())
}

fn basket_answer(items: Vec<Map<String, Value>>, extra: Map<String, Value>) -> Response {
    let n = items.len();
    let mut response = json!({
        "status": "ok", "totalhits": n.to_string(), "searchtype": TABLE,
        "hitsperpage": n.max(1).to_string(), "page": "1", "pages": "1"
    });
    for (k, v) in extra {
        response[k] = v;
    }
    ok_json(json!({"response": response, "results": items}))
}

/// `basketadd` (`assetid`, one or a list) and `basketremove` (`id` of an order item, or
/// `assetid`): answers the basket.
pub async fn basket(call: &mut Call, add: bool) -> ApiResult<Response> {
    let user = caller_id(call)?;
    let mut extra = Map::new();
    if add {
        let ids = asset_ids(call)?;
        let (mut added, mut missing) = (0usize, Vec::new());
        for id in ids {
            let asset = match ops_assets::get(&call.ops(), &id).await {
                Ok(a) => a,
                Err(crate::ops::OpsError::NotFound(_)) => {
                    missing.push(id);
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let oid = item_id(&user, &asset.id);
            if call.state.store.get_record(&call.catalog, TABLE, &oid).await?.is_some() {
                continue;
            }
            let mut rec = Map::new();
            rec.insert("id".into(), json!(oid));
            rec.insert("userid".into(), json!(user));
            rec.insert("assetid".into(), json!(asset.id));
            rec.insert("assetname".into(), json!(asset.text("name").unwrap_or(&asset.id)));
            rec.insert("date".into(), json!(crate::domain::dates::now_emdb()));
            call.state.store.put_record(&call.catalog, TABLE, &oid, &rec).await?;
            added += 1;
        }
        if added == 0 && !missing.is_empty() {
            return Err(not_found_ids(missing));
        }
        extra.insert("added".into(), json!(added.to_string()));
        if !missing.is_empty() {
            extra.insert("notfound".into(), json!(missing));
        }
    } else {
        let targets: Vec<String> = match call.params.get("id") {
            Some(oid) => vec![oid],
            None => asset_ids(call)
                .map_err(|_| ApiError::bad("send the order item's id, or assetid, e.g. {\"id\":\"oi...\"}"))?
                .iter()
                .map(|a| item_id(&user, a))
                .collect(),
        };
        let mut removed = 0usize;
        for oid in targets {
            // Only the caller's own items: another user's id is simply not in this basket.
            let mine = call
                .state
                .store
                .get_record(&call.catalog, TABLE, &oid)
                .await?
                .is_some_and(|r| r.get("userid").and_then(Value::as_str) == Some(user.as_str()));
            if mine && call.state.store.delete_record(&call.catalog, TABLE, &oid).await? {
                removed += 1;
            }
        }
        extra.insert("removed".into(), json!(removed.to_string()));
    }
    Ok(basket_answer(items(call, &user).await?, extra))
}

/// `listorderitems`: the caller's basket.
pub async fn list(call: &mut Call) -> ApiResult<Response> {
    let user = caller_id(call)?;
    Ok(basket_answer(items(call, &user).await?, Map::new()))
}

/// A form-style value (`"presetid.value":"0"`) or a plain one (`"presetid":"0"`).
fn form_value(call: &Call, name: &str) -> Option<String> {
    call.params
        .get(&format!("{name}.value"))
        .or_else(|| call.params.get(name))
        .filter(|v| !v.is_empty())
}

/// `orderdownload`: the listed assets (`assetid`), else the basket, as one ZIP; the
/// originals (`presetid` absent or `0`), else that preset's renditions under their
/// export names. Every asset must have what is asked for, or nothing is sent.
pub async fn download(call: &mut Call) -> ApiResult<Response> {
    let user = caller_id(call)?;
    let preset = form_value(call, "presetid").filter(|p| p != "0");
    if let Some(p) = &preset {
        if !import::presets().iter().any(|x| &x.id == p) {
            return Err(ApiError::bad(format!(
                "presetid \"{p}\" is no preset; use \"0\" for originals or an id of lists/search/convertpreset"
            )));
        }
    }
    let ids: Vec<String> = match call.params.get_value("assetid") {
        Some(_) => asset_ids(call)?,
        None => items(call, &user)
            .await?
            .iter()
            .filter_map(|r| r.get("assetid").and_then(Value::as_str).map(str::to_string))
            .collect(),
    };
    if ids.is_empty() {
        return Err(ApiError::bad(
            "the basket is empty: add assets with module/order/basketadd, or send assetid",
        ));
    }
    let (mut zip, mut missing, mut lacking) = (Vec::new(), Vec::new(), Vec::new());
    let mut ordered = Vec::new();
    for id in &ids {
        let asset = match ops_assets::get(&call.ops(), id).await {
            Ok(a) => a,
            Err(crate::ops::OpsError::NotFound(_)) => {
                missing.push(id.clone());
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let item = match &preset {
            None => asset.original.as_ref().map(|o| ZipItem {
                name: o.filename.clone(),
                blob_key: o.blob_key.clone(),
            }),
            Some(p) => import::renditions_of(&asset)
                .into_iter()
                .find(|r| &r.preset == p)
                .map(|r| ZipItem {
                    name: import::export_name(&asset, p, &r.file),
                    blob_key: r.blob,
                }),
        };
        match item {
            Some(i) => {
                zip.push(i);
                ordered.push((asset.id.clone(), asset.text("name").unwrap_or(&asset.id).to_string()));
            }
            None => lacking.push(id.clone()),
        }
    }
    if !missing.is_empty() {
        return Err(not_found_ids(missing));
    }
    if !lacking.is_empty() {
        return Err(ApiError::Conflict(format!(
            "{} for asset(s) {}; nothing was sent",
            match &preset {
                Some(p) => format!("no \"{p}\" rendition (yet)"),
                None => "no original file".into(),
            },
            lacking.join(", ")
        )));
    }
    let order = place(call, &user, preset.as_deref(), &ordered).await?;
    let name = format!(
        "order-{}.zip",
        crate::domain::dates::now_emdb().get(..10).unwrap_or("download")
    );
    let mut response = super::zipstream::response(call.state.blobs.clone(), zip, &name)?;
    if let Ok(v) = axum::http::HeaderValue::from_str(&order) {
        response.headers_mut().insert("x-order-id", v);
    }
    Ok(response)
}

/// Records a download as an order of `ordered` (asset id and name) and answers its id.
async fn place(call: &Call, user: &str, preset: Option<&str>, ordered: &[(String, String)]) -> ApiResult<String> {
    let id = crate::ops::assets::new_asset_id();
    let presetid = preset.unwrap_or("0");
    let items: Vec<Value> = ordered
        .iter()
        .enumerate()
        .map(|(n, (assetid, assetname))| {
            json!({
                "id": format!("{id}-{}", n + 1), "orderid": id, "assetid": assetid,
                "assetname": assetname, "presetid": presetid, "status": "complete"
            })
        })
        .collect();
    let mut rec = Map::new();
    rec.insert("id".into(), json!(id));
    rec.insert("userid".into(), json!(user));
    rec.insert("date".into(), json!(crate::domain::dates::now_emdb()));
    rec.insert("ordertype".into(), json!("download"));
    rec.insert("orderstatus".into(), json!("complete"));
    rec.insert("presetid".into(), json!(presetid));
    rec.insert("itemcount".into(), json!(items.len().to_string()));
    rec.insert("items".into(), Value::Array(items));
    call.state.store.put_record(&call.catalog, ORDERS, &id, &rec).await?;
    Ok(id)
}

/// The caller's orders of the last `OPEN_DAYS` days, newest first.
async fn recent_orders(call: &Call, user: &str) -> ApiResult<Vec<Map<String, Value>>> {
    let body = json!({
        "sortby": "dateDown",
        "query": {"terms": [{"field": "userid", "operation": "exact", "value": user}]}
    });
    let since = crate::domain::dates::format_emdb(chrono::Utc::now() - chrono::Duration::days(OPEN_DAYS));
    let found = crate::ops::tables::all_records(
        call.state.store.as_ref(),
        &call.catalog,
        ORDERS,
        body.as_object().expect("an object"),
    )
    .await?;
    // Dates are written in one fixed format, so they compare as text.
    Ok(found
        .into_iter()
        .filter(|r| r.get("userid").and_then(Value::as_str) == Some(user))
        .filter(|r| {
            r.get("date")
                .and_then(Value::as_str)
                .is_some_and(|d| d >= since.as_str())
        })
        .collect())
}

/// An order as a list shows it: without its items (`itemcount` says how many).
fn summary(mut order: Map<String, Value>) -> Map<String, Value> {
    order.remove("items");
    order
}

/// An order with its items, as `orderdetails` shows it: each item's preset (with the URL
/// that downloads it, while its asset exists) and asset.
async fn details(call: &Call, order: Map<String, Value>) -> ApiResult<Value> {
    let prefix = call.services_prefix();
    let presets = import::presets();
    let mut items = Vec::new();
    for item in order.get("items").and_then(Value::as_array).into_iter().flatten() {
        let text = |k: &str| item.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        let (assetid, presetid) = (text("assetid"), text("presetid"));
        let asset = match ops_assets::get(&call.ops(), &assetid).await {
            Ok(a) => Some(a),
            Err(crate::ops::OpsError::NotFound(_)) => None,
            Err(e) => return Err(e.into()),
        };
        let path = asset.as_ref().and_then(|a| {
            let sp = super::render::escape_path(&a.sourcepath);
            match presets.iter().find(|p| p.id == presetid) {
                None => a.original.as_ref().map(|o| {
                    format!(
                        "{prefix}/module/asset/downloads/originals/{sp}/{}",
                        super::render::escape_path(&o.filename)
                    )
                }),
                Some(p) => {
                    let export = super::render::escape_path(&import::export_name(a, &p.id, &p.output_file));
                    Some(format!(
                        "{prefix}/module/asset/downloads/generated/{sp}/{}/{export}",
                        p.output_file
                    ))
                }
            }
        });
        let preset_name = presets
            .iter()
            .find(|p| p.id == presetid)
            .map_or("Original".to_string(), |p| p.name.clone());
        items.push(json!({
            "id": text("id"), "status": text("status"),
            "preset": {"id": presetid, "name": preset_name, "path": path},
            "asset": {
                "id": assetid,
                "name": asset.as_ref().and_then(|a| a.text("name")).map_or(text("assetname"), str::to_string)
            }
        }));
    }
    let id = order.get("id").cloned().unwrap_or(Value::Null);
    Ok(json!({
        "response": {"status": "ok", "id": id},
        "order": summary(order),
        "orderitems": items,
        "history": []
    }))
}

/// `listopenorders`: the caller's orders of the last 90 days, newest first.
pub async fn open_orders(call: &mut Call) -> ApiResult<Response> {
    let user = caller_id(call)?;
    let orders: Vec<Map<String, Value>> = recent_orders(call, &user).await?.into_iter().map(summary).collect();
    let n = orders.len();
    Ok(ok_json(json!({
        "response": {
            "status": "ok", "totalhits": n.to_string(), "searchtype": ORDERS,
            "hitsperpage": n.max(1).to_string(), "page": "1", "pages": "1"
        },
        "results": orders
    })))
}

/// `recentorderitems`: the same orders, each with its items (as `orderdetails`).
pub async fn recent_items(call: &mut Call) -> ApiResult<Response> {
    let user = caller_id(call)?;
    let mut results = Vec::new();
    for order in recent_orders(call, &user).await? {
        results.push(details(call, order).await?);
    }
    let n = results.len();
    Ok(ok_json(json!({
        "response": {
            "status": "ok", "totalhits": n.to_string(), "searchtype": ORDERS,
            "hitsperpage": n.max(1).to_string(), "page": "1", "pages": "1"
        },
        "results": results
    })))
}

/// `orderdetails` and `updateorderstatus` (`orderid`): one order with its items. Another
/// user's order is not found, except for user managers.
pub async fn order_details(call: &mut Call) -> ApiResult<Response> {
    let user = caller_id(call)?;
    let oid = call
        .params
        .get("orderid")
        .or_else(|| call.params.get("id"))
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::bad("send the order's id, e.g. {\"orderid\":\"...\"} (listopenorders lists them)"))?;
    let manager = call
        .caller
        .as_ref()
        .is_some_and(|c| c.has(crate::auth::Permission::ManageUsers));
    let order = call
        .state
        .store
        .get_record(&call.catalog, ORDERS, &oid)
        .await?
        .filter(|o| manager || o.get("userid").and_then(Value::as_str) == Some(user.as_str()))
        .ok_or_else(|| ApiError::not_found(oid.clone()))?;
    Ok(ok_json(details(call, order).await?))
}
