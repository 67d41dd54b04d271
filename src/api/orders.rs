//! Orders (wire §9.5): each user's basket of assets, kept as `orderitem` records
//! (`userid`, `assetid`, `assetname`, `date`), and its download as one streamed ZIP of
//! the originals or of one preset's renditions.

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
            Some(i) => zip.push(i),
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
    let name = format!(
        "order-{}.zip",
        crate::domain::dates::now_emdb().get(..10).unwrap_or("download")
    );
    super::zipstream::response(call.state.blobs.clone(), zip, &name)
}
