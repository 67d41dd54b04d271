//! Collections (`librarycollection`, wire §9.4): a collection owns a root category
//! (`Collections/{name}`), and its assets are those in it. `addassets` / `removeassets`
//! change membership; `searchassets` searches within (answering EMDB's `hitssessionid`).

use super::assets::{asset_ids, search_body};
use super::error::{ApiError, ApiResult};
use super::render::{AssetJson, Names};
use super::{ok_body, ok_json, Call};
use crate::domain::asset::Asset;
use crate::domain::query;
use crate::ops::assets as ops_assets;
use crate::ops::categories;
use crate::store::Scope;
use axum::response::Response;
use serde_json::{json, Map, Value};

pub const TABLE: &str = "librarycollection";

/// Gives a new collection its root category.
pub async fn with_root_category(call: &Call, data: &mut Map<String, Value>) -> ApiResult<()> {
    if data.contains_key("rootcategory") {
        return Ok(());
    }
    let id = data.get("id").and_then(Value::as_str).unwrap_or("").to_string();
    let name = data
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty())
        .unwrap_or(&id)
        .to_string();
    let path = format!("Collections/{}", name.replace('/', "-"));
    let ids = categories::ensure_path(call.state.store.as_ref(), &call.catalog, &path).await?;
    if let Some(leaf) = ids.last() {
        data.insert("rootcategory".into(), json!(leaf));
    }
    Ok(())
}

async fn collection(call: &Call) -> ApiResult<(String, String)> {
    let id = call
        .params
        .get("collectionid")
        .ok_or_else(|| ApiError::bad("collectionid is required, e.g. {\"collectionid\":\"...\"}"))?;
    let rec = call
        .state
        .store
        .get_record(&call.catalog, TABLE, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(&id))?;
    let root = rec
        .get("rootcategory")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::Conflict(format!("collection \"{id}\" has no rootcategory")))?
        .to_string();
    Ok((id, root))
}

/// Adds (or removes) assets to a collection: its root category among theirs.
pub async fn membership(call: &mut Call, add: bool) -> ApiResult<Response> {
    let (_, root) = collection(call).await?;
    let ids = asset_ids(call)?;
    let (mut done, mut missing) = (Vec::new(), Vec::new());
    for id in ids {
        let asset = match ops_assets::get(&call.ops(), &id).await {
            Ok(a) => a,
            Err(crate::ops::OpsError::NotFound(_)) => {
                missing.push(id);
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let mut exact: Vec<String> = asset
            .fields
            .get("category-exact")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default();
        let had = exact.contains(&root);
        if add && !had {
            exact.push(root.clone());
        } else if !add && had {
            exact.retain(|c| c != &root);
        } else {
            done.push(id);
            continue;
        }
        let mut values = Map::new();
        values.insert("category-exact".into(), json!(exact));
        match ops_assets::update(&call.ops(), &id, &values).await {
            Ok(_) => done.push(id),
            Err(crate::ops::OpsError::NotFound(_)) => missing.push(id),
            Err(e) => return Err(e.into()),
        }
    }
    if done.is_empty() {
        return Err(super::assets::not_found_ids(missing));
    }
    let mut response = json!({"status": "ok", "rowsedited": done.len().to_string()});
    if !missing.is_empty() {
        response["notfound"] = json!(missing);
    }
    Ok(ok_json(json!({ "response": response })))
}

/// The collection's assets, with the search language on top.
pub async fn search_assets(call: &mut Call) -> ApiResult<Response> {
    let (cid, root) = collection(call).await?;
    let body = search_body(call)?;
    let mut req = query::parse_search(&body, "asset", &ops_assets::field_info)?;
    let within = query::Query::Cond {
        field: "category".into(),
        cond: query::Cond::Text {
            mode: query::TextMode::Exact,
            value: root,
        },
    };
    req.query = query::simplify(query::Query::And(vec![within, req.query]));
    let page = ops_assets::search(&call.ops(), &req, Scope::Live).await?;
    let refs: Vec<&Asset> = page.hits.iter().collect();
    let names = Names::for_assets(call.state.store.as_ref(), &call.catalog, &refs).await;
    let prefix = call.services_prefix();
    Ok(ok_body(&super::assets::HitsAnswer {
        response: json!({
            "status": "ok", "totalhits": page.total, "searchtype": "asset", "collectionid": cid,
            "hitsperpage": req.hits_per_page, "page": req.page,
            "pages": page.total.div_ceil(req.hits_per_page as u64),
            // EnterMediaDB spells it this way in this one answer.
            "hitssessionid": super::assets::encode_session(&body),
            "query": {"friendly": req.friendly, "terms": req.echo_terms}
        }),
        results: page.hits.iter().map(|a| AssetJson::new(a, &names, &prefix)).collect(),
        filteroptions: None,
    }))
}

/// The originals of every live asset within `root_category`, for a ZIP (records
/// without a file are left out). Ids first, then one asset at a time: memory follows the
/// number of assets, never their sizes.
pub async fn originals_in_category(call: &Call, root_category: &str) -> ApiResult<Vec<super::zipstream::ZipItem>> {
    let body = json!({"query": {"terms": [{"field": "category", "operation": "exact", "value": root_category}]}});
    let body = body.as_object().cloned().unwrap_or_default();
    let req = query::parse_search(&body, "asset", &ops_assets::field_info)?;
    let ids = call
        .state
        .store
        .search_asset_ids(&call.catalog, &req, Scope::Live)
        .await?;
    originals_of(call, &ids).await
}

/// The originals of the given live assets, in order; missing assets and records
/// without a file are skipped.
pub async fn originals_of(call: &Call, ids: &[String]) -> ApiResult<Vec<super::zipstream::ZipItem>> {
    let mut items = Vec::new();
    for id in ids {
        let asset = match ops_assets::get(&call.ops(), id).await {
            Ok(a) => a,
            Err(crate::ops::OpsError::NotFound(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        if let Some(o) = asset.original {
            items.push(super::zipstream::ZipItem {
                name: o.filename,
                blob_key: o.blob_key,
            });
        }
    }
    Ok(items)
}

/// `module/librarycollection/downloadzip`: the collection's originals as one ZIP.
pub async fn download_zip(call: &mut Call) -> ApiResult<Response> {
    let (cid, root) = collection(call).await?;
    // An empty collection is an empty archive, not an error.
    let items = originals_in_category(call, &root).await?;
    let name = call
        .state
        .store
        .get_record(&call.catalog, TABLE, &cid)
        .await?
        .and_then(|r| r.get("name").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| cid.clone());
    super::zipstream::response(call.state.blobs.clone(), items, &format!("{name}.zip"))
}
