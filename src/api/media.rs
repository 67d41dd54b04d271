//! `module/asset/media/*` (wire §7.3): convertasset, listconversions, removeassetimages,
//! rotateasset, customthumb; and the `convertpreset` table.

use super::assets::{open_multipart, read_small, take_field};
use super::endpoint::Access;
use super::error::{ApiError, ApiResult};
use super::{ok_json, session, Call};
use crate::auth::Permission;
use crate::domain::asset::Original;
use crate::ops::import;
use crate::ops::ingest::{self, ClientStreamError};
use crate::ops::OpsError;
use axum::body::Body;
use axum::response::Response;
use futures_util::StreamExt;
use mediadb_formats::multipart;
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

/// `media/customthumb`: a multipart upload (`assetid` as a form field or in `jsonrequest`,
/// and an image file) that becomes the source of the asset's previews. The previews are made
/// at once; the answer comes when they exist.
pub async fn custom_thumb(call: &mut Call, body: Option<Body>) -> ApiResult<Response> {
    let Some(body) = body else {
        return Err(ApiError::bad(
            "customthumb takes multipart/form-data: the field assetid and an image file (JPEG, PNG, GIF, TIFF, WebP, BMP or Photoshop)",
        ));
    };
    let mut upload = None;
    let result = match read_thumb_upload(call, body, &mut upload).await {
        Ok(()) => store_custom_thumb(call, &mut upload).await,
        Err(e) => Err(e),
    };
    // Whatever was received and not handed to the asset is removed.
    if let Some(o) = upload {
        let _ = call.state.blobs.delete(&o.blob_key).await;
    }
    result
}

const CUSTOM_THUMB_ACCESS: Access = Access::Requires(Permission::UpdateData);
/// The largest custom thumbnail accepted (a preview source, not an archive master).
const MAX_THUMB_BYTES: u64 = 256 << 20;

async fn read_thumb_upload(call: &mut Call, body: Body, upload: &mut Option<Original>) -> ApiResult<()> {
    let mut mp = open_multipart(call, body)?;
    let limit = call.state.config.max_body_bytes;
    let broken = |e: multer::Error| ApiError::bad(format!("the multipart body is broken: {e}"));
    while let Some(mut field) = mp.next_field().await.map_err(broken)? {
        let name = field.name().unwrap_or("").to_string();
        let filename = field.file_name().map(str::to_string);
        let is_json = multipart::is_json_part(&field);
        if let (Some(fname), false) = (filename, is_json) {
            if upload.is_some() {
                while field.chunk().await.map_err(broken)?.is_some() {}
                continue;
            }
            // Refuse before storing a byte when the caller may not change the asset.
            session::authorize(call, CUSTOM_THUMB_ACCESS).await?;
            let leaf = fname.rsplit(['/', '\\']).next().unwrap_or("").trim();
            let fname = if leaf.is_empty() || leaf.chars().any(char::is_control) || leaf.len() > 255 {
                "customthumb".to_string()
            } else {
                leaf.to_string()
            };
            let stream = field.map(|r| r.map_err(|e| ClientStreamError(e.to_string())));
            *upload = Some(ingest::receive(&call.state.blobs, &fname, Box::pin(stream), MAX_THUMB_BYTES).await?);
            continue;
        }
        let bytes = read_small(&mut field, limit).await?;
        take_field(call, name, is_json, bytes)?;
    }
    session::authorize(call, CUSTOM_THUMB_ACCESS).await
}

/// Checks the upload, records it on the asset (taking ownership of its blob) and renders.
async fn store_custom_thumb(call: &mut Call, upload: &mut Option<Original>) -> ApiResult<Response> {
    let id = asset_id(call)?;
    live_asset(call, &id).await?;
    let Some(o) = upload.as_ref() else {
        return Err(ApiError::bad(
            "customthumb needs an image file in the multipart body (JPEG, PNG, GIF, TIFF, WebP, BMP or Photoshop)",
        ));
    };
    check_thumb_image(call, o).await?;
    let thumb = import::CustomThumb {
        blob: o.blob_key.clone(),
        filename: o.filename.clone(),
        bytes: o.size,
    };
    let env = call.state.job_env();
    import::set_custom_thumb(&env, &call.catalog, &id, thumb).await?;
    // From here the asset owns the blob.
    upload.take();
    audit(call, "customthumb", &id).await;
    match import::import_asset(&env, &call.catalog, &id).await {
        Ok(_) => {}
        Err(OpsError::NotFound(_)) => return Err(ApiError::not_found(id)),
        Err(e) => return Err(e.into()),
    }
    let asset = live_asset(call, &id).await?;
    if asset.text("previewstatus") == Some("3") {
        // The header looked right but the image does not decode: drop it and bring the
        // original's previews back, rather than leave the asset without any.
        let reason = asset
            .text("importerror")
            .unwrap_or("the image cannot be decoded")
            .to_string();
        import::remove_renditions(&env, &call.catalog, &id).await?;
        import::enqueue(call.state.store.as_ref(), &call.catalog, &id).await?;
        call.state.wake.notify_waiters();
        return Err(ApiError::bad(format!(
            "the custom thumbnail cannot be used: {reason}; the asset keeps previews of its original"
        )));
    }
    Ok(ok_json(json!({"response": {"status": "ok"}, "results": {"asset": id}})))
}

/// A custom thumbnail must be an image decoded in-process, within the pixel limit: refused
/// from its header, before anything is recorded.
async fn check_thumb_image(call: &Call, o: &Original) -> ApiResult<()> {
    let read = call
        .state
        .blobs
        .get(&o.blob_key, Some(0..o.size.min(256 << 10)))
        .await?;
    let mut head = Vec::new();
    let mut stream = read.stream;
    while let Some(chunk) = stream.next().await {
        head.extend_from_slice(&chunk?);
    }
    let format = crate::media::sniff::sniff_bytes(&head);
    if !format.decodes_in_process() {
        return Err(ApiError::bad(format!(
            "the custom thumbnail must be a JPEG, PNG, GIF, TIFF, WebP, BMP or Photoshop image; \"{}\" is {}",
            o.filename,
            format.extension().unwrap_or("not a known image format")
        )));
    }
    let info = tokio::task::spawn_blocking(move || crate::media::probe::probe_reader(&mut std::io::Cursor::new(head)))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    match info {
        Ok(crate::media::MediaInfo {
            width: Some(w),
            height: Some(h),
            ..
        }) => {
            let limit = call.state.config.max_image_pixels;
            if u64::from(w) * u64::from(h) > limit {
                return Err(ApiError::bad(format!(
                    "the image is {w}x{h} pixels, more than the limit of {limit}; nothing was stored"
                )));
            }
            Ok(())
        }
        Ok(_) => Err(ApiError::bad("the custom thumbnail's header has no image size")),
        Err(e) => Err(ApiError::bad(format!("the custom thumbnail cannot be read: {e}"))),
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
