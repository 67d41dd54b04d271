//! `module/asset/versions/getrevisions` and `restoreversion` (wire §7.4): the versions
//! of an asset's original, newest first, each downloadable by
//! `downloads/originals/{sourcepath}/{filename}?version=N`.

use super::error::{ApiError, ApiResult};
use super::render::escape_path;
use super::{ok_json, Call};
use crate::domain::asset::Asset;
use crate::ops::assets as ops_assets;
use crate::ops::versions::{self, versions_of};
use axum::response::Response;
use serde_json::{json, Value};

fn asset_id(call: &Call) -> ApiResult<String> {
    call.params
        .get("assetid")
        .or_else(|| call.params.get("id"))
        .ok_or_else(|| ApiError::bad("assetid is required, e.g. {\"assetid\":\"101\"}"))
}

/// `1.2 MB`-style sizes, as EnterMediaDB's revision list shows them.
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

async fn answer(call: &Call, asset: &Asset, extra: Option<(&str, Value)>) -> ApiResult<Response> {
    let list = versions_of(asset);
    let current = list.last().map(|v| v.number);
    let prefix = call.services_prefix();
    let mut results = Vec::new();
    for v in list.iter().rev() {
        let user = match call.state.store.get_user(&v.userid).await? {
            Some(u) => u.display_name(),
            None => v.userid.clone(),
        };
        let url = format!(
            "{prefix}/module/asset/downloads/originals/{}?version={}",
            escape_path(&format!("{}/{}", asset.sourcepath, v.filename)),
            v.number
        );
        results.push(json!({
            "number": v.number.to_string(), "bytes": v.bytes.to_string(), "size": human_size(v.bytes),
            "date": v.date, "message": v.message, "userid": v.userid, "user": user,
            "filename": v.filename, "md5hex": v.md5hex,
            "current": (Some(v.number) == current).to_string(), "url": url,
        }));
    }
    let mut response = json!({
        "status": "ok", "id": asset.id, "totalhits": results.len().to_string(), "searchtype": "revision",
        "page": 1, "pages": 1, "query": {"search": format!("assetid:{}", asset.id)}
    });
    if let Some((k, v)) = extra {
        response[k] = v;
    }
    Ok(ok_json(json!({"response": response, "results": results})))
}

pub async fn get_revisions(call: &mut Call) -> ApiResult<Response> {
    let id = asset_id(call)?;
    let asset = ops_assets::get(&call.ops(), &id).await?;
    answer(call, &asset, None).await
}

/// `restoreversion` with `version` (a number) or `filename` (of a version).
pub async fn restore_version(call: &mut Call) -> ApiResult<Response> {
    let id = asset_id(call)?;
    let asset = ops_assets::get(&call.ops(), &id).await?;
    let list = versions_of(&asset);
    let number = match (call.params.get("version"), call.params.get("filename")) {
        (Some(v), _) => v
            .trim()
            .parse::<u32>()
            .map_err(|_| ApiError::bad(format!("version must be a version number, not \"{v}\"")))?,
        (None, Some(f)) => list
            .iter()
            .rev()
            .find(|v| v.filename == f)
            .map(|v| v.number)
            .ok_or_else(|| ApiError::not_found(format!("{id} version {f}")))?,
        (None, None) => {
            return Err(ApiError::bad(
                "version is required, e.g. {\"assetid\":\"101\",\"version\":\"1\"}",
            ))
        }
    };
    let restored = versions::restore(&call.ops(), &id, number).await?;
    call.state.wake.notify_waiters();
    answer(call, &restored, Some(("restored", json!(number.to_string())))).await
}

#[cfg(test)]
mod tests {
    use super::human_size;

    #[test]
    fn sizes() {
        assert_eq!(human_size(123), "123 bytes");
        assert_eq!(human_size(123 * 1024), "123.0 KB");
        assert_eq!(human_size(5 * 1024 * 1024 + 512 * 1024), "5.5 MB");
    }
}
