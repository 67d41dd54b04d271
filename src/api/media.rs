//! `module/asset/media/*` (wire §7.3): convertasset, listconversions, removeassetimages,
//! rotateasset; and the `convertpreset` table.

use super::error::{ApiError, ApiResult};
use super::{ok_json, Call};
use crate::ops::import;
use crate::ops::OpsError;
use axum::response::Response;
use serde_json::{json, Map, Value};

fn asset_id(call: &Call) -> ApiResult<String> {
    call.params
        .get("assetid")
        .or_else(|| call.params.get("id"))
        .ok_or_else(|| ApiError::bad("assetid is required, e.g. {\"assetid\":\"101\"}"))
}

async fn live_asset(call: &Call, id: &str) -> ApiResult<crate::domain::asset::Asset> {
    Ok(crate::ops::assets::get(&call.ops(), id).await?)
}

/// Queues the conversions of an asset again; answers where the result will be.
pub async fn convert(call: &mut Call) -> ApiResult<Response> {
    let id = asset_id(call)?;
    let preset_id = call.params.get("presetid").unwrap_or_else(|| "largeimage".into());
    let preset = import::presets()
        .into_iter()
        .find(|p| p.id == preset_id || p.output_file == preset_id)
        .ok_or_else(|| {
            ApiError::bad(format!(
                "no preset \"{preset_id}\"; lists/search/convertpreset lists them"
            ))
        })?;
    let asset = live_asset(call, &id).await?;
    if asset.original.is_none() {
        return Err(ApiError::bad(format!("asset \"{id}\" has no file to convert")));
    }
    let jobid = import::enqueue(call.state.store.as_ref(), &call.catalog, &id).await?;
    audit(call, "convert", &id).await;
    call.state.wake.notify_waiters();
    let sp = super::render::escape_path(&asset.sourcepath);
    let export = super::render::escape_path(&import::export_name(&asset, &preset.id, &preset.output_file));
    let path = format!(
        "{}/module/asset/downloads/generated/{sp}/{}/{export}",
        call.services_prefix(),
        preset.output_file
    );
    Ok(ok_json(
        json!({"response": {"status": "ok", "jobid": jobid}, "results": {"path": path}}),
    ))
}

pub async fn list(call: &mut Call) -> ApiResult<Response> {
    let id = asset_id(call)?;
    let asset = live_asset(call, &id).await?;
    let prefix = call.services_prefix();
    let sp = super::render::escape_path(&asset.sourcepath);
    let done = import::renditions_of(&asset);
    let results: Vec<Value> = import::presets()
        .iter()
        .map(|p| {
            let r = done.iter().find(|r| r.preset == p.id);
            let export = super::render::escape_path(&import::export_name(&asset, &p.id, &p.output_file));
            json!({
                "name": p.name, "id": p.id, "outputfile": format!("{}/{export}", p.output_file),
                "url": format!("{prefix}/module/asset/downloads/preset/{sp}/{}", p.output_file),
                "downloadurl": format!("{prefix}/module/asset/downloads/generated/{sp}/{}/{export}", p.output_file),
                "iscomplete": r.is_some().to_string(),
                "width": r.map(|r| r.width.to_string()), "height": r.map(|r| r.height.to_string()),
            })
        })
        .collect();
    let original = asset.original.as_ref().map(|o| {
        format!(
            "{prefix}/module/asset/downloads/originals/{sp}/{}",
            super::render::escape_path(&o.filename)
        )
    });
    Ok(ok_json(json!({
        "response": {
            "status": "ok", "original": original, "totalhits": results.len().to_string(),
            "searchtype": "presetdata", "page": 1, "pages": 1, "query": {"search": format!("assetid:{id}")}
        },
        "results": results
    })))
}

pub async fn remove_images(call: &mut Call) -> ApiResult<Response> {
    let id = asset_id(call)?;
    import::remove_renditions(&call.state.job_env(), &call.catalog, &id).await?;
    audit(call, "removeimages", &id).await;
    Ok(ok_json(json!({"response": {"status": "ok"}})))
}

/// Rotates the previews by 90, 180 or 270 degrees and answers the new size.
pub async fn rotate(call: &mut Call) -> ApiResult<Response> {
    let id = asset_id(call)?;
    let deg: i64 = call
        .params
        .get("rotate")
        .unwrap_or_else(|| "90".into())
        .trim()
        .parse()
        .map_err(|_| ApiError::bad("rotate must be 90, 180 or 270"))?;
    if deg % 90 != 0 {
        return Err(ApiError::bad(format!(
            "rotate must be a quarter turn (90, 180, 270), not {deg}"
        )));
    }
    if call
        .params
        .get("rotateoriginal")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        return Err(ApiError::bad(
            "rotateoriginal is not supported: originals are never rewritten; the previews are rotated",
        ));
    }
    let asset = live_asset(call, &id).await?;
    if asset.original.is_none() {
        return Err(ApiError::bad(format!("asset \"{id}\" has no file to rotate")));
    }
    match import::rotate(&call.state.job_env(), &call.catalog, &id, deg).await {
        Ok((w, h)) => {
            audit(call, "rotate", &id).await;
            Ok(ok_json(json!({"response": {"status": "ok", "height": h, "width": w}})))
        }
        Err(OpsError::NotFound(_)) => Err(ApiError::not_found(id)),
        Err(e) => Err(e.into()),
    }
}

/// The `convertpreset` table.
pub fn presets() -> Vec<Map<String, Value>> {
    import::presets()
        .into_iter()
        .map(|p| {
            let input = if p.crop || p.width <= 550 {
                "image|document|video"
            } else {
                "image|document"
            };
            json!({
                "id": p.id, "name": p.name, "generatedoutputfile": p.output_file,
                "outputextension": p.format.extension(), "onimport": "true", "inputtype": input,
                "width": p.width.to_string(), "height": p.height.to_string(), "crop": p.crop.to_string()
            })
            .as_object()
            .cloned()
            .unwrap_or_default()
        })
        .collect()
}

async fn audit(call: &Call, action: &'static str, id: &str) {
    let entry = call.ops().audit(action, Some(id));
    crate::ops::audit::record(call.state.store.as_ref(), entry).await;
}
